// Joining: single-use, expiring bootstrap tokens (stored hashed in etcd) that
// an agent trades, once, for a node certificate with its name; and the record
// of each node's current certificate, which deleting the node removes (so its
// certificate is refused from then on).

import { createHash, randomBytes, X509Certificate } from "node:crypto";
import { GroveError } from "@grove/api";
import type { Store } from "../store/store";
import { signNodeCsr, type KeyPair } from "./ca";

/** Under /grove/join-tokens/<sha256 of the token>: never the token itself. */
const TOKENS = "/grove/join-tokens/";
/** Under /grove/node-certificates/<node>: the serial of the node's current certificate. */
const NODE_CERTS = "/grove/node-certificates/";
const NODE_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

interface StoredToken {
  /** Wall-clock expiry (ms since the epoch): tokens are handed between people and machines. */
  expiresAt: number;
  /** The only node name it yields a certificate for; any name not yet joined when absent. */
  node?: string;
  createdAt: number;
}

interface NodeCertificate {
  /** The current certificate's serial; REVOKED once the node was deleted. */
  serial: string;
  notAfter: string;
  /**
   * The serial the node renewed from (renew): still accepted until it
   * expires, so a node that never got its new certificate (the answer was
   * lost) can renew again instead of being locked out. A join clears it.
   */
  previous?: string;
}

/**
 * A deleted node's record stays as a tombstone, so its certificate is refused.
 * A certificate of the cluster CA with no record at all (a store restored
 * without them) is accepted: the CA's signature is the identity.
 */
const REVOKED = "revoked";

export interface JoinResult {
  node: string;
  certificatePem: string;
}

