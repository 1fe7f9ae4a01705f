// grove-runtime beside runc (test/src/harness/oci-side-by-side.ts): a relative
// linux.cgroupsPath on a cgroup v1 host, run from a process whose cgroups differ
// per hierarchy (memory under this process's own memory cgroup, pids and cpuset
// in cgroups of their own, the rest where this process is). runc 1.1.5 joins each
// hierarchy's own cgroup with the path; so does grove-runtime (a prefix per
// hierarchy, cgroup.h), for the driver's hierarchies and the extra ones it joins.
// docs/runtime.md "Conformance".
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import {
  bundle,
  cli,
  created,
  nextSeq,
  sideBySide,
  stateOf,
  TAG,
  tmp,
  waitFor,
  writeConfig,
} from "./harness/oci-side-by-side";

sideBySide("cgrel");

const ROOT = "/sys/fs/cgroup";
const V1 = fs.existsSync(path.join(ROOT, "memory", "cgroup.procs"));
const MEMORY_LIMIT = 40 * 1024 * 1024;

/** The v1 hierarchies mounted (directories under ROOT; a symlink such as cpu -> cpu,cpuacct is its target's). */
function hierarchies(): string[] {
  return fs
    .readdirSync(ROOT)
    .filter((h) => h !== "unified" && !fs.lstatSync(path.join(ROOT, h)).isSymbolicLink())
    .filter((h) => fs.existsSync(path.join(ROOT, h, "cgroup.procs")));
}

/** Hierarchy directory -> cgroup in a /proc/PID/cgroup text ("" for the v2 one, "unified"). */
function cgroupsIn(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n").filter((l) => l !== "")) {
    const [, controllers, cg] = line.split(":") as [string, string, string];
    out.set(controllers === "" ? "unified" : controllers.replace(/^name=/, ""), cg);
  }
  return out;
}

/** One request to a grove-runtime container's grove-shim, its answer (grove-shim's "stats": the cgroup's counters). */
function askShim(id: string, request: string): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(path.join(tmp, "grove-state", id, "shim.sock"));
    let got = "";
    sock.on("error", reject);
    sock.on("connect", () => sock.write(`${request}\n`));
    sock.on("data", (d) => {
      got += d.toString();
      if (got.includes("\n")) {
        sock.destroy();
        resolve(JSON.parse(got) as Record<string, number>);
      }
    });
  });
}

/** The cgroups this process has in memory, pids and cpuset from now on (made for the file, named by the run tag). */
const OWN = `${TAG}-own`;
let ownDirs: string[] = [];
/** What the runtimes are run through: a sh that moves itself into ownDirs, then execs them. */
let via: string[] = [];
/** The runtimes' own cgroups per hierarchy, as the sh sees them (with the leading "/"). */
let own = new Map<string, string>();

function rmdirSoon(dir: string): void {
  // The last process of a cgroup (grove-shim after delete) may still be going.
  const until = performance.now() + 5_000;
  for (;;) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code !== "EBUSY" || performance.now() > until) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
}

