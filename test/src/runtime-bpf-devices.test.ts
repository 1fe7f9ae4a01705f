// The cgroup v2 device program (BPF_PROG_TYPE_CGROUP_DEVICE), for real: this
// host is hybrid (memory, cpu and pids on v1), but its cgroup2 mount takes
// device programs whatever controllers it has. A process moved into a cgroup
// with the program attached may use the container devices and nothing else.
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import { loadNativeBinding } from "@grove/agent";
import { RUN_TAG, tempDir } from "./harness/run-id";

const CGROUP2 = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"].find(
  (d) => fs.existsSync(d) && loadNativeBinding().detectCgroupMode(d) === "v2",
);
const CG = CGROUP2 && path.join(CGROUP2, `grove-bpf-${RUN_TAG}`);
const REPO = path.resolve(__dirname, "../..");

/** Node child: joins the cgroup (when given), opens each node, prints {name: "ok" | errno code}. */
const PROBE = `
const fs = require("fs");
const { execFileSync } = require("child_process");
if (process.env.CG) fs.writeFileSync(process.env.CG + "/cgroup.procs", String(process.pid));
const out = {};
for (const [name, file, flags] of JSON.parse(process.env.NODES)) {
  try { fs.closeSync(fs.openSync(file, flags)); out[name] = "ok"; } catch (e) { out[name] = e.code; }
}
try { execFileSync("mknod", [process.env.TMP + "/made", "c", "1", "11"]); out.mknod = "ok"; } catch (e) { out.mknod = "failed"; }
fs.rmSync(process.env.TMP + "/made", { force: true });
process.stdout.write(JSON.stringify(out));
`;

