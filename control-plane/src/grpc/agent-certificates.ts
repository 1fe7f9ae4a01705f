// Node certificates over time, on the agents' endpoint: the serving
// certificate swapped without a restart, renewals over an agent's own stream,
// and streams ended once their certificate is revoked or expired (the TLS
// handshake checks a certificate only when a connection opens).
import { X509Certificate } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import type { SecureContextOptions } from "node:tls";
import { GroveError } from "@grove/api";
import type { ControlMessage } from "@grove/proto";
import { AgentRefused, type AgentIdentity, type AgentTls } from "./agent-identity";

/**
 * Mutual-TLS server credentials whose certificate can be replaced while the
 * server runs: grpc-js calls setSecureContext on its listener for every
 * update, so new connections get the new certificate and open ones carry on.
 */
export class ReloadableServerCredentials extends grpc.ServerCredentials {
  constructor(tls: AgentTls) {
    // requestCert + rejectUnauthorized: the handshake fails without a client certificate of the CA.
    super({ requestCert: true, rejectUnauthorized: true }, contextOf(tls));
  }

  /** A new serving certificate (and CA bundle) for connections from now on. */
  update(tls: AgentTls): void {
    this.updateSecureContextOptions(contextOf(tls));
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

function contextOf(tls: AgentTls): SecureContextOptions {
  return { ca: tls.caPem, cert: tls.certPem, key: tls.keyPem };
}

/** Why a stream's certificate no longer lets it act for its node, or undefined. */
export function expiredProblem(identity: AgentIdentity | undefined, nowMs = Date.now()): string | undefined {
  if (identity?.notAfterMs === undefined || identity.notAfterMs > nowMs) return undefined;
  return (
    `the certificate of node ${identity.node} expired at ${new Date(identity.notAfterMs).toISOString()} ` +
    "and was not renewed: join again (grove token create --node " +
    `${identity.node})`
  );
}

/** Why a stream's certificate is no longer accepted (the node was deleted, or joined again), or undefined. */
export async function revokedProblem(
  tls: AgentTls | undefined,
  identity: AgentIdentity | undefined,
): Promise<string | undefined> {
  if (!identity || !tls?.certificateCurrent || (await tls.certificateCurrent(identity.node, identity.serial)))
    return undefined;
  return `the certificate of node ${identity.node} was revoked (the node was deleted or joined again): join again`;
}

/**
 * A RenewCertificate on a registered stream: signs the request for the
 * stream's node and answers CertificateIssued. The stream goes on, now
 * counted as holding the new certificate. A revoked certificate ends the
 * stream (UNAUTHENTICATED); a malformed request is answered with its error.
 */
export async function renewOnStream(
  tls: AgentTls | undefined,
  identity: AgentIdentity | undefined,
  csr: string,
  write: (m: ControlMessage) => void,
): Promise<void> {
  if (!tls?.renew || !identity) {
    write({ certificateIssued: { error: "this endpoint does not issue node certificates (no TLS)" } });
    return;
  }
  let pem: string;
  try {
    pem = await tls.renew(identity.node, identity.serial, csr);
  } catch (err) {
    if (err instanceof GroveError && err.code === "Unauthorized")
      throw new AgentRefused(grpc.status.UNAUTHENTICATED, err.message);
    if (err instanceof GroveError && err.code === "BadRequest") {
      write({ certificateIssued: { error: err.message } });
      return;
    }
    throw err;
  }
  const cert = new X509Certificate(pem);
  identity.serial = cert.serialNumber.toLowerCase();
  identity.notAfterMs = Date.parse(cert.validTo);
  write({ certificateIssued: { certificate: pem } });
}
