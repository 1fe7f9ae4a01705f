// TLS plumbing of the test harness. Every grove-server serves HTTPS with its
// own cluster CA (made at its first start, as on an installed machine); the
// harness trusts each CA it meets, so tests talk to servers as before:
//   - in this process, fetch (node's undici), ws and https get the CAs added
//     to the system ones (tls.connect without a `ca` of its own);
//   - child processes (the grove CLI) get the CA file of the server they talk
//     to (runCli) or of the last server started, through NODE_EXTRA_CA_CERTS.
// Replicas sharing one store need one CA: sharedCa() puts one in the test's directory.
import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import { createRequire } from "node:module";
import * as tls from "node:tls";
import { createCa } from "@grove/control-plane";

const trusted = new Set<string>();
/** Server URL -> its CA file. */
const caFiles = new Map<string, string>();
let patched = false;

function patchTlsConnect(): void {
  if (patched) return;
  patched = true;
  // jest hands tests a read-only copy of core modules; fetch and ws use the real one.
  const realTls = createRequire(__filename)("node:tls") as { connect: typeof tls.connect };
  const original = realTls.connect;
  const withCas = (options: tls.ConnectionOptions): tls.ConnectionOptions =>
    options.ca === undefined && options.secureContext === undefined
      ? { ...options, ca: [...tls.rootCertificates, ...trusted] }
      : options;
  realTls.connect = function (this: unknown, ...args: unknown[]) {
    if (typeof args[0] === "object" && args[0] !== null) args[0] = withCas(args[0] as tls.ConnectionOptions);
    else if (typeof args[2] === "object" && args[2] !== null) args[2] = withCas(args[2] as tls.ConnectionOptions);
    return (original as (...a: unknown[]) => tls.TLSSocket).apply(this, args);
  } as typeof tls.connect;
}

/** Trusts a server's cluster CA from now on, in this process and in the processes it starts. */
export function trustServerCa(url: string, caFile: string): string {
  patchTlsConnect();
  const caPem = fs.readFileSync(caFile, "utf8");
  trusted.add(caPem);
  caFiles.set(url, caFile);
  process.env.NODE_EXTRA_CA_CERTS = caFile;
  return caPem;
}

/** The CA file of the server at `url`, if the harness started it. */
export function caFileOf(url: string | undefined): string | undefined {
  return url === undefined ? undefined : caFiles.get(url.replace(/\/+$/, ""));
}

/** One CA for the replicas whose data directories sit in `parentDir` (they share a store): --ca-cert/--ca-key. */
export function sharedCa(parentDir: string): { certFile: string; keyFile: string } {
  const dir = path.join(parentDir, "shared-cluster-ca");
  const files = { certFile: path.join(dir, "ca.crt"), keyFile: path.join(dir, "ca.key") };
  if (fs.existsSync(files.keyFile)) return files;
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = createCa("grove-test-ca");
  fs.writeFileSync(files.keyFile, ca.keyPem, { mode: 0o600 });
  fs.writeFileSync(files.certFile, ca.certPem);
  return files;
}

/** POSTs JSON over HTTPS trusting `caPem`; resolves with the status and parsed body. */
export function postJson(
  url: string,
  body: unknown,
  o: { caPem: string; token?: string },
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(JSON.stringify(body));
    const headers: Record<string, string | number> = {
      "content-type": "application/json",
      "content-length": data.length,
    };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    const req = https.request(url, { method: "POST", ca: o.caPem, headers, timeout: 30_000 }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => {
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON: keep the text
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on("timeout", () => req.destroy(new Error(`POST ${url}: no answer within 30s`)));
    req.on("error", reject);
    req.end(data);
  });
}