function hashOf(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

export class JoinService {
  constructor(
    private readonly store: Store,
    private readonly ca: KeyPair,
    /** How long node certificates are valid (agents renew at two thirds). */
    private readonly certValidForMs = 30 * 86_400_000,
  ) {}

  /** A new token "<id>.<secret>", valid once for `ttlMs`. */
  async createToken(ttlMs: number, node?: string): Promise<{ token: string; expiresAt: Date }> {
    if (!(ttlMs > 0)) throw new GroveError("BadRequest", "ttl: must be longer than 0");
    if (node !== undefined && !NODE_NAME.test(node))
      throw new GroveError("BadRequest", `node: invalid node name "${node}"`);
    const token = `${randomBytes(3).toString("hex")}.${randomBytes(16).toString("hex")}`;
    const expiresAt = Date.now() + ttlMs;
    await this.store.create<StoredToken>(TOKENS + hashOf(token), {
      expiresAt,
      createdAt: Date.now(),
      ...(node ? { node } : {}),
    });
    return { token, expiresAt: new Date(expiresAt) };
  }

  /**
   * Spends the token (deleted at the revision read, so of two uses at once
   * only one wins) and signs the request for the node it allows.
   */
  /** Node certificates are valid this long (grove-server --node-cert-validity). */
  get certificateValidForMs(): number {
    return this.certValidForMs;
  }

  async join(token: string, nodeName: string, csrPem: string): Promise<JoinResult> {
    const refused = () => new GroveError("Unauthorized", "the join token is invalid, used or expired");
    if (!NODE_NAME.test(nodeName)) throw new GroveError("BadRequest", `nodeName: invalid node name "${nodeName}"`);
    const key = TOKENS + hashOf(token);
    const kv = await this.store.get<StoredToken>(key);
    if (!kv) throw refused();
    try {
      await this.store.delete(key, kv.modRevision);
    } catch (err) {
      if (err instanceof GroveError && (err.code === "NotFound" || err.code === "Conflict")) throw refused();
      throw err;
    }
    if (Date.now() >= kv.value.expiresAt) throw refused();
    if (kv.value.node !== undefined && kv.value.node !== nodeName) {
      throw new GroveError("Unauthorized", `the join token is for node ${kv.value.node}, not ${nodeName}`);
    }
    // A token for any name may not take over a node that already joined.
    const current = await this.store.get<NodeCertificate>(NODE_CERTS + nodeName);
    if (current && current.value.serial !== REVOKED && kv.value.node === undefined) {
      throw new GroveError(
        "Conflict",
        `node ${nodeName} has joined already: delete the node, or make a token for it (grove token create --node ${nodeName})`,
      );
    }
    let certificatePem: string;
    try {
      certificatePem = signNodeCsr(this.ca, csrPem, nodeName, this.certValidForMs);
    } catch (err) {
      throw new GroveError("BadRequest", (err as Error).message);
    }
    await this.record(nodeName, certificatePem, current?.modRevision);
    return { node: nodeName, certificatePem };
  }

  /**
   * Renews a node's certificate: `serial` is the certificate the node proved
   * it holds (its mutual-TLS stream), which must still be accepted. The new
   * certificate has the same name, a fresh key of the node's and a full
   * lifetime; the one presented stays accepted until it expires.
   */
  async renew(node: string, serial: string, csrPem: string): Promise<JoinResult> {
    const kv = await this.store.get<NodeCertificate>(NODE_CERTS + node);
    if (kv && !accepts(kv.value, serial)) {
      throw new GroveError("Unauthorized", `the certificate of node ${node} was revoked: join again`);
    }
    let certificatePem: string;
    try {
      certificatePem = signNodeCsr(this.ca, csrPem, node, this.certValidForMs);
    } catch (err) {
      throw new GroveError("BadRequest", (err as Error).message);
    }
    // Compared with the revision read: a revocation in between wins (Conflict).
    await this.record(node, certificatePem, kv?.modRevision, serial.toLowerCase());
    return { node, certificatePem };
  }

  private async record(node: string, certificatePem: string, expectedRevision?: string, previous?: string) {
    const cert = new X509Certificate(certificatePem);
    const value: NodeCertificate = {
      serial: cert.serialNumber.toLowerCase(),
      notAfter: cert.validTo,
      ...(previous ? { previous } : {}),
    };
    if (expectedRevision) await this.store.update(NODE_CERTS + node, value, expectedRevision);
    else await this.store.create(NODE_CERTS + node, value);
  }

  /** Whether `serial` is the node's current certificate (gateway check on every registration). */
  async certificateCurrent(node: string, serial: string): Promise<boolean> {
    const current = await this.store.get<NodeCertificate>(NODE_CERTS + node);
    return current === undefined || accepts(current.value, serial);
  }

  /** Revokes the node's certificate (the node was deleted): a tombstone until it joins again. */
  async revoke(node: string): Promise<void> {
    // Every replica sees the deletion and revokes: a Conflict is another one's tombstone, read again.
    for (let attempt = 0; ; attempt++) {
      const current = await this.store.get<NodeCertificate>(NODE_CERTS + node);
      if (current?.value.serial === REVOKED) return;
      const tombstone: NodeCertificate = { serial: REVOKED, notAfter: current?.value.notAfter ?? "" };
      try {
        if (current) await this.store.update(NODE_CERTS + node, tombstone, current.modRevision);
        else await this.store.create(NODE_CERTS + node, tombstone);
        return;
      } catch (err) {
        const raced = err instanceof GroveError && (err.code === "Conflict" || err.code === "AlreadyExists");
        if (!raced || attempt >= 4) throw err;
      }
    }
  }

  /**
   * Calls `onChange(node)` whenever a node's certificate record changes
   * (revoked, re-issued at a join, renewed), on every replica: the agent
   * gateway then ends streams whose certificate is no longer accepted.
   */
  async watchRecords(onChange: (node: string) => void): Promise<{ close(): Promise<void> }> {
    const { revision } = await this.store.listPage(NODE_CERTS, { limit: 1 });
    const nodeOf = (key: string) => key.slice(NODE_CERTS.length);
    return this.store.watch<NodeCertificate>(NODE_CERTS, String(BigInt(revision) + 1n), {
      onEvent: (ev) => onChange(nodeOf(ev.key)),
      onRelist: (items) => items.forEach((kv) => onChange(nodeOf(kv.key))),
    });
  }
}

/** Whether a record accepts the certificate with `serial` (its current one, or the one it was renewed from). */
function accepts(record: NodeCertificate, serial: string): boolean {
  const s = serial.toLowerCase();
  return record.serial !== REVOKED && (record.serial === s || record.previous === s);
}
