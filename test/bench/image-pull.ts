// Image pull + unpack: Grove's ImageService against `skopeo copy docker://…
// oci:…` followed by `umoci unpack`, the same image (busybox plus four
// layers, tens of MB: incompressible blobs and thousands of small files)
// from the same docker-registry on 127.0.0.1, in one run, alternating which
// goes first, each into a fresh directory after a `sync`. Also the time to
// start a container (/bin/true) from the already pulled image, overlay mount
// included, against the same start from a plain rootfs directory. CPU
// seconds (user + system; the anchor's through /usr/bin/time, children
// included) are reported beside wall time, and one more untimed pull per side
// under strace counts fsync-like calls: whether each side makes the blobs it
// downloaded durable (lib-image-fsync.ts). When Debian's containerd is
// installed, `ctr image pull` into a fresh daemon of the benchmark's own is a
// second anchor in every round (lib-image-ctr.ts).
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { NativeRuntime, images } from "@grove/agent";
import { addRawLayer, busyboxLayout, push, startRegistry, unmountUnder, type TarEntry } from "../src/harness/registry";
import type { BenchReport } from "./run";
import { summarize } from "./lib-stats";
import { syncCalls } from "./lib-image-fsync";
import { ctrAvailable, ctrPull, ctrSyncCalls } from "./lib-image-ctr";

const exec = promisify(execFile);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const START_SAMPLES = Number(process.env.BENCH_SAMPLES ?? 20);

function repoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "deploy", "make-rootfs.sh"))) return dir;
    if (path.dirname(dir) === dir) throw new Error("no repository root found");
  }
}

