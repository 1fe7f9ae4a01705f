// Issue 15, node identity over time. One grove-server with short certificate
// lifetimes (12 s) and low per-node limits, one real agent that stays up:
//   - the agent renews its node certificate over its stream and keeps that
//     stream past the first certificate's expiry (no reconnect, node Ready),
//     while a raw agent that does not renew is cut at expiry with a clear
//     reason; the server's serving certificate is renewed and hot-reloaded on
//     both the HTTPS and the gRPC listener;
//   - a raw agent flooding condition reports is slowed to its rate while
//     another node's heartbeats are answered at once, and a node holds no
//     more than its share of streams;
//   - `grove delete node` ends a real agent's open stream at once; it cannot
//     register again and the node does not come back.
import { X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { GroveClient } from "@grove/api";
import { createJoinToken, runCli, waitFor, waitNodeReady, type ServerProcess, type Started } from "./harness/processes";
import { startMachine, type TestMachine } from "./harness/machine";
import { joinOverApi, rawConnect, registerMessage, tlsCredentials, type RawStream } from "./harness/raw-agent";
import type { KeyPair } from "@grove/control-plane";
import { RUN_TAG } from "./harness/run-id";

const CGROUP_PARENT = `grove-it-certs-${RUN_TAG}`;
const VALIDITY_S = 12;

/** The serial of the certificate a TLS listener presents now (a new connection). */
function servedSerial(hostPort: string, alpn: "h2" | "http/1.1"): Promise<string> {
  const [host, port] = [
    hostPort.slice(0, hostPort.lastIndexOf(":")),
    Number(hostPort.slice(hostPort.lastIndexOf(":") + 1)),
  ];
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, rejectUnauthorized: false, ALPNProtocols: [alpn] }, () => {
      resolve(socket.getPeerCertificate().serialNumber.toLowerCase());
      socket.destroy();
    });
    socket.on("error", reject);
  });
}

const lines = (p: Started, pattern: RegExp) => p.output.filter((l) => pattern.test(l));
/** What the server and the agent said about node-r, for a failed wait. */
const story = (server: Started, agent: Started) =>
  [...lines(server, /node-r/).slice(-15), "--- agent:", ...agent.output.slice(-25)].join("\n");

