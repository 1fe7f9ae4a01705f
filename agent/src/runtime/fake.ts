// FakeRuntime: an in-memory ContainerRuntime for unit tests of the reconciler.
// Containers "run" until a test ends them (exit(), oom(), loseExit()) or they
// are killed; every call is recorded so tests can assert what the reconciler
// did. Tests can also hold a start open, make start/stop/update fail, hand
// out containers "a previous agent run" left (recover()), and see two calls
// on one container overlap (`overlap`).
import { spawn } from "node:child_process";
import { PassThrough } from "node:stream";
import { RuntimeError } from "./errors";
import type {
  ContainerExit,
  ContainerHandle,
  ContainerResources,
  ContainerRuntime,
  ContainerSpec,
  ContainerStats,
  CgroupMode,
  ExecOptions,
  ExecProcess,
  RecoveredContainer,
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
  | { op: "exec"; id: string; command: string[] }
  | { op: "update"; id: string; resources: ContainerResources };

export interface FakeRuntimeOptions {
  cgroupMode?: CgroupMode;
  /** Ids a "previous agent run" left behind, returned (once) by cleanupStale(). */
  staleIds?: string[];
  /** First pid handed out (incremented per container). */
  firstPid?: number;
  /** Wall clock of start and exit times (ms since the epoch; default Date.now). */
  clock?: () => number;
  /**
   * start, stop, remove and update first yield to the event loop, as a real
   * runtime's I/O does, so that two calls on one container can overlap and
   * `overlap` sees it (default false: they act at once).
   */
  yieldInCalls?: boolean;
}

/** A container "a previous agent run" left, handed out by recover(). */
export interface FakeRecoverable {
  id: string;
  annotations: Record<string, string>;
  /** The limits the runtime recorded for it. */
  resources?: ContainerResources;
  /** Found from the host without its records (RecoveredContainer.recordsLost). */
  recordsLost?: boolean;
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
  reject: (error: Error) => void;
}

export class FakeRuntime implements ContainerRuntime {
  readonly cgroupMode: CgroupMode;
  readonly calls: FakeCall[] = [];
  private readonly containers = new Map<string, Internal>();
  private stale: string[];
  private nextPid: number;
  private readonly startFailures: Array<{ error: Error; leaveContainer: boolean }> = [];
  private readonly stats_ = new Map<string, ContainerStats>();
  /** Specs of the containers started, in order (kept after removal). */
  readonly started: ContainerSpec[] = [];
  /** Limits given by successful update() calls, in order. */
  readonly updates: Array<{ id: string; resources: ContainerResources }> = [];
  /** What recordSpec() was given. */
  readonly recorded: ContainerSpec[] = [];
  /** Containers recover() hands out (set by a test before the reconciler starts). */
  recoverable: FakeRecoverable[] = [];
  /** The first call that ran while another call on the same container was still running. */
  overlap: string | undefined;
  private readonly clock: () => number;
  private readonly yieldInCalls: boolean;
  private readonly stopFailures: Error[] = [];
  private readonly updateFailures: Error[] = [];
  private readonly startGates = new Map<string, Promise<void>>();
  private readonly busy = new Set<string>();

  constructor(opts: FakeRuntimeOptions = {}) {
    this.cgroupMode = opts.cgroupMode ?? "v2";
    this.stale = [...(opts.staleIds ?? [])];
    this.nextPid = opts.firstPid ?? 1000;
    this.clock = opts.clock ?? Date.now;
    this.yieldInCalls = opts.yieldInCalls ?? false;
  }

  /** Makes the next stop() reject with this error (before it signals anything). */
  failNextStop(error: Error = new RuntimeError("CGROUP_FAILED", "injected stop failure")): void {
    this.stopFailures.push(error);
  }

  /** Makes the next update() reject with this error (the limits stay as they were). */
  failNextUpdate(error: Error = new RuntimeError("CGROUP_FAILED", "injected update failure")): void {
    this.updateFailures.push(error);
  }

  /** The next start of `id` waits (after it is recorded in `calls`) until the returned function is called. */
  holdStart(id: string): () => void {
    let release!: () => void;
    this.startGates.set(
      id,
      new Promise<void>((r) => (release = r)).finally(() => this.startGates.delete(id)),
    );
    return release;
  }

  /** Makes the next start() reject with this error (after validation). */
  failNextStart(
    error: Error = new RuntimeError("START_FAILED", "injected start failure"),
    opts: {
      /** Leave a half-made container behind (listed, not running) that remove() must clear, as a start cut short can. */
      leaveContainer?: boolean;
    } = {},
  ): void {
    this.startFailures.push({ error, leaveContainer: opts.leaveContainer ?? false });
  }

  async start(spec: ContainerSpec): Promise<ContainerHandle> {
    validateSpec(spec, { checkFilesystem: false });
    this.calls.push({ op: "start", id: spec.id });
    return this.exclusive(spec.id, "start", async () => {
      await this.startGates.get(spec.id);
      if (this.containers.has(spec.id)) {
        throw new RuntimeError("CONTAINER_EXISTS", `container ${spec.id} already exists`);
      }
      const failure = this.startFailures.shift();
      if (failure !== undefined) {
        if (failure.leaveContainer) {
          this.add(structuredClone(spec));
          this.mustGet(spec.id).exit = {
            exitCode: -1,
            signal: 0,
            oomKilled: false,
            finishedAt: new Date(this.clock()),
          };
        }
        throw failure.error;
      }
      const handle = this.add(structuredClone(spec));
      this.started.push(structuredClone(spec));
      return handle;
    });
  }

  private add(spec: ContainerSpec, startedAt = new Date(this.clock())): ContainerHandle {
    let resolve!: (exit: ContainerExit) => void;
    let reject!: (error: Error) => void;
    const exited = new Promise<ContainerExit>((res, rej) => ((resolve = res), (reject = rej)));
    // A test that never looks at a lost exit must not fail on an unhandled rejection.
    exited.catch(() => undefined);
    const handle: ContainerHandle = { id: spec.id, pid: this.nextPid++, startedAt, exited };
    this.containers.set(spec.id, {
      spec,
      handle,
      signals: [],
      ignoresSigterm: false,
      exit: undefined,
      resolve,
      reject,
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
      finishedAt: new Date(this.clock()),
    };
    c.exit = exit;
    c.resolve(exit);
    return exit;
  }

  /**
   * The runtime loses a running container's exit (its shim died): `exited`
   * rejects with this error. The container counts as gone for stop() and
   * remove(); it stays in list() until removed.
   */
  loseExit(id: string, error: Error = new Error("shim connection lost")): void {
    const c = this.mustGet(id);
    if (c.exit !== undefined) throw new Error(`fake container ${id} already exited`);
    c.exit = { exitCode: -1, signal: 0, oomKilled: false, finishedAt: new Date(this.clock()) };
    c.reject(error);
  }

  /** Ids of the containers that run (started or recovered, not exited). */
  running(): string[] {
    return [...this.containers.values()].filter((c) => c.exit === undefined).map((c) => c.handle.id);
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
    return this.exclusive(id, "stop", async () => {
      const failure = this.stopFailures.shift();
      if (failure !== undefined) throw failure;
      if (c.exit !== undefined) return c.exit;
      await this.kill(id, SIGTERM);
      if (c.exit === undefined) {
        await new Promise((r) => setTimeout(r, Math.max(0, graceSeconds) * 1000));
        if (c.exit === undefined) await this.kill(id, SIGKILL);
      }
      return c.handle.exited;
    });
  }

  async remove(id: string): Promise<void> {
    validateId(id);
    this.calls.push({ op: "remove", id });
    return this.exclusive(id, "remove", async () => {
      const c = this.containers.get(id);
      if (c !== undefined && c.exit === undefined) {
        throw new RuntimeError("CONTAINER_RUNNING", `container ${id} is still running; stop it first`);
      }
      this.containers.delete(id);
    });
  }

  async update(id: string, resources: ContainerResources): Promise<void> {
    this.calls.push({ op: "update", id, resources: { ...resources } });
    return this.exclusive(id, "update", async () => {
      const c = this.containers.get(id);
      if (c === undefined || c.exit !== undefined) {
        throw new RuntimeError("CONTAINER_NOT_FOUND", `container ${id} is not running`);
      }
      const failure = this.updateFailures.shift();
      if (failure !== undefined) throw failure;
      c.spec.resources = { ...resources };
      this.updates.push({ id, resources: { ...resources } });
    });
  }

  /** Hands out `recoverable` as running containers (once), as a restarted agent's runtime finds them. */
  async recover(): Promise<RecoveredContainer[]> {
    const found = this.recoverable;
    this.recoverable = [];
    return found.map(({ id, annotations, resources, recordsLost }) => {
      const spec: ContainerSpec = {
        id,
        rootfs: "/recovered",
        command: ["/recovered"],
        env: {},
        hostname: id,
        resources: resources ?? { cpuMillis: 0, memoryBytes: 0, pids: 0 },
        logPath: `/recovered/${id}.log`,
        annotations: { ...annotations },
      };
      const handle = this.add(spec);
      return { handle, annotations, ...(resources ? { resources } : {}), ...(recordsLost ? { recordsLost } : {}) };
    });
  }

  async recordSpec(spec: ContainerSpec): Promise<void> {
    this.recorded.push(structuredClone(spec));
    const c = this.containers.get(spec.id);
    if (c !== undefined) c.spec = structuredClone(spec);
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

  /** Runs a call on one container, noting in `overlap` when another call on it has not finished. */
  private async exclusive<T>(id: string, call: string, fn: () => Promise<T>): Promise<T> {
    if (this.busy.has(id)) this.overlap ??= `${call} ${id} while another call on ${id} was running`;
    this.busy.add(id);
    try {
      if (this.yieldInCalls) await new Promise((r) => setImmediate(r));
      return await fn();
    } finally {
      this.busy.delete(id);
    }
  }

  private mustGet(id: string): Internal {
    const c = this.containers.get(id);
    if (c === undefined) throw new RuntimeError("CONTAINER_NOT_FOUND", `no container ${id}`);
    return c;
  }
}