/** A layer of `blobs` incompressible MiB-sized files and `small` text files. */
function layerEntries(n: number, blobs: number, small: number): TarEntry[] {
  const entries: TarEntry[] = [{ name: `layer${n}/`, type: "directory" }];
  for (let i = 0; i < blobs; i++) entries.push({ name: `layer${n}/blob${i}.bin`, content: randomBytes(1 << 20) });
  for (let d = 0; d < small / 100; d++) {
    entries.push({ name: `layer${n}/d${d}/`, type: "directory" });
    for (let i = 0; i < 100; i++) {
      entries.push({ name: `layer${n}/d${d}/f${i}.txt`, content: `layer ${n} dir ${d} file ${i}\n`.repeat(40) });
    }
  }
  return entries;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

export async function run(): Promise<BenchReport> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `grove-bench-image-${process.pid}-`));
  const layout = path.join(tmp, "layout");
  await busyboxLayout(layout, "bench", tmp);
  for (let n = 1; n <= 4; n++) await addRawLayer(layout, "bench", layerEntries(n, 6, 1000), tmp);
  const registry = await startRegistry(path.join(tmp, "registry"), path.join(tmp, "registry-storage"));
  const parent = `grove-bench-img-${process.pid}`;
  const runtime = new NativeRuntime({ cgroupParent: parent });
  const groveMs: number[] = [];
  const groveCpu: number[] = [];
  const anchorCpu: number[] = [];
  const cpuFile = path.join(tmp, "cpu.txt");
  // user + system seconds that /usr/bin/time wrote (its rusage includes children).
  const cpuOf = (file: string) =>
    fs
      .readFileSync(file, "utf8")
      .trim()
      .split("\n")
      .at(-1)!
      .split(" ")
      .map(Number)
      .reduce((a, b) => a + b, 0);
  const anchorMs: number[] = [];
  const ctrMs: number[] = [];
  const ctrCpu: number[] = [];
  const withCtr = ctrAvailable();
  let ctrSyncs = NaN;
  const fromImage: number[] = [];
  const fromDir: number[] = [];
  let image: images.ImageRecord | undefined;
  const syncs = { grove: NaN, skopeo: NaN, umoci: NaN };
  try {
    await push(layout, "bench", registry.address, "bench/image:1");
    const ref = `${registry.address}/bench/image:1`;
    // Each timed run starts after `sync`, so that neither pays for the other's
    // (or the set-up's) dirty pages being written back; the order alternates.
    let lastStore = "";
    for (let round = 0; round < ROUNDS; round++) {
      const store = path.join(tmp, `grove-store-${round}`);
      const oci = path.join(tmp, `oci-${round}`);
      const bundle = path.join(tmp, `bundle-${round}`);
      const grove = async () => {
        const service = new images.ImageService({ root: store });
        await service.init();
        await exec("sync");
        const cpu = process.cpuUsage();
        groveMs.push(await timed(async () => (image = await service.pull(ref))));
        const used = process.cpuUsage(cpu);
        groveCpu.push((used.user + used.system) / 1e6);
        service.close();
      };
      const anchor = async () => {
        await exec("sync");
        anchorMs.push(
          await timed(async () => {
            await exec("/usr/bin/time", [
              "-o",
              cpuFile,
              "-f",
              "%U %S",
              "skopeo",
              "copy",
              "-q",
              "--src-tls-verify=false",
              `docker://${ref}`,
              `oci:${oci}:bench`,
            ]);
            const skopeoCpu = cpuOf(cpuFile);
            await exec("/usr/bin/time", [
              "-o",
              cpuFile,
              "-f",
              "%U %S",
              "umoci",
              "unpack",
              "--image",
              `${oci}:bench`,
              bundle,
            ]);
            anchorCpu.push(skopeoCpu + cpuOf(cpuFile));
          }),
        );
      };
      if (round % 2 === 0) {
        await grove();
        await anchor();
      } else {
        await anchor();
        await grove();
      }
      if (withCtr) {
        const c = await ctrPull(path.join(tmp, `bench13-ctrd-${round}`), ref, cpuFile);
        ctrMs.push(c.ms);
        ctrCpu.push(c.cpuS);
      }
      if (lastStore) fs.rmSync(lastStore, { recursive: true, force: true });
      lastStore = store;
      fs.rmSync(oci, { recursive: true, force: true });
      fs.rmSync(bundle, { recursive: true, force: true });
    }

    // Durability: one more pull per side, untimed, under strace.
    const traceFile = path.join(tmp, "strace.txt");
    syncs.grove = await syncCalls(
      [process.execPath, path.join(__dirname, "lib-image-fsync.js"), path.join(tmp, "grove-store-fsync"), ref],
      traceFile,
    );
    syncs.skopeo = await syncCalls(
      ["skopeo", "copy", "-q", "--src-tls-verify=false", `docker://${ref}`, `oci:${path.join(tmp, "oci-fsync")}:bench`],
      traceFile,
    );
    syncs.umoci = await syncCalls(
      ["umoci", "unpack", "--image", `${path.join(tmp, "oci-fsync")}:bench`, path.join(tmp, "bundle-fsync")],
      traceFile,
    );
    fs.rmSync(path.join(tmp, "grove-store-fsync"), { recursive: true, force: true });
    if (withCtr) ctrSyncs = await ctrSyncCalls(path.join(tmp, "bench13-ctrd-fsync"), ref, traceFile);

    // Start /bin/true from the pulled image (overlay mount + start + exit +
    // remove + unmount) and from a rootfs directory (start + exit + remove).
    const service = new images.ImageService({ root: lastStore });
    await service.init();
    const rootfsDir = path.join(tmp, "rootfs");
    await exec(path.join(repoRoot(), "deploy", "make-rootfs.sh"), [rootfsDir]);
    const startOnce = async (id: string, rootfs: string) => {
      const h = await runtime.start({
        id,
        rootfs,
        command: ["/bin/true"],
        env: {},
        hostname: "bench",
        resources: { cpuMillis: 500, memoryBytes: 64 * 2 ** 20, pids: 64 },
        logPath: path.join(tmp, `${id}.log`),
      });
      const exit = await h.exited;
      await runtime.remove(id);
      if (exit.exitCode !== 0) throw new Error(`container ${id} exited ${exit.exitCode}`);
    };
    for (let i = 0; i < START_SAMPLES + 2; i++) {
      const a = await timed(async () => {
        const { rootfs } = await service.prepareRootfs(`img${i}`, ref);
        await startOnce(`img${i}`, rootfs);
        await service.unmountRootfs(`img${i}`);
      });
      const b = await timed(() => startOnce(`dir${i}`, rootfsDir));
      if (i >= 2) {
        fromImage.push(a);
        fromDir.push(b);
      }
    }
    service.close();
  } finally {
    await runtime.removeParentCgroup().catch(() => undefined);
    await registry.stop();
    unmountUnder(tmp);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const g = summarize(groveMs);
  const s = summarize(anchorMs);
  const fi = summarize(fromImage);
  const fd = summarize(fromDir);
  const sizeMb = (image?.size ?? 0) / 2 ** 20;
  const skopeoVersion = (await exec("skopeo", ["--version"])).stdout.trim();
  const umociVersion = (await exec("umoci", ["--version"])).stdout.trim();
  return {
    title: `pull+unpack of a ${image?.layers.length ?? 0}-layer image (${sizeMb.toFixed(1)} MiB compressed) from docker-registry on 127.0.0.1, ${ROUNDS} rounds: Grove vs ${skopeoVersion} + ${umociVersion}; container start from the pulled image vs a rootfs directory, ${START_SAMPLES} samples`,
    rows: [
      { name: "grove pull+unpack", p50_ms: g.p50, mean_ms: g.mean },
      { name: "skopeo copy + umoci unpack", p50_ms: s.p50, mean_ms: s.mean },
      { name: "ratio grove/anchor", p50_ms: g.p50 / s.p50, mean_ms: g.mean / s.mean },
      {
        name: "cpu seconds grove / anchor (p50)",
        p50_ms: summarize(groveCpu).p50,
        mean_ms: summarize(anchorCpu).p50,
      },
      ...(withCtr
        ? [
            {
              name: "ctr image pull (containerd, overlayfs)",
              p50_ms: summarize(ctrMs).p50,
              mean_ms: summarize(ctrMs).mean,
            },
            {
              name: "cpu seconds ctr+containerd (p50)",
              p50_ms: summarize(ctrCpu).p50,
              mean_ms: summarize(ctrCpu).mean,
            },
          ]
        : []),
      { name: "start from pulled image (overlay)", p50_ms: fi.p50, mean_ms: fi.mean },
      { name: "start from rootfs directory", p50_ms: fd.p50, mean_ms: fd.mean },
    ],
    results: {
      rounds: ROUNDS,
      layers: image?.layers.length ?? 0,
      image_compressed_mib: sizeMb,
      grove_pull_unpack_s: g.p50 / 1000,
      skopeo_umoci_s: s.p50 / 1000,
      grove_vs_skopeo_umoci_ratio: g.p50 / s.p50,
      start_from_pulled_image_ms: fi.p50,
      start_from_rootfs_dir_ms: fd.p50,
      start_image_vs_dir_ratio: fi.p50 / fd.p50,
      grove_cpu_s: summarize(groveCpu).p50,
      skopeo_umoci_cpu_s: summarize(anchorCpu).p50,
      cpu_ratio: summarize(groveCpu).p50 / summarize(anchorCpu).p50,
      // Wall and CPU side by side: the wall ratio alone hides a side that waits less or works more.
      wall_ratio: g.p50 / s.p50,
      grove_fsync_calls: syncs.grove,
      skopeo_fsync_calls: syncs.skopeo,
      umoci_fsync_calls: syncs.umoci,
      grove_makes_blobs_durable: syncs.grove > 0 ? "yes" : "no",
      anchor_makes_blobs_durable: syncs.skopeo > 0 ? "yes" : "no",
      anchor_unpack_makes_files_durable: syncs.umoci > 0 ? "yes" : "no",
      ...(withCtr
        ? {
            ctr_pull_s: summarize(ctrMs).p50 / 1000,
            ctr_cpu_s: summarize(ctrCpu).p50,
            grove_vs_ctr_wall_ratio: g.p50 / summarize(ctrMs).p50,
            grove_vs_ctr_cpu_ratio: summarize(groveCpu).p50 / summarize(ctrCpu).p50,
            ctr_fsync_calls: ctrSyncs,
            ctr_makes_blobs_durable: ctrSyncs > 0 ? "yes" : "no",
            ctr_samples_s: ctrMs.map((ms) => (ms / 1000).toFixed(2)).join(" "),
            ctr_version: (await exec("ctr", ["--version"])).stdout.trim(),
          }
        : { ctr_anchor: "not run: Debian's containerd (ctr, containerd) is not installed" }),
      grove_samples_s: groveMs.map((ms) => (ms / 1000).toFixed(2)).join(" "),
      skopeo_umoci_samples_s: anchorMs.map((ms) => (ms / 1000).toFixed(2)).join(" "),
      skopeo_version: skopeoVersion,
      umoci_version: umociVersion,
    },
  };
}