describe("node certificates over time, revocation and per-node limits", () => {
  let dir: string;
  let m: TestMachine;
  let server: ServerProcess;
  let agent: Started;
  let client: GroveClient;
  let httpsSerial0: string;
  let grpcSerial0: string;

  beforeAll(async () => {
    m = await startMachine("grove-it-certs", {
      extraArgs: [
        "--node-cert-validity",
        `${VALIDITY_S}s`,
        "--server-cert-validity",
        `${VALIDITY_S}s`,
        "--agent-limits",
        "reports=5,streams=3",
      ],
    });
    ({ dir, server } = m);
    httpsSerial0 = await servedSerial(new URL(server.url).host, "http/1.1");
    grpcSerial0 = await servedSerial(server.grpcAddress, "h2");
    client = m.client;
    agent = await m.startAgent({
      nodeName: "node-r",
      stateDir: path.join(dir, "agent-r"),
      cgroupParent: CGROUP_PARENT,
    });
    await waitNodeReady(client, "node-r", 60_000);
  }, 300_000);

  afterAll(async () => {
    await agent?.stop();
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A node joined with a fresh token (a raw agent's key pair). */
  const joinRaw = async (name: string): Promise<KeyPair> => {
    const res = await joinOverApi(server.url, server.caPem, await createJoinToken(server, name), name);
    expect(res.status).toBe(200);
    return res.pair!;
  };
  /** A raw agent registered as `name`; with `beat`, it heartbeats every second as an agent does (until closed). */
  const registered = async (name: string, pair: KeyPair, beat = true): Promise<RawStream> => {
    const s = rawConnect(server.grpcAddress, tlsCredentials(server.caPem, pair));
    s.send(registerMessage(name));
    await waitFor(`${name} registered`, async () => s.received.some((m) => m.registered));
    if (!beat) return s;
    const pump = setInterval(() => s.send({ heartbeat: { sentAtMs: String(Date.now()) } }), 1_000);
    void s.ended.then(() => clearInterval(pump));
    return { ...s, close: () => (clearInterval(pump), s.close()) };
  };
  const acked = (s: RawStream, tag: string) => s.received.some((m) => m.heartbeatAck?.sentAtMs === tag);

  it("the agent renews its certificate on its open stream; a stream that does not renew ends at expiry", async () => {
    const certFile = path.join(dir, "agent-r", "pki", "node.crt");
    const first = new X509Certificate(fs.readFileSync(certFile, "utf8"));
    const stale = await registered("node-stale", await joinRaw("node-stale"));
    try {
      const renewed = await waitFor(
        "node-r's certificate renewed on disk",
        async () => {
          const c = new X509Certificate(fs.readFileSync(certFile, "utf8"));
          return c.serialNumber !== first.serialNumber ? c : undefined;
        },
        VALIDITY_S * 1000 + 10_000,
      );
      expect(renewed.subject).toBe("CN=node-r\nO=grove:nodes");
      expect(renewed.verify(new X509Certificate(server.caPem).publicKey)).toBe(true);
      // Past the first certificate's end (the server checks open streams every few hundred ms).
      await waitFor("node-r's first certificate to expire", async () => Date.now() > Date.parse(first.validTo) + 2_000);

      // The raw agent never renewed: its stream ended, with the reason.
      const end = await stale.ended;
      expect(end.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(end.details).toMatch(/certificate of node node-stale expired at .* and was not renewed/);

      // The real one renewed on the same stream: registered once, never disconnected, Ready.
      expect(lines(agent, /node certificate renewed/).length).toBeGreaterThanOrEqual(1);
      expect(lines(server, /"node":"node-r".*"msg":"agent registered"/)).toHaveLength(1);
      expect(lines(server, /"node":"node-r".*"msg":"agent disconnected"/)).toEqual([]);
      await waitNodeReady(client, "node-r", 5_000);

      // The serving certificate was renewed too, on both listeners, without a restart.
      expect(await servedSerial(new URL(server.url).host, "http/1.1")).not.toBe(httpsSerial0);
      expect(await servedSerial(server.grpcAddress, "h2")).not.toBe(grpcSerial0);
      expect(lines(server, /"msg":"serving certificate renewed"/).length).toBeGreaterThanOrEqual(1);
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    } finally {
      stale.close();
    }
  }, 60_000);

  it("a node flooding reports is slowed to its rate; another node is answered at once; streams are capped", async () => {
    // The flooder is heard through its flood; its one heartbeat is the probe.
    const flooder = await registered("node-flood", await joinRaw("node-flood"), false);
    const calmPair = await joinRaw("node-calm");
    const calm = await registered("node-calm", calmPair);
    const extra: RawStream[] = [];
    try {
      // reports=5: a burst of 10, then 5 per second. 40 condition reports
      // (each one a store write) take about (40 - 10) / 5 = 6 s to be read.
      const reports = 40;
      const t0 = performance.now();
      for (let i = 0; i < reports; i++) {
        flooder.send({
          condition: { type: "DesiredStateRefused", status: "False", reason: "certsFlood", message: String(i) },
        });
      }
      flooder.send({ heartbeat: { sentAtMs: "1" } });
      // Meanwhile the calm node's heartbeat is answered at once.
      await new Promise((r) => setTimeout(r, 500));
      const c0 = performance.now();
      calm.send({ heartbeat: { sentAtMs: "2" } });
      await waitFor("node-calm's heartbeat answered", async () => acked(calm, "2"), 5_000);
      expect(performance.now() - c0).toBeLessThan(2_000);
      expect(acked(flooder, "1")).toBe(false);

      await waitFor("node-flood's heartbeat answered", async () => acked(flooder, "1"), 20_000);
      const took = performance.now() - t0;
      // Unthrottled, 40 writes take well under a second here.
      expect(took).toBeGreaterThan(((reports - 10) / 5) * 1000 * 0.8);
      expect(lines(server, /"node":"node-flood".*"msg":"agent over its rate; throttled"/).length).toBeGreaterThan(0);
      await waitNodeReady(client, "node-r", 5_000).catch((err: Error) => {
        throw new Error(`${err.message}\n${story(server, agent)}`);
      });

      // streams=3: node-calm holds one; two more open, the fourth is refused.
      for (let i = 0; i < 3; i++) extra.push(rawConnect(server.grpcAddress, tlsCredentials(server.caPem, calmPair)));
      // Something harmless to send (the end of a sub-stream that does not exist), so each call reaches the server.
      extra.forEach((s) => s.send({ streamEnd: { streamId: 999 } }));
      const ends: { code: number; details: string }[] = [];
      extra.forEach((s) => void s.ended.then((e) => ends.push(e)));
      const refused = await waitFor("a stream over node-calm's cap to end", async () => ends[0]);
      await new Promise((r) => setTimeout(r, 300));
      expect(ends).toHaveLength(1);
      expect(refused.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(refused.details).toMatch(/node node-calm holds 3 streams open already/);
    } finally {
      for (const s of [flooder, calm, ...extra]) s.close();
    }
  }, 60_000);

  it("`grove delete node` ends the agent's open stream at once; it is refused from then on", async () => {
    const stateDir = path.join(dir, "agent-d");
    const doomed = await m.startAgent({
      nodeName: "node-d",
      stateDir,
      cgroupParent: `${CGROUP_PARENT}-d`,
    });
    try {
      await waitNodeReady(client, "node-d", 30_000);
      const registeredBefore = lines(doomed, /registered with the control plane/).length;
      const t0 = performance.now();
      const del = await runCli(["delete", "node", "node-d"], {
        GROVE_SERVER: server.url,
        GROVE_TOKEN: server.adminToken,
      });
      expect(del.code).toBe(0);
      const refusedLine = await waitFor(
        "node-d's agent to be refused",
        async () => lines(doomed, /refuses this node's certificate/)[0],
        10_000,
      );
      // At once: not after a heartbeat grace or a reconnect.
      expect(performance.now() - t0).toBeLessThan(5_000);
      expect(refusedLine).toMatch(/UNAUTHENTICATED: the certificate of node node-d was revoked/);
      // It keeps trying and keeps being refused; it never registers again, so
      // the node does not come back and no desired set reaches it.
      await waitFor(
        "a second refusal",
        async () => lines(doomed, /refuses this node's certificate/).length >= 2,
        15_000,
      );
      expect(lines(doomed, /registered with the control plane/)).toHaveLength(registeredBefore);
      await expect(client.get("Node", "node-d")).rejects.toMatchObject({ code: "NotFound" });
    } finally {
      await doomed.stop();
    }
  }, 90_000);
});
