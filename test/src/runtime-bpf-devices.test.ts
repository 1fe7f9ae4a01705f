// The cgroup v2 device program (BPF_PROG_TYPE_CGROUP_DEVICE), for real: this
// host is hybrid (memory, cpu and pids on v1), but its cgroup2 mount takes
// device programs whatever controllers it has. A process moved into a cgroup
// with the program attached may use the container devices and nothing else.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { loadNativeBinding } from "@grove/agent";

const CGROUP2 = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"].find(
  (d) => fs.existsSync(d) && loadNativeBinding().detectCgroupMode(d) === "v2",
);
const CG = CGROUP2 && path.join(CGROUP2, `grove-bpf-${process.pid}`);

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
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "grove-bpf-"));
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
