// The image store against a real docker-registry on 127.0.0.1 and the real
// kernel, driven in-process through ImageService: malicious layers are
// refused and nothing is written outside the store; a connection dropped
// mid-layer resumes with Range; a corrupted blob fails digest verification;
// zstd layers; concurrent pulls share one download; garbage collection
// removes exactly what nothing uses; `grove-agent image import` reads an
// oci-archive. Pull limits: decompression bombs (a gzip of zeros, a tar of
// 100k entries) and oversized layers stop with LIMIT_EXCEEDED and leave the
// store as it was; a disk reserve refuses a pull; redirects and token realms
// to loopback or link-local addresses are refused unless the registry is
// local.
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import * as tar from "tar-stream";
import { images } from "@grove/agent";
import { BIN, tempDir } from "./harness/processes";
import {
  addRawLayer,
  busyboxLayout,
  deadPort,
  gzipLayer,
  push,
  pushRawImage,
  startDroppingProxy,
  startRegistry,
  tagLayout,
  treeBytes,
  type Registry,
  type TarEntry,
  unmountUnder,
  zeroTar,
} from "./harness/registry";
import { RUN_TAG } from "./harness/run-id";

const run = promisify(execFile);
jest.setTimeout(180_000);

/** Every path under `root` (files, links, dirs), relative. */
function tree(root: string): Set<string> {
  const out = new Set<string>();
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.add(r);
      if (e.isDirectory()) walk(r);
    }
  };
  walk("");
  return out;
}

/** An uncompressed tar of `count` empty files under d/. */
function manyEntriesTar(count: number): Readable {
  const pack = tar.pack();
  void (async () => {
    const add = (h: Parameters<ReturnType<typeof tar.pack>["entry"]>[0], body?: string) =>
      new Promise<void>((resolve, reject) =>
        body === undefined
          ? pack.entry(h, (e) => (e ? reject(e) : resolve()))
          : pack.entry(h, body, (e) => (e ? reject(e) : resolve())),
      );
    await add({ name: "d/", type: "directory", mode: 0o755 });
    for (let i = 0; i < count; i++) await add({ name: `d/${i}`, mode: 0o644, mtime: new Date(0) }, "");
    pack.finalize();
  })().catch((err: Error) => pack.destroy(err));
  return pack as unknown as Readable;
}

