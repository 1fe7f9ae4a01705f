// Joining the cluster and the node's credentials. The first start trades a
// single-use join token for a node certificate (kubeadm's flow): the agent
// fetches the server's certificate chain, trusts its CA only if the CA's
// public key hashes to --ca-hash, and sends a certificate request over that
// verified connection. Afterwards the certificate in <state-dir>/pki is the
// agent's only credential (mutual TLS on the gRPC stream).

import { createHash, createPrivateKey, generateKeyPairSync, sign, X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import * as tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import forge from "node-forge";

export interface NodeCredentials {
  caPem: string;
  certPem: string;
  keyPem: string;
  /** HOST:PORT of the gRPC endpoint, as learnt at join. */
  grpcAddress: string;
}

export interface JoinOptions {
  /** https://HOST:PORT of grove-server's API. */
  server: string;
  token: string;
  /** "sha256:<hex>" of the CA's SubjectPublicKeyInfo. */
  caHash: string;
  nodeName: string;
}

/** "sha256:<hex>" of a certificate's public key (kubeadm's --discovery-token-ca-cert-hash). */
export function publicKeyHash(cert: X509Certificate): string {
  const spki = cert.publicKey.export({ type: "spki", format: "der" });
  return `sha256:${createHash("sha256").update(spki).digest("hex")}`;
}

function files(stateDir: string) {
  const dir = path.join(stateDir, "pki");
  return {
    dir,
    ca: path.join(dir, "ca.crt"),
    cert: path.join(dir, "node.crt"),
    key: path.join(dir, "node.key"),
    server: path.join(dir, "grpc-address"),
    // A renewed pair is written here first, then renamed over node.key and node.crt.
    nextCert: path.join(dir, "node.next.crt"),
    nextKey: path.join(dir, "node.next.key"),
  };
}

function writeAtomic(file: string, data: string, mode: number): void {
  fs.writeFileSync(`${file}.tmp`, data, { mode });
  fs.renameSync(`${file}.tmp`, file);
}

/**
 * Saves a renewed certificate and its key so that a crash at any point
 * leaves a matching pair: both go to node.next.* first; then the key and the
 * certificate are renamed into place, and loading finishes what a crash
 * interrupted (finishRenewal).
 */
export function saveRenewedCertificate(stateDir: string, certPem: string, keyPem: string): void {
  const f = files(stateDir);
  writeAtomic(f.nextKey, keyPem, 0o600);
  writeAtomic(f.nextCert, certPem, 0o644);
  finishRenewal(f);
}

function finishRenewal(f: ReturnType<typeof files>): void {
  if (!fs.existsSync(f.nextCert)) return;
  // node.next.key gone: it was renamed already (node.key is the new key).
  if (fs.existsSync(f.nextKey)) fs.renameSync(f.nextKey, f.key);
  fs.renameSync(f.nextCert, f.cert);
}

/** The credentials a previous join left in the state directory, if any. */
export function loadNodeCredentials(stateDir: string): NodeCredentials | undefined {
  const f = files(stateDir);
  try {
    finishRenewal(f);
    return {
      caPem: fs.readFileSync(f.ca, "utf8"),
      certPem: fs.readFileSync(f.cert, "utf8"),
      keyPem: fs.readFileSync(f.key, "utf8"),
      grpcAddress: fs.readFileSync(f.server, "utf8").trim(),
    };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

function saveNodeCredentials(stateDir: string, c: NodeCredentials): void {
  const f = files(stateDir);
  fs.mkdirSync(f.dir, { recursive: true, mode: 0o700 });
  const write = writeAtomic;
  write(f.key, c.keyPem, 0o600);
  write(f.ca, c.caPem, 0o644);
  write(f.server, c.grpcAddress + "\n", 0o644);
  // Last: its presence means the others are complete.
  write(f.cert, c.certPem, 0o644);
}

function parseServerUrl(server: string): URL {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new Error(`--server: "${server}" is not a URL such as https://HOST:7480`);
  }
  if (url.protocol !== "https:") throw new Error(`--server: joining needs https://HOST:PORT, got "${server}"`);
  return url;
}

/**
 * Connects without trusting anything yet, takes the CA the server presents in
 * its chain, and accepts it only if it matches the pin and signed the server's
 * certificate.
 */
export async function fetchPinnedCa(server: string, caHash: string): Promise<string> {
  const url = parseServerUrl(server);
  if (!/^sha256:[0-9a-f]{64}$/.test(caHash))
    throw new Error(`--ca-hash: expected sha256:<64 hex digits>, got "${caHash}"`);
  const chain = await new Promise<tls.DetailedPeerCertificate>((resolve, reject) => {
    const socket = tls.connect(
      { host: url.hostname.replace(/^\[(.*)\]$/, "$1"), port: Number(url.port || 443), rejectUnauthorized: false },
      () => {
        const peer = socket.getPeerCertificate(true);
        socket.end();
        resolve(peer);
      },
    );
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no TLS answer from ${server} within 10s`)));
    socket.on("error", reject);
  });
  if (!chain.raw) throw new Error(`${server} presented no certificate`);
  const leaf = new X509Certificate(chain.raw);
  for (let c: tls.DetailedPeerCertificate | undefined = chain; c?.raw; c = c.issuerCertificate) {
    const cert = new X509Certificate(c.raw);
    if (publicKeyHash(cert) !== caHash) {
      if (c.issuerCertificate === c) break; // self-signed end of the chain
      continue;
    }
    if (!cert.ca || !leaf.verify(cert.publicKey)) break;
    return cert.toString();
  }
  throw new Error(
    `the server ${server} does not present a CA with hash ${caHash}: refusing it (wrong --ca-hash, or not the cluster's server)`,
  );
}

function post<T>(url: URL, caPem: string, body: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(JSON.stringify(body));
    const req = https.request(
      url,
      {
        method: "POST",
        ca: caPem,
        headers: { "content-type": "application/json", "content-length": data.length },
        timeout: 30_000,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          if (res.statusCode === 200) resolve(parsed as T);
          else {
            const message = (parsed as { message?: string } | undefined)?.message ?? text.slice(0, 200);
            reject(new Error(`join refused (${res.statusCode}): ${message}`));
          }
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("join: no answer within 30s")));
    req.on("error", reject);
    req.end(data);
  });
}

/** An RSA key pair in PEM (pkcs8 private, spki public). */
export interface NodeKeyPair {
  keyPem: string;
  publicKeyPem: string;
}

/** A fresh 2048-bit RSA key for a node certificate. */
export function newNodeKey(): NodeKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    keyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

/** sha256WithRSAEncryption, as node-forge's csr.sign(key, sha256) names it. */
const SHA256_WITH_RSA = "1.2.840.113549.1.1.11";
/** node-forge's DER of a request's signed part (in its JavaScript API, not in its typings). */
const getCertificationRequestInfo = (
  forge.pki as unknown as {
    getCertificationRequestInfo(c: forge.pki.CertificateSigningRequest): forge.asn1.Asn1;
  }
).getCertificationRequestInfo;

/**
 * A certificate request (PEM) for `key` naming the node: laid out by
 * node-forge, signed with SHA-256 and RSA by node's crypto, as node-forge's
 * csr.sign(key, sha256) would sign it (the same bytes: PKCS#1 v1.5 is
 * deterministic), without its RSA in JavaScript (about 150 ms a request).
 */
export function certificateRequest(nodeName: string, key: NodeKeyPair): string {
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(key.publicKeyPem);
  csr.setSubject([{ name: "commonName", value: nodeName }]);
  csr.siginfo.algorithmOid = SHA256_WITH_RSA;
  (csr as { signatureOid: string }).signatureOid = SHA256_WITH_RSA;
  const info = getCertificationRequestInfo(csr);
  const der = Buffer.from(forge.asn1.toDer(info).getBytes(), "binary");
  // forge's certificationRequestToAsn1 reuses the part that was signed, as after csr.sign.
  (csr as typeof csr & { certificationRequestInfo: forge.asn1.Asn1 }).certificationRequestInfo = info;
  csr.signature = sign("sha256", der, createPrivateKey(key.keyPem)).toString("binary");
  return forge.pki.certificationRequestToPem(csr);
}

/**
 * Joins once: a fresh key (or `key`: hollow agents share one, as a key costs
 * half a second to make), a request for it, the signed certificate saved in
 * the state directory.
 */
export async function join(
  stateDir: string,
  o: JoinOptions,
  key: NodeKeyPair = newNodeKey(),
): Promise<NodeCredentials> {
  const caPem = await fetchPinnedCa(o.server, o.caHash);
  const keyPem = key.keyPem;
  const csrPem = certificateRequest(o.nodeName, key);
  const url = parseServerUrl(o.server);
  const answer = await post<{ certificate: string; ca: string; grpcPort: number; nodeName: string }>(
    new URL("/v1/join", url),
    caPem,
    { token: o.token, nodeName: o.nodeName, csr: csrPem },
  );
  const creds: NodeCredentials = {
    caPem,
    certPem: answer.certificate,
    keyPem,
    grpcAddress: `${url.hostname}:${answer.grpcPort}`,
  };
  saveNodeCredentials(stateDir, creds);
  return creds;
}

/** gRPC channel credentials: trust only the cluster CA, present the node certificate. */
export function channelCredentials(c: NodeCredentials): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(Buffer.from(c.caPem), Buffer.from(c.keyPem), Buffer.from(c.certPem));
}

/**
 * The node's certificate for gRPC, replaceable while the agent runs (a
 * renewal): grpc-js asks the provider for every new connection, so the next
 * stream uses the new certificate and an open one carries on.
 */
export class NodeCertificateProvider implements grpc.experimental.CertificateProvider {
  private readonly caListeners = new Set<grpc.experimental.CaCertificateUpdateListener>();
  private readonly identityListeners = new Set<grpc.experimental.IdentityCertificateUpdateListener>();

  constructor(private creds: NodeCredentials) {}

  get current(): NodeCredentials {
    return this.creds;
  }

  update(certPem: string, keyPem: string): void {
    this.creds = { ...this.creds, certPem, keyPem };
    for (const l of this.identityListeners) l(this.identity());
  }

  /** Channel credentials that trust only the cluster CA and present the current node certificate. */
  channelCredentials(): grpc.ChannelCredentials {
    return grpc.experimental.createCertificateProviderChannelCredentials(this, this);
  }

  private identity() {
    return { certificate: Buffer.from(this.creds.certPem), privateKey: Buffer.from(this.creds.keyPem) };
  }

  addCaCertificateListener(l: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(l);
    l({ caCertificate: Buffer.from(this.creds.caPem) });
  }
  removeCaCertificateListener(l: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(l);
  }
  addIdentityCertificateListener(l: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.add(l);
    l(this.identity());
  }
  removeIdentityCertificateListener(l: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(l);
  }
}

/** The node's name in its certificate. */
export function certificateNode(certPem: string): string | undefined {
  return /(?:^|\n)CN=([^\n]+)/.exec(new X509Certificate(certPem).subject)?.[1];
}

export interface CredentialOptions {
  server: string;
  stateDir: string;
  nodeName: string;
  join?: string;
  caHash?: string;
}

interface InfoLogger {
  info(obj: object, msg?: string): void;
}

/**
 * The credentials from an earlier join, or a join now. A join token on a
 * node that already holds a certificate is not spent.
 */
export async function nodeCredentials(o: CredentialOptions, log: InfoLogger): Promise<NodeCredentials> {
  let held = loadNodeCredentials(o.stateDir);
  const expiredAt = held && new X509Certificate(held.certPem).validTo;
  if (held && expiredAt && Date.parse(expiredAt) <= Date.now()) {
    const how = `join again with a token made for it (grove token create --node ${o.nodeName}) and --join, --ca-hash`;
    if (!o.join || !o.caHash)
      throw new Error(`this node's certificate expired at ${expiredAt} (it was not renewed): ${how}`);
    log.info({ expiredAt }, "this node's certificate expired; joining again with the given token");
    held = undefined;
  }
  if (held) {
    const name = certificateNode(held.certPem);
    if (name !== o.nodeName) {
      throw new Error(
        `this node's certificate (${path.join(o.stateDir, "pki", "node.crt")}) is for node ${name}, not ${o.nodeName}`,
      );
    }
    // An explicit gRPC address wins over the one learnt at join (the server moved).
    const explicit = !o.server.startsWith("https://");
    return explicit ? { ...held, grpcAddress: o.server } : held;
  }
  if (!o.join || !o.caHash) {
    throw new Error(
      `this node has not joined yet (no ${path.join(o.stateDir, "pki", "node.crt")}): ` +
        "start it once with --server https://HOST:PORT --join TOKEN --ca-hash sha256:... (grove token create)",
    );
  }
  const creds = await join(o.stateDir, { server: o.server, token: o.join, caHash: o.caHash, nodeName: o.nodeName });
  log.info({ node: o.nodeName, grpc: creds.grpcAddress }, "joined the cluster: node certificate saved");
  return creds;
}
