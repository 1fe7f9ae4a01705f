// What an agent may claim when it registers (NodeRestriction).
import * as grpc from "@grpc/grpc-js";
import type { NodeRegistrationInfo } from "../nodes/registration";
import { AgentRefused, checkRegistration, type AgentTls } from "./agent-identity";

const res = { cpuMillis: 4000, memoryBytes: 8 * 2 ** 30, pids: 4096 };
const info = (over: Partial<NodeRegistrationInfo> = {}): NodeRegistrationInfo => ({
  name: "n1",
  labels: {},
  capacity: res,
  allocatable: res,
  addresses: [],
  agentVersion: "t",
  kernel: "",
  cgroupMode: "v2",
  ...over,
});
const tls = (current: boolean): AgentTls => ({
  caPem: "",
  certPem: "",
  keyPem: "",
  certificateCurrent: async () => current,
});
const refusal = (p: Promise<void>) =>
  p.then(
    () => "ok",
    (err: unknown) => (err instanceof AgentRefused ? `${grpc.status[err.grpcCode]}: ${err.message}` : String(err)),
  );

describe("checkRegistration", () => {
  const me = { node: "n1", serial: "01ab" };

  it("lets a node register as itself with its own labels", async () => {
    expect(await refusal(checkRegistration(me, info({ labels: { zone: "a" } }), tls(true)))).toBe("ok");
  });

  it("refuses another node's name, a revoked certificate, reserved labels and absurd capacity", async () => {
    expect(await refusal(checkRegistration(me, info({ name: "n2" }), tls(true)))).toMatch(
      /^PERMISSION_DENIED: .*certificate is for node n1; it may not register as n2/,
    );
    expect(await refusal(checkRegistration(me, info(), tls(false)))).toMatch(/^UNAUTHENTICATED: .*revoked/);
    for (const key of ["grove.io/app", "node-role.grove.io/control-plane", "node.grove.io/pool"]) {
      expect(await refusal(checkRegistration(me, info({ labels: { [key]: "x" } }), tls(true)))).toMatch(
        new RegExp(`^PERMISSION_DENIED: node.labels.${key.replace(/\./g, "\\.")}: `),
      );
    }
    expect(
      await refusal(checkRegistration(me, info({ capacity: { ...res, memoryBytes: 2 ** 60 } }), tls(true))),
    ).toMatch(/^INVALID_ARGUMENT: node.capacity.memoryBytes/);
    expect(await refusal(checkRegistration(me, info({ allocatable: { ...res, cpuMillis: 5000 } }), tls(true)))).toMatch(
      /^INVALID_ARGUMENT: node.allocatable.cpuMillis: 5000 exceeds capacity 4000/,
    );
    expect(await refusal(checkRegistration(me, info({ capacity: { ...res, pids: -1 } }), tls(true)))).toMatch(
      /^INVALID_ARGUMENT: node.capacity.pids/,
    );
  });
});
