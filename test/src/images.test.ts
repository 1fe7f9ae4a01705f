// OCI images end to end on real components: fixture images built here from
// the busybox-static rootfs with umoci (a whiteout layer from umoci's own
// diff, an opaque-directory layer written with tar-stream), pushed with
// skopeo into Debian's docker-registry on 127.0.0.1, then pulled, unpacked
// and run by a real grove-agent through Apps applied to a real grove-server
// (embedded etcd); the same through a registry that wants Bearer tokens (a
// token server started here, verified by the registry itself) and one that
// wants Basic auth (htpasswd). What reaches an instance's status is safe:
// a registry's error text is cleaned and cut, and an oci: layout outside the
// agent's --oci-dir, or through a symlink, is refused without quoting files.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { GroveClient, type App, type Instance } from "@grove/api";
import {
  BIN,
  GiveUp,
  joinArgs,
  startNode,
  startServer,
  tempDir,
  waitFor,
  waitNodeReady,
  type ServerProcess,
  type Started,
} from "./harness/processes";
import {
  addRawLayer,
  busyboxLayout,
  gzipLayer,
  layoutDigest,
  makeHtpasswd,
  mutateLayout,
  push,
  pushRawImage,
  startRegistry,
  startTokenServer,
  tagLayout,
  type Registry,
  treeBytes,
  type TokenServer,
  unmountUnder,
  zeroTar,
} from "./harness/registry";
import { RUN_TAG } from "./harness/run-id";

const NODE = "img-node-1";
const CGROUP_PARENT = `grove-img-${RUN_TAG}`;
jest.setTimeout(240_000);