(V1 ? describe : describe.skip)(
  "grove-runtime vs runc: a relative linux.cgroupsPath, cgroup v1, own cgroups per hierarchy",
  () => {
    const REL = `${TAG}-rel`;

    beforeAll(() => {
      const mine = cgroupsIn(fs.readFileSync("/proc/self/cgroup", "utf8"));
      ownDirs = [
        path.join(ROOT, "memory", mine.get("memory")!, OWN),
        path.join(ROOT, "pids", OWN),
        path.join(ROOT, "cpuset", OWN),
      ];
      for (const d of ownDirs) fs.mkdirSync(d);
      // A new cpuset cgroup has no cpus or mems, and takes no process until it has.
      for (const f of ["cpuset.cpus", "cpuset.mems"]) {
        fs.writeFileSync(path.join(ownDirs[2]!, f), fs.readFileSync(path.join(ROOT, "cpuset", f), "utf8"));
      }
      const script = `for d in ${ownDirs.join(" ")}; do echo $$ > "$d/cgroup.procs" || exit 99; done; exec "$@"`;
      via = ["/bin/sh", "-c", script, "via"];
      const seen = spawnSync(via[0]!, [...via.slice(1), "cat", "/proc/self/cgroup"], { encoding: "utf8" });
      expect(seen.status).toBe(0);
      own = cgroupsIn(seen.stdout);
      // The point of the file: the runtimes' own cgroups differ per hierarchy.
      expect(own.get("memory")).toBe(`${mine.get("memory")}/${OWN}`.replace(/^\/\//, "/"));
      expect(own.get("pids")).toBe(`/${OWN}`);
      expect(own.get("cpuset")).toBe(`/${OWN}`);
      expect(own.get("cpu")).not.toBe(own.get("memory"));
    });

    afterAll(() => {
      for (const { runtime, id } of created) cli(runtime, ["delete", "--force", id]);
      // Both runtimes leave the cgroups above the container's (the caller's), under each hierarchy's own.
      for (const [h, cg] of own) {
        const dir = path.join(ROOT, h, cg, REL);
        if (!fs.existsSync(dir)) continue;
        for (const sub of fs.readdirSync(dir, { withFileTypes: true })) {
          if (sub.isDirectory()) rmdirSoon(path.join(dir, sub.name));
        }
        rmdirSoon(dir);
      }
      for (const d of ownDirs.reverse()) rmdirSoon(d);
    });

    /** Where a container of cgroupsPath REL/id is in hierarchy h when runc puts it there. */
    const runcDir = (h: string, id: string): string => path.join(ROOT, h, own.get(h) ?? "/", REL, id);

    /** runc; grove-runtime with its grove-shim; grove-runtime for a caller that reaps the init (no shim). */
    const VARIANTS = ["runc", "grove", "grove-reaped"] as const;
    type Variant = (typeof VARIANTS)[number];
    const runtimeOf = (v: Variant): "runc" | "grove" => (v === "runc" ? "runc" : "grove");

    /** The lines of a /proc/PID/cgroup text, the container's id as ID: the v1 hierarchies and, on this
     * hybrid host, the unified (v2) one ("0::"), which both runtimes join too. */
    const cgroupLines = (text: string, id: string): string[] =>
      text
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => l.split(id).join("ID"));

    interface Seen {
      inside: string[];
      host: string[];
      limits: string[];
    }

    /** create and start (through via), what it sees and where its limits are; the container is left running. */
    async function started(variant: Variant): Promise<{ id: string; pid: number; seen: Seen }> {
      const runtime = runtimeOf(variant);
      const id = `${TAG}-${variant}-${nextSeq()}`;
      const out = `/seen-${id}`;
      writeConfig((c) => {
        c.process.args = [
          "/bin/sh",
          "-c",
          `cat /proc/self/cgroup /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max ` +
            `/sys/fs/cgroup/cpuset/cpuset.cpus > ${out}.tmp && mv ${out}.tmp ${out}; exec sleep 60`,
        ];
        c.linux.cgroupsPath = `${REL}/${id}`;
        c.linux.resources.memory = { limit: MEMORY_LIMIT };
        c.linux.resources.pids = { limit: 77 };
        c.linux.resources.cpu = { cpus: "0" };
        if (variant === "grove-reaped") c.annotations = { "org.grove.runtime.reaper": "caller" };
      });
      created.push({ runtime, id });
      const create = cli(runtime, ["create", "--bundle", bundle, id], "create", via);
      expect(create.err).not.toContain("level=");
      expect(create).toMatchObject({ code: 0 });
      expect(cli(runtime, ["start", id], "start", via)).toMatchObject({ code: 0 });
      const file = path.join(bundle, "rootfs", out);
      await waitFor(() => fs.existsSync(file));
      const { pid } = stateOf(runtime, id);
      const seen = {
        inside: cgroupLines(fs.readFileSync(file, "utf8"), id),
        host: cgroupLines(fs.readFileSync(`/proc/${pid}/cgroup`, "utf8"), id),
        limits: [
          ["memory", "memory.limit_in_bytes"],
          ["pids", "pids.max"],
          ["cpuset", "cpuset.cpus"],
        ].map(([h, f]) => fs.readFileSync(path.join(runcDir(h!, id), f!), "utf8").trim()),
      };
      fs.rmSync(file);
      return { id, pid, seen };
    }

    /** Every hierarchy's cgroup of the container is gone (the v2 one too: runc made one there). */
    function expectGone(id: string): void {
      const left = [...hierarchies(), "unified"].map((h) => runcDir(h, id)).filter((d) => fs.existsSync(d));
      expect(left).toEqual([]);
    }

    it("the container's cgroups, its limits and what it sees are runc's; delete --force removes them all", async () => {
      const seen: Partial<Record<Variant, Seen>> = {};
      for (const variant of VARIANTS) {
        const runtime = runtimeOf(variant);
        const c = await started(variant);
        seen[variant] = c.seen;
        if (variant === "grove") {
          // grove-shim reads its counters where the container is (memory under the memory prefix).
          const stats = await askShim(c.id, "stats");
          expect(stats).toMatchObject({ pids: 1, oomKills: 0 });
          expect(stats.memoryBytes).toBeGreaterThan(0);
          expect(stats.cpuUsageNs).toBeGreaterThan(0);
        }
        expect(cli(runtime, ["delete", "--force", c.id], "delete", via)).toMatchObject({ code: 0 });
        expectGone(c.id);
      }
      expect(seen.grove).toEqual(seen.runc);
      expect(seen["grove-reaped"]).toEqual(seen.runc);
      const s = seen.grove!;
      expect(s.limits).toEqual([String(MEMORY_LIMIT), "77", "0"]);
      // Inside (no cgroup namespace in runc spec's list) as on the host; under each hierarchy's own cgroup.
      expect(s.inside.slice(0, -3)).toEqual(s.host);
      expect(s.inside.slice(-3)).toEqual(s.limits);
      for (const h of hierarchies()) {
        const name = h === "systemd" ? "name=systemd" : h;
        expect([h, s.host.find((l) => l.split(":")[1] === name)?.split(":")[2]]).toEqual([
          h,
          path.join(own.get(h)!, REL, "ID"),
        ]);
      }
    }, 60_000);

    it("after kill -9 of the init, delete removes every cgroup it made", async () => {
      for (const variant of VARIANTS) {
        const runtime = runtimeOf(variant);
        const c = await started(variant);
        process.kill(c.pid, "SIGKILL");
        await waitFor(() => stateOf(runtime, c.id).status === "stopped");
        expect(cli(runtime, ["delete", c.id], "delete", via)).toMatchObject({ code: 0 });
        expectGone(c.id);
      }
    }, 60_000);

    it("run: the same cgroups and limit, and none of them left when it returns", () => {
      const out: Record<string, string[]> = {};
      for (const runtime of ["runc", "grove"] as const) {
        const id = `${TAG}-${runtime}-${nextSeq()}`;
        writeConfig((c) => {
          c.process.args = ["/bin/sh", "-c", "cat /proc/self/cgroup /sys/fs/cgroup/memory/memory.limit_in_bytes"];
          c.linux.cgroupsPath = `${REL}/${id}`;
          c.linux.resources.memory = { limit: MEMORY_LIMIT };
        });
        const r = cli(runtime, ["run", "--bundle", bundle, id], "run", via);
        expect(r).toMatchObject({ code: 0, err: "" });
        out[runtime] = cgroupLines(r.out, id);
        expectGone(id);
      }
      expect(out.grove).toEqual(out.runc);
      expect(out.grove).toContain(String(MEMORY_LIMIT));
      const memory = out.grove!.find((l) => l.split(":")[1] === "memory");
      expect(memory?.split(":")[2]).toBe(path.join(own.get("memory")!, REL, "ID"));
    });
  },
);
