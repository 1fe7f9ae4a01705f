// The agent's end of the sub-streams multiplexed on the Connect stream
// (proto/grove.proto, StreamOpen): `grove logs` reads the instance's log
// files, `grove exec` runs a command in its container (runtime.exec), and
// stats reads its cgroups (runtime.stats).
//
// Every sub-stream answers with StreamOutput chunks and exactly one
// StreamEnd. Logs and exec first send an empty StreamOutput (fd 0) once the
// instance is found and the log opened or the process started, so the
// control plane can answer its HTTP client with an error status until then.
// Output respects the credit window the control plane grants and the gRPC
// write buffer, so a fast `logs -f` never queues ahead of heartbeats. When the
// Connect stream ends, every sub-stream is cancelled: follows stop and exec'd
// processes are killed.
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { pino, type Logger } from "pino";
import type {
  AgentMessage,
  ContainerStats,
  ControlMessage__Output,
  InstanceStatus,
  LogsOptions__Output,
  StreamEnd,
  StreamOpen__Output,
} from "@grove/proto";
import type { ContainerRuntime, ExecProcess } from "../runtime/types";
import { isPlainName } from "../reconcile/instance-spec";
import { previousLogPath } from "../reconcile/log-files";
import { logFiles, readLog } from "./log-reader";
import { LineStamper } from "./log-stamps";

function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

/** Most data bytes in one StreamOutput. */
export const MAX_CHUNK_BYTES = 32 * 1024;
/** Window when the control plane names none. */
export const DEFAULT_WINDOW_BYTES = 256 * 1024;
/** How long an exec'd process's output may go on after it exited (a child holding the pipe). */
const OUTPUT_AFTER_EXIT_MS = 2_000;

/** Where sub-stream messages go: the current Connect stream. */
export interface StreamOutlet {
  /** Resolves once the message is written and the stream's write buffer has room again; rejects when the stream is gone. */
  write(message: AgentMessage): Promise<void>;
}

export interface SubStreamServerOptions {
  runtime: ContainerRuntime;
  /** Instance logs are <logDir>/<uid>.log (and .log.1 rotated). */
  logDir: string;
  /** The instances the agent knows (the reconciler's statuses). */
  instances: () => InstanceStatus[];
  logger?: Logger;
  /** How often `logs -f` looks for new data (default 200 ms). */
  followPollMs?: number;
  now?: () => number;
  /** The agent's metrics in Prometheus' text format (observability/agent-metrics.ts). */
  metrics?: () => Promise<string>;
}

class Cancelled extends Error {
  constructor() {
    super("sub-stream cancelled");
  }
}

class StreamFailure extends Error {
  constructor(
    readonly code: "NotFound" | "Conflict" | "NotSupported" | "BadRequest" | "Internal",
    message: string,
  ) {
    super(message);
  }
}

interface Active {
  id: number;
  outlet: StreamOutlet;
  abort: AbortController;
  credits: number;
  wake: (() => void) | undefined;
  exec?: ExecProcess;
  /** Input that arrived before the process started. */
  pending: ControlMessage__Output["streamInput"][];
}

export class SubStreamServer {
  private readonly log: Logger;
  private readonly streams = new Map<number, Active>();
  private outlet: StreamOutlet | undefined;

  constructor(private readonly options: SubStreamServerOptions) {
    this.log = options.logger ?? pino({ level: "silent" });
  }

  /** A new Connect stream: sub-streams of the previous one are cancelled. */
  attach(outlet: StreamOutlet): void {
    this.detach();
    this.outlet = outlet;
  }

  /** The Connect stream ended: cancel every sub-stream. */
  detach(): void {
    this.outlet = undefined;
    for (const s of this.streams.values()) this.cancel(s);
    this.streams.clear();
  }

  /** Number of open sub-streams (tests). */
  get openStreams(): number {
    return this.streams.size;
  }

