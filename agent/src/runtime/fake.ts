// FakeRuntime: an in-memory ContainerRuntime for unit tests of the reconciler.
// Containers "run" until a test ends them (exit(), oom()) or they are killed;
// every call is recorded so tests can assert what the reconciler did.
import { spawn } from "node:child_process";
import { PassThrough } from "node:stream";
import { RuntimeError } from "./errors";
import type {
  ContainerExit,
  ContainerHandle,
  ContainerRuntime,
  ContainerSpec,
  ContainerStats,
  CgroupMode,
  ExecOptions,
  ExecProcess,
} from "./types";
import { signalNumber, validateId, validateSpec } from "./validate";

const SIGKILL = 9;
const SIGTERM = 15;

export type FakeCall =
  | { op: "start"; id: string }
  | { op: "kill"; id: string; signal: number }
  | { op: "stop"; id: string; graceSeconds: number }
  | { op: "remove"; id: string }
  | { op: "cleanupStale"; ids: string[] }
  | { op: "exec"; id: string; command: string[] };

export interface FakeRuntimeOptions {
  cgroupMode?: CgroupMode;
  /** Ids a "previous agent run" left behind, returned (once) by cleanupStale(). */
  staleIds?: string[];
  /** First pid handed out (incremented per container). */
  firstPid?: number;
}

export interface FakeContainer {
  spec: ContainerSpec;
  handle: ContainerHandle;
  /** Signals received, in order. */
  signals: number[];
  /** When true the container ignores SIGTERM (like an init without a handler). */
  ignoresSigterm: boolean;
  exit: ContainerExit | undefined;
}

interface Internal extends FakeContainer {
  resolve: (exit: ContainerExit) => void;
}

export class FakeRuntime implements ContainerRuntime {
  readonly cgroupMode: CgroupMode;
  readonly calls: FakeCall[] = [];
  private readonly containers = new Map<string, Internal>();
  private stale: string[];
  private nextPid: number;
  private readonly startFailures: Error[] = [];
  private readonly stats_ = new Map<string, ContainerStats>();

  constructor(opts: FakeRuntimeOptions = {}) {
    this.cgroupMode = opts.cgroupMode ?? "v2";
    this.stale = [...(opts.staleIds ?? [])];
    this.nextPid = opts.firstPid ?? 1000;
  }

  /** Makes the next start() reject with this error (after validation). */
  failNextStart(error: Error = new RuntimeError("START_FAILED", "injected start failure")): void {
    this.startFailures.push(error);
  }

  async start(spec: ContainerSpec): Promise<ContainerHandle> {
    validateSpec(spec, { checkFilesystem: false });
    this.calls.push({ op: "start", id: spec.id });
    if (this.containers.has(spec.id)) {
      throw new RuntimeError("CONTAINER_EXISTS", `container ${spec.id} already exists`);
    }
    const failure = this.startFailures.shift();
    if (failure !== undefined) throw failure;
    let resolve!: (exit: ContainerExit) => void;
    const exited = new Promise<ContainerExit>((r) => (resolve = r));
    const handle: ContainerHandle = { id: spec.id, pid: this.nextPid++, startedAt: new Date(), exited };
    this.containers.set(spec.id, {
      spec: structuredClone(spec),
      handle,
      signals: [],
      ignoresSigterm: false,
      exit: undefined,
      resolve,
    });
    return handle;
  }

  /** Inspect a container (undefined once removed). */
  get(id: string): FakeContainer | undefined {
    return this.containers.get(id);
  }

  /** Makes a running container ignore SIGTERM, so stop() must wait out the grace period. */
  ignoreSigterm(id: string, ignore = true): void {
    this.mustGet(id).ignoresSigterm = ignore;
  }

  /** Ends a running container as if its init exited (code) or was killed (signal). */
  exit(id: string, result: { exitCode?: number; signal?: number; oomKilled?: boolean } = {}): ContainerExit {
    const c = this.mustGet(id);
    if (c.exit !== undefined) throw new Error(`fake container ${id} already exited`);
    const signal = result.signal ?? 0;
    const exit: ContainerExit = {
      exitCode: result.exitCode ?? (signal > 0 ? 128 + signal : 0),
      signal,
      oomKilled: result.oomKilled ?? false,
      finishedAt: new Date(),
    };
    c.exit = exit;
    c.resolve(exit);
    return exit;
  }

  /** Ends a running container the way the kernel OOM killer does. */
  oom(id: string): ContainerExit {
    return this.exit(id, { signal: SIGKILL, oomKilled: true });
  }

