// Image fixtures and registries for the image tests and the image-pull
// benchmark, built offline from Debian packages: the busybox-static rootfs
// packed into OCI image layouts with umoci, extra layers written with
// tar-stream and appended with `umoci raw add-layer`, pushed with `skopeo
// copy` into Debian's docker-registry started on 127.0.0.1:0 (the kernel
// picks the port, the registry logs it) with its own config file and storage
// directory. Bearer auth uses the registry's
// real token verification (JWTs signed by a key whose certificate is in the
// registry's rootcertbundle) with a small token server started here; Basic
// auth uses an htpasswd file made with htpasswd(1).
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHash, createSign, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as path from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import * as zlib from "node:zlib";
import * as tar from "tar-stream";
import { REPO_ROOT } from "./processes";

const run = promisify(execFile);

/**
 * A port on 127.0.0.1 that nothing listens on and nothing else can take
 * while it is held: the local end of a connection made to a throw-away
 * server. A connect to it is refused (no listener), and neither a bind to
 * it nor the kernel's pick for port 0 can land on it until release().
 * (Probing a free port and closing it would leave a window in which
 * another process may bind it.)
 */
export async function deadPort(): Promise<{ port: number; release(): Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const held: net.Socket[] = [];
  server.on("connection", (s) => held.push(s));
  const client = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    client.once("connect", resolve);
    client.once("error", reject);
  });
  return {
    port: client.localPort!,
    release: async () => {
      client.destroy();
      for (const s of held) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---- OCI layouts

/** Creates an OCI layout at `layout` whose image `tag` is the busybox rootfs (one layer). */
export async function busyboxLayout(layout: string, tag: string, workDir: string): Promise<void> {
  if (!fs.existsSync(path.join(layout, "index.json"))) await run("umoci", ["init", "--layout", layout]);
  await run("umoci", ["new", "--image", `${layout}:${tag}`]);
  const bundle = path.join(workDir, `bundle-${randomBytes(4).toString("hex")}`);
  await run("umoci", ["unpack", "--image", `${layout}:${tag}`, bundle]);
  await run(path.join(REPO_ROOT, "deploy", "make-rootfs.sh"), [path.join(bundle, "rootfs")]);
  await run("umoci", ["repack", "--image", `${layout}:${tag}`, bundle]);
  fs.rmSync(bundle, { recursive: true, force: true });
  await run("umoci", ["config", "--image", `${layout}:${tag}`, "--config.cmd", "/bin/sh"]);
}

/** Copies image `from` to `to` within a layout (a new tag to grow separately). */
export async function tagLayout(layout: string, from: string, to: string): Promise<void> {
  await run("skopeo", ["copy", "-q", `oci:${layout}:${from}`, `oci:${layout}:${to}`]);
}

/** Changes the rootfs of `layout:tag` with fn(rootfsDir) and repacks it as a new layer (umoci's own diff). */
export async function mutateLayout(
  layout: string,
  tag: string,
  workDir: string,
  fn: (rootfs: string) => void,
): Promise<void> {
  const bundle = path.join(workDir, `bundle-${randomBytes(4).toString("hex")}`);
  await run("umoci", ["unpack", "--image", `${layout}:${tag}`, bundle]);
  fn(path.join(bundle, "rootfs"));
  await run("umoci", ["repack", "--image", `${layout}:${tag}`, bundle]);
  fs.rmSync(bundle, { recursive: true, force: true });
}

export interface TarEntry {
  name: string;
  type?: "file" | "directory" | "symlink" | "link" | "character-device" | "fifo";
  content?: string | Buffer;
  linkname?: string;
  mode?: number;
}

/** Writes an uncompressed tar of exactly these entries, in this order. */
export async function writeTar(file: string, entries: readonly TarEntry[]): Promise<void> {
  const pack = tar.pack();
  const out = fs.createWriteStream(file);
  const done = new Promise<void>((resolve, reject) => {
    out.on("finish", resolve);
    out.on("error", reject);
  });
  pack.pipe(out);
  for (const e of entries) {
    const type = e.type ?? "file";
    const header = {
      name: e.name,
      type: type as tar.Header["type"],
      mode: e.mode ?? (type === "directory" ? 0o755 : 0o644),
      uid: 0,
      gid: 0,
      mtime: new Date(1_700_000_000_000),
      ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
    };
    if (type === "file") {
      await new Promise<void>((resolve, reject) =>
        pack.entry(header, e.content ?? "", (err) => (err ? reject(err) : resolve())),
      );
    } else {
      await new Promise<void>((resolve, reject) => pack.entry(header, (err) => (err ? reject(err) : resolve())));
    }
  }
  pack.finalize();
  await done;
}

/** Appends a layer made of exactly `entries` to layout:tag (umoci gzips it and updates diff_ids). */
export async function addRawLayer(
  layout: string,
  tag: string,
  entries: readonly TarEntry[],
  workDir: string,
): Promise<void> {
  const file = path.join(workDir, `layer-${randomBytes(4).toString("hex")}.tar`);
  await writeTar(file, entries);
  await run("umoci", ["raw", "add-layer", "--image", `${layout}:${tag}`, file]);
  fs.rmSync(file, { force: true });
}

/** Pushes layout:tag to the registry as repo:tag (plain HTTP on 127.0.0.1). */
export async function push(
  layout: string,
  tag: string,
  registry: string,
  target: string,
  extra: string[] = [],
): Promise<void> {
  await run("skopeo", [
    "copy",
    "-q",
    "--dest-tls-verify=false",
    ...extra,
    `oci:${layout}:${tag}`,
    `docker://${registry}/${target}`,
  ]);
}

/** The manifest digest of layout:tag. */
export function layoutDigest(layout: string, tag: string): string {
  const index = JSON.parse(fs.readFileSync(path.join(layout, "index.json"), "utf8")) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const m = index.manifests.find((d) => d.annotations?.["org.opencontainers.image.ref.name"] === tag);
  if (!m) throw new Error(`no ${tag} in ${layout}`);
  return m.digest;
}

/** Unmounts whatever is still mounted under `dir` (a failed test's overlay roots), deepest first. */
export function unmountUnder(dir: string): void {
  const mounts = fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((p): p is string => p !== undefined && p.startsWith(dir + "/"))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) execFileSync("umount", ["-l", m]);
}

// ---- registries

export interface Registry {
  /** 127.0.0.1:PORT */
  address: string;
  port: number;
  pid: number;
  /** Its log, one line (a JSON object) per entry. */
  output: string[];
  /** Every request it answered so far, from its log. */
  requests(): RegistryRequest[];
  stop(): Promise<void>;
}

export interface RegistryRequest {
  method: string;
  uri: string;
  status: number;
  /** It checked the request's credentials (Basic or Bearer) and let it through. */
  authorized: boolean;
}

export type RegistryAuth =
  | { kind: "none" }
  | { kind: "htpasswd"; htpasswd: string }
  | { kind: "token"; realm: string; service: string; issuer: string; certFile: string };

/**
 * Starts docker-registry on 127.0.0.1:0 with storage under `storage`. The
 * registry binds port 0 itself and logs the address it got ("listening on
 * 127.0.0.1:PORT", at level info), so no port is probed and handed over.
 * At level info it also logs every request it answered ("response
 * completed", with the URI and status) and, with auth configured, every
 * request whose credentials it accepted ("authorized request"): see
 * `requests()`.
 */
export async function startRegistry(
  dir: string,
  storage: string,
  auth: RegistryAuth = { kind: "none" },
): Promise<Registry> {
  fs.mkdirSync(dir, { recursive: true });
  const lines = [
    "version: 0.1",
    "log:",
    "  level: info",
    "  formatter: json",
    "  accesslog: { disabled: true }",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${storage}`,
    "  delete: { enabled: true }",
    "http:",
    "  addr: 127.0.0.1:0",
  ];
  if (auth.kind === "htpasswd")
    lines.push("auth:", "  htpasswd:", "    realm: grove-test", `    path: ${auth.htpasswd}`);
  if (auth.kind === "token") {
    lines.push(
      "auth:",
      "  token:",
      `    realm: ${auth.realm}`,
      `    service: ${auth.service}`,
      `    issuer: ${auth.issuer}`,
      `    rootcertbundle: ${auth.certFile}`,
    );
  }
  const config = path.join(dir, `registry-${randomBytes(4).toString("hex")}.yml`);
  fs.writeFileSync(config, lines.join("\n") + "\n");
  const proc = spawn("docker-registry", ["serve", config], { stdio: ["ignore", "pipe", "pipe"] });
  const output: string[] = [];
  // Whole lines: "listening on" must not be split across two chunks.
  for (const stream of [proc.stdout!, proc.stderr!]) {
    let partial = "";
    stream.on("data", (d: Buffer) => {
      const parts = (partial + d.toString()).split("\n");
      partial = parts.pop()!;
      output.push(...parts.filter((l) => l !== ""));
    });
  }
  const exited = new Promise<void>((resolve) => proc.on("exit", () => resolve()));
  const deadline = performance.now() + 30_000;
  let port = 0;
  for (;;) {
    const listening = output.map((l) => /"msg":"listening on 127\.0\.0\.1:(\d+)"/.exec(l)).find((m) => m !== null);
    if (listening) port = Number(listening[1]);
    if (port > 0) {
      const status = await new Promise<number>((resolve) => {
        const req = http.get(`http://127.0.0.1:${port}/v2/`, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on("error", () => resolve(0));
      });
      if (status === 200 || status === 401) break;
    }
    if (proc.exitCode !== null || performance.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`docker-registry did not start: ${output.join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    address: `127.0.0.1:${port}`,
    port,
    pid: proc.pid!,
    output,
    requests: () => {
      const entries = output.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
      const authorized = new Set(
        entries.filter((e) => e.msg === "authorized request").map((e) => e["http.request.id"]),
      );
      return entries
        .filter((e) => e.msg === "response completed" || e.msg === "response completed with error")
        .map((e) => ({
          method: String(e["http.request.method"]),
          uri: String(e["http.request.uri"]),
          status: Number(e["http.response.status"]),
          authorized: authorized.has(e["http.request.id"]),
        }));
    },
    stop: async () => stopChild(proc, exited),
  };
}

async function stopChild(proc: ChildProcess, exited: Promise<void>): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill("SIGTERM");
  const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(t);
}

/** An htpasswd file (bcrypt, as the registry requires) with one user. */
export function makeHtpasswd(file: string, user: string, password: string): void {
  execFileSync("htpasswd", ["-Bbc", file, user, password], { stdio: "ignore" });
}

// ---- a token server for the registry's token auth

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  certFile: string;
  /** Every request it got: the Authorization header's user (or "") and the scope. */
  requests: { user: string; scope: string }[];
  stop(): Promise<void>;
}

/**
 * Issues RS256 JWTs the registry verifies against `certFile` (x5c header),
 * granting pull (and push) on any repository to `user`/`password` and
 * refusing anyone else with 401.
 */
export async function startTokenServer(dir: string, user: string, password: string): Promise<TokenServer> {
  const key = path.join(dir, "token.key");
  const certFile = path.join(dir, "token.crt");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      key,
      "-out",
      certFile,
      "-days",
      "2",
      "-subj",
      "/CN=grove-test-token",
    ],
    { stdio: "ignore" },
  );
  const keyPem = fs.readFileSync(key, "utf8");
  const certDer = Buffer.from(
    fs
      .readFileSync(certFile, "utf8")
      .replace(/-----[A-Z ]+-----/g, "")
      .replace(/\s+/g, ""),
    "base64",
  ).toString("base64");
  const service = "grove-test-registry";
  const issuer = "grove-test-issuer";
  const requests: { user: string; scope: string }[] = [];
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const scope = url.searchParams.get("scope") ?? "";
    const auth = req.headers.authorization ?? "";
    let who = "";
    let ok = false;
    if (auth.startsWith("Basic ")) {
      const [u, ...p] = Buffer.from(auth.slice(6), "base64").toString().split(":");
      who = u ?? "";
      ok = u === user && p.join(":") === password;
    }
    requests.push({ user: who, scope });
    if (!ok) {
      res.writeHead(401, { "content-type": "application/json" });
      res.end(JSON.stringify({ details: "invalid username or password" }));
      return;
    }
    const access = scope
      .split(" ")
      .filter(Boolean)
      .map((s) => {
        const [type, name, actions] = s.split(":");
        return { type, name, actions: (actions ?? "").split(",").filter((a) => a === "pull" || a === "push") };
      });
    const now = Math.floor(Date.now() / 1000);
    const header = b64({ alg: "RS256", typ: "JWT", x5c: [certDer] });
    const claims = b64({
      iss: issuer,
      sub: user,
      aud: service,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString("hex"),
      access,
    });
    const signer = createSign("RSA-SHA256");
    signer.update(`${header}.${claims}`);
    const token = `${header}.${claims}.${signer.sign(keyPem).toString("base64url")}`;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certFile,
    requests,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

// ---- a TCP proxy that drops a connection once, mid-response

export interface DroppingProxy {
  address: string;
  /** How many connections it cut. */
  dropped: number;
  /** The Range header of every request that had one. */
  rangeRequests: string[];
  stop(): Promise<void>;
}

/**
 * Forwards 127.0.0.1:<port> to `target`. A blob response that carries more
 * than `afterBytes` bytes is cut there (both ends destroyed) when
 * `shouldDrop()` says so; everything else passes through.
 */
export async function startDroppingProxy(
  target: number,
  afterBytes: number,
  shouldDrop: () => boolean,
): Promise<DroppingProxy> {
  const sockets = new Set<net.Socket>();
  const state = { dropped: 0 };
  const rangeRequests: string[] = [];
  const server = net.createServer((client) => {
    const upstream = net.connect(target, "127.0.0.1");
    sockets.add(client);
    sockets.add(upstream);
    let seen = 0;
    let armed = false;
    client.on("data", (d) => {
      // Arm only for blob GETs.
      const head = d.toString("latin1", 0, 2000);
      if (/^GET /.test(head)) {
        // A new request on this (keep-alive) connection: count its response from 0.
        armed = /^GET \/v2\/[^ ]+\/blobs\//.test(head);
        seen = 0;
      }
      const range = /^range: *(.+?)\r$/im.exec(head);
      if (range) rangeRequests.push(range[1]!);
      upstream.write(d);
    });
    upstream.on("data", (d) => {
      seen += d.length;
      if (armed && seen > afterBytes && shouldDrop()) {
        armed = false;
        state.dropped++;
        client.write(d.subarray(0, Math.max(0, d.length - (seen - afterBytes))));
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(d);
    });
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", close);
    upstream.on("error", close);
    client.on("close", close);
    upstream.on("close", close);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    get dropped() {
      return state.dropped;
    },
    rangeRequests,
    stop: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// ---- images pushed blob by blob (for layers no tool would make: bombs)

export interface RawLayer {
  /** The compressed (gzip) layer blob. */
  file: string;
  /** sha256 of the uncompressed tar. */
  diffId: string;
}

/**
 * Writes the gzip of `tarStream` (an uncompressed tar) to `file`, hashing the tar as it goes; no uncompressed copy touches
 * the disk.
 */
export async function gzipLayer(file: string, tarStream: NodeJS.ReadableStream): Promise<RawLayer> {
  const hash = createHash("sha256");
  await pipeline(
    tarStream,
    new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        cb(null, chunk);
      },
    }),
    zlib.createGzip({ level: 9 }),
    fs.createWriteStream(file),
  );
  return { file, diffId: `sha256:${hash.digest("hex")}` };
}

async function uploadBlob(address: string, repo: string, data: Buffer): Promise<string> {
  const digest = `sha256:${createHash("sha256").update(data).digest("hex")}`;
  const start = await fetch(`http://${address}/v2/${repo}/blobs/uploads/`, { method: "POST" });
  if (start.status !== 202) throw new Error(`upload start: ${start.status} ${await start.text()}`);
  const location = new URL(start.headers.get("location")!, `http://${address}`);
  location.searchParams.set("digest", digest);
  const put = await fetch(location, {
    method: "PUT",
    headers: { "content-type": "application/octet-stream" },
    body: data,
  });
  if (put.status !== 201) throw new Error(`upload ${digest}: ${put.status} ${await put.text()}`);
  return digest;
}

