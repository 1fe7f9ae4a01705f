// A command-sequence model test (issue 16) on a real grove-server with its
// embedded etcd and one real grove-agent: fast-check picks sequences of apply,
// delete and scale of a few Apps, interleaved with kill -9 of the agent (then a
// restart on the same state directory, which adopts the running containers),
// and checks each answer against an in-memory model. After the sequence and
// convergence, the stored Apps, their desired instances and the instances
// Running (exactly one per index, on the node) equal the model. Each sequence
// runs in its own namespace, so no run waits for the previous one's cleanup.
// fast-check prints the seed and the shrunk command list of a failure.
// GROVE_FUZZ_RUNS=N runs N sequences (and up to 3N commands each).
import * as fs from "node:fs";
import fc from "fast-check";
import { GroveClient, GroveError, type App, type Instance } from "@grove/api";
import { waitFor, waitNodeReady, type ServerProcess, type Started } from "./harness/processes";
import { startMachine, type TestMachine } from "./harness/machine";
import { RUN_TAG } from "./harness/run-id";

const NODE = "it-apps-model";
const CGROUP_PARENT = `grove-it-am-${RUN_TAG}`;
const RUNS = Number(process.env.GROVE_FUZZ_RUNS ?? 3);
const MAX_COMMANDS = process.env.GROVE_FUZZ_RUNS ? 3 * RUNS : 8;
const NAMES = ["m1", "m2", "m3"];
/** Convergence after a sequence: instances start in about a second; an agent restart takes a few. */
const CONVERGE_MS = 90_000;

let dir: string;
let m: TestMachine;
let server: ServerProcess;
let agent: Started | undefined;
let client: GroveClient;

const bootAgent = (): Promise<Started> =>
  m.startAgent({
    nodeName: NODE,
    cgroupParent: CGROUP_PARENT,
    // Stopping the agent at the end stops its containers; a kill -9 leaves them to the next agent.
    stopContainersOnExit: true,
  });

beforeAll(async () => {
  m = await startMachine("grove-it-apps-model");
  ({ dir, server } = m);
  client = m.client;
  agent = await bootAgent();
  await waitNodeReady(client, NODE);
}, 180_000);

afterAll(async () => {
  try {
    agent ??= await bootAgent();
    for (const app of (await client.list("App")).items) {
      await client.delete("App", app.metadata.name, app.metadata.namespace).catch(() => undefined);
    }
    await waitFor("every instance to be gone", async () => (await client.list("Instance")).items.length === 0, 60_000);
  } finally {
    await agent?.stop();
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);

/** The model: desired instances per App name. */
type Model = Map<string, number>;
interface Real {
  namespace: string;
}

const appOf = (ns: string, name: string, instances: number): App => ({
  apiVersion: "grove/v1",
  kind: "App",
  metadata: { name, namespace: ns },
  spec: {
    rootfs: "busybox",
    command: ["/bin/sh", "-c", "while true; do sleep 1; done"],
    instances,
    stopGracePeriodSeconds: 1,
    resources: { cpu: "10m", memory: "16Mi", pids: 16 },
  },
});

const statusOf = async (p: Promise<unknown>): Promise<number> => {
  try {
    await p;
    return 200;
  } catch (err) {
    if (err instanceof GroveError) return err.status;
    throw err;
  }
};

class ApplyCommand implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly name: string,
    readonly instances: number,
  ) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const { created } = await client.apply(appOf(r.namespace, this.name, this.instances));
    expect({ cmd: this.toString(), created }).toEqual({ cmd: this.toString(), created: !m.has(this.name) });
    m.set(this.name, this.instances);
  }
  toString = () => `apply(${this.name}, ${this.instances})`;
}

class DeleteCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly name: string) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const status = await statusOf(client.delete("App", this.name, r.namespace));
    expect({ cmd: this.toString(), status }).toEqual({ cmd: this.toString(), status: m.has(this.name) ? 200 : 404 });
    m.delete(this.name);
  }
  toString = () => `delete(${this.name})`;
}

