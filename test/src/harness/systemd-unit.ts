// Runs a systemd service the way systemd would, where systemd cannot: the
// test machine has no systemd per network namespace, so the install test
// reads the unit files the install scripts wrote and starts their ExecStart
// command line itself, inside a host's network namespace, as the unit's
// User=, with only the environment systemd gives a service (PATH, the
// EnvironmentFile's variables). A unit the parser cannot run exactly (an
// ExecStartPre, a prefix such as "-" or "+", quoting it does not know) makes
// it throw, so a changed unit fails the test instead of running differently.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as readline from "node:readline";

/** systemd's default PATH for services (systemd.exec(5), "Environment variables in spawned processes"). */
const SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface ServiceUnit {
  file: string;
  /** [Service] keys in order; a key given twice keeps every value. */
  service: Map<string, string[]>;
}

/** Parses a unit file's [Service] section (comments, blank lines, no line continuations). */
export function readUnit(file: string): ServiceUnit {
  const service = new Map<string, string[]>();
  let section = "";
  fs.readFileSync(file, "utf8")
    .split("\n")
    .forEach((raw, i) => {
      const line = raw.trim();
      if (line === "" || line.startsWith("#") || line.startsWith(";")) return;
      if (line.endsWith("\\")) throw new Error(`${file}:${i + 1}: line continuations are not supported here`);
      const sec = /^\[(.+)\]$/.exec(line);
      if (sec) {
        section = sec[1]!;
        return;
      }
      const eq = line.indexOf("=");
      if (eq <= 0) throw new Error(`${file}:${i + 1}: not KEY=VALUE: ${line}`);
      if (section !== "Service") return;
      const key = line.slice(0, eq).trim();
      service.set(key, [...(service.get(key) ?? []), line.slice(eq + 1).trim()]);
    });
  return { file, service };
}

/** An EnvironmentFile: KEY=VALUE lines, # and ; comments, values optionally in "" or ''. */
export function readEnvironmentFile(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  fs.readFileSync(file, "utf8")
    .split("\n")
    .forEach((raw, i) => {
      const line = raw.trim();
      if (line === "" || line.startsWith("#") || line.startsWith(";")) return;
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
      if (!m) throw new Error(`${file}:${i + 1}: not KEY=VALUE: ${line}`);
      let value = m[2]!;
      const q = /^"(.*)"$|^'(.*)'$/.exec(value);
      if (q) value = q[1] ?? q[2]!;
      else if (/["'\\]/.test(value)) throw new Error(`${file}:${i + 1}: quoting this parser does not handle: ${line}`);
      env[m[1]!] = value;
    });
  return env;
}

/**
 * ExecStart's argv with systemd's expansion: a word that is exactly $VAR
 * becomes the variable's value split on whitespace, ${VAR} one word.
 */
export function execStartArgv(unit: ServiceUnit, env: Record<string, string>): string[] {
  for (const key of unit.service.keys()) {
    if (/^Exec(StartPre|StartPost|Condition|Reload)$/.test(key))
      throw new Error(`${unit.file}: ${key} is not run here`);
  }
  const lines = unit.service.get("ExecStart") ?? [];
  if (lines.length !== 1) throw new Error(`${unit.file}: expected one ExecStart, found ${lines.length}`);
  const line = lines[0]!;
  if (/^[-@:+!]/.test(line)) throw new Error(`${unit.file}: ExecStart prefixes are not supported here: ${line}`);
  if (/["'\\;]/.test(line)) throw new Error(`${unit.file}: ExecStart quoting is not supported here: ${line}`);
  const value = (name: string): string => {
    const v = env[name];
    if (v === undefined) throw new Error(`${unit.file}: ExecStart names $${name}, which no EnvironmentFile sets`);
    return v;
  };
  return line
    .split(/\s+/)
    .flatMap((word) => {
      const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
      if (whole) return value(whole[1]!).split(/\s+/);
      return [word.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, n: string) => value(n))];
    })
    .filter((w) => w !== "");
}

/** The environment the unit's process gets: systemd's PATH, EnvironmentFile= and Environment=. */
export function unitEnvironment(unit: ServiceUnit): Record<string, string> {
  const env: Record<string, string> = { PATH: SYSTEMD_PATH };
  for (const f of unit.service.get("EnvironmentFile") ?? []) {
    const optional = f.startsWith("-");
    const file = optional ? f.slice(1) : f;
    if (optional && !fs.existsSync(file)) continue;
    Object.assign(env, readEnvironmentFile(file));
  }
  for (const e of unit.service.get("Environment") ?? []) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(\S*)$/.exec(e);
    if (!m) throw new Error(`${unit.file}: Environment=${e} is not supported here`);
    env[m[1]!] = m[2]!;
  }
  return env;
}

export interface RunningUnit {
  proc: ChildProcess;
  pid: number;
  argv: string[];
  output: string[];
  exited: Promise<number | null>;
  /** systemctl stop with KillMode=process: SIGTERM to the main process only. */
  stop(timeoutMs?: number): Promise<void>;
}

/**
 * Starts the unit's ExecStart in network namespace `netns` (nsenter, so the
 * cgroup and mount views stay the machine's), as User=/Group= when set, and
 * resolves when a line of its output matches `ready`.
 */
export function startUnit(
  unitFile: string,
  netns: string,
  ready: (line: string) => boolean,
  timeoutMs = 30_000,
): Promise<RunningUnit> {
  const unit = readUnit(unitFile);
  const env = unitEnvironment(unit);
  const argv = execStartArgv(unit, env);
  const user = unit.service.get("User")?.[0];
  const group = unit.service.get("Group")?.[0] ?? user;
  const asUser = user && user !== "root" ? ["setpriv", `--reuid=${user}`, `--regid=${group}`, "--init-groups"] : [];
  if (user && user !== "root") Object.assign(env, { USER: user, LOGNAME: user });
  const full = ["nsenter", `--net=/run/netns/${netns}`, "--", ...asUser, ...argv];
  const proc = spawn(full[0]!, full.slice(1), { stdio: ["ignore", "pipe", "pipe"], env, cwd: "/" });
  const output: string[] = [];
  let exitedNow = false;
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  void exited.then(() => (exitedNow = true));
  const stop = async (ms = 30_000) => {
    if (exitedNow || proc.pid === undefined) return;
    process.kill(proc.pid, "SIGTERM");
    const t = setTimeout(() => !exitedNow && proc.pid !== undefined && process.kill(proc.pid, "SIGKILL"), ms);
    await exited;
    clearTimeout(t);
  };
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      void stop().then(() => reject(new Error(`${argv[0]} not ready in time:\n${output.slice(-30).join("\n")}`)));
    }, timeoutMs);
    const onLine = (line: string) => {
      output.push(line);
      if (process.env.GROVE_TEST_VERBOSE) process.stderr.write(`[${netns}] ${line}\n`);
      if (!done && ready(line)) {
        done = true;
        clearTimeout(timer);
        resolve({ proc, pid: proc.pid!, argv, output, exited, stop });
      }
    };
    readline.createInterface({ input: proc.stdout! }).on("line", onLine);
    readline.createInterface({ input: proc.stderr! }).on("line", onLine);
    void exited.then((code) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new Error(`${full.join(" ")} exited with ${code} before it was ready:\n${output.join("\n")}`));
    });
  });
}