/**
 * Pushes an OCI image of exactly these gzip layers to repo:tag through the
 * distribution API (POST + PUT uploads, then the manifest).
 */
export async function pushRawImage(address: string, repo: string, tag: string, layers: RawLayer[]): Promise<void> {
  const arch = { x64: "amd64", arm64: "arm64" }[process.arch as "x64"] ?? process.arch;
  const config = Buffer.from(
    JSON.stringify({
      architecture: arch,
      os: "linux",
      config: { Cmd: ["/bin/sh"] },
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    }),
  );
  const configDigest = await uploadBlob(address, repo, config);
  const descriptors = [];
  for (const l of layers) {
    const data = fs.readFileSync(l.file);
    descriptors.push({
      mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
      digest: await uploadBlob(address, repo, data),
      size: data.length,
    });
  }
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length },
    layers: descriptors,
  });
  const res = await fetch(`http://${address}/v2/${repo}/manifests/${tag}`, {
    method: "PUT",
    headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
    body: manifest,
  });
  if (res.status !== 201) throw new Error(`manifest ${repo}:${tag}: ${res.status} ${await res.text()}`);
}

/** An uncompressed tar of one file of `size` zero bytes, made as it is read. */
export function zeroTar(size: number): Readable {
  const pack = tar.pack();
  const entry = pack.entry({ name: "zeros", size, mode: 0o644, mtime: new Date(0) }, (err) =>
    err ? pack.destroy(err) : pack.finalize(),
  );
  const chunk = Buffer.alloc(1 << 20);
  const zeros = Readable.from(
    (function* () {
      for (let left = size; left > 0; left -= chunk.length)
        yield left >= chunk.length ? chunk : chunk.subarray(0, left);
    })(),
  );
  zeros.pipe(entry as unknown as NodeJS.WritableStream);
  return pack as unknown as Readable;
}

/** The bytes under `dir` (files and symlinks, by their own size), like `du -sb --apparent-size`. */
export function treeBytes(dir: string): number {
  let total = 0;
  const walk = (p: string) => {
    for (const e of fs.readdirSync(p, { withFileTypes: true })) {
      const full = path.join(p, e.name);
      if (e.isDirectory()) walk(full);
      else total += fs.lstatSync(full).size;
    }
  };
  walk(dir);
  return total;
}