/** What `grove scale` does: read the App, write it back with another count at the revision read. */
class ScaleCommand implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly name: string,
    readonly instances: number,
  ) {}
  check = (m: Readonly<Model>) => m.has(this.name);
  async run(m: Model, r: Real): Promise<void> {
    // 409 when the controller wrote the App's status between the read and the write: read again.
    for (let attempt = 1; ; attempt++) {
      const app = await client.get("App", this.name, r.namespace);
      expect({ cmd: this.toString(), before: app.spec.instances }).toEqual({
        cmd: this.toString(),
        before: m.get(this.name),
      });
      const status = await statusOf(client.apply({ ...app, spec: { ...app.spec, instances: this.instances } }));
      if (status === 409 && attempt < 5) continue;
      expect({ cmd: this.toString(), status }).toEqual({ cmd: this.toString(), status: 200 });
      break;
    }
    m.set(this.name, this.instances);
  }
  toString = () => `scale(${this.name}, ${this.instances})`;
}

/** kill -9 of the agent, then a new one on the same state: the model does not change. */
class KillAgentCommand implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(): Promise<void> {
    await agent!.kill9();
    agent = undefined;
    agent = await bootAgent();
  }
  toString = () => "kill -9 agent; restart";
}

/** Running instances per App, and every instance that is not where it should be. */
async function actual(ns: string): Promise<{ apps: Record<string, number>; running: Record<string, number[]> }> {
  const apps = Object.fromEntries(
    (await client.list("App", { namespace: ns })).items.map((a) => [a.metadata.name, a.spec.instances]),
  );
  const running: Record<string, number[]> = {};
  for (const i of (await client.list("Instance", { namespace: ns })).items as Instance[]) {
    if (i.status?.state !== "Running" || i.spec.nodeName !== NODE) continue;
    (running[i.spec.app] ??= []).push(i.spec.index);
  }
  for (const k of Object.keys(running)) running[k]!.sort((a, b) => a - b);
  return { apps: sorted(apps), running: sorted(running) };
}

function sorted<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function expected(m: Model): { apps: Record<string, number>; running: Record<string, number[]> } {
  const running: Record<string, number[]> = {};
  for (const [name, n] of m) if (n > 0) running[name] = Array.from({ length: n }, (_, i) => i);
  return { apps: sorted(Object.fromEntries(m)), running: sorted(running) };
}

let run = 0;
/** Runs one command sequence in a fresh namespace and checks the converged state against the model. */
async function runSequence(cmds: Iterable<fc.AsyncCommand<Model, Real>>): Promise<void> {
  const namespace = `model-${++run}`;
  const model: Model = new Map();
  const list = [...cmds];
  const t0 = performance.now();
  await fc.asyncModelRun(() => ({ model, real: { namespace } }), list);
  const want = expected(model);
  let last: unknown;
  try {
    await waitFor(
      `namespace ${namespace} to converge to ${JSON.stringify(want)}`,
      async () => {
        last = await actual(namespace);
        return JSON.stringify(last) === JSON.stringify(want);
      },
      CONVERGE_MS,
    );
  } finally {
    // Assert on the last state seen: a failure shows the difference.
    const commands = list.map(String).join("; ");
    expect({ commands, state: last }).toEqual({ commands, state: want });
  }
  console.log(
    `${namespace}: ${list.length} commands, converged ${Math.round(performance.now() - t0)} ms after the first`,
  );
  // The run's Apps go; their instances stop in the background while the next run starts.
  for (const n of model.keys()) await client.delete("App", n, namespace);
}

test("a fixed sequence: scale up and down across an agent kill, delete and re-apply", async () => {
  await runSequence([
    new ApplyCommand("m1", 2),
    new ApplyCommand("m2", 1),
    new KillAgentCommand(),
    new ScaleCommand("m1", 1),
    new DeleteCommand("m2"),
    new ApplyCommand("m2", 2),
    new ScaleCommand("m2", 0),
  ]);
}, 300_000);

test("apply, delete, scale and agent kills converge to the model", async () => {
  const name = fc.constantFrom(...NAMES);
  const count = fc.integer({ min: 0, max: 2 });
  const commands = [
    fc.tuple(name, count).map(([n, c]) => new ApplyCommand(n, c)),
    name.map((n) => new DeleteCommand(n)),
    fc.tuple(name, count).map(([n, c]) => new ScaleCommand(n, c)),
    fc.constant(new KillAgentCommand()),
  ];
  await fc.assert(
    fc.asyncProperty(fc.commands(commands, { maxCommands: MAX_COMMANDS, size: "max" }), (cmds) => runSequence(cmds)),
    { numRuns: RUNS },
  );
}, 900_000);