function probe(tmp: string, cg: string | undefined): Record<string, string> {
  const nodes = [
    ["null", "/dev/null", "r+"],
    ["zero", "/dev/zero", "r"],
    ["full", "/dev/full", "r+"],
    ["random", "/dev/random", "r"],
    ["urandom", "/dev/urandom", "r"],
    ["ptmx", "/dev/ptmx", "r+"],
    ["tty", "/dev/tty", "r+"],
    ["pts", path.join(tmp, "pts9"), "r+"],
    ["kmsg", path.join(tmp, "kmsg"), "r"],
    ["kmsgWrite", path.join(tmp, "kmsg"), "r+"],
    ["mem", path.join(tmp, "mem"), "r"],
    ["block", path.join(tmp, "loop0"), "r"],
  ];
  const r = spawnSync(process.execPath, ["-e", PROBE], {
    env: { ...process.env, CG: cg ?? "", TMP: tmp, NODES: JSON.stringify(nodes) },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (r.status !== 0) throw new Error(`probe failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, string>;
}

(CG ? describe : describe.skip)("cgroup v2 device program on the real kernel", () => {
  let tmp: string;

  beforeAll(() => {
    tmp = tempDir("grove-bpf");
    // Device nodes outside /dev: kmsg (1:11), mem (1:1), a loop block device (7:0), a pts (136:9).
    for (const [name, type, major, minor] of [
      ["kmsg", "c", "1", "11"],
      ["mem", "c", "1", "1"],
      ["loop0", "b", "7", "0"],
      ["pts9", "c", "136", "9"],
    ]) {
      const r = spawnSync("mknod", [path.join(tmp, name!), type!, major!, minor!]);
      if (r.status !== 0) throw new Error(`mknod ${name}: ${r.stderr}`);
    }
    fs.mkdirSync(CG!);
  });

  afterAll(() => {
    if (CG && fs.existsSync(CG)) fs.rmdirSync(CG);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("allows the container devices and refuses every other with EPERM; mknod stays allowed", () => {
    // Outside the cgroup the same opens get past the device check.
    const outside = probe(tmp, undefined);
    expect(outside.kmsg).toBe("ok");
    expect(outside.mem).not.toBe("EPERM");
    expect(outside.block).not.toBe("EPERM");

    loadNativeBinding().attachDeviceProgram(CG!);
    // Idempotent: a second setup of the same cgroup attaches nothing more.
    loadNativeBinding().attachDeviceProgram(CG!);

    const inside = probe(tmp, CG);
    for (const name of ["null", "zero", "full", "random", "urandom", "ptmx"])
      expect([name, inside[name]]).toEqual([name, "ok"]);
    // /dev/tty (5:0) and pts (136:*) pass the program; the tty driver may then say ENXIO/EIO.
    expect(inside.tty).not.toBe("EPERM");
    expect(inside.pts).not.toBe("EPERM");
    expect(inside.kmsg).toBe("EPERM");
    expect(inside.mem).toBe("EPERM");
    expect(inside.block).toBe("EPERM");
    expect(inside.mknod).toBe("ok");
    // The probe has exited: the cgroup is empty and goes, program and all.
    expect(fs.readFileSync(path.join(CG!, "cgroup.procs"), "utf8")).toBe("");
  });

  it("takes extra rules before the allow list, the last match deciding (OCI linux.resources.devices)", () => {
    const other = `${CG}-rules`;
    fs.mkdirSync(other);
    try {
      loadNativeBinding().attachDeviceProgram(other, [
        { allow: false, rule: "a *:* rwm" },
        { allow: true, rule: "c 1:11 r" }, // kmsg, read only
        { allow: true, rule: "c 1:1 rwm" },
        { allow: false, rule: "c 1:1 rwm" }, // mem: the later deny wins
        { allow: false, rule: "c 1:3 rwm" }, // null: the allow list comes last and wins
      ]);
      const r = probe(tmp, other);
      expect(r.kmsg).toBe("ok");
      expect(r.kmsgWrite).toBe("EPERM");
      expect(r.mem).toBe("EPERM");
      expect(r.null).toBe("ok");
      expect(r.block).toBe("EPERM");
      // On a cgroup that exists, so the refusal can only come from the rule parser.
      const bad = `${CG}-bad`;
      fs.mkdirSync(bad);
      try {
        expect(() => loadNativeBinding().attachDeviceProgram(bad, [{ allow: true, rule: "x 1:1 r" }])).toThrow(
          /^device rule `x 1:1 r`: not TYPE MAJOR:MINOR ACCESS/,
        );
        // Nothing was attached: the cgroup still lets kmsg through.
        expect(probe(tmp, bad).kmsg).toBe("ok");
      } finally {
        fs.rmdirSync(bad);
      }
    } finally {
      fs.rmdirSync(other);
    }
  });

  it("leaves an unattached cgroup alone (the program is per cgroup)", () => {
    const other = `${CG}-other`;
    fs.mkdirSync(other);
    try {
      expect(probe(tmp, other).kmsg).toBe("ok");
    } finally {
      fs.rmdirSync(other);
    }
  });
});

// Here the rules go to the v1 devices cgroup; on a v2 host into the device program.
describe("grove-runtime linux.resources.devices", () => {
  const PARENT = `grove-bpf-oci-${RUN_TAG}`;
  let tmp: string;
  let bundle: string;

  beforeAll(() => {
    tmp = tempDir("grove-bpf-oci");
    bundle = path.join(tmp, "bundle");
    fs.mkdirSync(bundle);
    execFileSync(path.join(REPO, "deploy/make-rootfs.sh"), [path.join(bundle, "rootfs")], { stdio: "pipe" });
    execFileSync("runc", ["spec"], { cwd: bundle });
    // runc's spec has no CAP_MKNOD: the node is made on the host, in the rootfs. /dev/fuse
    // (10:229) opens without any capability (kmsg would need CAP_SYSLOG).
    execFileSync("mknod", ["-m", "666", path.join(bundle, "rootfs", "fuse-test"), "c", "10", "229"]);
  });

  afterAll(() => {
    for (const c of ["memory", "cpu", "pids", "cpuacct", "devices", "freezer"]) {
      const dir = path.join("/sys/fs/cgroup", c, PARENT);
      if (fs.existsSync(dir)) fs.rmdirSync(dir);
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  function run(devices: unknown[] | undefined): string {
    const config = JSON.parse(fs.readFileSync(path.join(bundle, "config.json"), "utf8")) as {
      process: { terminal: boolean; args: string[] };
      root: { readonly: boolean };
      linux: { resources: Record<string, unknown> };
    };
    config.process.terminal = false;
    config.root.readonly = false;
    config.process.args = [
      "/bin/sh",
      "-c",
      "(head -c 0 /fuse-test && echo read=ok || echo read=denied) 2>/dev/null; " +
        "(true > /fuse-test && echo write=ok || echo write=denied) 2>/dev/null",
    ];
    if (devices) config.linux.resources.devices = devices;
    else delete config.linux.resources.devices;
    fs.writeFileSync(path.join(bundle, "config.json"), JSON.stringify(config));
    const r = spawnSync(
      path.join(REPO, "agent", "bin", "grove-runtime"),
      ["--root", path.join(tmp, "state"), "--cgroup-parent", PARENT, "run", "--bundle", bundle, `devs-${RUN_TAG}`],
      { encoding: "utf8", timeout: 60_000 },
    );
    if (r.status !== 0) throw new Error(`grove-runtime run: ${r.status} ${r.stderr} ${r.stdout}`);
    return r.stdout;
  }

  it("allows what the rules allow on top of the container list, and nothing else", () => {
    expect(run(undefined)).toBe("read=denied\nwrite=denied\n");
    expect(
      run([
        { allow: false, access: "rwm" },
        { allow: true, type: "c", major: 10, minor: 229, access: "r" },
      ]),
    ).toBe("read=ok\nwrite=denied\n");
    expect(run([{ allow: true, type: "c", major: 10, minor: 229, access: "rw" }])).toBe("read=ok\nwrite=ok\n");
  });

  it("refuses a malformed rule naming it", () => {
    expect(() => run([{ allow: true, type: "x", access: "r" }])).toThrow(
      /config.json linux.resources.devices\[0\]: device rule `x \*:\* r`/,
    );
  });
});
