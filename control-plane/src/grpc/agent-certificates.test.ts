// Renewal on an agent's stream and the checks that end a stream whose
// certificate no longer counts (expired, revoked).
import { X509Certificate } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { GroveError } from "@grove/api";
import type { ControlMessage } from "@grove/proto";
import { createCa, issueKeyPair, NODE_ORGANIZATION } from "../pki/ca";
import { expiredProblem, renewOnStream, revokedProblem } from "./agent-certificates";
import { AgentRefused, type AgentIdentity, type AgentTls } from "./agent-identity";

const ca = createCa("test-ca");
const pem = issueKeyPair(ca, {
  commonName: "n1",
  organization: NODE_ORGANIZATION,
  usage: "client",
  validForMs: 60_000,
}).certPem;
const tls = (renew: AgentTls["renew"], current = true): AgentTls => ({
  caPem: ca.certPem,
  certPem: "",
  keyPem: "",
  certificateCurrent: async () => current,
  ...(renew ? { renew } : {}),
});

describe("agent certificates on the stream", () => {
  it("an expired certificate ends the stream with a reason naming the node and what to do", () => {
    const id: AgentIdentity = { node: "n1", serial: "aa", notAfterMs: 1_000 };
    expect(expiredProblem(undefined)).toBeUndefined();
    expect(expiredProblem({ node: "n1", serial: "aa" })).toBeUndefined();
    expect(expiredProblem(id, 999)).toBeUndefined();
    expect(expiredProblem(id, 1_000)).toMatch(
      /certificate of node n1 expired at 1970-01-01T00:00:01.000Z and was not renewed: join again \(grove token create --node n1\)/,
    );
  });

  it("a revoked certificate is named; a current one or none (no TLS) is not", async () => {
    const id: AgentIdentity = { node: "n1", serial: "aa" };
    expect(await revokedProblem(tls(undefined, true), id)).toBeUndefined();
    expect(await revokedProblem(undefined, id)).toBeUndefined();
    expect(await revokedProblem(tls(undefined, false), id)).toMatch(/certificate of node n1 was revoked/);
  });

  it("answers the renewed certificate and counts the stream as holding it from then on", async () => {
    const id: AgentIdentity = { node: "n1", serial: "aa", notAfterMs: 1 };
    const sent: ControlMessage[] = [];
    const asked: string[] = [];
    await renewOnStream(
      tls(async (node, serial, csr) => (asked.push(`${node} ${serial} ${csr}`), pem)),
      id,
      "CSR",
      (m) => sent.push(m),
    );
    expect(asked).toEqual(["n1 aa CSR"]);
    expect(sent).toEqual([{ certificateIssued: { certificate: pem } }]);
    const cert = new X509Certificate(pem);
    expect(id).toEqual({ node: "n1", serial: cert.serialNumber.toLowerCase(), notAfterMs: Date.parse(cert.validTo) });
  });

  it("a malformed request is answered with its error; a revoked certificate ends the stream", async () => {
    const sent: ControlMessage[] = [];
    const id: AgentIdentity = { node: "n1", serial: "aa" };
    await renewOnStream(
      tls(async () => Promise.reject(new GroveError("BadRequest", "csr: not a PEM certificate request"))),
      id,
      "x",
      (m) => sent.push(m),
    );
    expect(sent).toEqual([{ certificateIssued: { error: "csr: not a PEM certificate request" } }]);
    const refused = await renewOnStream(
      tls(async () =>
        Promise.reject(new GroveError("Unauthorized", "the certificate of node n1 was revoked: join again")),
      ),
      id,
      "x",
      (m) => sent.push(m),
    ).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(AgentRefused);
    expect((refused as AgentRefused).grpcCode).toBe(grpc.status.UNAUTHENTICATED);
    expect(id.serial).toBe("aa");
    // Without TLS nothing is issued.
    await renewOnStream(undefined, id, "x", (m) => sent.push(m));
    expect(sent[1]?.certificateIssued?.error).toMatch(/does not issue node certificates/);
  });
});