  async kill(id: string, signal: NodeJS.Signals | number): Promise<void> {
    const sig = signalNumber(signal);
    const c = this.mustGet(id);
    this.calls.push({ op: "kill", id, signal: sig });
    if (c.exit !== undefined) return;
    c.signals.push(sig);
    if (sig === SIGKILL || (sig === SIGTERM && !c.ignoresSigterm)) this.exit(id, { signal: sig });
  }

  async stop(id: string, graceSeconds: number): Promise<ContainerExit> {
    const c = this.mustGet(id);
    this.calls.push({ op: "stop", id, graceSeconds });
    if (c.exit !== undefined) return c.exit;
    await this.kill(id, SIGTERM);
    if (c.exit === undefined) {
      await new Promise((r) => setTimeout(r, Math.max(0, graceSeconds) * 1000));
      if (c.exit === undefined) await this.kill(id, SIGKILL);
    }
    return c.handle.exited;
  }

  async remove(id: string): Promise<void> {
    validateId(id);
    this.calls.push({ op: "remove", id });
    const c = this.containers.get(id);
    if (c !== undefined && c.exit === undefined) {
      throw new RuntimeError("CONTAINER_RUNNING", `container ${id} is still running; stop it first`);
    }
    this.containers.delete(id);
  }

  list(): ContainerHandle[] {
    return [...this.containers.values()].map((c) => c.handle);
  }

  async cleanupStale(): Promise<string[]> {
    const ids = this.stale.filter((id) => !this.containers.has(id)).sort();
    this.stale = [];
    this.calls.push({ op: "cleanupStale", ids });
    return ids;
  }

  /** Stats stats() answers for a container (default: zeros). */
  setStats(id: string, stats: ContainerStats): void {
    this.stats_.set(id, stats);
  }

  async stats(id: string): Promise<ContainerStats> {
    const c = this.mustGet(id);
    if (c.exit !== undefined) throw new RuntimeError("CONTAINER_NOT_FOUND", `container ${id} is not running`);
    return this.stats_.get(id) ?? { cpuUsageNs: 0, memoryBytes: 0, memoryPeakBytes: 0, pids: 1, oomKills: 0 };
  }

  /**
   * FOR UNIT TESTS ONLY: runs the command as a plain child process on the
   * host (no namespaces, no cgroup, no security settings); with tty, stderr
   * is merged into stdout, there is no terminal.
   */
  async exec(id: string, opts: ExecOptions): Promise<ExecProcess> {
    const c = this.mustGet(id);
    if (c.exit !== undefined) throw new RuntimeError("CONTAINER_NOT_FOUND", `container ${id} is not running`);
    this.calls.push({ op: "exec", id, command: [...opts.command] });
    const [file, ...args] = opts.command;
    if (file === undefined) throw new RuntimeError("INVALID_SPEC", "exec: command must not be empty");
    const child = spawn(file, args, {
      env: { ...process.env, ...opts.env },
      ...(opts.workingDir ? { cwd: opts.workingDir } : {}),
      stdio: ["pipe", "pipe", "pipe"],
    });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once("spawn", () => resolve(child.pid ?? 0));
      child.once("error", (err) => reject(new RuntimeError("START_FAILED", `exec ${file}: ${err.message}`)));
    });
    const exited = new Promise<{ exitCode: number; signal: number }>((resolve) =>
      child.once("exit", (code, signal) => {
        const sig = signal ? signalNumber(signal) : 0;
        resolve({ exitCode: code ?? 128 + sig, signal: sig });
      }),
    );
    let stdout = child.stdout;
    let stderr: ExecProcess["stderr"] = child.stderr;
    if (opts.tty) {
      const merged = new PassThrough();
      let open = 2;
      const end = () => {
        if (--open === 0) merged.end();
      };
      child.stdout.on("data", (d: Buffer) => merged.write(d)).once("end", end);
      child.stderr.on("data", (d: Buffer) => merged.write(d)).once("end", end);
      stdout = merged as unknown as typeof child.stdout;
      stderr = null;
    }
    return {
      pid,
      stdin: child.stdin,
      stdout,
      stderr,
      resize: () => undefined,
      kill: (signal) => {
        child.kill(signal);
      },
      exited,
    };
  }

  private mustGet(id: string): Internal {
    const c = this.containers.get(id);
    if (c === undefined) throw new RuntimeError("CONTAINER_NOT_FOUND", `no container ${id}`);
    return c;
  }
}
