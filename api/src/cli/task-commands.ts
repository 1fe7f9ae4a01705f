// `grove run APP -- CMD...` (a Task from an App's template, its output
// streamed until it ends, exiting with its exit code), `grove describe task`
// and the attempts `grove logs task/NAME` reads.
import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import type { ByteStream } from "../client";
import { GroveError } from "../errors";
import { API_VERSION, type Instance } from "../schemas";
import { MAX_TASK_RETRIES, type Task } from "../task-schema";
import { MAX_TASK_NAME_LENGTH, attemptOf, isTaskDone } from "../task-rules";
import { isFinished } from "../instance-rules";
import { parseDuration, UsageError } from "./kinds";
import { ExitStatus } from "./logs-exec-top";
import { taskAttempts } from "./task-attempts";
import { formatAge } from "./render/table";
import type { CliClient, CliDeps } from "./deps";

type Connect = (cmd: Command) => { namespace: string; client: CliClient };

/** How often `grove run` looks at its Task while it waits. */
const POLL_MS = 300;

/** The lines of `grove describe task NAME`. */
export function describeTask(task: Task, attempts: readonly Instance[], now: number): string[] {
  const s = task.spec;
  const st = task.status;
  const lines = [
    `Name:          ${task.metadata.name}`,
    `Namespace:     ${task.metadata.namespace ?? "default"}`,
    `Created:       ${task.metadata.creationTimestamp ?? "-"} (${formatAge(task.metadata.creationTimestamp, now)} ago)`,
    `Source:        ${s.fromApp ? `app ${s.fromApp}` : s.image ? `image ${s.image}` : `rootfs ${s.rootfs ?? "-"}`}`,
    `Command:       ${JSON.stringify(s.command ?? [])}`,
    `Retries:       ${s.retries ?? 0}`,
    `TTL:           ${s.ttlSecondsAfterFinished ?? 3600}s after it finishes`,
    `Phase:         ${st?.phase ?? "Pending"}${st?.reason ? ` (${st.reason})` : ""}`,
  ];
  if (st?.message) lines.push(`Message:       ${st.message}`);
  lines.push(`Attempts:      ${st?.attempts ?? 0} of ${(s.retries ?? 0) + 1}`);
  if (st?.exitCode !== undefined)
    lines.push(`Exit code:     ${st.exitCode}${st.signal ? ` (signal ${st.signal})` : ""}`);
  if (st?.startTime) lines.push(`Started:       ${st.startTime}`);
  if (st?.completionTime) lines.push(`Finished:      ${st.completionTime}`);
  if (attempts.length > 0) {
    lines.push("Attempt instances:");
    for (const i of attempts) {
      const ist = i.status;
      const exit = ist?.exitCode !== undefined ? ` exit ${ist.exitCode}` : "";
      lines.push(
        `  ${attemptOf(i)}  ${i.metadata.name}  ${ist?.state ?? "Pending"}${exit}  ${ist?.reason ?? ""}  node ${ist?.nodeName ?? i.spec.nodeName ?? "-"}`.trimEnd(),
      );
    }
  }
  return lines;
}

/** A Task name for `grove run APP`: APP-run-<5 random>, APP shortened so the name fits. */
export function runTaskName(app: string): string {
  const suffix = `-run-${randomBytes(4).toString("hex").slice(0, 5)}`;
  return app.slice(0, MAX_TASK_NAME_LENGTH - suffix.length).replace(/-+$/, "") + suffix;
}

function raw(deps: CliDeps, data: Uint8Array | string): void {
  if (deps.write) deps.write(data);
  else deps.out(Buffer.from(data).toString().replace(/\n$/, ""));
}

/**
 * Prints one attempt's output as it comes: follows its log while it runs
 * (opening the follow again when it ends early, e.g. before the container
 * wrote its log file, skipping what was printed); once the attempt has ended,
 * reads the whole log again and prints what the follow had not passed on yet
 * (the agent polls the file, so the last lines may come late).
 */
