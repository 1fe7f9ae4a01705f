// grove-server's serving certificate (HTTPS API and the agents' gRPC
// endpoint) renewed while the server runs: at two thirds of its lifetime a
// new key and certificate are issued and handed to the listeners, which use
// them for new connections (Node's setSecureContext; grpc-js watches its
// credentials); open connections carry on with the old one.
import { X509Certificate } from "node:crypto";
import type { Logger } from "pino";
import { issueServingCertificate, type ClusterPki } from "./cluster-pki";
import type { KeyPair } from "./ca";

/** When to renew a certificate: at `fraction` of its lifetime (wall clock, ms since the epoch). */
export function renewalTime(certPem: string, fraction = 2 / 3): number {
  const cert = new X509Certificate(certPem);
  const from = Date.parse(cert.validFrom);
  return from + (Date.parse(cert.validTo) - from) * fraction;
}

/**
 * Renews the serving certificate at two thirds of its lifetime, for as long
 * as the server runs; `apply` puts each new one into the listeners. Answers
 * the function that stops it.
 */
export function renewServingCertificate(pki: ClusterPki, apply: (pair: KeyPair) => void, logger: Logger): () => void {
  let timer: NodeJS.Timeout | undefined;
  let current = pki.server;
  const schedule = (delayMs: number) => {
    // setTimeout holds at most 2^31-1 ms (24.8 days): longer waits are taken in steps.
    timer = setTimeout(tick, Math.min(Math.max(0, delayMs), 2 ** 31 - 1));
    timer.unref();
  };
  const tick = () => {
    const due = renewalTime(current.certPem);
    if (Date.now() < due) return schedule(due - Date.now());
    try {
      current = issueServingCertificate(pki.dir, pki.ca, pki.sans, pki.servingValidForMs);
      apply(current);
      const cert = new X509Certificate(current.certPem);
      logger.info({ serial: cert.serialNumber, notAfter: cert.validTo }, "serving certificate renewed");
      schedule(renewalTime(current.certPem) - Date.now());
    } catch (err) {
      // Keep serving the current one; try again soon (it is still valid for a third of its life).
      logger.error({ err }, "could not renew the serving certificate; retrying");
      schedule(Math.min(60_000, pki.servingValidForMs / 20));
    }
  };
  schedule(renewalTime(current.certPem) - Date.now());
  return () => clearTimeout(timer);
}
