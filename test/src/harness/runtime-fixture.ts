// The set-up the runtime integration tests share: a busybox rootfs in a
// temporary directory, a NativeRuntime under its own cgroup parent, a spec
// builder for `/bin/sh -c SCRIPT` containers, and a tear-down that stops and
// removes what is left and deletes the directory.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import { NativeRuntime, loadNativeBinding, type ContainerSpec } from "@grove/agent";
import { Cleanup, cgroupGone } from "./cleanup";
import { REPO_ROOT, tempDir } from "./processes";

const MiB = 1024 * 1024;

export interface RuntimeFixtureOptions {
  /** Cgroup parent of the runtime (name it with the run tag, run-id.ts). */
  cgroupParent: string;
  /** Prefix of the temporary directory and of container ids. */
  name: string;
  idPrefix: string;
  /** Mode of the temporary directory (e.g. 0o700 like an agent's state directory). */
  tmpMode?: number;
  /** Give the runtime a state directory under the temporary one. */
  stateDir?: boolean;
  /** Add the users app (1000) and groups app, extra (2000, with app), other (3000) to the rootfs. */
  users?: boolean;
  /** Merged into every spec. */
  defaults?: Partial<ContainerSpec>;
}

export class RuntimeFixture {
  tmp = "";
  rootfs = "";
  rt!: NativeRuntime;
  private n = 0;

  constructor(private readonly o: RuntimeFixtureOptions) {}

  setUp(): { tmp: string; rootfs: string; rt: NativeRuntime } {
    loadNativeBinding();
    this.tmp = tempDir(this.o.name);
    if (this.o.tmpMode !== undefined) fs.chmodSync(this.tmp, this.o.tmpMode);
    this.rootfs = path.join(this.tmp, "rootfs");
    execFileSync(path.join(REPO_ROOT, "deploy/make-rootfs.sh"), [this.rootfs], { stdio: "pipe" });
    if (this.o.users) {
      fs.appendFileSync(path.join(this.rootfs, "etc/passwd"), "app:x:1000:1000:app:/home/app:/bin/sh\n");
      fs.appendFileSync(path.join(this.rootfs, "etc/group"), "app:x:1000:\nextra:x:2000:app\nother:x:3000:\n");
    }
    this.rt = new NativeRuntime({
      cgroupParent: this.o.cgroupParent,
      ...(this.o.stateDir ? { stateDir: path.join(this.tmp, "state") } : {}),
    });
    return { tmp: this.tmp, rootfs: this.rootfs, rt: this.rt };
  }

  /** A container running `/bin/sh -c script`, 500m / 64Mi / 32 pids, its log in the temporary directory. */
  spec = (script: string, over: Partial<ContainerSpec> = {}): ContainerSpec => {
    const id = `${this.o.idPrefix}${++this.n}`;
    return {
      id,
      rootfs: this.rootfs,
      command: ["/bin/sh", "-c", script],
      env: { PATH: "/bin:/sbin:/usr/bin:/usr/sbin" },
      hostname: id,
      resources: { cpuMillis: 500, memoryBytes: 64 * MiB, pids: 32 },
      logPath: path.join(this.tmp, `${id}.log`),
      ...this.o.defaults,
      ...over,
    };
  };

  /** Runs a script to completion in a container; returns its exit code and output. */
  run = async (script: string, over: Partial<ContainerSpec> = {}): Promise<{ code: number; out: string }> => {
    const s = this.spec(script, over);
    const h = await this.rt.start(s);
    const exit = await h.exited;
    await this.rt.remove(s.id);
    return { code: exit.exitCode, out: fs.readFileSync(s.logPath, "utf8") };
  };

  /**
   * Stops and removes every container left, the cgroup parent, and the
   * temporary directory: every step runs, then an AggregateError names each
   * one that failed (see Cleanup).
   */
  async tearDown(): Promise<void> {
    const c = new Cleanup(`RuntimeFixture ${this.o.name}`);
    for (const h of this.rt?.list() ?? []) {
      await c.step(`stop container ${h.id}`, () => this.rt.stop(h.id, 0));
      await c.step(`remove container ${h.id}`, () => this.rt.remove(h.id));
    }
    if (this.rt) {
      await c.step(
        `remove cgroup parent ${this.o.cgroupParent}`,
        () => this.rt.removeParentCgroup(),
        () => cgroupGone(this.o.cgroupParent),
      );
    }
    if (this.tmp) await c.step(`remove ${this.tmp}`, () => fs.rmSync(this.tmp, { recursive: true, force: true }));
    c.finish();
  }
}
