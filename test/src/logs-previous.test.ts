// grove logs --previous, --since and --timestamps end to end: real etcd,
// grove-server, grove-agent with the native runtime; grove-shim records when
// each part of the log arrived (<log>.ts) and the agent keeps the log of an
// instance that ended as the previous log of its name.
import * as fs from "node:fs";
import * as path from "node:path";
import { GroveClient, type App } from "@grove/api";
import { runCli, waitFor, type ServerProcess, type Started } from "./harness/processes";
import { startMachine, type TestMachine } from "./harness/machine";
import { RUN_TAG } from "./harness/run-id";

const NODE = "it-logs-prev-node";
const CGROUP_PARENT = `grove-logs-prev-${RUN_TAG}`;

function app(name: string, script: string, spec: Partial<App["spec"]> = {}): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, namespace: "default" },
    spec: { rootfs: "busybox", command: ["/bin/sh", "-c", script], instances: 1, stopGracePeriodSeconds: 1, ...spec },
  };
}

describe("grove logs --previous, --since, --timestamps", () => {
  let dir: string;
  let m: TestMachine;
  let server: ServerProcess;
  let agent: Started;
  let client: GroveClient;
  let env: NodeJS.ProcessEnv;
  let logDir: string;

  beforeAll(async () => {
    m = await startMachine("grove-logs-prev");
    ({ dir, server } = m);
    agent = await m.startAgent({
      nodeName: NODE,
      cgroupParent: CGROUP_PARENT,
    });
    logDir = path.join(dir, "agent", "logs");
    client = m.client;
    env = m.env;
  }, 120_000);

  // Each test applies its own App; after it, every App is deleted and the agent has moved their
  // logs to previous/ (so a test after it sees no uid log but its own).
  afterEach(async () => {
    for (const a of (await client.list("App", { namespace: "default" })).items) {
      await client.delete("App", a.metadata.name, "default");
    }
    await waitFor(
      "no instance left and every uid log moved to previous/",
      async () =>
        (await client.list("Instance", { namespace: "default" })).items.length === 0 &&
        !fs.readdirSync(logDir).some((f) => /\.log$/.test(f)),
      60_000,
    );
  }, 90_000);

  afterAll(async () => {
    await agent?.stop(30_000);
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("--previous prints the crashed instance's output after its restart; one kept log per name", async () => {
    // Each run prints its own id (the shell's pid is 1 in every container, so a random one).
    await client.apply(
      app("crashy", "echo run-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' '); sleep 3; echo bye; exit 4", {
        restartPolicy: "Always",
      }),
    );
    const runOf = (text: string) => /run-([0-9a-f]+)/.exec(text)?.[1];
    // After two restarts: the current instance runs, the previous one printed "bye".
    const current = await waitFor(
      "crashy-0 restarted twice and running",
      async () => {
        const i = await client.get("Instance", "crashy-0", "default");
        return i.spec.restarts >= 2 && i.status?.state === "Running" ? i : undefined;
      },
      90_000,
    );
    const prev = await runCli(["logs", "crashy/0", "--previous"], env);
    expect(prev).toMatchObject({ code: 0, stderr: "" });
    expect(prev.stdout).toMatch(/^run-[0-9a-f]+\nbye\n$/);
    // The current run's log exists while it runs (3 s of each crash-loop cycle; once it ended, its log is the previous one).
    const now = await waitFor(
      "the current run's first line",
      async () => {
        const r = await runCli(["logs", "crashy/0"], env);
        return runOf(r.stdout) ? r : undefined;
      },
      90_000,
    );
    expect(runOf(now.stdout)).not.toBe(runOf(prev.stdout));
    // Bounded: the node keeps the current log and one previous log of crashy-0, not one per restart.
    // (previous/ also holds the logs of other tests' Apps, deleted before this one: other names.)
    const kept = fs.readdirSync(path.join(logDir, "previous")).filter((f) => f.startsWith("default_crashy-0"));
    expect(kept).toContain("default_crashy-0.log");
    expect(kept).toContain("default_crashy-0.log.ts");
    expect(kept.filter((f) => !/^default_crashy-0\.log(\.1|\.ts|\.ts\.1)?$/.test(f))).toEqual([]);
    // Of the uid logs only the current instance's is left (it may itself have ended and moved meanwhile).
    const uidLogs = fs.readdirSync(logDir).filter((f) => /\.log$/.test(f));
    expect(uidLogs.length).toBeLessThanOrEqual(1);
    expect(current.spec.restarts).toBeGreaterThanOrEqual(2);

    const none = await runCli(["logs", "nope-0", "--previous"], env);
    expect(none.code).toBe(1);
  }, 240_000);

  it("--timestamps prefixes each line with when it arrived; --since leaves out older lines", async () => {
    await client.apply(app("stamped", "echo one; sleep 2; echo two; exec sleep 100000"));
    await waitFor("both lines", async () => (await runCli(["logs", "stamped/0"], env)).stdout === "one\ntwo\n", 60_000);
    const r = await runCli(["logs", "stamped/0", "--timestamps"], env);
    expect(r.code).toBe(0);
    const m = /^(\S+) one\n(\S+) two\n$/.exec(r.stdout);
    expect(m).not.toBeNull();
    const [t1, t2] = [Date.parse(m![1]!), Date.parse(m![2]!)];
    expect(m![1]).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(t2 - t1).toBeGreaterThanOrEqual(1800);
    expect(t2 - t1).toBeLessThan(6000);
    expect(Math.abs(Date.now() - t2)).toBeLessThan(120_000);

    const since = new Date(t2 - 500).toISOString();
    expect((await runCli(["logs", "stamped/0", "--since", since], env)).stdout).toBe("two\n");
    expect((await runCli(["logs", "stamped/0", "--since", since, "--timestamps"], env)).stdout).toBe(`${m![2]} two\n`);
    expect((await runCli(["logs", "stamped/0", "--since", "1h"], env)).stdout).toBe("one\ntwo\n");
    // Nothing arrived in the last second (two came at least a moment ago).
    await waitFor("a second after two", async () => Date.now() - t2 > 2500);
    expect((await runCli(["logs", "stamped/0", "--since", "1s"], env)).stdout).toBe("");
    // Without the flags: the bytes as the container wrote them.
    expect((await runCli(["logs", "stamped/0"], env)).stdout).toBe("one\ntwo\n");
    const bad = await runCli(["logs", "stamped/0", "--since", "yesterday"], env);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--since/);
  }, 120_000);
});
