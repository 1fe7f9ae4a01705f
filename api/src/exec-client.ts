// The client side of `grove exec`: a WebSocket to
// /v1/namespaces/{ns}/instances/{name}/exec with the framing of
// exec-and-stats.ts (ExecChannel).
import WebSocket from "ws";
import { ERROR_CODES, GroveError, type ErrorCode } from "./errors";
import { ExecChannel, execFrame, type ExecExit } from "./exec-and-stats";

export interface ExecRequest {
  command: string[];
  tty?: boolean;
  cols?: number;
  rows?: number;
  user?: string;
  workingDir?: string;
}

export interface ExecSession {
  /** Called with the process's stdout (with a tty: all terminal output). */
  onStdout(cb: (data: Buffer) => void): void;
  onStderr(cb: (data: Buffer) => void): void;
  write(data: Uint8Array | string): void;
  closeStdin(): void;
  resize(cols: number, rows: number): void;
  /** Ends the session: the control plane tells the agent to kill the process. */
  close(): void;
  /**
   * Resolves with the process's exit; rejects with a GroveError the server
   * sent (e.g. NodeUnavailable when the agent went away) or when the
   * connection broke before an exit frame.
   */
  exited: Promise<{ exitCode: number; signal: number }>;
}

function errorFromBody(status: number, text: string, url: string): GroveError {
  let body: { code?: unknown; message?: unknown } | undefined;
  try {
    body = JSON.parse(text) as { code?: unknown; message?: unknown };
  } catch {
    body = undefined;
  }
  const known = typeof body?.code === "string" && Object.prototype.hasOwnProperty.call(ERROR_CODES, body.code);
  const code: ErrorCode = known
    ? (body!.code as ErrorCode)
    : status === 401
      ? "Unauthorized"
      : status === 404
        ? "NotFound"
        : status === 409
          ? "Conflict"
          : "Internal";
  const message = typeof body?.message === "string" ? body.message : `HTTP ${status} from ${url}`;
  return new GroveError(code, message);
}

/** Opens the exec WebSocket; resolves once the connection is up (the process may still fail to start). */
export function openExec(httpUrl: string, token: string, req: ExecRequest, caPem?: string): Promise<ExecSession> {
  const url = new URL(httpUrl);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  for (const c of req.command) url.searchParams.append("command", c);
  if (req.tty) url.searchParams.set("tty", "1");
  if (req.cols) url.searchParams.set("cols", String(req.cols));
  if (req.rows) url.searchParams.set("rows", String(req.rows));
  if (req.user) url.searchParams.set("user", req.user);
  if (req.workingDir) url.searchParams.set("workingDir", req.workingDir);
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, ...(caPem ? { ca: caPem } : {}) });
  let stdout: (d: Buffer) => void = () => undefined;
  let stderr: (d: Buffer) => void = () => undefined;
  let exit: ExecExit | undefined;
  const exited = new Promise<{ exitCode: number; signal: number }>((resolve, reject) => {
    ws.on("message", (data: Buffer) => {
      const channel = data[0];
      const payload = data.subarray(1);
      if (channel === ExecChannel.Stdout) stdout(payload);
      else if (channel === ExecChannel.Stderr) stderr(payload);
      else if (channel === ExecChannel.Exit) {
        try {
          exit = JSON.parse(payload.toString()) as ExecExit;
        } catch {
          exit = { error: { code: "Internal", message: "the server sent an exit frame that is not JSON" } };
        }
      }
    });
    ws.on("close", (code: number, reason: Buffer) => {
      if (exit && "error" in exit) {
        const c = Object.prototype.hasOwnProperty.call(ERROR_CODES, exit.error.code)
          ? (exit.error.code as ErrorCode)
          : "Internal";
        reject(new GroveError(c, exit.error.message));
      } else if (exit) resolve(exit);
      else {
        reject(
          new GroveError(
            "NodeUnavailable",
            `the exec connection to ${httpUrl} closed without an exit status (code ${code}${reason.length ? `: ${reason.toString()}` : ""})`,
          ),
        );
      }
    });
  });
  exited.catch(() => undefined);
  const send = (frame: Buffer) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(frame);
  };
  return new Promise<ExecSession>((resolve, reject) => {
    ws.once("unexpected-response", (request, res) => {
      let text = "";
      const done = () => {
        // With a listener here ws leaves the socket to us.
        request.destroy();
        reject(errorFromBody(res.statusCode ?? 0, text, url.toString()));
      };
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", done);
      res.on("error", done);
    });
    ws.once("error", (err: Error) =>
      reject(new GroveError("NodeUnavailable", `cannot open the exec connection to ${httpUrl}: ${err.message}`)),
    );
    ws.once("open", () =>
      resolve({
        onStdout: (cb) => (stdout = cb),
        onStderr: (cb) => (stderr = cb),
        write: (data) => send(execFrame(ExecChannel.Stdin, typeof data === "string" ? Buffer.from(data) : data)),
        closeStdin: () => send(execFrame(ExecChannel.CloseStdin)),
        resize: (cols, rows) => send(execFrame(ExecChannel.Resize, JSON.stringify({ cols, rows }))),
        close: () => ws.close(1000),
        exited,
      }),
    );
  });
}
