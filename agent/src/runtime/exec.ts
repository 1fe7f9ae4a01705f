// exec: a command inside a running container, through `grove-shim exec ID`
// (agent/native/src/exec.c). The helper re-executes itself from a sealed memfd,
// joins the container's cgroups and namespaces and runs the command under the
// container's security settings; it stays the command's parent and reports its
// pid and exit on a status socket. This module builds its configuration from
// what the runtime recorded at start (spec.json) and wraps it as an ExecProcess.
import { spawn } from "node:child_process";
import { constants as osConstants } from "node:os";
import * as path from "node:path";
import { PassThrough, type Readable, type Writable } from "node:stream";

import { RuntimeError } from "./errors";
import {
  encodeExecConfig,
  pairsToBlob,
  readRecord,
  type CgroupRef,
  type ExecStatusLine,
  type Pairs,
  type ShimStateAnswer,
} from "./shim-protocol";
import { envList, processSecurity, type ProcessSecurity } from "./spec-to-shim";
import type { CgroupMode, ContainerSpec, ExecOptions, ExecProcess } from "./types";
import { signalNumber } from "./validate";

const ENV_KEY_PATTERN = /^[^=\0]+$/;
/** How long the helper may take to report the command running (or its error). */
const START_TIMEOUT_MS = 30_000;

function invalid(message: string): never {
  throw new RuntimeError("INVALID_SPEC", message);
}

function noNul(what: string, value: string): void {
  if (value.includes("\0")) invalid(`${what} contains a NUL byte`);
}

function terminalSize(what: string, value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 65535) {
    invalid(`${what} must be an integer from 1 to 65535, got ${String(value)}`);
  }
}

/** Throws RuntimeError INVALID_SPEC naming the first problem of an ExecOptions. */
export function validateExecOptions(opts: ExecOptions): void {
  if (opts === null || typeof opts !== "object") invalid("exec options must be an object");
  if (!Array.isArray(opts.command) || opts.command.length === 0) invalid("exec command must be a non-empty array");
  opts.command.forEach((arg, i) => {
    if (typeof arg !== "string") invalid(`exec command[${i}] must be a string`);
    noNul(`exec command[${i}]`, arg);
  });
  if (opts.command[0] === "") invalid("exec command[0] must not be empty");
  if (opts.env !== undefined) {
    if (opts.env === null || typeof opts.env !== "object") invalid("exec env must be an object");
    for (const [k, v] of Object.entries(opts.env)) {
      if (!ENV_KEY_PATTERN.test(k)) invalid(`exec env key ${JSON.stringify(k)} must be non-empty without "=" or NUL`);
      if (typeof v !== "string") invalid(`exec env ${k} must be a string`);
      noNul(`exec env ${k}`, v);
    }
  }
  if (opts.workingDir !== undefined) {
    if (typeof opts.workingDir !== "string" || !path.posix.isAbsolute(opts.workingDir)) {
      invalid(`exec workingDir ${JSON.stringify(opts.workingDir)} must be an absolute path`);
    }
    noNul("exec workingDir", opts.workingDir);
  }
  if (opts.user !== undefined && (typeof opts.user !== "string" || opts.user === "")) {
    invalid(`exec user ${JSON.stringify(opts.user)} must be a non-empty string`);
  }
  if (opts.tty !== undefined && typeof opts.tty !== "boolean") invalid("exec tty must be a boolean");
  terminalSize("exec cols", opts.cols);
  terminalSize("exec rows", opts.rows);
}

export interface ExecTarget {
  /** Container id (names its cgroup). */
  id: string;
  /** Host pid of the container's init, whose namespaces the command joins. */
  pid: number;
  cgroupMode: CgroupMode;
  cgroupRoot: string;
  cgroupParent: string;
  /** The spec the container was started with (its state directory's spec.json). */
  spec: ContainerSpec;
  /** The container's process settings for the exec user (spec-to-shim.ts processSecurity). */
  security: ProcessSecurity;
}

/**
 * The helper's configuration (ExecConfig) as key/value pairs: the container's
 * environment overridden by opts.env, its working directory unless
 * opts.workingDir, its security settings (computed for opts.user or the
 * container's user).
 */
export function execConfig(target: ExecTarget, opts: ExecOptions): Pairs {
  return encodeExecConfig({
    id: target.id,
    pid: target.pid,
    cgroup: { mode: target.cgroupMode, root: target.cgroupRoot, parent: target.cgroupParent },
    cwd: opts.workingDir ?? target.spec.workingDir ?? "/",
    tty: opts.tty === true,
    cols: opts.cols ?? 80,
    rows: opts.rows ?? 24,
    process: { ...target.security, args: opts.command, env: envList({ ...target.spec.env, ...(opts.env ?? {}) }) },
  });
}

/** NUL-terminated key and value strings, as the helper reads them on fd 3. */
export const encodeConfig = pairsToBlob;

/** Any of the status lines (ExecStatusLine), read field by field. */
type StatusLine = Partial<{ pid: number; exitCode: number; signal: number; error: string; errno: number }> &
  Partial<ExecStatusLine>;

/** What exec needs of the runtime (NativeRuntime). */
export interface ExecHost {
  shimPath: string;
  cgroup: CgroupRef;
  containerDir(id: string): string;
  shimState(id: string): Promise<ShimStateAnswer | undefined>;
}

