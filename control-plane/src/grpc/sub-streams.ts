// The control plane's end of the sub-streams multiplexed on an agent's Connect
// stream (proto/grove.proto, StreamOpen): one SubStreamMux per Connect call
// numbers the sub-streams, routes StreamOutput/StreamEnd to their opener and
// breaks them all when the call ends.
import { GroveError } from "@grove/api";
import type {
  AgentMessage__Output,
  ContainerStats__Output,
  ControlMessage,
  LogsOptions,
  ProtoExecOptions,
  StreamEnd__Output,
  StreamKind,
} from "@grove/proto";

/** Output the agent may send on a sub-stream before we grant more (StreamOpen.window). */
export const SUB_STREAM_WINDOW_BYTES = 256 * 1024;

export interface SubStreamRequest {
  kind: StreamKind;
  /** Empty with STATS: every running instance of the node. */
  instanceUid: string;
  logs?: LogsOptions;
  exec?: ProtoExecOptions;
}

export interface SubStreamHandlers {
  /**
   * Output of the sub-stream (fd 1 stdout, 2 stderr). An empty chunk on fd 0
   * says the agent found the instance and started. Call credit(data.length)
   * once the bytes have been passed on, or the agent stops after a window.
   */
  onOutput(fd: number, data: Buffer): void;
  /** The agent ended the sub-stream (error_code set when it failed). */
  onEnd(end: StreamEnd__Output): void;
  /** The Connect stream ended first: the agent went away. */
  onBroken(error: GroveError): void;
}

export interface SubStream {
  readonly id: number;
  input(input: { stdin?: Buffer; closeStdin?: boolean; cols?: number; rows?: number }): void;
  credit(bytes: number): void;
  /** The client went away: the agent stops following / kills the process. Idempotent. */
  cancel(): void;
}

export class SubStreamMux {
  private readonly open_ = new Map<number, SubStreamHandlers>();
  private nextId = 1;
  private closed: string | undefined;

  constructor(
    private readonly node: string,
    private readonly write: (message: ControlMessage) => void,
  ) {}

  get size(): number {
    return this.open_.size;
  }

  open(req: SubStreamRequest, handlers: SubStreamHandlers): SubStream {
    if (this.closed !== undefined) throw new GroveError("NodeUnavailable", this.closed);
    const id = this.nextId++;
    this.open_.set(id, handlers);
    this.write({
      streamOpen: {
        streamId: id,
        kind: req.kind,
        instanceUid: req.instanceUid,
        ...(req.logs ? { logs: req.logs } : {}),
        ...(req.exec ? { exec: req.exec } : {}),
        window: SUB_STREAM_WINDOW_BYTES,
      },
    });
    const live = () => this.open_.has(id) && this.closed === undefined;
    return {
      id,
      input: (i) => {
        if (live()) this.write({ streamInput: { streamId: id, ...i } });
      },
      credit: (bytes) => {
        if (live() && bytes > 0) this.write({ streamCredit: { streamId: id, bytes } });
      },
      cancel: () => {
        if (!live()) return;
        this.open_.delete(id);
        this.write({ streamCancel: { streamId: id } });
      },
    };
  }

  /** Routes an agent message; false when it is not a sub-stream message. */
  route(message: AgentMessage__Output): boolean {
    if (message.streamOutput) {
      const out = message.streamOutput;
      this.open_.get(out.streamId)?.onOutput(out.fd, out.data);
      return true;
    }
    if (message.streamEnd) {
      const end = message.streamEnd;
      const h = this.open_.get(end.streamId);
      this.open_.delete(end.streamId);
      h?.onEnd(end);
      return true;
    }
    return false;
  }

  /** The Connect stream ended: every open sub-stream breaks. */
  closeAll(reason = `the agent of node ${this.node} disconnected`): void {
    if (this.closed !== undefined) return;
    this.closed = reason;
    const open = [...this.open_.values()];
    this.open_.clear();
    for (const h of open) h.onBroken(new GroveError("NodeUnavailable", reason));
  }
}

/** A StreamEnd's error as a GroveError (undefined when it succeeded). */
export function endError(end: StreamEnd__Output, what: string): GroveError | undefined {
  if (!end.errorCode) return undefined;
  const code = end.errorCode === "NotFound" ? "NotFound" : end.errorCode === "Conflict" ? "Conflict" : undefined;
  if (code) return new GroveError(code, `${what}: ${end.error}`);
  if (end.errorCode === "BadRequest" || end.errorCode === "NotSupported") {
    return new GroveError("BadRequest", `${what}: ${end.error}`);
  }
  return new GroveError("Internal", `${what}: the agent failed: ${end.error}`);
}

/** How long a stats request waits for the agent. */
const STATS_TIMEOUT_MS = 10_000;

/** Opens a sub-stream to a node's agent (the gateway's, or through the replica holding it). */
export type OpenSubStream = (node: string, req: SubStreamRequest, handlers: SubStreamHandlers) => Promise<SubStream>;

/**
 * Resource usage of one running instance (uid) or of every running instance
 * of the node (""), asked over a STATS sub-stream opened with `open`.
 */
export function statsOver(open: OpenSubStream, node: string, uid: string): Promise<ContainerStats__Output[]> {
  return new Promise<ContainerStats__Output[]>((resolve, reject) => {
    let sub: SubStream | undefined;
    const timer = setTimeout(() => {
      sub?.cancel();
      reject(new GroveError("NodeUnavailable", `the agent of node ${node} did not answer a stats request in time`));
    }, STATS_TIMEOUT_MS);
    const settle = () => clearTimeout(timer);
    open(
      node,
      { kind: "STATS", instanceUid: uid },
      {
        onOutput: () => undefined,
        onEnd: (end) => {
          settle();
          const err = endError(end, `stats from node ${node}`);
          if (err) reject(err);
          else resolve(end.stats);
        },
        onBroken: (err) => {
          settle();
          reject(err);
        },
      },
    ).then(
      (s) => (sub = s),
      (err: unknown) => {
        settle();
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
