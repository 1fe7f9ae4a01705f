// A container's root without a user namespace keeps CAP_CHOWN and
// CAP_FOWNER over inodes owned by host root: nothing it can reach may be one
// of the host's own device nodes. Each vector below tries to chmod and chown
// the host's /dev/null (and the other default nodes) from inside: through
// /dev, through a masked path, through its stdin, from an exec'd process and
// from a grove-runtime (OCI) bundle; the host's nodes must be unchanged.
//
// The changes tried keep every node readable and writable by everyone
// (0777, owner 1:1), so a regression cannot break what else runs on the
// machine meanwhile; every test restores the host's nodes in `finally`.
import { spawnSync, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import { NativeRuntime, defaultRuntimeHandlers, type ExecProcess } from "@grove/agent";
import { RuntimeFixture } from "./harness/runtime-fixture";
import { REPO_ROOT } from "./harness/processes";
import { RUN_TAG, runSlot } from "./harness/run-id";

const PARENT = `grove-hostdev-${RUN_TAG}`;
const NODES = ["null", "zero", "full", "random", "urandom", "tty"];
/** What a standard host has; /dev/null is put back to this whatever it was. */
const NULL_MODE = 0o20666;

const fx = new RuntimeFixture({ cgroupParent: PARENT, name: "grove-hostdev", idPrefix: "h" });

interface NodeState {
  mode: number;
  uid: number;
  gid: number;
}

function snapshot(): Record<string, NodeState> {
  const s: Record<string, NodeState> = {};
  for (const n of NODES) {
    const st = fs.statSync(`/dev/${n}`);
    s[n] = { mode: st.mode, uid: st.uid, gid: st.gid };
  }
  return s;
}

let original: Record<string, NodeState>;

/** Puts every host node back as it was at the start (/dev/null: 0666 root:root). */
function restoreHost(): void {
  for (const n of NODES) {
    const want = n === "null" ? { mode: NULL_MODE, uid: 0, gid: 0 } : original[n]!;
    const st = fs.statSync(`/dev/${n}`);
    if (st.uid !== want.uid || st.gid !== want.gid) fs.chownSync(`/dev/${n}`, want.uid, want.gid);
    if (st.mode !== want.mode) fs.chmodSync(`/dev/${n}`, want.mode & 0o7777);
  }
}

/** Runs attack(), then checks the host's nodes and restores them whatever happened. */
async function hostUnchanged(attack: () => Promise<string>): Promise<string> {
  const before = snapshot();
  let after: Record<string, NodeState>;
  let out: string;
  try {
    out = await attack();
  } finally {
    after = snapshot();
    restoreHost();
  }
  expect(after).toEqual(before);
  return out;
}

/** chmod and chown each path given; prints what the container saw succeed. */
function tamper(...paths: string[]): string {
  return paths.map((p) => `chmod 0777 ${p} && echo chmod=${p}; chown 1:1 ${p} && echo chown=${p}`).join("; ");
}

function collect(p: ExecProcess): Promise<string> {
  let out = "";
  p.stdout.setEncoding("utf8");
  p.stdout.on("data", (c: string) => (out += c));
  p.stderr?.on("data", (c: Buffer) => (out += c.toString("utf8")));
  p.stdin.end();
  return Promise.all([p.exited, new Promise<void>((r) => p.stdout.on("end", r))]).then(() => out);
}

beforeAll(() => {
  original = snapshot();
  // A host left broken by an earlier run is put right first.
  restoreHost();
  original = snapshot();
  fx.setUp();
});

afterAll(async () => {
  restoreHost();
  await fx.tearDown();
});

describe("a root container without a user namespace cannot change the host's device nodes", () => {
  it("through /dev (its own nodes are changed, they are the container's)", async () => {
    const out = await hostUnchanged(async () => {
      const { code, out } = await fx.run(tamper(...NODES.map((n) => `/dev/${n}`)) + "; ls -ln /dev/null");
      expect(code).toBe(0);
      return out;
    });
    // The attempt itself succeeds: the container's root may change its own nodes.
    expect(out).toContain("chmod=/dev/null");
    expect(out).toMatch(/^crwxrwxrwx\s+1\s+1\s+1\s+1,\s+3 /m);
  });

  it("through a path masked with /dev/null", async () => {
    const out = await hostUnchanged(async () => {
      const { out } = await fx.run(tamper("/proc/interrupts", "/proc/keys"));
      return out;
    });
    // Masked with the container's own /dev/null, which its root may change.
    expect(out).toContain("chmod=/proc/interrupts");
  });

  it("through its stdin, stdout and stderr (/proc/self/fd)", async () => {
    const out = await hostUnchanged(async () => {
      const { out } = await fx.run(tamper("/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2"));
      return out;
    });
    expect(out).toContain("chmod=/proc/self/fd/0");
  });

  it("in a user namespace, where the host's nodes are bound in, its root may not change them", async () => {
    const base = 400_000_000 + runSlot(50_000, 7) * 65536;
    const map = [{ containerId: 0, hostId: base, size: 65536 }];
    const out = await hostUnchanged(async () => {
      const { out } = await fx.run(tamper("/dev/null", "/proc/interrupts", "/proc/self/fd/0"), {
        userNamespace: { uidMap: map, gidMap: map },
      });
      return out;
    });
    expect(out).toMatch(/chmod: \/dev\/null: Operation not permitted/);
    expect(out).not.toContain("chmod=");
  });

  it("from an exec'd process", async () => {
    const h = await fx.rt.start(fx.spec("exec sleep 1000"));
    try {
      await hostUnchanged(async () =>
        collect(
          await fx.rt.exec(h.id, {
            command: ["/bin/sh", "-c", tamper("/dev/null", "/proc/interrupts", "/proc/self/fd/0", "/proc/self/fd/1")],
          }),
        ),
      ).then((out) => expect(out).toContain("chmod=/dev/null"));
    } finally {
      await fx.rt.stop(h.id, 0);
      await fx.rt.remove(h.id);
    }
  });

  it.each([
    ["C", [path.join(REPO_ROOT, "agent", "bin", "grove-runtime")]],
    ["TypeScript", [process.execPath, path.join(REPO_ROOT, "agent", "bin", "grove-runtime-node.js")]],
  ])("from a grove-runtime bundle (%s) with CAP_CHOWN and CAP_FOWNER", async (name, cli) => {
    const bundle = path.join(fx.tmp, `bundle-${name}`);
    const state = path.join(fx.tmp, `state-${name}`);
    fs.mkdirSync(bundle);
    fs.symlinkSync(fx.rootfs, path.join(bundle, "rootfs"));
    execFileSync("runc", ["spec"], { cwd: bundle });
    const config = JSON.parse(fs.readFileSync(path.join(bundle, "config.json"), "utf8")) as {
      process: { terminal: boolean; args: string[]; capabilities: Record<string, string[]> };
      root: { readonly: boolean };
    };
    config.process.terminal = false;
    config.process.args = [
      "/bin/sh",
      "-c",
      tamper(...NODES.map((n) => `/dev/${n}`), "/proc/interrupts", "/proc/self/fd/0"),
    ];
    for (const set of ["bounding", "effective", "permitted"]) {
      config.process.capabilities[set] = [...(config.process.capabilities[set] ?? []), "CAP_CHOWN", "CAP_FOWNER"];
    }
    fs.writeFileSync(path.join(bundle, "config.json"), JSON.stringify(config));
    // stdin the host's /dev/null ("ignore"), as a shell's `< /dev/null` or grove-shim
    // give it: the container gets the caller's stdio, but never the host's /dev/null
    // (it reopens its own over it, as runc does).
    const id = `hostdev-${RUN_TAG}-${name}`;
    try {
      const out = await hostUnchanged(async () => {
        const r = spawnSync(
          cli[0]!,
          [...cli.slice(1), "--root", state, "--cgroup-parent", PARENT, "run", "--bundle", bundle, id],
          {
            stdio: ["ignore", "pipe", "pipe"],
            encoding: "utf8",
            timeout: 60_000,
          },
        );
        expect(r.stderr).not.toMatch(/not supported/);
        return r.stdout + r.stderr;
      });
      expect(out).toContain("chmod=/dev/null");
    } finally {
      spawnSync(cli[0]!, [...cli.slice(1), "--root", state, "delete", "--force", id]);
    }
  });

  it.each(["runc"])(
    "through its stdin when started by the %s runtime handler (the runtime passes its stdio on)",
    async (runtimeClass) => {
      const handlers = defaultRuntimeHandlers();
      expect(handlers[runtimeClass]).toBeDefined();
      const rt = new NativeRuntime({
        cgroupParent: `${PARENT}-h`,
        stateDir: path.join(fx.tmp, `state-${runtimeClass}`),
        handlers,
      });
      try {
        const s = fx.spec(tamper("/proc/self/fd/0", "/dev/null"), { runtimeClass });
        await hostUnchanged(async () => {
          const h = await rt.start(s);
          await h.exited;
          await rt.remove(s.id);
          return "";
        });
        const out = fs.readFileSync(s.logPath, "utf8");
        expect(out).toContain("chmod=/dev/null");
      } finally {
        for (const h of rt.list()) {
          await rt.stop(h.id, 0);
          await rt.remove(h.id);
        }
        await rt.removeParentCgroup();
      }
    },
  );
});
