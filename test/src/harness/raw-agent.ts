// A hand-driven agent stream for security tests: it dials the agents' gRPC
// endpoint with whatever credentials the test gives and sends exactly the
// messages the test writes (a real agent would never misbehave on purpose).
import * as grpc from "@grpc/grpc-js";
import { loadGroveProto, type AgentMessage, type ControlMessage__Output } from "@grove/proto";
import { issueKeyPair, type KeyPair } from "@grove/control-plane";
import { postJson } from "./tls";
import forge from "node-forge";
import { generateKeyPairSync } from "node:crypto";

export interface RawStream {
  received: ControlMessage__Output[];
  /** Resolves with the stream's end: its status code and details. */
  ended: Promise<{ code: number; details: string }>;
  send(msg: AgentMessage): void;
  close(): void;
}

/** The gRPC method names of the agents' endpoint, from the service definition the server serves. */
export function agentServiceMethods(): string[] {
  return Object.keys(loadGroveProto().grove.v1.AgentService.service);
}

export function tlsCredentials(caPem: string, client?: KeyPair): grpc.ChannelCredentials {
  return client
    ? grpc.credentials.createSsl(Buffer.from(caPem), Buffer.from(client.keyPem), Buffer.from(client.certPem))
    : grpc.credentials.createSsl(Buffer.from(caPem));
}

/** Opens Connect with `creds`; nothing is sent until the test sends. The stream ends after `deadlineMs`. */
export function rawConnect(address: string, creds: grpc.ChannelCredentials, deadlineMs = 30_000): RawStream {
  const proto = loadGroveProto();
  const client = new proto.grove.v1.AgentService(address, creds);
  const call = client.Connect(new grpc.Metadata(), { deadline: Date.now() + deadlineMs });
  const received: ControlMessage__Output[] = [];
  call.on("data", (m: ControlMessage__Output) => received.push(m));
  const ended = new Promise<{ code: number; details: string }>((resolve) => {
    call.on("error", (err: grpc.ServiceError) => resolve({ code: err.code, details: err.details }));
    call.on("end", () => resolve({ code: grpc.status.OK, details: "" }));
  });
  return {
    received,
    ended,
    send: (msg) => call.write(msg),
    close: () => {
      call.cancel();
      client.close();
    },
  };
}

/** A registration for `name` with sane capacity (labels as given). */
export function registerMessage(name: string, labels: Record<string, string> = {}): AgentMessage {
  const res = { cpuMillis: "2000", memoryBytes: String(2 * 1024 ** 3), pids: "4096" };
  return {
    register: {
      node: { name, labels, capacity: res, allocatable: res, addresses: [], agentVersion: "test", cgroupMode: "v2" },
      instances: [],
      conditions: [],
    },
  };
}

/** A certificate request for a fresh key (what grove-agent sends at join). */
export function newCsr(commonName: string): { csr: string; keyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: "spki", format: "pem" }).toString());
  csr.setSubject([{ name: "commonName", value: commonName }]);
  csr.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  return { csr: forge.pki.certificationRequestToPem(csr), keyPem };
}

/** Joins over the API with `token`: the status, and the node's key pair when it was accepted. */
export async function joinOverApi(
  serverUrl: string,
  caPem: string,
  token: string,
  nodeName: string,
): Promise<{ status: number; pair?: KeyPair; body: unknown }> {
  const { csr, keyPem } = newCsr(nodeName);
  const res = await postJson(`${serverUrl}/v1/join`, { token, nodeName, csr }, { caPem });
  const cert = (res.body as { certificate?: string }).certificate;
  return {
    status: res.status,
    body: res.body,
    ...(res.status === 200 && cert ? { pair: { certPem: cert, keyPem } } : {}),
  };
}

export { issueKeyPair };
