// Tasks end to end: grove-server with its etcd, two agents as hosts in
// network namespaces, the native runtime on this kernel. A Task's attempts
// are Instances placed by the scheduler and run by the agents; the Task
// controller starts the next attempt after a failure, records the outcome,
// keeps the attempts' logs readable after the Task ended and deletes it all
// once its TTL passed. The commands count their attempt with
// GROVE_TASK_ATTEMPT, which every attempt gets in its environment.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { GroveClient, GroveError, type App, type Instance, type Task } from "@grove/api";
import { HostCluster } from "./harness/hosts";
import { BIN, REPO_ROOT, isReady, runCli, waitFor } from "./harness/processes";

/** Fails (exit 7) until its third attempt, which prints and exits 0. */
const THIRD_TIME_LUCKY =
  'echo "attempt $GROVE_TASK_ATTEMPT of $GROVE_TASK starts"; ' +
  'if [ "$GROVE_TASK_ATTEMPT" -lt 3 ]; then echo "attempt $GROVE_TASK_ATTEMPT fails"; exit 7; fi; ' +
  'echo "attempt $GROVE_TASK_ATTEMPT done"';

function task(name: string, spec: Partial<Task["spec"]>): Task {
  return {
    apiVersion: "grove/v1",
    kind: "Task",
    metadata: { name, namespace: "default" },
    spec: { rootfs: "busybox", resources: { cpu: "50m", memory: "16Mi", pids: 16 }, ...spec },
  };
}