  /** Handles a sub-stream message; false when the message is not one. */
  handle(message: ControlMessage__Output): boolean {
    if (message.streamOpen) this.open(message.streamOpen);
    else if (message.streamInput) this.input(message.streamInput);
    else if (message.streamCredit) {
      const s = this.streams.get(message.streamCredit.streamId);
      if (s) {
        s.credits += message.streamCredit.bytes;
        this.wakeUp(s);
      }
    } else if (message.streamCancel) {
      const s = this.streams.get(message.streamCancel.streamId);
      if (s) this.cancel(s);
    } else return false;
    return true;
  }

  private open(open: StreamOpen__Output): void {
    const outlet = this.outlet;
    if (!outlet) return;
    if (this.streams.has(open.streamId)) {
      void outlet
        .write({
          streamEnd: {
            streamId: open.streamId,
            errorCode: "BadRequest",
            error: `sub-stream ${open.streamId} is already open`,
          },
        })
        .catch(() => undefined);
      return;
    }
    const s: Active = {
      id: open.streamId,
      outlet,
      abort: new AbortController(),
      credits: open.window > 0 ? open.window : DEFAULT_WINDOW_BYTES,
      wake: undefined,
      pending: [],
    };
    this.streams.set(s.id, s);
    const run = async (): Promise<StreamEnd> => {
      switch (open.kind) {
        case "LOGS":
          await this.logs(s, open);
          return {};
        case "EXEC":
          return this.exec(s, open);
        case "STATS":
          return { stats: await this.stats(open.instanceUid) };
        case "METRICS":
          if (!this.options.metrics) throw new StreamFailure("NotSupported", "this agent serves no metrics");
          return { metrics: await this.options.metrics() };
        default:
          throw new StreamFailure("BadRequest", `unknown sub-stream kind ${String(open.kind)}`);
      }
    };
    run()
      .catch((err: unknown): StreamEnd => {
        if (err instanceof Cancelled || s.abort.signal.aborted) return { errorCode: "Cancelled", error: "cancelled" };
        if (err instanceof StreamFailure) return { errorCode: err.code, error: err.message };
        this.log.warn({ err, stream: s.id, kind: open.kind, uid: open.instanceUid }, "sub-stream failed");
        return { errorCode: "Internal", error: err instanceof Error ? err.message : String(err) };
      })
      .then(async (end) => {
        this.streams.delete(s.id);
        s.abort.abort();
        await s.outlet.write({ streamEnd: { ...end, streamId: s.id } });
      })
      .catch(() => undefined); // the Connect stream is gone: nobody to tell
  }

  private instance(uid: string): InstanceStatus {
    const st = this.options.instances().find((i) => i.uid === uid);
    if (!st) throw new StreamFailure("NotFound", `instance ${uid} is not on this node`);
    return st;
  }

  private running(uid: string): InstanceStatus {
    const st = this.instance(uid);
    const handle = this.options.runtime.list().find((h) => h.id === uid);
    if (st.state !== "RUNNING" || !handle) {
      throw new StreamFailure("Conflict", `instance ${st.namespace}/${st.name} is not running (${String(st.state)})`);
    }
    return st;
  }

