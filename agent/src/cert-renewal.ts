// Renewing the node certificate before it expires, without a restart: at a
// point between 60 % and 70 % of its lifetime (spread, so nodes that joined
// together do not all renew at once) the agent makes a fresh key and sends a
// certificate request over its registered stream, whose certificate is the
// credential. The new pair is saved crash-safely and handed to the gRPC
// channel, which presents it on every connection from then on; the open
// stream carries on. Failures are retried until the certificate expires.
import { createPrivateKey, X509Certificate } from "node:crypto";
import type { Logger } from "pino";
import {
  certificateNode,
  certificateRequest,
  newNodeKey,
  saveRenewedCertificate,
  type NodeCertificateProvider,
} from "./join";

/** When a certificate is due for renewal (ms since the epoch): at `fraction` of its lifetime. */
export function renewalDue(certPem: string, fraction: number): number {
  const cert = new X509Certificate(certPem);
  const from = Date.parse(cert.validFrom);
  return from + (Date.parse(cert.validTo) - from) * fraction;
}

/** A fresh RSA key and a certificate request for it (the server sets the name; the CN is informative). */
export function newCertificateRequest(commonName: string): { csrPem: string; keyPem: string } {
  const key = newNodeKey();
  return { csrPem: certificateRequest(commonName, key), keyPem: key.keyPem };
}

export interface CertificateRenewerOptions {
  stateDir: string;
  nodeName: string;
  provider: NodeCertificateProvider;
  /** Sends the request over the registered stream (ControlPlaneConnection.renewCertificate). */
  renew(csrPem: string): Promise<string>;
  logger: Logger;
  random?: () => number;
}

export class CertificateRenewer {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly fraction: number;

  constructor(private readonly o: CertificateRenewerOptions) {
    this.fraction = 0.6 + 0.1 * (o.random ?? Math.random)();
  }

  start(): void {
    this.schedule(renewalDue(this.o.provider.current.certPem, this.fraction) - Date.now());
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    // setTimeout holds at most 2^31-1 ms (24.8 days): longer waits are taken in steps (tick checks again).
    this.timer = setTimeout(() => void this.tick(), Math.min(Math.max(0, delayMs), 2 ** 31 - 1));
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    const { certPem } = this.o.provider.current;
    const due = renewalDue(certPem, this.fraction);
    if (Date.now() < due) return this.schedule(due - Date.now());
    const notAfter = Date.parse(new X509Certificate(certPem).validTo);
    try {
      const { csrPem, keyPem } = newCertificateRequest(this.o.nodeName);
      const pem = await this.o.renew(csrPem);
      const cert = new X509Certificate(pem);
      if (!cert.checkPrivateKey(createPrivateKey(keyPem)) || certificateNode(pem) !== this.o.nodeName)
        throw new Error("the certificate received is not for this node's new key and name");
      saveRenewedCertificate(this.o.stateDir, pem, keyPem);
      this.o.provider.update(pem, keyPem);
      this.o.logger.info({ serial: cert.serialNumber, notAfter: cert.validTo }, "node certificate renewed");
      this.schedule(renewalDue(pem, this.fraction) - Date.now());
    } catch (err) {
      // Not registered yet, the stream broke, or refused: try again, more often as expiry nears.
      const left = notAfter - Date.now();
      const retryMs = Math.max(1_000, Math.min(60_000, left / 10));
      this.o.logger.warn(
        { err: (err as Error).message, expiresInMs: Math.round(left), retryInMs: Math.round(retryMs) },
        "could not renew the node certificate yet; retrying",
      );
      this.schedule(retryMs);
    }
  }
}