/**
 * Runs a command in a container the runtime tracks as running: its settings
 * are read back from its spec.json (so an adopted container works too), its
 * init's pid from its shim, which must say "running" (not created, stopped).
 */
export async function execInContainer(host: ExecHost, id: string, opts: ExecOptions): Promise<ExecProcess> {
  const record = readRecord(host.containerDir(id), "spec.json");
  if (record === undefined) {
    throw new RuntimeError(
      "CONTAINER_NOT_FOUND",
      `cannot exec in container ${id}: ${host.containerDir(id)}/spec.json is unreadable`,
    );
  }
  const state = await host.shimState(id);
  if (state === undefined || state.status !== "running") {
    throw new RuntimeError(
      "CONTAINER_NOT_RUNNING",
      `cannot exec in container ${id}: it is not running (${state?.status ?? "its shim is gone"})`,
    );
  }
  const spec = record.spec;
  const target: ExecTarget = {
    id,
    pid: state.pid,
    cgroupMode: host.cgroup.mode,
    cgroupRoot: host.cgroup.root,
    cgroupParent: host.cgroup.parent,
    spec,
    security: processSecurity({ ...spec, user: opts.user ?? spec.user }),
  };
  return launchExec(host.shimPath, target, opts);
}

/** Spawns the helper and resolves once the command runs inside the container. */
export function launchExec(shimPath: string, target: ExecTarget, opts: ExecOptions): Promise<ExecProcess> {
  const config = encodeConfig(execConfig(target, opts));
  const tty = opts.tty === true;
  return new Promise<ExecProcess>((resolve, reject) => {
    const child = spawn(shimPath, ["exec", target.id], {
      stdio: ["pipe", "pipe", "pipe", "pipe", "pipe", "pipe"],
    });
    const [stdin, childStdout, childStderr, cfgPipe, control, status] = child.stdio as unknown as [
      Writable,
      Readable,
      Readable,
      Writable,
      Writable,
      Readable,
    ];
    // Node resumes a child's unread stdio when it exits (data and 'end' lost to
    // nobody): the caller reads these buffers instead, whenever it gets to it.
    const stdout = childStdout.pipe(new PassThrough());
    const stderr = childStderr.pipe(new PassThrough());
    for (const s of [stdin, cfgPipe, control]) s.on("error", () => undefined);
    let started = false;
    let pid = 0;
    let done = false;
    let resolveExit!: (r: { exitCode: number; signal: number }) => void;
    let rejectExit!: (err: Error) => void;
    const exited = new Promise<{ exitCode: number; signal: number }>((res, rej) => {
      resolveExit = res;
      rejectExit = rej;
    });
    // A rejection nobody awaits must not crash the agent.
    exited.catch(() => undefined);

    const finish = (): void => {
      done = true;
      clearTimeout(timer);
      control.destroy();
    };
    const fail = (err: Error): void => {
      if (done) return;
      finish();
      stdin.destroy();
      if (!started) {
        childStdout.destroy();
        childStderr.destroy();
        stdout.destroy();
        stderr.destroy();
        reject(err);
      } else rejectExit(err);
    };
    const timer = setTimeout(() => {
      if (started) return;
      child.kill("SIGKILL");
      fail(
        new RuntimeError(
          "START_FAILED",
          `exec in ${target.id}: the helper did not start the command in ${START_TIMEOUT_MS} ms`,
        ),
      );
    }, START_TIMEOUT_MS);

    const proc: ExecProcess = {
      get pid() {
        return pid;
      },
      stdin,
      stdout,
      stderr: tty ? null : stderr,
      resize(cols: number, rows: number): void {
        if (!tty || done) return;
        terminalSize("cols", cols);
        terminalSize("rows", rows);
        control.write(`resize ${cols} ${rows}\n`);
      },
      kill(signal: NodeJS.Signals | number): void {
        const sig = signalNumber(signal);
        if (!done) control.write(`signal ${sig}\n`);
      },
      exited,
    };
    // The terminal carries both streams: nothing comes on stderr.
    if (tty) stderr.resume();

    let buf = "";
    status.setEncoding("utf8");
    status.on("data", (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let line: StatusLine;
        try {
          line = JSON.parse(text) as StatusLine;
        } catch {
          fail(new RuntimeError("START_FAILED", `exec in ${target.id}: unreadable status ${JSON.stringify(text)}`));
          return;
        }
        if (line.error !== undefined) {
          fail(new RuntimeError("START_FAILED", line.error, errnoName(line.errno)));
        } else if (line.pid !== undefined && !started) {
          started = true;
          pid = line.pid;
          clearTimeout(timer);
          resolve(proc);
        } else if (line.exitCode !== undefined && !done) {
          finish();
          resolveExit({ exitCode: line.exitCode, signal: line.signal ?? 0 });
        }
      }
    });
    status.on("error", () => undefined);
    status.on("close", () =>
      fail(new RuntimeError("START_FAILED", `exec in ${target.id}: the helper ended without reporting an exit`)),
    );
    child.on("error", (err) => fail(new RuntimeError("START_FAILED", `exec in ${target.id}: ${err.message}`)));
    cfgPipe.end(config);
  });
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

function errnoName(errno: number | undefined): string | undefined {
  if (errno === undefined || errno === 0) return undefined;
  return ERRNO_NAMES.get(errno) ?? `E${errno}`;
}
