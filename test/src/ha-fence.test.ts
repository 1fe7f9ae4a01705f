// Fenced leadership against a real etcd, with real faults: leader-election
// probes (test/src/harness/fence-probe.ts: the control plane's LeaderElection
// and FencedStore in a process of their own) that the test SIGSTOPs or cuts
// from etcd with iptables.
//
// - SIGSTOP of the leader past its lease: a standby leads within TTL plus a
//   retry; after SIGCONT the old leader's writes are rejected, by its own
//   deadline and, with that check bypassed, by etcd's compare of the leader
//   key (the probe that proves the fence is in etcd, not only in the process).
// - The leader cut from etcd only: it stops acting on its monotonic deadline,
//   before its lease could expire and before the standby is elected.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as readline from "node:readline";
import { DEFAULT_LEADER_LEASE_TTL_SECONDS, createStore, type EtcdStore } from "@grove/control-plane";
import { REPO_ROOT, tempDir, waitFor } from "./harness/processes";
import { EtcdCluster } from "./harness/etcd-cluster";
import { RUN_TAG } from "./harness/run-id";

// The cut rules carry the run id, so the leak check sees one left behind (leaks.js).
const TAGGED = ["-m", "comment", "--comment", `grove-test-${RUN_TAG}`];

// The lease grove-server uses by default (leader/election.ts).
const TTL_S = DEFAULT_LEADER_LEASE_TTL_SECONDS;
const PROBE = path.join(REPO_ROOT, "test/dist/src/harness/fence-probe.js");

interface ProbeEvent {
  event: string;
  /** When the test read the line (the test's monotonic clock). */
  at: number;
  epoch?: string;
  view?: string;
  ok?: boolean;
  where?: string;
  fenced?: boolean;
  key?: string;
}

