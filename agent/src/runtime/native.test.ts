// NativeRuntime's TypeScript layer against a recording stand-in for the addon:
// validation happens before any native call, and bookkeeping is right. The
// real addon is exercised in test/src/runtime.test.ts.
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

import { NativeRuntime } from "./native";
import type { NativeBinding } from "./native-binding";
import { loadNativeBinding } from "./native-binding";
import type { ContainerSpec } from "./types";

/** What the stand-in reports through onExit (the shape the bench addon's start() reports). */
interface NativeExit {
  exitCode: number;
  signal: number;
  oomKilled: boolean;
}

class RecordingBinding implements NativeBinding {
  calls: string[] = [];
  onExit: ((exit: NativeExit) => void) | undefined;
  startError: Error | undefined;
  signals: number[] = [];
  closed: number[] = [];
  detectCgroupMode(): "v1" | "v2" {
    return "v1";
  }
  netnsSocket(path: string): number {
    this.calls.push(`netnsSocket ${path}`);
    return -1;
  }
  async setupCgroup(_m: string, _r: string, parent: string, id: string): Promise<void> {
    this.calls.push(`setup ${parent}/${id}`);
  }
  attachDeviceProgram(dir: string, _rules?: { allow: boolean; rule: string }[]): void {
    this.calls.push(`attach device program ${dir}`);
  }
  async removeCgroup(_m: string, _r: string, parent: string, id: string | null): Promise<void> {
    this.calls.push(`remove ${parent}/${id ?? ""}`);
  }
  async killCgroup(_m: string, _r: string, _p: string, id: string, signal: number): Promise<number> {
    this.calls.push(`killCgroup ${id} ${signal}`);
    this.onExit?.({ exitCode: 128 + signal, signal, oomKilled: false });
    return 1;
  }
  async listCgroups(): Promise<string[]> {
    return ["old-1", "live"];
  }
  async oomKills(): Promise<number> {
    return 0;
  }
  async start(
    options: { argv: string[]; env: string[] },
    onExit: (exit: NativeExit) => void,
  ): Promise<{ pid: number; pidfd: number }> {
    this.calls.push(`start ${options.argv.join(" ")} env=${options.env.join(",")}`);
    if (this.startError) throw this.startError;
    this.onExit = onExit;
    return { pid: 4242, pidfd: 77 };
  }
  /** A stand-in shim: a unix socket server speaking the shim's line protocol. */
  servers: net.Server[] = [];
  async startShim(_shim: string, id: string, config: string[]): Promise<{ pid: number; shimPid: number }> {
    const get = (k: string) => config.filter((_, i) => i % 2 === 1 && config[i - 1] === k);
    this.calls.push(`startShim ${id} ${get("arg").join(" ")} env=${get("env").join(",")}`);
    if (this.startError) throw this.startError;
    const dir = get("dir")[0] ?? "";
    const waiters: net.Socket[] = [];
    const server = net.createServer((c) => {
      c.setEncoding("utf8");
      c.on("data", (line: string) => {
        const req = line.trim();
        if (req === "wait") waiters.push(c);
        else if (req.startsWith("signal ")) {
          const sig = Number(req.slice(7));
          this.signals.push(sig);
          c.end('{"sent":true}\n');
          if (sig === 9) {
            for (const w of waiters)
              w.end(`{"exitCode":137,"signal":9,"oomKilled":false,"finishedAtMs":${Date.now()}}\n`);
            server.close();
          }
        }
      });
    });
    this.servers.push(server);
    await new Promise<void>((resolve) => server.listen(path.join(dir, "shim.sock"), resolve));
    return { pid: 4242, shimPid: 4243 };
  }
  pidfdSignal(_fd: number, signal: number): boolean {
    this.signals.push(signal);
    return true;
  }
  closeFd(fd: number): void {
    this.closed.push(fd);
  }
}

let rootfs: string;
let stateDir: string;
beforeAll(() => {
  rootfs = fs.mkdtempSync(path.join(os.tmpdir(), "grove-native-ts-"));
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-native-state-"));
});
afterAll(() => {
  fs.rmSync(rootfs, { recursive: true, force: true });
  fs.rmSync(stateDir, { recursive: true, force: true });
});

function spec(over: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    id: "live",
    rootfs,
    command: ["sleep", "60"],
    env: { A: "1" },
    hostname: "live",
    resources: { cpuMillis: 100, memoryBytes: 1 << 26, pids: 16 },
    logPath: path.join(rootfs, "log"),
    ...over,
  };
}

