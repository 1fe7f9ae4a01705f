// grove run: every attempt's output is printed, however quickly the attempts end.
import { GroveError } from "../errors";
import type { Instance } from "../schemas";
import type { Task } from "../task-schema";
import { taskAttemptName } from "../task-rules";
import { run } from "./main";
import type { CliClient, CliDeps } from "./deps";
import { instance } from "./render/testing";

/**
 * A control plane on which the Task has run both its attempts and failed by the time the CLI
 * first looks (a fast command and a fast retry: the CI run that found it).
 */
function endedTask(): { client: CliClient; logsRead: string[] } {
  const objects = new Map<string, unknown>();
  const logsRead: string[] = [];
  const attempt = (n: number): Instance =>
    instance(
      taskAttemptName("retry-run", n),
      { app: "", task: "retry-run", restarts: n - 1, nodeName: "n1" } as Partial<Instance["spec"]>,
      { state: "Failed", exitCode: 3, nodeName: "n1" } as Instance["status"],
    );
  const client = {
    async apply(obj: Task) {
      objects.set(`Task/${obj.metadata.name}`, {
        ...obj,
        status: { phase: "Failed", attempts: 2, exitCode: 3, message: "attempt 2 of 2 failed (exit code 3)" },
      });
      for (const n of [1, 2]) objects.set(`Instance/${taskAttemptName("retry-run", n)}`, attempt(n));
      return { object: obj, created: true };
    },
    async get(kind: string, name: string) {
      const found = objects.get(`${kind}/${name}`);
      if (!found) throw new GroveError("NotFound", `${kind} "${name}" not found`);
      return found;
    },
    async list(kind: string) {
      const items = [...objects.entries()].filter(([k]) => k.startsWith(`${kind}/`)).map(([, v]) => v);
      return { apiVersion: "grove/v1", kind: `${kind}List`, metadata: { resourceVersion: "1" }, items };
    },
    async logs(name: string) {
      logsRead.push(name);
      const n = Number(name.slice(name.lastIndexOf("-t") + 2));
      const bytes = Buffer.from(`try ${n}\n`);
      return {
        close() {},
        async *[Symbol.asyncIterator]() {
          yield bytes;
        },
      };
    },
    delete: async () => {
      throw new Error("not used");
    },
    watch: async () => {
      throw new Error("not used");
    },
  } as unknown as CliClient;
  return { client, logsRead };
}

test("grove run prints the output of an attempt that ran and ended the Task before the CLI looked", async () => {
  const { client, logsRead } = endedTask();
  let stdout = "";
  const stderr: string[] = [];
  const deps: CliDeps = {
    out: (l) => (stdout += l + "\n"),
    err: (l) => stderr.push(l),
    write: (d) => (stdout += Buffer.from(d).toString()),
    env: { GROVE_SERVER: "https://127.0.0.1:1", GROVE_TOKEN: "t" },
    home: "/nonexistent",
    makeClient: () => client,
    now: () => 0,
    sleep: async () => undefined,
  };
  const code = await run(["run", "worker", "--name", "retry-run", "--retries", "1", "--", "sh"], deps);
  expect({ code, stdout }).toEqual({ code: 3, stdout: "try 1\ntry 2\n" });
  expect(logsRead.filter((n) => n.endsWith("-t2")).length).toBeGreaterThan(0);
  expect(stderr).toEqual([
    "task/retry-run created",
    "task/retry-run: attempt 2",
    "task/retry-run Failed: attempt 2 of 2 failed (exit code 3)",
  ]);
});