describe("Tasks: run to completion with retries, logs kept until the TTL", () => {
  let cluster: HostCluster;
  let client: GroveClient;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    cluster = await HostCluster.start({ hosts: 2 });
    client = cluster.adminClient();
    env = {
      GROVE_SERVER: cluster.server!.url,
      GROVE_TOKEN: cluster.server!.adminToken,
      HOME: cluster.dir,
      GROVE_CONFIG: "",
    };
    await waitFor(
      "two Ready nodes",
      async () => {
        const nodes = (await client.list("Node")).items;
        return nodes.length === 2 && nodes.every((n) => n.status?.subnet && isReady(n));
      },
      60_000,
    );
  }, 180_000);

  afterAll(async () => {
    for (const t of (await client?.list("Task").catch(() => undefined))?.items ?? []) {
      await client.delete("Task", t.metadata.name, "default").catch(() => undefined);
    }
    await client?.delete("App", "worker", "default").catch(() => undefined);
    await cluster?.destroy();
  }, 120_000);

  async function done(name: string, timeoutMs = 90_000): Promise<Task> {
    return waitFor(
      `task ${name} to end`,
      async () => {
        const t = await client.get("Task", name, "default");
        return (t.status?.phase === "Succeeded" || t.status?.phase === "Failed") && t;
      },
      timeoutMs,
    );
  }

  async function attempts(name: string): Promise<Instance[]> {
    return (await client.list("Instance", { namespace: "default" })).items
      .filter((i) => i.spec.task === name)
      .sort((a, b) => a.spec.restarts - b.spec.restarts);
  }

  /** The agent's log file of an instance, on whichever host ran it. */
  function logFile(inst: Instance): string {
    const host = cluster.host(inst.status?.nodeName ?? inst.spec.nodeName ?? "?");
    return path.join(host.stateDir, "logs", `${inst.metadata.uid}.log`);
  }

  it("a Task that fails twice then succeeds ends Succeeded after 3 attempts; its logs stay readable", async () => {
    // Applied from YAML through the CLI, as a user would.
    const file = path.join(cluster.dir, "lucky.yaml");
    fs.writeFileSync(
      file,
      [
        "apiVersion: grove/v1",
        "kind: Task",
        "metadata: { name: lucky }",
        "spec:",
        "  rootfs: busybox",
        `  command: ["/bin/sh", "-c", ${JSON.stringify(THIRD_TIME_LUCKY)}]`,
        "  retries: 3",
        "  resources: { cpu: 50m, memory: 16Mi, pids: 16 }",
        "",
      ].join("\n"),
    );
    expect(await runCli(["apply", "-f", file], env)).toMatchObject({ code: 0, stdout: "task/lucky created\n" });

    const t = await done("lucky");
    expect(t.status).toMatchObject({ phase: "Succeeded", attempts: 3, exitCode: 0, reason: "Completed" });
    expect(t.status?.startTime).toBeDefined();
    expect(t.status?.completionTime).toBeDefined();
    const tries = await attempts("lucky");
    expect(tries.map((i) => [i.metadata.name, i.status?.state, i.status?.exitCode])).toEqual([
      ["lucky-t1", "Failed", 7],
      ["lucky-t2", "Failed", 7],
      ["lucky-t3", "Exited", 0],
    ]);
    // Each attempt was a new instance, placed by the scheduler.
    expect(new Set(tries.map((i) => i.metadata.uid)).size).toBe(3);
    for (const i of tries) expect(i.status?.nodeName).toMatch(/^h[12]$/);

    // The attempts ended and left their nodes' desired sets, yet their logs stay.
    await new Promise((r) => setTimeout(r, 2000));
    for (const i of tries) expect(fs.existsSync(logFile(i))).toBe(true);
    const first = await runCli(["logs", "lucky-t1"], env);
    expect(first).toMatchObject({ code: 0, stdout: "attempt 1 of lucky starts\nattempt 1 fails\n" });
    const all = await runCli(["logs", "task/lucky"], env);
    expect(all.code).toBe(0);
    expect(all.stdout.split("\n").filter(Boolean)).toEqual([
      "[lucky-t1] attempt 1 of lucky starts",
      "[lucky-t1] attempt 1 fails",
      "[lucky-t2] attempt 2 of lucky starts",
      "[lucky-t2] attempt 2 fails",
      "[lucky-t3] attempt 3 of lucky starts",
      "[lucky-t3] attempt 3 done",
    ]);
    const described = await runCli(["describe", "task", "lucky"], env);
    expect(described.stdout).toMatch(/Phase:\s+Succeeded \(Completed\)/);
    expect(described.stdout).toMatch(/Attempts:\s+3 of 4/);
    const listed = await runCli(["get", "tasks"], env);
    expect(listed.stdout).toMatch(/lucky\s+Succeeded\s+3\/4\s+0\s+Completed/);
  }, 180_000);

  it("a Task that always fails ends Failed after retries + 1 attempts, with the exit code", async () => {
    await client.apply(task("doomed", { command: ["/bin/sh", "-c", "echo no luck; exit 42"], retries: 1 }));
    const t = await done("doomed");
    expect(t.status).toMatchObject({ phase: "Failed", attempts: 2, exitCode: 42, reason: "RetriesExhausted" });
    expect(t.status?.message).toMatch(/attempt 2 of 2 failed \(exit code 42/);
    expect((await attempts("doomed")).map((i) => i.status?.exitCode)).toEqual([42, 42]);
    // No third attempt comes later.
    await new Promise((r) => setTimeout(r, 3000));
    expect(await attempts("doomed")).toHaveLength(2);
  }, 180_000);

  it("grove run APP -- CMD streams the output and exits with the task's exit code", async () => {
    const worker: App = {
      apiVersion: "grove/v1",
      kind: "App",
      metadata: { name: "worker", namespace: "default" },
      spec: {
        rootfs: "busybox",
        command: ["/bin/sh", "-c", "exec sleep 100000"],
        env: { GREETING: "hello from the app's env" },
        instances: 0,
        resources: { cpu: "50m", memory: "16Mi", pids: 16 },
      },
    };
    await client.apply(worker);
    const ok = await runCli(
      ["run", "worker", "--name", "say", "--", "/bin/sh", "-c", 'echo "$GREETING"; echo second line'],
      env,
    );
    expect(ok).toMatchObject({ code: 0, stdout: "hello from the app's env\nsecond line\n" });
    expect(ok.stderr).toMatch(/task\/say Succeeded/);

    const bad = await runCli(
      [
        "run",
        "worker",
        "--name",
        "retry-run",
        "--retries",
        "1",
        "--",
        "/bin/sh",
        "-c",
        'echo "try $GROVE_TASK_ATTEMPT"; exit 3',
      ],
      env,
    );
    expect(bad.code).toBe(3);
    expect(bad.stdout).toBe("try 1\ntry 2\n");
    expect(bad.stderr).toMatch(/task\/retry-run Failed: attempt 2 of 2 failed \(exit code 3/);
    // Output arrives while the attempt still runs, not only when it ended.
    const live = spawn(
      process.execPath,
      [BIN.cli, "run", "worker", "--name", "live", "--", "/bin/sh", "-c", "echo first; sleep 6; echo second"],
      { env: { ...process.env, ...env }, cwd: REPO_ROOT },
    );
    let liveOut = "";
    live.stdout.on("data", (d: Buffer) => (liveOut += d.toString()));
    const liveExit = new Promise<number | null>((resolve) => live.on("exit", resolve));
    await waitFor("grove run to print the first line", async () => liveOut.includes("first\n"), 60_000);
    expect(liveOut).toBe("first\n");
    expect((await client.get("Task", "live", "default")).status?.phase).toBe("Running");
    expect(await liveExit).toBe(0);
    expect(liveOut).toBe("first\nsecond\n");
    // The Task's attempts ran the App's template, not an App instance.
    expect((await client.get("App", "worker", "default")).status?.instances ?? 0).toBe(0);
  }, 180_000);

  it("the TTL deletes the Task, its attempts and their log files", async () => {
    await client.apply(task("brief", { command: ["/bin/sh", "-c", "echo short-lived"], ttlSecondsAfterFinished: 3 }));
    await done("brief");
    const [inst] = await attempts("brief");
    expect(inst).toBeDefined();
    const file = logFile(inst!);
    expect(fs.existsSync(file)).toBe(true);
    await waitFor(
      "the Task to be deleted",
      async () =>
        client.get("Task", "brief", "default").then(
          () => false,
          (err: unknown) => err instanceof GroveError && err.code === "NotFound",
        ),
      30_000,
    );
    await waitFor("its attempts to be deleted", async () => (await attempts("brief")).length === 0, 15_000);
    await waitFor("its log file to be deleted", async () => !fs.existsSync(file), 15_000);
    expect((await runCli(["logs", "task/brief"], env)).code).toBe(1);
  }, 120_000);

  it("refuses bad Tasks at apply with the field path, and writes nothing", async () => {
    const refused = async (t: Task, path: string, message: RegExp) => {
      const err = await client.apply(t).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(GroveError);
      expect((err as GroveError).code).toBe("ValidationFailed");
      expect((err as GroveError).details).toEqual(
        expect.arrayContaining([expect.objectContaining({ path, message: expect.stringMatching(message) })]),
      );
      await expect(client.get("Task", t.metadata.name, "default")).rejects.toMatchObject({ code: "NotFound" });
    };
    await refused(task("neg", { command: ["true"], retries: -1 }), "/spec/retries", /greater or equal to 0/);
    await refused(
      task("ghost", { rootfs: undefined, fromApp: "nope", command: ["true"] }),
      "/spec/fromApp",
      /no App nope/,
    );
    await refused(task("empty", { command: [] }), "/spec/command", /length/);
    await refused(task("blank", { command: [""] }), "/spec/command/0", /must not be empty/);
    await refused(task("nocmd", { rootfs: undefined, fromApp: "worker" }), "/spec/command", /required with fromApp/);
    // The CLI says the same before sending anything.
    const file = path.join(cluster.dir, "bad-task.yaml");
    fs.writeFileSync(
      file,
      "apiVersion: grove/v1\nkind: Task\nmetadata: { name: bad }\nspec:\n  rootfs: busybox\n  command: [echo]\n  retries: -2\n",
    );
    const r = await runCli(["apply", "-f", file], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad-task\.yaml:7:12: spec\.retries: Expected integer to be greater or equal to 0/);
  }, 60_000);
});