describe("NativeRuntime (TypeScript layer)", () => {
  it("rejects invalid specs before touching the addon", async () => {
    const b = new RecordingBinding();
    const rt = new NativeRuntime({ binding: b, cgroupParent: "grove-unit" });
    await expect(rt.start(spec({ id: "bad/id" }))).rejects.toMatchObject({ code: "INVALID_SPEC" });
    await expect(rt.start(spec({ rootfs: path.join(rootfs, "nope") }))).rejects.toMatchObject({ code: "INVALID_SPEC" });
    await expect(rt.start(spec({ command: [] }))).rejects.toMatchObject({ code: "INVALID_SPEC" });
    expect(b.calls).toEqual([]);
  });

  it("refuses an invalid parent cgroup name", () => {
    expect(() => new NativeRuntime({ binding: new RecordingBinding(), cgroupParent: "../etc" })).toThrow(
      /container id/,
    );
  });

  it("refuses a cgroup v1 root without the devices controller, naming it", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "grove-unit-v1-"));
    try {
      for (const c of ["memory", "cpu", "pids"]) fs.mkdirSync(path.join(root, c));
      const make = () => new NativeRuntime({ binding: new RecordingBinding(), cgroupRoot: root, cgroupMode: "v1" });
      expect(make).toThrow(`cgroup v1: the devices controller is not mounted (no ${root}/devices)`);
      fs.mkdirSync(path.join(root, "devices"));
      expect(make().cgroupMode).toBe("v1");
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it("starts, tracks, stops with SIGTERM then SIGKILL, and removes", async () => {
    const b = new RecordingBinding();
    const rt = new NativeRuntime({ binding: b, cgroupParent: "grove-unit", stateDir });
    const h = await rt.start(spec());
    expect(h.pid).toBe(4242);
    expect(b.calls).toEqual(["setup grove-unit/live", "startShim live sleep 60 env=A=1"]);
    expect(JSON.parse(fs.readFileSync(path.join(stateDir, "live", "spec.json"), "utf8")).spec.id).toBe("live");
    await expect(rt.start(spec())).rejects.toMatchObject({ code: "CONTAINER_EXISTS" });
    await expect(rt.remove("live")).rejects.toMatchObject({ code: "CONTAINER_RUNNING" });

    const exit = await rt.stop("live", 0);
    expect(b.signals).toEqual([15, 9]);
    expect(b.calls).toContain("killCgroup live 9");
    expect(exit).toMatchObject({ exitCode: 137, signal: 9, oomKilled: false });
    await rt.kill("live", "SIGTERM"); // exited: not an error, no signal sent
    expect(b.signals).toEqual([15, 9]);
    await rt.remove("live");
    expect(rt.list()).toEqual([]);
    expect(fs.existsSync(path.join(stateDir, "live"))).toBe(false);
  });

  it("removes the cgroup when the start fails and reports START_FAILED", async () => {
    const b = new RecordingBinding();
    b.startError = Object.assign(new Error("exec /bin/nosuch: No such file or directory"), {
      code: "ENOENT",
      errno: 2,
    });
    const rt = new NativeRuntime({ binding: b, cgroupParent: "grove-unit", stateDir });
    await expect(rt.start(spec())).rejects.toMatchObject({
      code: "START_FAILED",
      errno: "ENOENT",
      message: "exec /bin/nosuch: No such file or directory",
    });
    expect(b.calls.at(-1)).toBe("remove grove-unit/live");
    expect(rt.list()).toEqual([]);
    expect(fs.existsSync(path.join(stateDir, "live"))).toBe(false);
  });

  it("cleanupStale kills and removes cgroups it does not own", async () => {
    const b = new RecordingBinding();
    const rt = new NativeRuntime({ binding: b, cgroupParent: "grove-unit", stateDir });
    await rt.start(spec());
    expect(await rt.cleanupStale()).toEqual(["old-1"]);
    expect(b.calls).toContain("killCgroup old-1 9");
    expect(b.calls).toContain("remove grove-unit/old-1");
    expect(b.calls).not.toContain("remove grove-unit/live");
    await rt.stop("live", 0);
    await rt.remove("live");
  });
});

describe("loadNativeBinding", () => {
  it("says how to build the addon when it is missing", () => {
    expect(() => loadNativeBinding("/nonexistent/grove_native.node")).toThrow(/npm run build:native -w @grove\/agent/);
  });
});