  private async logs(s: Active, open: StreamOpen__Output): Promise<void> {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(open.instanceUid)) {
      throw new StreamFailure("BadRequest", `invalid instance uid "${open.instanceUid}"`);
    }
    const o = open.logs;
    if (o?.previous) return this.previousLogs(s, o);
    const logPath = path.join(this.options.logDir, `${open.instanceUid}.log`);
    const known = this.options.instances().some((i) => i.uid === open.instanceUid);
    if (!known && !(await Promise.all(logFiles(logPath).map(exists))).some(Boolean)) {
      throw new StreamFailure("NotFound", `instance ${open.instanceUid} is not on this node and has no log here`);
    }
    let acked = false;
    const ack = async () => {
      if (acked) return;
      acked = true;
      await s.outlet.write({ streamOutput: { streamId: s.id, fd: 0, data: Buffer.alloc(0) } });
    };
    try {
      if (known) await ack();
      await this.readLogTo(s, logPath, o, async (data) => {
        await ack();
        await this.send(s, 1, data);
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      // A known instance whose container never wrote anything has an empty log.
      if (!known) throw new StreamFailure("NotFound", `instance ${open.instanceUid} has no log on this node`);
    }
    if (!acked && !known) throw new StreamFailure("NotFound", `instance ${open.instanceUid} is not on this node`);
    await ack();
  }

  /** Reads the log with the request's tail, follow, since and timestamps. */
  private async readLogTo(
    s: Active,
    logPath: string,
    o: LogsOptions__Output | null | undefined,
    out: (data: Buffer) => Promise<void>,
  ): Promise<void> {
    const sinceMs = Number(o?.sinceMs ?? 0);
    const stamper =
      o?.timestamps || sinceMs > 0
        ? new LineStamper(logPath, { timestamps: Boolean(o?.timestamps), ...(sinceMs > 0 ? { sinceMs } : {}) }, out)
        : undefined;
    await readLog(
      logPath,
      {
        tailLines: o?.tailLines ?? -1,
        follow: o?.follow ?? false,
        signal: s.abort.signal,
        ...(this.options.followPollMs !== undefined ? { pollMs: this.options.followPollMs } : {}),
      },
      (data, at) => (stamper ? stamper.push(at.ino, at.offset, data) : out(data)),
    );
    await stamper?.end();
  }

  /** `grove logs --previous`: the log kept from the instance of that name that ran here before (log-files.ts). */
  private async previousLogs(s: Active, o: LogsOptions__Output): Promise<void> {
    if (!isPlainName(o.namespace) || !isPlainName(o.name)) {
      throw new StreamFailure("BadRequest", `invalid instance name "${o.namespace}/${o.name}"`);
    }
    const logPath = previousLogPath(this.options.logDir, o.namespace, o.name);
    if (!(await Promise.all(logFiles(logPath).map(exists))).some(Boolean)) {
      throw new StreamFailure("NotFound", `no previous log of ${o.namespace}/${o.name} on this node`);
    }
    await s.outlet.write({ streamOutput: { streamId: s.id, fd: 0, data: Buffer.alloc(0) } });
    try {
      await this.readLogTo(s, logPath, { ...o, follow: false }, (data) => this.send(s, 1, data));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }

  private async exec(s: Active, open: StreamOpen__Output): Promise<StreamEnd> {
    const runtime = this.options.runtime;
    const o = open.exec;
    if (!o || o.command.length === 0) throw new StreamFailure("BadRequest", "exec needs a command");
    this.running(open.instanceUid);
    if (!runtime.exec) throw new StreamFailure("NotSupported", "this agent's container runtime cannot exec");
    let proc: ExecProcess;
    try {
      proc = await runtime.exec(open.instanceUid, {
        command: o.command,
        ...(Object.keys(o.env).length > 0 ? { env: o.env } : {}),
        ...(o.workingDir ? { workingDir: o.workingDir } : {}),
        ...(o.user ? { user: o.user } : {}),
        tty: o.tty,
        ...(o.cols > 0 ? { cols: o.cols } : {}),
        ...(o.rows > 0 ? { rows: o.rows } : {}),
      });
    } catch (err) {
      throw new StreamFailure("BadRequest", `exec ${JSON.stringify(o.command)}: ${(err as Error).message}`);
    }
    s.exec = proc;
    if (s.abort.signal.aborted) proc.kill("SIGKILL");
    proc.stdin.on("error", () => undefined); // the process may exit without reading its input
    await s.outlet.write({ streamOutput: { streamId: s.id, fd: 0, data: Buffer.alloc(0) } });
    for (const input of s.pending.splice(0)) this.input(input);
    const pump = async (readable: NodeJS.ReadableStream, fd: number) => {
      try {
        for await (const chunk of readable) await this.send(s, fd, Buffer.from(chunk as Buffer));
      } catch (err) {
        if (!(err instanceof Cancelled)) throw err;
      }
    };
    const pumps = Promise.all([pump(proc.stdout, 1), proc.stderr ? pump(proc.stderr, 2) : undefined]);
    pumps.catch(() => undefined);
    const exit = await proc.exited;
    // Output still in the pipes after the exit goes out too, unless a child keeps them open.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([pumps, new Promise((r) => (timer = setTimeout(r, OUTPUT_AFTER_EXIT_MS)))]);
    clearTimeout(timer);
    proc.stdout.destroy();
    proc.stderr?.destroy();
    return { exitCode: exit.exitCode, signal: exit.signal };
  }

  private async stats(uid: string): Promise<ContainerStats[]> {
    const runtime = this.options.runtime;
    if (!runtime.stats) throw new StreamFailure("NotSupported", "this agent's container runtime has no stats");
    const now = this.options.now?.() ?? Date.now();
    const targets = uid
      ? [this.running(uid)]
      : this.options.instances().filter((i) => i.state === "RUNNING" && runtime.list().some((h) => h.id === i.uid));
    const out: ContainerStats[] = [];
    for (const t of targets) {
      const uidOf = t.uid ?? "";
      try {
        const st = await runtime.stats(uidOf);
        out.push({
          uid: uidOf,
          namespace: t.namespace ?? "",
          name: t.name ?? "",
          cpuUsageNs: st.cpuUsageNs,
          memoryBytes: st.memoryBytes,
          memoryPeakBytes: st.memoryPeakBytes,
          pids: st.pids,
          oomKills: st.oomKills,
          sampledAtMs: now,
        });
      } catch (err) {
        // One instance that just exited does not spoil the node's list.
        if (uid) throw new StreamFailure("Conflict", `stats of ${t.namespace}/${t.name}: ${(err as Error).message}`);
      }
    }
    return out;
  }

  private input(input: ControlMessage__Output["streamInput"]): void {
    if (!input) return;
    const s = this.streams.get(input.streamId);
    if (!s) return;
    const proc = s.exec;
    if (!proc) {
      s.pending.push(input);
      return;
    }
    if (input.stdin.length > 0 && !proc.stdin.writableEnded) proc.stdin.write(input.stdin);
    if (input.cols > 0 && input.rows > 0) {
      try {
        proc.resize(input.cols, input.rows);
      } catch (err) {
        this.log.debug({ err, stream: s.id }, "resize failed");
      }
    }
    if (input.closeStdin && !proc.stdin.writableEnded) proc.stdin.end();
  }

  /** Sends output within the stream's credit, in chunks of at most MAX_CHUNK_BYTES. */
  private async send(s: Active, fd: number, data: Buffer): Promise<void> {
    let off = 0;
    while (off < data.length) {
      if (s.abort.signal.aborted) throw new Cancelled();
      if (s.credits <= 0) {
        await new Promise<void>((resolve) => (s.wake = resolve));
        continue;
      }
      const n = Math.min(MAX_CHUNK_BYTES, s.credits, data.length - off);
      s.credits -= n;
      await s.outlet.write({ streamOutput: { streamId: s.id, fd, data: data.subarray(off, off + n) } });
      off += n;
    }
  }

  private wakeUp(s: Active): void {
    const wake = s.wake;
    s.wake = undefined;
    wake?.();
  }

  private cancel(s: Active): void {
    if (s.abort.signal.aborted) return;
    s.abort.abort();
    this.wakeUp(s);
    if (s.exec) {
      try {
        s.exec.kill("SIGKILL");
      } catch (err) {
        this.log.debug({ err, stream: s.id }, "could not kill the exec'd process");
      }
    }
  }
}