class Probe {
  readonly events: ProbeEvent[] = [];
  readonly proc: ChildProcess;
  constructor(endpoints: string[], election: string) {
    this.proc = spawn(process.execPath, [PROBE, endpoints.join(","), election, String(TTL_S)], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    readline.createInterface({ input: this.proc.stdout! }).on("line", (l) => {
      try {
        this.events.push({ ...(JSON.parse(l) as ProbeEvent), at: performance.now() });
      } catch {
        /* not ours */
      }
    });
    this.proc.stderr!.on("data", () => undefined);
  }
  get pid(): number {
    return this.proc.pid!;
  }
  first(event: string, after = 0): ProbeEvent | undefined {
    return this.events.find((e) => e.event === event && e.at >= after);
  }
  wait(event: string, timeoutMs: number, after = 0): Promise<ProbeEvent> {
    return waitFor(`probe ${this.pid}: ${event}`, async () => this.first(event, after), timeoutMs);
  }
  /** Writes KEY through both fenced views; resolves with their two results. */
  async write(key: string, timeoutMs = 15_000): Promise<{ fenced: ProbeEvent; etcdOnly: ProbeEvent }> {
    this.proc.stdin!.write(`write ${key}\n`);
    const find = (view: string) => async () =>
      this.events.find((e) => e.event === "write" && e.key === `${key}-${view}`);
    return {
      fenced: await waitFor(`${key} fenced write`, find("fenced"), timeoutMs),
      etcdOnly: await waitFor(`${key} etcd-only write`, find("etcd-only"), timeoutMs),
    };
  }
  kill(): void {
    try {
      process.kill(this.pid, "SIGCONT");
      process.kill(this.pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
}

let dir: string;
let etcd: EtcdCluster;
let store: EtcdStore;
let probes: Probe[] = [];
let election = 0;
const cutRules: string[][] = [];

beforeAll(async () => {
  dir = tempDir("grove-it-fence");
  etcd = await EtcdCluster.start(dir, 1, { cutPort: true });
  store = createStore(etcd.endpoints);
});

afterEach(() => {
  for (const rule of cutRules.splice(0)) execFileSync("iptables", ["-w", "-D", ...rule]);
  for (const p of probes) p.kill();
  probes = [];
});

afterAll(async () => {
  await store?.close();
  await etcd?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** A leader (started first, elected) and two standbys, in one election of their own. */
async function leaderAndStandbys(leaderEndpoints: string[]): Promise<Probe[]> {
  const name = `grove-it-${RUN_TAG}-${++election}`;
  const leader = new Probe(leaderEndpoints, name);
  probes.push(leader);
  await leader.wait("elected", 20_000);
  const standbys = [new Probe(etcd.endpoints, name), new Probe(etcd.endpoints, name)];
  probes.push(...standbys);
  await Promise.all(standbys.map((s) => s.wait("started", 20_000)));
  await new Promise((r) => setTimeout(r, 1000)); // the standbys campaign (their keys exist)
  expect(standbys.every((s) => !s.first("elected"))).toBe(true);
  return [leader, ...standbys];
}

async function newLeader(standbys: Probe[], after: number, timeoutMs: number): Promise<[Probe, ProbeEvent]> {
  return waitFor(
    "a standby elected",
    async () => {
      for (const s of standbys) {
        const e = s.first("elected", after);
        if (e) return [s, e] as [Probe, ProbeEvent];
      }
      return undefined;
    },
    timeoutMs,
  );
}

test("leader SIGSTOPped past its lease: a standby leads within TTL + a retry; after SIGCONT the old leader's writes are rejected", async () => {
  const [old, ...standbys] = await leaderAndStandbys(etcd.endpoints);
  const oldEpoch = old!.first("elected")!.epoch!;
  const before = await old!.write("/grove-it/fence/before");
  expect(before.fenced.ok).toBe(true);

  const stoppedAt = performance.now();
  process.kill(old!.pid, "SIGSTOP");
  // The lease expires at most TTL after its last renewal; etcd then deletes the key and a standby's watch sees it.
  const [leader, elected] = await newLeader(standbys, stoppedAt, TTL_S * 1000 + 5000);
  const failoverMs = elected.at - stoppedAt;
  expect(BigInt(elected.epoch!)).toBeGreaterThan(BigInt(oldEpoch));
  expect((await leader.write("/grove-it/fence/new")).fenced.ok).toBe(true);

  // Past its lease: the old leader resumes with timers and buffered data of a leader.
  await new Promise((r) => setTimeout(r, Math.max(0, TTL_S * 1000 + 1000 - failoverMs)));
  process.kill(old!.pid, "SIGCONT");
  const after = await old!.write("/grove-it/fence/after");
  // The controllers' view refuses on its own deadline (or etcd rejects it)...
  expect(after.fenced).toMatchObject({ ok: false, fenced: true });
  // ...and without that check, etcd rejects the write: the leader key of its epoch is gone.
  expect(after.etcdOnly).toMatchObject({ ok: false, fenced: true, where: "etcd" });
  expect(await store.get("/grove-it/fence/after-fenced")).toBeUndefined();
  expect(await store.get("/grove-it/fence/after-etcd-only")).toBeUndefined();
  expect(await store.get("/grove-it/fence/new-fenced")).toBeDefined();
  await old!.wait("lost", 10_000);
  process.stdout.write(`leader failover after SIGSTOP: ${(failoverMs / 1000).toFixed(2)} s\n`);
}, 90_000);

test("leader cut from etcd only: it stops acting before its lease could expire and before a standby leads", async () => {
  const [old, ...standbys] = await leaderAndStandbys([etcd.cutEndpoint]);
  // Only connections to the second client port: the leader's. Everyone else keeps talking to etcd.
  const port = String(etcd.cutPort);
  const rules = [
    ["INPUT", "-i", "lo", "-p", "tcp", "--dport", port, ...TAGGED, "-j", "DROP"],
    ["OUTPUT", "-o", "lo", "-p", "tcp", "--sport", port, ...TAGGED, "-j", "DROP"],
  ];
  for (const rule of rules) {
    execFileSync("iptables", ["-w", "-I", ...rule]);
    cutRules.push(rule);
  }
  const cutAt = performance.now();
  const lost = await old!.wait("lost", TTL_S * 1000 + 5000, cutAt);
  const [, elected] = await newLeader(standbys, cutAt, TTL_S * 1000 + 10_000);
  process.stdout.write(
    `cut leader stopped after ${((lost.at - cutAt) / 1000).toFixed(2)} s; ` +
      `standby elected after ${((elected.at - cutAt) / 1000).toFixed(2)} s\n`,
  );
  // Its last renewal was before the cut, so etcd cannot expire its lease before cut + TTL.
  expect(lost.at - cutAt).toBeLessThan(TTL_S * 1000);
  expect(lost.at).toBeLessThan(elected.at);
  // While cut off it refuses on its own, without waiting for etcd.
  const during = await old!.write("/grove-it/fence/cut");
  expect(during.fenced).toMatchObject({ ok: false, where: "local" });
}, 90_000);