describe("image store: safety, resume, verification, GC, import", () => {
  let dir: string;
  let layout: string;
  let registry: Registry;
  let service: images.ImageService;
  let storeRoot: string;
  const PID = RUN_TAG;

  beforeAll(async () => {
    dir = tempDir(`grove-imgstore-${PID}`);
    layout = path.join(dir, "layout");
    await busyboxLayout(layout, "base", dir);
    registry = await startRegistry(path.join(dir, "registry"), path.join(dir, "registry-storage"));
    await push(layout, "base", registry.address, "test/base:1");
    storeRoot = path.join(dir, "store");
    service = new images.ImageService({ root: storeRoot, retryDelayMs: 50 });
    await service.init();
  });

  afterAll(async () => {
    service?.close();
    await registry?.stop();
    if (dir) {
      unmountUnder(dir);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  async function imageWithLayer(tag: string, entries: TarEntry[]): Promise<string> {
    await tagLayout(layout, "base", tag);
    await addRawLayer(layout, tag, entries, dir);
    await push(layout, tag, registry.address, `test/${tag}:1`);
    return `${registry.address}/test/${tag}:1`;
  }

  describe("malicious layers are refused and nothing is written outside the store", () => {
    const outside = {
      dotdot: `grove-escape-dotdot-${PID}`,
      abs: `/tmp/grove-escape-abs-${PID}`,
      sym: `/tmp/grove-escape-sym-${PID}`,
    };
    let shadowBefore: fs.Stats;
    let outsideBefore: Set<string>;

    beforeAll(() => {
      shadowBefore = fs.statSync("/etc/shadow");
      outsideBefore = tree(dir);
    });

    afterAll(() => {
      // What the store holds may grow; nothing else in the test dir, /tmp or /etc may change.
      const after = [...tree(dir)].filter((p) => !outsideBefore.has(p) && !p.startsWith("store/"));
      const allowed = (p: string) =>
        p.startsWith("layout/") || p.startsWith("registry-storage/") || p.startsWith("registry");
      expect(after.filter((p) => !allowed(p))).toEqual([]);
      for (const p of [outside.abs, outside.sym]) expect(fs.existsSync(p)).toBe(false);
      const shadow = fs.statSync("/etc/shadow");
      expect([shadow.nlink, shadow.mtimeMs, shadow.size]).toEqual([
        shadowBefore.nlink,
        shadowBefore.mtimeMs,
        shadowBefore.size,
      ]);
      expect(fs.readdirSync(path.join(storeRoot, "tmp"))).toEqual([]);
    });

    const cases: [string, TarEntry[], RegExp][] = [
      ["a ../ entry", [{ name: `../../../${outside.dotdot}`, content: "x" }], /has a "\.\." component/],
      ["an absolute path", [{ name: outside.abs, content: "x" }], /is an absolute path/],
      [
        "a symlink to / followed by a file under it",
        [
          { name: "evil", type: "symlink", linkname: "/" },
          { name: `evil${outside.sym}`, content: "x" },
        ],
        /its parent "evil" is a symlink: writing through it is refused/,
      ],
      [
        "a hardlink to /etc/shadow",
        [{ name: "shadow", type: "link", linkname: "/etc/shadow" }],
        /hard link target is an absolute path/,
      ],
      [
        "a hardlink to ../../etc/shadow",
        [{ name: "shadow", type: "link", linkname: "../../../../../../etc/shadow" }],
        /hard link target has a "\.\." component/,
      ],
      ["a device node", [{ name: "dev/evil", type: "character-device" }], /character-device entries are not allowed/],
    ];

    test.each(cases)("%s", async (_what, entries, message) => {
      const tag = `evil${cases.findIndex((c) => c[1] === entries)}`;
      const ref = await imageWithLayer(tag, entries);
      const before = fs.readdirSync(path.join(storeRoot, "snapshots")).length;
      const err = await service.pull(ref).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(images.ImageError);
      expect((err as images.ImageError).code).toBe("UNSAFE_LAYER");
      expect((err as Error).message).toMatch(/^layer sha256:[0-9a-f]{64}: /);
      expect((err as Error).message).toMatch(message);
      // The base layer may have been unpacked; the evil one never is.
      expect(fs.readdirSync(path.join(storeRoot, "snapshots")).length).toBeLessThanOrEqual(Math.max(before, 1));
      expect(fs.existsSync(path.join(dir, outside.dotdot))).toBe(false);
      expect(await service.store.getImage(ref)).toBeUndefined();
    });
  });

  test("a connection dropped mid-layer resumes with Range and the pull completes", async () => {
    const big = Buffer.alloc(3 << 20);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((Math.imul(i, 2654435761) ^ 0x5bd1e995) >>> 0, i);
    await imageWithLayer("big", [{ name: "big.bin", content: big }]);
    let drops = 1;
    const proxy = await startDroppingProxy(registry.port, 1 << 20, () => drops-- > 0);
    try {
      const service2 = new images.ImageService({ root: path.join(dir, "store-resume"), retryDelayMs: 50 });
      await service2.init();
      try {
        const image = await service2.pull(`${proxy.address}/test/big:1`);
        expect(proxy.dropped).toBe(1);
        expect(proxy.rangeRequests.length).toBeGreaterThanOrEqual(1);
        expect(proxy.rangeRequests[0]).toMatch(/^bytes=\d{6,}-$/);
        expect(image.layers).toHaveLength(2);
        const snap = path.join(dir, "store-resume", "snapshots", image.layers[1]!.diffId.slice(7), "big.bin");
        expect(fs.readFileSync(snap).equals(big)).toBe(true);
      } finally {
        service2.close();
      }
    } finally {
      await proxy.stop();
    }
  });

  test("a corrupted blob fails digest verification and leaves no partial download", async () => {
    const ref = await imageWithLayer("corrupt", [{ name: "c.txt", content: "the real content\n".repeat(100) }]);
    const manifest = JSON.parse(
      (await run("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${ref}`])).stdout,
    ) as { layers: { digest: string }[] };
    const digest = manifest.layers[1]!.digest.slice(7);
    const data = path.join(
      dir,
      "registry-storage",
      "docker/registry/v2/blobs/sha256",
      digest.slice(0, 2),
      digest,
      "data",
    );
    const bytes = fs.readFileSync(data);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 10) ^ 0xff, bytes.length - 10);
    fs.writeFileSync(data, bytes);
    const err = await service.pull(ref).catch((e: unknown) => e);
    expect((err as images.ImageError).code).toBe("DIGEST_MISMATCH");
    expect((err as Error).message).toMatch(new RegExp(`blob sha256:${digest} .*hashing to sha256:`));
    expect(fs.existsSync(path.join(storeRoot, "ingest", digest))).toBe(false);
    expect(fs.existsSync(path.join(storeRoot, "blobs", "sha256", digest))).toBe(false);
  });

  test("zstd layers, and concurrent pulls of one image share one download", async () => {
    await tagLayout(layout, "base", "zst");
    await addRawLayer(layout, "zst", [{ name: "z/hello.txt", content: "zstd works\n" }], dir);
    await push(layout, "zst", registry.address, "test/zst:1", ["--dest-compress-format", "zstd"]);
    const ref = `${registry.address}/test/zst:1`;
    const s = new images.ImageService({ root: path.join(dir, "store-zstd") });
    await s.init();
    try {
      const progress: images.PullProgress[] = [];
      const [a, b] = await Promise.all([s.pull(ref, { onProgress: (p) => progress.push(p) }), s.pull(ref)]);
      expect(a).toEqual(b);
      // skopeo reuses the base layer the registry already has (gzip); the new one is zstd.
      expect(a.layers.map((l) => l.mediaType)).toEqual([
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
      ]);
      const snap = path.join(dir, "store-zstd", "snapshots", a.layers[1]!.diffId.slice(7), "z", "hello.txt");
      expect(fs.readFileSync(snap, "utf8")).toBe("zstd works\n");
      const last = progress[progress.length - 1]!;
      expect(last).toMatchObject({ layersDone: 2, layersTotal: 2 });
      expect(last.bytesDone).toBe(last.bytesTotal);
    } finally {
      s.close();
    }
  });

  test("garbage collection removes exactly the blobs and snapshots nothing uses", async () => {
    const root = path.join(dir, "store-gc");
    const s = new images.ImageService({ root });
    await s.init();
    try {
      const refA = await imageWithLayer("gca", [{ name: "a.txt", content: "a" }]);
      const refB = await imageWithLayer("gcb", [{ name: "b.txt", content: "b" }]);
      const a = await s.pull(refA);
      const b = await s.pull(refB);
      const blobs = () => new Set(fs.readdirSync(path.join(root, "blobs", "sha256")).map((h) => `sha256:${h}`));
      const snaps = () => new Set(fs.readdirSync(path.join(root, "snapshots")).map((h) => `sha256:${h}`));
      // base layer shared: 3 layer blobs + 2 configs + 2 manifests; 3 snapshots.
      expect(blobs().size).toBe(7);
      expect(snaps().size).toBe(3);
      expect(await s.gc({ graceMs: 0 })).toMatchObject({ removedBlobs: [], removedSnapshots: [] });

      // A container uses A; B is forgotten: exactly B's own content goes.
      const { rootfs } = await s.prepareRootfs(`gc-${PID}`, refA);
      expect(fs.existsSync(path.join(rootfs, "a.txt"))).toBe(true);
      await s.store.removeImage(b.reference);
      const r1 = await s.gc({ graceMs: 0 });
      expect(new Set(r1.removedBlobs)).toEqual(new Set([b.manifestDigest, b.configDigest, b.layers[1]!.digest]));
      expect(r1.removedSnapshots).toEqual([b.layers[1]!.diffId]);
      expect(blobs()).toEqual(new Set([a.manifestDigest, a.configDigest, ...a.layers.map((l) => l.digest)]));

      // Pruning images keeps A while a container uses it ...
      const r2 = await s.gc({ graceMs: 0, pruneImages: true });
      expect(r2.removedImages).toEqual([]);
      expect(r2.removedBlobs).toEqual([]);
      // ... and removes everything once it is gone.
      await s.unmountRootfs(`gc-${PID}`);
      const r3 = await s.gc({ graceMs: 0, pruneImages: true });
      expect(r3.removedImages).toEqual([a.reference]);
      expect(blobs().size).toBe(0);
      expect(snaps().size).toBe(0);
    } finally {
      s.close();
    }
  });

  test("blob redirects to another host never carry Authorization", async () => {
    // A front that wants Basic auth and redirects blob GETs to "storage" on
    // another port (another origin); both forward to the real registry.
    const seenByStorage: (string | undefined)[] = [];
    const forward = (req: http.IncomingMessage, res: http.ServerResponse, pathname: string) => {
      const up = http.get(
        { host: "127.0.0.1", port: registry.port, path: pathname, headers: { accept: req.headers.accept ?? "*/*" } },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on("error", () => res.destroy());
    };
    const storage = http.createServer((req, res) => {
      seenByStorage.push(req.headers.authorization);
      forward(req, res, req.url ?? "/");
    });
    await new Promise<void>((r) => storage.listen(0, "127.0.0.1", r));
    const storagePort = (storage.address() as AddressInfo).port;
    const expected = `Basic ${Buffer.from("carol:pw").toString("base64")}`;
    const front = http.createServer((req, res) => {
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { "www-authenticate": 'Basic realm="front"', "content-type": "application/json" });
        res.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }));
        return;
      }
      if (/\/blobs\//.test(req.url ?? "")) {
        res.writeHead(307, { location: `http://127.0.0.1:${storagePort}${req.url}` });
        res.end();
        return;
      }
      forward(req, res, req.url ?? "/");
    });
    await new Promise<void>((r) => front.listen(0, "127.0.0.1", r));
    const frontAddress = `127.0.0.1:${(front.address() as AddressInfo).port}`;
    const s = new images.ImageService({
      root: path.join(dir, "store-redirect"),
      registries: { [frontAddress]: { auth: { username: "carol", password: "pw" } } },
    });
    await s.init();
    try {
      const image = await s.pull(`${frontAddress}/test/base:1`);
      expect(image.layers).toHaveLength(1);
      // config + one layer went through storage, none with credentials
      expect(seenByStorage).toHaveLength(2);
      expect(seenByStorage).toEqual([undefined, undefined]);
    } finally {
      s.close();
      await new Promise((r) => front.close(r));
      await new Promise((r) => storage.close(r));
    }
  });

  test("registry mirrors: a dead mirror is skipped; a mirror serves a registry that is down", async () => {
    // Held, not probed: nothing can start listening there during the test.
    const dead = await deadPort();
    const deadAddress = `127.0.0.1:${dead.port}`;
    const s = new images.ImageService({
      root: path.join(dir, "store-mirror"),
      registries: {
        [registry.address]: { mirrors: [deadAddress] },
        [deadAddress]: { mirrors: [registry.address] },
      },
    });
    await s.init();
    try {
      expect((await s.pull(`${registry.address}/test/base:1`)).layers).toHaveLength(1);
      const viaMirror = await s.pull(`${deadAddress}/test/base:1`);
      expect(viaMirror.reference).toBe(`${deadAddress}/test/base:1`);
    } finally {
      s.close();
      await dead.release();
    }
  });

  test("grove-agent image import reads an oci-archive; bad input names the problem", async () => {
    const archive = path.join(dir, "base.tar");
    await run("skopeo", ["copy", "-q", `oci:${layout}:base`, `oci-archive:${archive}:base`]);
    const imagesDir = path.join(dir, "store-import");
    const out = await run(process.execPath, [
      BIN.agent,
      "image",
      "import",
      `${archive}:base`,
      "--images-dir",
      imagesDir,
      "--name",
      "registry.example/imported/base:1",
    ]);
    expect(out.stdout).toMatch(new RegExp(`imported oci:${archive}:base sha256:[0-9a-f]{64} \\(1 layers\\)`));
    expect(out.stdout).toContain("recorded as registry.example/imported/base:1");
    const list = await run(process.execPath, [BIN.agent, "image", "list", "-o", "json", "--images-dir", imagesDir]);
    const items = (JSON.parse(list.stdout) as { items: { reference: string }[] }).items.map((i) => i.reference);
    expect(items.sort()).toEqual([`oci:${archive}:base`, "registry.example/imported/base:1"].sort());

    const bad = await run(process.execPath, [
      BIN.agent,
      "image",
      "import",
      `${archive}:nope`,
      "--images-dir",
      imagesDir,
    ]).catch((e: { code: number; stderr: string }) => e);
    expect((bad as { code: number }).code).toBe(1);
    expect((bad as { stderr: string }).stderr).toMatch(/no image tagged "nope" \(tags: base\)/);
  });

  describe("pull limits: decompression bombs, oversized layers, the disk reserve", () => {
    let bomb: { ref: string; blobSize: number; layerDigest: string };
    let many: { ref: string; layerDigest: string };

    beforeAll(async () => {
      // 1 GiB of zeros gzips to about 1 MiB (1000:1); pushed blob by blob, as no tool would build it.
      const bombLayer = await gzipLayer(path.join(dir, "bomb.tar.gz"), zeroTar(1 << 30));
      await pushRawImage(registry.address, "test/bomb", "1", [bombLayer]);
      const manyLayer = await gzipLayer(path.join(dir, "many.tar.gz"), manyEntriesTar(100_000));
      await pushRawImage(registry.address, "test/many", "1", [manyLayer]);
      const digestOf = (f: string) => run("sha256sum", [f]).then((r) => `sha256:${r.stdout.split(" ")[0]}`);
      bomb = {
        ref: `${registry.address}/test/bomb:1`,
        blobSize: fs.statSync(bombLayer.file).size,
        layerDigest: await digestOf(bombLayer.file),
      };
      many = { ref: `${registry.address}/test/many:1`, layerDigest: await digestOf(manyLayer.file) };
    });

    /** A fresh store; resolves with the pull's error, the store's size before, at its peak, after. */
    async function pullIntoFreshStore(
      name: string,
      ref: string,
      limits: Partial<images.ImageService["limits"]> = {},
    ): Promise<{ err: unknown; root: string; before: number; peak: number; after: number }> {
      const root = path.join(dir, name);
      const s = new images.ImageService({ root, limits });
      await s.init();
      const before = treeBytes(root);
      let peak = before;
      const sampler = setInterval(() => {
        try {
          peak = Math.max(peak, treeBytes(root));
        } catch {
          /* a file went away while walking */
        }
      }, 100);
      try {
        const err = await s.pull(ref).then(
          () => undefined,
          (e: unknown) => e,
        );
        return { err, root, before, peak, after: treeBytes(root) };
      } finally {
        clearInterval(sampler);
        s.close();
      }
    }

    function expectStoreAtBaseline(r: { root: string; before: number; after: number }, layerDigest: string): void {
      expect(fs.readdirSync(path.join(r.root, "tmp"))).toEqual([]);
      expect(fs.readdirSync(path.join(r.root, "ingest"))).toEqual([]);
      expect(fs.readdirSync(path.join(r.root, "snapshots"))).toEqual([]);
      expect(fs.readdirSync(path.join(r.root, "images"))).toEqual([]);
      expect(fs.existsSync(path.join(r.root, "blobs", "sha256", layerDigest.slice(7)))).toBe(false);
      // At most the image's config blob (a few hundred bytes) stays, until GC.
      expect(r.after - r.before).toBeLessThan(4096);
    }

    test("a gzip of 1 GiB of zeros stops at the default ratio limit; the store is back at its baseline", async () => {
      const r = await pullIntoFreshStore("store-bomb", bomb.ref);
      expect(r.err).toBeInstanceOf(images.ImageError);
      expect((r.err as images.ImageError).code).toBe("LIMIT_EXCEEDED");
      const limit = 100 * bomb.blobSize;
      expect((r.err as Error).message).toBe(
        `layer ${bomb.layerDigest}: uncompressed size exceeds the limit of ${limit} bytes (--image-max-ratio 100); nothing was unpacked`,
      );
      expectStoreAtBaseline(r, bomb.layerDigest);
      // It stopped near the limit, far from the 1 GiB the layer expands to.
      expect(r.peak - r.before).toBeLessThan(limit + bomb.blobSize + (16 << 20));
      console.log(
        `bomb: ${bomb.blobSize} compressed bytes, limit ${limit}; store peak +${r.peak - r.before}, after +${r.after - r.before}`,
      );
    });

    test("an uncompressed-size limit below the ratio's names its own flag", async () => {
      const r = await pullIntoFreshStore("store-bomb-abs", bomb.ref, { maxUncompressedBytes: 32 << 20 });
      expect((r.err as images.ImageError).code).toBe("LIMIT_EXCEEDED");
      expect((r.err as Error).message).toMatch(
        /uncompressed size exceeds the limit of 33554432 bytes \(--image-max-uncompressed-size\)/,
      );
      expectStoreAtBaseline(r, bomb.layerDigest);
    });

    test("a layer of 100k tar entries stops at the entry limit; the store is back at its baseline", async () => {
      const r = await pullIntoFreshStore("store-many", many.ref, { maxEntries: 20_000 });
      expect((r.err as images.ImageError).code).toBe("LIMIT_EXCEEDED");
      expect((r.err as Error).message).toBe(
        `layer ${many.layerDigest}: more than 20000 tar entries (--image-max-entries); nothing was unpacked`,
      );
      expectStoreAtBaseline(r, many.layerDigest);
    });

    test("a layer larger than the compressed-size limit is not downloaded at all", async () => {
      const r = await pullIntoFreshStore("store-big-layer", bomb.ref, { maxLayerBytes: 512 << 10 });
      expect((r.err as images.ImageError).code).toBe("LIMIT_EXCEEDED");
      expect((r.err as Error).message).toBe(
        `${bomb.ref}: layer ${bomb.layerDigest} is ${bomb.blobSize} bytes, more than the limit of ${512 << 10} (--image-max-layer-size)`,
      );
      expectStoreAtBaseline(r, bomb.layerDigest);
      expect(r.peak - r.before).toBeLessThan(4096);
    });

    test("a disk reserve larger than the free space refuses the pull, naming both numbers", async () => {
      const st = fs.statfsSync(dir);
      const free = st.bavail * st.bsize;
      const reserve = free + 2 ** 40;
      const r = await pullIntoFreshStore("store-reserve", `${registry.address}/test/base:1`, {
        diskReserveBytes: reserve,
      });
      expect((r.err as images.ImageError).code).toBe("INSUFFICIENT_DISK");
      const m =
        /: (\d+) bytes free on the image store's file system \((.+)\), the layers need (\d+), and (\d+) must stay free \(--image-disk-reserve\)$/.exec(
          (r.err as Error).message,
        );
      expect(m).not.toBeNull();
      // Other engineers' builds share this disk: free space moves a little between the two readings.
      expect(Math.abs(Number(m![1]) - free)).toBeLessThan(2 ** 30);
      expect(m![2]).toBe(path.join(dir, "store-reserve"));
      expect(Number(m![3])).toBeGreaterThan(0);
      expect(Number(m![4])).toBe(reserve);
      expect(fs.readdirSync(path.join(r.root, "snapshots"))).toEqual([]);
      expect(r.after - r.before).toBeLessThan(4096);
    });
  });

  describe("redirects and token realms may not reach loopback or link-local addresses unless the registry is local", () => {
    /** An HTTP server on 127.0.0.1 that records the requests it gets and forwards them to the real registry. */
    async function startRecordingForwarder(): Promise<{ port: number; seen: string[]; stop: () => Promise<void> }> {
      const seen: string[] = [];
      const srv = http.createServer((req, res) => {
        seen.push(req.url ?? "");
        const up = http.get(
          { host: "127.0.0.1", port: registry.port, path: req.url, headers: { accept: req.headers.accept ?? "*/*" } },
          (r) => {
            res.writeHead(r.statusCode ?? 502, r.headers);
            r.pipe(res);
          },
        );
        up.on("error", () => res.destroy());
      });
      await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
      return {
        port: (srv.address() as AddressInfo).port,
        seen,
        stop: () => new Promise((r) => srv.close(() => r())),
      };
    }

    /**
     * The attacker's registry front on 127.0.0.1: manifests come from the
     * real registry; blob GETs are redirected to `blobTarget(url)`, or, with
     * `realm`, every request without a token is answered 401 pointing there.
     */
    async function startFront(opts: { blobTarget?: (url: string) => string; realm?: string }) {
      const srv = http.createServer((req, res) => {
        if (opts.realm && !req.headers.authorization) {
          res.writeHead(401, {
            "www-authenticate": `Bearer realm="${opts.realm}",service="front",scope="repository:test/base:pull"`,
            "content-type": "application/json",
          });
          res.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }));
          return;
        }
        if (opts.blobTarget && /\/blobs\//.test(req.url ?? "")) {
          res.writeHead(307, { location: opts.blobTarget(req.url ?? "/") });
          res.end();
          return;
        }
        const up = http.get(
          { host: "127.0.0.1", port: registry.port, path: req.url, headers: { accept: req.headers.accept ?? "*/*" } },
          (r) => {
            res.writeHead(r.statusCode ?? 502, r.headers);
            r.pipe(res);
          },
        );
        up.on("error", () => res.destroy());
      });
      await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
      const address = `127.0.0.1:${(srv.address() as AddressInfo).port}`;
      return { address, stop: () => new Promise<void>((r) => srv.close(() => r())) };
    }

    async function pullVia(front: string, local: boolean | undefined, name: string) {
      const s = new images.ImageService({
        root: path.join(dir, name),
        registries: local === undefined ? {} : { [front]: { local } },
        retryDelayMs: 20,
      });
      await s.init();
      try {
        return await s.pull(`${front}/test/base:1`).then(
          (image) => ({ image, err: undefined }),
          (err: unknown) => ({ image: undefined, err }),
        );
      } finally {
        s.close();
      }
    }

    test("a blob redirect to another 127.0.0.1 port (or to localhost) is refused; the target gets nothing", async () => {
      const probe = await startRecordingForwarder();
      const toIp = await startFront({ blobTarget: (u) => `http://127.0.0.1:${probe.port}${u}` });
      const toName = await startFront({ blobTarget: (u) => `http://localhost:${probe.port}${u}` });
      try {
        const a = await pullVia(toIp.address, false, "store-ssrf-ip");
        expect((a.err as images.ImageError).code).toBe("FORBIDDEN_ADDRESS");
        expect((a.err as Error).message).toMatch(
          new RegExp(
            `^redirect to http://127\\.0\\.0\\.1:${probe.port}/v2/test/base/blobs/sha256:[0-9a-f]{64}: 127\\.0\\.0\\.1 is a loopback address and the registry is not configured as local`,
          ),
        );
        // A name is resolved and its addresses checked in the socket's own lookup.
        const b = await pullVia(toName.address, false, "store-ssrf-name");
        expect((b.err as images.ImageError).code).toBe("FORBIDDEN_ADDRESS");
        expect((b.err as Error).message).toMatch(/: localhost \((127\.0\.0\.1|::1)\) is a loopback address/);
        expect(probe.seen).toEqual([]);

        // The same registry configured as local (the default for a loopback registry) may redirect there.
        const c = await pullVia(toIp.address, undefined, "store-ssrf-local");
        expect(c.err).toBeUndefined();
        expect(c.image!.layers).toHaveLength(1);
        expect(probe.seen).toHaveLength(2); // the config and the layer
      } finally {
        await toIp.stop();
        await toName.stop();
        await probe.stop();
      }
    });

    test("a blob redirect to 169.254.169.254 is refused before any connection", async () => {
      const front = await startFront({ blobTarget: () => "http://169.254.169.254/latest/meta-data/iam/" });
      try {
        const r = await pullVia(front.address, false, "store-ssrf-metadata");
        expect((r.err as images.ImageError).code).toBe("FORBIDDEN_ADDRESS");
        expect((r.err as Error).message).toBe(
          'redirect to http://169.254.169.254/latest/meta-data/iam/: 169.254.169.254 is a link-local address and the registry is not configured as local ("local": true in the image config)',
        );
        // A reference naming a link-local registry is refused the same way (loopback stays allowed there).
        const s = new images.ImageService({ root: path.join(dir, "store-ssrf-named") });
        await s.init();
        const named = await s.pull("169.254.169.254/latest/meta-data:x").catch((e: unknown) => e);
        s.close();
        expect((named as Error).message).toMatch(
          /^registry 169\.254\.169\.254: 169\.254\.169\.254 is a link-local address/,
        );
      } finally {
        await front.stop();
      }
    });

    test("a Bearer realm on another 127.0.0.1 port or on 169.254.169.254 is refused; the realm gets nothing", async () => {
      const probe = await startRecordingForwarder();
      const loopRealm = await startFront({ realm: `http://127.0.0.1:${probe.port}/token` });
      const metaRealm = await startFront({ realm: "https://169.254.169.254/latest/api/token" });
      try {
        const a = await pullVia(loopRealm.address, false, "store-realm-loop");
        expect((a.err as images.ImageError).code).toBe("FORBIDDEN_ADDRESS");
        expect((a.err as Error).message).toMatch(
          new RegExp(
            `^token realm http://127\\.0\\.0\\.1:${probe.port} of ${loopRealm.address}: 127\\.0\\.0\\.1 is a loopback address`,
          ),
        );
        const b = await pullVia(metaRealm.address, false, "store-realm-meta");
        expect((b.err as images.ImageError).code).toBe("FORBIDDEN_ADDRESS");
        expect((b.err as Error).message).toMatch(/169\.254\.169\.254 is a link-local address/);
        expect(probe.seen).toEqual([]);
        // Configured as local, the agent does go to that realm (which answers no token here).
        const c = await pullVia(loopRealm.address, true, "store-realm-local");
        expect((c.err as Error).message).toMatch(
          new RegExp(`^token server http://127\\.0\\.0\\.1:${probe.port} answered 404`),
        );
        expect(probe.seen).toEqual([
          expect.stringMatching(/^\/token\?service=front&scope=repository%3Atest%2Fbase%3Apull$/),
        ]);
      } finally {
        await loopRealm.stop();
        await metaRealm.stop();
        await probe.stop();
      }
    });
  });
});