describe("images: an App names an OCI image; the agent pulls, unpacks and runs it on an overlay root", () => {
  let dir: string;
  let layout: string;
  let registry: Registry;
  let tokenRegistry: Registry;
  let basicRegistry: Registry;
  let tokens: TokenServer;
  let server: ServerProcess;
  let agent: Started;
  let client: GroveClient;
  let stateDir: string;
  let imagesDir: string;

  beforeAll(async () => {
    dir = tempDir(`grove-img-${RUN_TAG}`);
    layout = path.join(dir, "layout");
    // Layer 1: busybox. Layer 2 (umoci's diff): adds /data/old.txt and
    // /data/sub/y.txt, deletes /bin/ps (a bin/.wh.ps whiteout). Layer 3
    // (written here): /data made opaque, with the new file before the marker.
    await busyboxLayout(layout, "app", dir);
    await mutateLayout(layout, "app", dir, (rootfs) => {
      fs.mkdirSync(path.join(rootfs, "data", "sub"), { recursive: true });
      fs.writeFileSync(path.join(rootfs, "data", "old.txt"), "old\n");
      fs.writeFileSync(path.join(rootfs, "data", "sub", "y.txt"), "y\n");
      fs.rmSync(path.join(rootfs, "bin", "ps"));
    });
    await addRawLayer(
      layout,
      "app",
      [{ name: "data/", type: "directory" }, { name: "data/new.txt", content: "new\n" }, { name: "data/.wh..wh..opq" }],
      dir,
    );
    execFileSync("umoci", [
      "config",
      "--image",
      `${layout}:app`,
      "--config.env",
      "FROM_IMAGE=yes",
      "--config.env",
      "OVERRIDE=image",
      "--config.workingdir",
      "/data",
      "--clear=config.cmd",
      "--config.cmd",
      "/bin/sh",
      "--config.cmd",
      "-c",
      "--config.cmd",
      "echo FROM_IMAGE=$FROM_IMAGE OVERRIDE=$OVERRIDE; echo PWD=$(pwd); ls -A /data; test -e /bin/ps && echo PS=present || echo PS=absent; exec sleep 600",
    ]);

    const storage = path.join(dir, "registry-storage");
    registry = await startRegistry(path.join(dir, "registry"), storage);
    await push(layout, "app", registry.address, "test/app:1");
    // The same image under a name only the pull-progress test pulls: the agent
    // skips a reference it has stored, so a shared name would let whichever
    // test runs first (jest --randomize) take the pull away from it.
    await push(layout, "app", registry.address, "test/app-pull:1");
    await push(layout, "app", registry.address, "test/app-docker:1", ["--format", "v2s2"]);
    // The same image with a User: the process must run as 1000:1000.
    execFileSync("umoci", [
      "config",
      "--image",
      `${layout}:app`,
      "--tag",
      "user",
      "--config.user",
      "1000:1000",
      "--clear=config.cmd",
      "--config.cmd",
      "/bin/sh",
      "--config.cmd",
      "-c",
      "--config.cmd",
      "echo UID=$(id -u) GID=$(id -g) PS=n; exec sleep 600",
    ]);
    await push(layout, "user", registry.address, "test/app-user:1");

    // Two more registries over the same storage: one verifying Bearer tokens, one Basic.
    tokens = await startTokenServer(dir, "alice", "token-pass");
    tokenRegistry = await startRegistry(path.join(dir, "registry-token"), storage, {
      kind: "token",
      realm: tokens.realm,
      service: tokens.service,
      issuer: tokens.issuer,
      certFile: tokens.certFile,
    });
    const htpasswd = path.join(dir, "htpasswd");
    makeHtpasswd(htpasswd, "bob", "basic-pass");
    basicRegistry = await startRegistry(path.join(dir, "registry-basic"), storage, { kind: "htpasswd", htpasswd });

    const imageConfig = path.join(dir, "image-config.json");
    fs.writeFileSync(
      imageConfig,
      JSON.stringify({
        registries: { [tokenRegistry.address]: { auth: { username: "alice", password: "token-pass" } } },
        pullSecrets: {
          "basic-ok": { [basicRegistry.address]: { username: "bob", password: "basic-pass" } },
          "basic-wrong": { [basicRegistry.address]: { username: "bob", password: "nope" } },
          "token-wrong": { [tokenRegistry.address]: { username: "alice", password: "nope" } },
        },
      }),
    );

    server = await startServer({ dataDir: path.join(dir, "server") });
    stateDir = path.join(dir, "agent");
    imagesDir = path.join(stateDir, "images");
    fs.mkdirSync(path.join(dir, "rootfs"), { recursive: true });
    agent = await startNode(
      BIN.agent,
      [
        ...(await joinArgs(server, NODE)),
        "--node-name",
        NODE,
        "--state-dir",
        stateDir,
        "--rootfs-dir",
        path.join(dir, "rootfs"),
        "--cgroup-parent",
        CGROUP_PARENT,
        "--image-config",
        imageConfig,
        "--oci-dir",
        dir,
        "--network",
        "none",
        "--stop-containers-on-exit",
      ],
      (l) => l.includes('"registered with the control plane"'),
      { name: "grove-agent", timeoutMs: 60_000 },
    );
    client = new GroveClient({ server: server.url, token: server.adminToken });
    await waitNodeReady(client, NODE, 60_000);
  });

  afterAll(async () => {
    await agent?.stop(60_000);
    await server?.stop();
    await registry?.stop();
    await tokenRegistry?.stop();
    await basicRegistry?.stop();
    await tokens?.stop();
    if (dir) {
      unmountUnder(dir);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  function app(name: string, spec: Partial<App["spec"]>): App {
    return {
      apiVersion: "grove/v1",
      kind: "App",
      metadata: { name, namespace: "default" },
      spec: { instances: 1, stopGracePeriodSeconds: 1, restartPolicy: "Never", ...spec },
    };
  }

  async function instanceOf(appName: string): Promise<Instance | undefined> {
    const list = await client.list("Instance", { namespace: "default" });
    return list.items.find((i) => i.spec.app === appName);
  }

  async function waitState(appName: string, state: string, timeoutMs = 120_000): Promise<Instance> {
    return waitFor(
      `${appName} to be ${state}`,
      async () => {
        const i = await instanceOf(appName);
        if (
          i?.status?.state &&
          i.status.state !== state &&
          ["Exited", "Failed", "OOMKilled"].includes(i.status.state)
        ) {
          // Terminal (restartPolicy Never): fail now with its reason, not after the timeout.
          throw new GiveUp(`${appName} ended ${i.status.state}: ${i.status.reason} ${i.status.message}`);
        }
        return i?.status?.state === state ? i : undefined;
      },
      timeoutMs,
    );
  }

  /** Deletes the App and waits until its instance, container and overlay root are gone. */
  async function deleteApp(name: string): Promise<void> {
    const uid = (await instanceOf(name))?.metadata.uid;
    await client.delete("App", name, "default");
    await waitFor(`${name}'s instances to be gone`, async () => (await instanceOf(name)) === undefined, 60_000);
    if (uid) {
      await waitFor(
        `${name}'s overlay root to be removed`,
        async () => !fs.existsSync(path.join(imagesDir, "containers", uid)),
        60_000,
      );
    }
  }

  function logOf(uid: string): Promise<string> {
    return waitFor(
      "the container's output",
      async () => {
        const p = path.join(stateDir, "logs", `${uid}.log`);
        const text = fs.existsSync(p) ? fs.readFileSync(p, "utf8") : "";
        return text.includes("PS=") ? text : undefined;
      },
      30_000,
    );
  }

  /**
   * Pushes (into the storage every registry here shares) `repo` as the app
   * image plus a top layer of random bytes that no other test pulls, so
   * pulling it must download that layer. Returns the layer's blob digest and
   * diff_id (its snapshot's name).
   */
  async function uniqueImage(tag: string, repo: string): Promise<{ digest: string; diffId: string }> {
    await tagLayout(layout, "app", tag);
    await addRawLayer(layout, tag, [{ name: `unique-${tag}`, content: randomBytes(256 * 1024) }], dir);
    await push(layout, tag, registry.address, repo);
    const image = layoutImage(tag);
    return { digest: image.layers.at(-1)!, diffId: image.diffIds.at(-1)! };
  }

  /** The layer blob digests and diff_ids of layout:tag, bottom layer first. */
  function layoutImage(tag: string): { layers: string[]; diffIds: string[] } {
    const blob = (digest: string) =>
      JSON.parse(fs.readFileSync(path.join(layout, "blobs", "sha256", digest.slice("sha256:".length)), "utf8")) as {
        layers: { digest: string }[];
        config: { digest: string };
        rootfs: { diff_ids: string[] };
      };
    const manifest = blob(layoutDigest(layout, tag));
    return { layers: manifest.layers.map((l) => l.digest), diffIds: blob(manifest.config.digest).rootfs.diff_ids };
  }

  /** The image references the agent's store holds a record of (it pulls none of these again). */
  function storedReferences(): string[] {
    const records = path.join(imagesDir, "images");
    return fs
      .readdirSync(records)
      .filter((f) => f.endsWith(".json"))
      .map((f) => (JSON.parse(fs.readFileSync(path.join(records, f), "utf8")) as { reference: string }).reference);
  }

  function overlayMountOf(uid: string): string | undefined {
    const target = path.join(imagesDir, "containers", uid, "rootfs");
    return fs
      .readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .find((l) => l.split(" ")[4] === target);
  }

  test("pulls an OCI image, honours whiteouts and opaque dirs, merges the image config, and removes the overlay with the instance", async () => {
    // Watch the instances to see the pull progress the agent reports on the way.
    const image = `${registry.address}/test/app-pull:1`;
    // Not in the node's store yet, whatever ran before: else the agent would not pull it.
    expect(storedReferences()).not.toContain(image);
    const watch = await client.watch("Instance", { namespace: "default" });
    const seen: Instance[] = [];
    const collecting = (async () => {
      for await (const ev of watch) if (ev.object.spec?.app === "img") seen.push(ev.object);
    })().catch(() => undefined);
    await client.apply(app("img", { image, env: { OVERRIDE: "app" } }));
    const inst = await waitState("img", "Running");
    const uid = inst.metadata.uid!;
    watch.close();
    await collecting;
    const pulling = seen.filter((i) => i.status?.reason === "PullingImage");
    expect(pulling.length).toBeGreaterThan(0);
    expect(pulling.at(-1)!.status).toMatchObject({
      state: "Starting",
      pull: { image, layersDone: 3, layersTotal: 3 },
    });
    expect(pulling.at(-1)!.status!.pull!.bytesDone).toBe(pulling.at(-1)!.status!.pull!.bytesTotal);
    expect(inst.status?.pull).toBeUndefined();
    const out = await logOf(uid);
    // Image Env merged with the App's (the App wins), image WorkingDir and Cmd used.
    expect(out).toContain("FROM_IMAGE=yes OVERRIDE=app");
    expect(out).toContain("PWD=/data");
    // The opaque /data hides layer 2's old.txt and sub/; the whiteout removed /bin/ps.
    expect(out).toMatch(/^new\.txt$/m);
    expect(out).not.toContain("old.txt");
    expect(out).not.toMatch(/^sub$/m);
    expect(out).toContain("PS=absent");
    // Its root is an overlay over the image's three snapshots, one per layer.
    const mount = overlayMountOf(uid);
    expect(mount).toMatch(/ - overlay overlay /);
    // Its lower dirs (top first) are the snapshots of exactly this image's layers (whatever other
    // tests left in the store), and each is there.
    const lower = /[ ,]lowerdir=([^, ]+)/.exec(mount!)![1]!.split(":");
    const diffIds = layoutImage("app").diffIds;
    expect(diffIds).toHaveLength(3);
    expect(lower).toEqual(diffIds.map((d) => `snapshots/${d.slice("sha256:".length)}`).reverse());
    for (const l of lower) expect(fs.statSync(path.join(imagesDir, l)).isDirectory()).toBe(true);
    expect(fs.readFileSync(`/proc/${inst.status!.pid!}/status`, "utf8")).toMatch(/^NSpid:\s+\d+\s+1$/m);

    await deleteApp("img");
    await waitFor("the overlay to be unmounted and removed", async () => {
      return overlayMountOf(uid) === undefined && !fs.existsSync(path.join(imagesDir, "containers", uid));
    });
  });

  test("a Docker schema-2 image with the App's command replacing its Cmd", async () => {
    await client.apply(
      app("imgdocker", {
        image: `${registry.address}/test/app-docker:1`,
        command: [
          "/bin/sh",
          "-c",
          "echo PS=$(test -e /bin/ps && echo present || echo absent) CWD=$(pwd); exec sleep 600",
        ],
        workingDir: "/tmp",
      }),
    );
    const inst = await waitState("imgdocker", "Running");
    const out = await logOf(inst.metadata.uid!);
    expect(out).toContain("PS=absent CWD=/tmp");
    await deleteApp("imgdocker");
  });

  test("the image's User is the user the process runs as", async () => {
    await client.apply(app("img-user", { image: `${registry.address}/test/app-user:1` }));
    const inst = await waitState("img-user", "Running");
    expect(await logOf(inst.metadata.uid!)).toContain("UID=1000 GID=1000");
    expect(fs.readFileSync(`/proc/${inst.status!.pid}/status`, "utf8")).toMatch(/^Uid:\s+1000\s/m);
    await deleteApp("img-user");
  });

  test("security.userNamespace on an image root: its ownership is shifted into the instance's upper dir, the layers stay", async () => {
    await client.apply(
      app("img-userns", { image: `${registry.address}/test/app:1`, security: { userNamespace: true } }),
    );
    const inst = await waitState("img-userns", "Running");
    const uid = inst.metadata.uid!;
    expect(await logOf(uid)).toContain("FROM_IMAGE=yes");
    const pid = inst.status!.pid!;
    const hostUid = Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
    // A range of the agent's default pool (--userns-range 100000000:65536x1000).
    expect(hostUid).toBeGreaterThanOrEqual(100_000_000);
    expect((hostUid - 100_000_000) % 65536).toBe(0);
    expect(fs.readFileSync(`/proc/${pid}/uid_map`, "utf8").trim().split(/\s+/)).toEqual([
      "0",
      String(hostUid),
      "65536",
    ]);
    // overlayfs has no idmapped mounts here: the merged tree was chowned, i.e. copied up.
    const upper = path.join(imagesDir, "containers", uid, "upper");
    expect(fs.statSync(path.join(upper, "bin", "busybox")).uid).toBe(hostUid);
    const layerBusybox = fs
      .readdirSync(path.join(imagesDir, "snapshots"))
      .map((snap) => path.join(imagesDir, "snapshots", snap, "bin", "busybox"))
      .filter((f) => fs.existsSync(f));
    expect(layerBusybox.length).toBeGreaterThan(0);
    for (const f of layerBusybox) expect(fs.statSync(f).uid).toBe(0);
    await deleteApp("img-userns");
  });

  test("a missing tag ends ImagePullFailed with the registry's reason", async () => {
    await client.apply(app("imgmissing", { image: `${registry.address}/test/app:does-not-exist` }));
    const inst = await waitState("imgmissing", "Failed");
    expect(inst.status?.reason).toBe("ImagePullFailed");
    expect(inst.status?.message).toMatch(/not found \(404\).*MANIFEST_UNKNOWN/);
    await deleteApp("imgmissing");
  });

  test("a decompression bomb ends ImagePullFailed naming the limit, with the node's image store back at its baseline", async () => {
    // 1 GiB of zeros, about 1 MiB of gzip: past the agent's default ratio limit (100) at ~100 MB.
    const bomb = await gzipLayer(path.join(dir, "bomb.tar.gz"), zeroTar(1 << 30));
    await pushRawImage(registry.address, "test/bomb", "1", [bomb]);
    const blobSize = fs.statSync(bomb.file).size;
    const before = treeBytes(imagesDir);
    const snapshotsBefore = fs.readdirSync(path.join(imagesDir, "snapshots")).sort();
    await client.apply(app("img-bomb", { image: `${registry.address}/test/bomb:1` }));
    const inst = await waitState("img-bomb", "Failed", 120_000);
    expect(inst.status?.reason).toBe("ImagePullFailed");
    expect(inst.status?.message).toMatch(
      new RegExp(
        `^${registry.address}/test/bomb:1: layer sha256:[0-9a-f]{64}: uncompressed size exceeds the limit of ${100 * blobSize} bytes \\(--image-max-ratio 100\\); nothing was unpacked$`,
      ),
    );
    await deleteApp("img-bomb");
    for (const sub of ["tmp", "ingest"]) expect(fs.readdirSync(path.join(imagesDir, sub))).toEqual([]);
    expect(fs.readdirSync(path.join(imagesDir, "snapshots")).sort()).toEqual(snapshotsBefore);
    // The bomb's blob and half-made snapshot are gone; only its config (a few hundred bytes) stays until GC.
    const after = treeBytes(imagesDir);
    expect(after - before).toBeLessThan(4096);
    console.log(`agent image store: ${before} bytes before the bomb, ${after} after`);
  });

  test("Bearer token auth: the agent follows the registry's challenge to the token server and downloads a new layer with the token", async () => {
    const layer = await uniqueImage("token", "test/app-token:1");
    const snapshot = path.join(imagesDir, "snapshots", layer.diffId.slice("sha256:".length));
    expect(fs.existsSync(snapshot)).toBe(false);
    await client.apply(app("imgtoken", { image: `${tokenRegistry.address}/test/app-token:1` }));
    const inst = await waitState("imgtoken", "Running");
    expect(await logOf(inst.metadata.uid!)).toContain("PS=absent");
    expect(tokens.requests).toContainEqual({ user: "alice", scope: "repository:test/app-token:pull" });
    // The layer came from the token registry, which let the GET through only with a valid token.
    expect(tokenRegistry.requests()).toContainEqual({
      method: "GET",
      uri: `/v2/test/app-token/blobs/${layer.digest}`,
      status: 200,
      authorized: true,
    });
    expect(fs.existsSync(snapshot)).toBe(true);
    await deleteApp("imgtoken");
  });

  test("Bearer token auth with wrong credentials ends ImagePullFailed", async () => {
    await client.apply(
      app("imgtokenbad", { image: `${tokenRegistry.address}/test/app-docker:1`, imagePullSecret: "token-wrong" }),
    );
    const inst = await waitState("imgtokenbad", "Failed");
    expect(inst.status?.reason).toBe("ImagePullFailed");
    expect(inst.status?.message).toMatch(/token server .* answered 401.*invalid username or password/);
    await deleteApp("imgtokenbad");
  });

  test("Basic auth through an App's pull secret downloads a new layer; a wrong password ends ImagePullFailed", async () => {
    const layer = await uniqueImage("basic", "test/app-basic:1");
    const snapshot = path.join(imagesDir, "snapshots", layer.diffId.slice("sha256:".length));
    expect(fs.existsSync(snapshot)).toBe(false);
    await client.apply(
      app("imgbasic", { image: `${basicRegistry.address}/test/app-basic:1`, imagePullSecret: "basic-ok" }),
    );
    const inst = await waitState("imgbasic", "Running");
    expect(await logOf(inst.metadata.uid!)).toContain("PS=absent");
    // The layer came from the htpasswd registry, which let the GET through only with bob's password.
    expect(basicRegistry.requests()).toContainEqual({
      method: "GET",
      uri: `/v2/test/app-basic/blobs/${layer.digest}`,
      status: 200,
      authorized: true,
    });
    expect(fs.existsSync(snapshot)).toBe(true);
    await deleteApp("imgbasic");

    await client.apply(
      app("imgbasicbad", { image: `${basicRegistry.address}/test/app-docker:1`, imagePullSecret: "basic-wrong" }),
    );
    const bad = await waitState("imgbasicbad", "Failed");
    expect(bad.status?.reason).toBe("ImagePullFailed");
    expect(bad.status?.message).toMatch(/unauthorized \(401\)/);
    await deleteApp("imgbasicbad");
  });

  test("an App may name a local OCI image layout (oci:PATH:TAG)", async () => {
    await client.apply(app("imgoci", { image: `oci:${layout}:app` }));
    const inst = await waitState("imgoci", "Running");
    expect(await logOf(inst.metadata.uid!)).toContain("PS=absent");
    await deleteApp("imgoci");
  });

  test("oci: refuses a path outside --oci-dir and symlinks inside it, and never quotes a file in the status", async () => {
    const shadowStart = fs.readFileSync("/etc/shadow", "utf8").slice(0, 12);
    // A layout whose index.json is a symlink to /etc/shadow (what a container could plant in its own root).
    const evil = path.join(dir, "evil-layout");
    fs.mkdirSync(evil);
    fs.writeFileSync(path.join(evil, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    fs.symlinkSync("/etc/shadow", path.join(evil, "index.json"));
    // A symlinked directory on the way to a good layout.
    fs.symlinkSync(layout, path.join(dir, "layout-link"));
    // A regular index.json that is not JSON: V8's parse error would quote its first bytes.
    const junk = path.join(dir, "junk-layout");
    fs.mkdirSync(junk);
    fs.writeFileSync(path.join(junk, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    fs.writeFileSync(path.join(junk, "index.json"), "SECRET-abc123 is not JSON\n");

    const cases: [string, string, RegExp][] = [
      [
        "oci-outside",
        "oci:/etc",
        new RegExp(`^oci:/etc: oci:/etc: oci: images must be under the agent's --oci-dir ${dir}$`),
      ],
      ["oci-symlink-file", `oci:${evil}`, new RegExp(`${evil}/index\\.json: is a symlink$`)],
      ["oci-symlink-dir", `oci:${dir}/layout-link:app`, new RegExp(`${dir}/layout-link: is a symlink$`)],
      ["oci-junk", `oci:${junk}`, /junk-layout is not an OCI image layout: index\.json is not a JSON object$/],
    ];
    for (const [name, image] of cases) await client.apply(app(name, { image }));
    for (const [name, , message] of cases) {
      const inst = await waitState(name, "Failed", 60_000);
      expect(inst.status?.reason).toBe("ImagePullFailed");
      expect(inst.status?.message).toMatch(message);
      expect(inst.status?.message).not.toContain(shadowStart);
      expect(inst.status?.message).not.toContain("SECRET");
    }
    for (const [name] of cases) await deleteApp(name);
  });

  test("a registry's long error body with control characters reaches the status cleaned and cut", async () => {
    const words = `BEGIN \x1b[2J\x1b]0;owned\x07 \r\nFAKE: grove describe says all is fine\u202e ${"x".repeat(20_000)} END`;
    const front = http.createServer((_req, res) => {
      res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ errors: [{ code: "INTERNAL\u0000", message: words }] }));
    });
    await new Promise<void>((r) => front.listen(0, "127.0.0.1", r));
    const address = `127.0.0.1:${(front.address() as AddressInfo).port}`;
    try {
      await client.apply(app("img-errbody", { image: `${address}/test/app:1` }));
      const inst = await waitState("img-errbody", "Failed", 60_000);
      const message = inst.status!.message!;
      expect(inst.status?.reason).toBe("ImagePullFailed");
      expect(message).toMatch(
        new RegExp(
          `^${address}/test/app:1: ${address}/test/app manifests/1: HTTP 500 \\(500\\): INTERNAL ?: BEGIN \\[2J \\]0;owned FAKE: grove describe says all is fine x+… \\(\\d+ more bytes cut\\)$`,
        ),
      );
      expect(message).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202e]/);
      expect(Buffer.byteLength(message)).toBeLessThan(512 + 150);
      expect(message).not.toContain("END");
      await deleteApp("img-errbody");
    } finally {
      await new Promise((r) => front.close(r));
    }
  });

  test("an App naming both rootfs and image is refused with the field named", async () => {
    await expect(
      client.apply(app("imgboth", { image: `${registry.address}/test/app:1`, rootfs: "busybox", command: ["true"] })),
    ).rejects.toThrow(/\/spec\/image: give either rootfs or image, not both/);
  });
});
