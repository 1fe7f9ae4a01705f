// Operations on running instances: resource usage (stats, `grove top`), and
// the framing of `grove exec`'s WebSocket (docs/api.md, "Logs, exec and stats").

/** An instance's resource usage as its cgroups count it; -1 where the kernel does not say. */
export interface InstanceStats {
  namespace: string;
  name: string;
  /** The App it belongs to ("" when the instance is gone from the store). */
  app: string;
  uid: string;
  nodeName: string;
  /** CPU time used since the container started, in nanoseconds. */
  cpuUsageNs: number;
  memoryBytes: number;
  memoryPeakBytes: number;
  pids: number;
  /** OOM kills inside the container (its cgroup's oom_kill count). */
  oomKills: number;
  /** When the agent read it (ISO 8601). */
  sampledAt: string;
  /** The instance's limits, for percentages. */
  limits?: { cpuMillis: number; memoryBytes: number; pids: number };
}

/** GET .../instances/{name}/logs: each set field is a query parameter of the same name. */
export interface LogsOptions {
  follow?: boolean;
  /** The last N lines; all when unset. */
  tail?: number;
  /** The log kept from the instance of this name that ran before (restarted or replaced). */
  previous?: boolean;
  /** Only lines that arrived in the last N seconds (the server's clock), or at or after sinceTime (RFC 3339). */
  sinceSeconds?: number;
  sinceTime?: string;
  /** Each line prefixed with the time it arrived (RFC 3339) and a space. */
  timestamps?: boolean;
}

export interface StatsList {
  items: InstanceStats[];
  /** Nodes whose agents could not be asked (not connected, or failed), with why. */
  unavailable: { nodeName: string; message: string }[];
}

/**
 * `grove exec`'s WebSocket frames are binary; the first byte is the channel,
 * the rest the payload.
 */
export const ExecChannel = {
  /** client → server: bytes for the process's stdin. */
  Stdin: 0,
  /** server → client: the process's stdout (with a tty: the terminal's output). */
  Stdout: 1,
  /** server → client: the process's stderr (never with a tty). */
  Stderr: 2,
  /** client → server: JSON {"cols": N, "rows": M}, the terminal's new size. */
  Resize: 3,
  /**
   * server → client, last frame: JSON {"exitCode": N, "signal": S} or
   * {"error": {"code": "...", "message": "..."}}; the server then closes.
   */
  Exit: 4,
  /** client → server: no more stdin (the process reads EOF). */
  CloseStdin: 5,
} as const;

export type ExecExit = { exitCode: number; signal: number } | { error: { code: string; message: string } };

/** One frame: channel byte + payload. */
export function execFrame(channel: number, payload: Uint8Array | string = new Uint8Array(0)): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload) : Buffer.from(payload);
  return Buffer.concat([Buffer.from([channel]), body]);
}

/**
 * Browsers cannot set an Authorization header on a WebSocket. They offer two
 * subprotocols instead: EXEC_SUBPROTOCOL, which the server selects (and so
 * echoes), and the token as EXEC_TOKEN_PROTOCOL_PREFIX + base64url(token),
 * which it reads as the bearer token and never echoes (Kubernetes does the same).
 */
export const EXEC_SUBPROTOCOL = "grove.exec.v1";
export const EXEC_TOKEN_PROTOCOL_PREFIX = "base64url.bearer.grove.";

/** The bearer token carried in a Sec-WebSocket-Protocol header, if any. */
export function tokenFromWebSocketProtocols(header: string | undefined): string | undefined {
  for (const p of (header ?? "").split(",")) {
    const proto = p.trim();
    if (proto.startsWith(EXEC_TOKEN_PROTOCOL_PREFIX)) {
      const token = Buffer.from(proto.slice(EXEC_TOKEN_PROTOCOL_PREFIX.length), "base64url").toString("utf8");
      return token === "" ? undefined : token;
    }
  }
  return undefined;
}