async function streamAttempt(deps: CliDeps, client: CliClient, inst: Instance, namespace: string): Promise<void> {
  const logs = client.logs!.bind(client);
  const name = inst.metadata.name;
  let printed = 0;
  /** Prints the part of `chunk` (at byte `at` of the log) not printed yet. */
  const emit = (at: number, chunk: Uint8Array) => {
    const end = at + chunk.length;
    if (end <= printed) return;
    raw(deps, chunk.subarray(Math.max(0, printed - at)));
    printed = end;
  };
  const read = async (follow: boolean, opened?: (s: ByteStream) => void) => {
    const stream = await logs(name, namespace, { follow });
    opened?.(stream);
    let at = 0;
    for await (const chunk of stream) {
      emit(at, chunk);
      at += chunk.length;
    }
  };
  let ended = isFinished(inst);
  let following: ByteStream | undefined;
  const watch = (async () => {
    while (!ended) {
      await deps.sleep(POLL_MS);
      // A deleted attempt (its Task was deleted) has ended too; other errors: look again.
      const cur = await client
        .get("Instance", name, namespace)
        .catch((err: unknown) => (err instanceof GroveError && err.code === "NotFound" ? "gone" : undefined));
      if (cur === "gone" || (cur !== undefined && isFinished(cur))) {
        ended = true;
        following?.close();
      }
    }
  })();
  while (!ended) {
    await read(true, (s) => {
      following = s;
      if (ended) s.close();
    }).catch(() => undefined); // not on its node yet, or a broken stream: open it again
    if (!ended) await deps.sleep(POLL_MS);
  }
  await watch;
  try {
    await read(false);
  } catch (err) {
    // An attempt that never started has no log.
    if (!(err instanceof GroveError && err.code === "NotFound")) throw err;
  }
}

/** Waits for `task`'s attempt `n` to exist and to be placed on a node (or to end without one). */
async function placedAttempt(
  deps: CliDeps,
  client: CliClient,
  task: string,
  n: number,
  namespace: string,
): Promise<Instance | undefined> {
  for (;;) {
    const t = await client.get("Task", task, namespace);
    const inst = (await taskAttempts(client, task, namespace)).find((i) => attemptOf(i) === n);
    if (inst && (isFinished(inst) || (inst.status?.nodeName ?? inst.spec.nodeName) !== undefined)) {
      if (inst.status?.state !== "Pending") return inst;
    }
    if (isTaskDone(t.status?.phase) && (t.status?.attempts ?? 0) < n) return undefined;
    await deps.sleep(POLL_MS);
  }
}

export function registerTaskCommands(program: Command, deps: CliDeps, connect: Connect): void {
  program
    .command("run")
    .description("run a command once in an App's template (a Task), print its output, exit with its exit code")
    .argument("<app>", "the App whose image or rootfs, env, resources and security the command runs with")
    .argument("<command...>", "the command and its arguments (after --)")
    .option("--name <name>", "the Task's name (default APP-run-<random>)")
    .option("--retries <n>", "run again after a failure, at most this many times", "0")
    .option("--ttl <duration>", "keep the Task and its logs this long after it ends (e.g. 10m, 1h)", "1h")
    .option("-d, --detach", "create the Task and print its name; do not wait")
    .action(
      async (
        app: string,
        command: string[],
        opts: { name?: string; retries: string; ttl: string; detach?: boolean },
        cmd: Command,
      ) => {
        const retries = Number(opts.retries);
        if (!/^[0-9]+$/.test(opts.retries) || retries > MAX_TASK_RETRIES) {
          throw new UsageError(`--retries: give a whole number from 0 to ${MAX_TASK_RETRIES}, not "${opts.retries}"`);
        }
        const ttlMs = parseDuration(opts.ttl);
        const { namespace, client } = connect(cmd);
        const name = opts.name ?? runTaskName(app);
        const task: Task = {
          apiVersion: API_VERSION,
          kind: "Task",
          metadata: { name, namespace },
          spec: { fromApp: app, command, retries, ttlSecondsAfterFinished: Math.ceil(ttlMs / 1000) },
        };
        await client.apply(task);
        deps.err(`task/${name} created`);
        if (opts.detach) {
          deps.out(name);
          return;
        }
        if (!client.logs) throw new Error("this client cannot read logs");
        for (let n = 1; ; n++) {
          const inst = await placedAttempt(deps, client, name, n, namespace);
          if (!inst) break;
          if (n > 1) deps.err(`task/${name}: attempt ${n}`);
          await streamAttempt(deps, client, inst, namespace);
          // The controller decides whether another attempt follows. A later attempt may
          // already have run and ended the Task while this one's output was printed: its
          // output is printed too (only a Task that made no further attempt ends the loop).
          let t = await client.get("Task", name, namespace);
          while (!isTaskDone(t.status?.phase) && (t.status?.attempts ?? 0) <= n) {
            await deps.sleep(POLL_MS);
            t = await client.get("Task", name, namespace);
          }
          if ((t.status?.attempts ?? 0) <= n) break;
        }
        const done = await client.get("Task", name, namespace);
        const st = done.status;
        deps.err(`task/${name} ${st?.phase ?? "?"}${st?.message ? `: ${st.message}` : ""}`);
        if (st?.phase !== "Succeeded") {
          const code = st?.exitCode !== undefined && st.exitCode !== 0 ? st.exitCode : 1;
          throw new ExitStatus(code);
        }
      },
    );
}
