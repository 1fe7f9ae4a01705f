import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { profileByName, PROFILE_NAMES } from "@grove/control-plane/scheduler";
import { buildNodes, homogeneous, scaled } from "./cluster";
import { compact, peakSet } from "./compaction";
import { compare } from "./compare";
import { lowerBound, openClusterSize, peakDemandLb1, run } from "./engine";
import { snapshotFrom } from "./from-cluster";
import { main } from "./main";
import { charts, html, table, toJson } from "./report";
import { formatTrace, parseTrace } from "./trace";
import { defaultNodeFor, generate, GENERATORS } from "./workload";
import { HELDOUT_SEEDS, TUNING_SEEDS } from "./heldout";

const GiB = 2 ** 30;
const node = { cpuMillis: 4000, memoryBytes: 8 * GiB, pids: 1000 };

describe("generators", () => {
  test.each(GENERATORS)("%s is seeded: same seed, same workload; another seed differs", (g) => {
    const a = generate(g, { count: 200, seed: 5, interArrival: 1, meanDuration: 100 });
    expect(generate(g, { count: 200, seed: 5, interArrival: 1, meanDuration: 100 })).toEqual(a);
    if (g !== "k8s") expect(generate(g, { count: 200, seed: 6 }).items).not.toEqual(a.items);
    expect(a.items.every((i) => i.resources.cpuMillis > 0 && i.resources.memoryBytes > 0)).toBe(true);
  });
  test("the azure mix follows the research shares (cores 0-2 about 58%, memory 4-8 GB about 33%)", () => {
    const items = generate("azure", { count: 20000, seed: 1 }).items;
    const small = items.filter((i) => i.resources.cpuMillis <= 2000).length / items.length;
    const mid = items.filter(
      (i) => i.resources.memoryBytes > 4 * 2 ** 30 && i.resources.memoryBytes <= 8 * 2 ** 30,
    ).length;
    expect(small).toBeGreaterThan(0.55);
    expect(small).toBeLessThan(0.61);
    expect(mid / items.length).toBeGreaterThan(0.3);
    expect(mid / items.length).toBeLessThan(0.36);
  });
  test("borg: about 20% of tasks ask for less than 0.1 core", () => {
    const items = generate("borg", { count: 10000, seed: 2 }).items;
    const tiny = items.filter((i) => i.resources.cpuMillis < 100).length / items.length;
    expect(tiny).toBeGreaterThan(0.18);
    expect(tiny).toBeLessThan(0.22);
  });
});

describe("the job mixes", () => {
  const shapesOf = (items: ReturnType<typeof generate>["items"]) =>
    new Set(items.map((i) => `${i.resources.cpuMillis}/${i.resources.memoryBytes}`));
  test("shapes: a few correlated machine shapes per seed and a few large jobs", () => {
    for (const seed of TUNING_SEEDS) {
      const items = generate("shapes", { count: 3000, seed }).items;
      // catalogue shapes have at most 8 cores; large jobs 16 or 32
      const large = items.filter((i) => i.resources.cpuMillis >= 16_000);
      const small = items.filter((i) => i.resources.cpuMillis < 16_000);
      // the catalogue: 6 to 12 shapes (the large jobs' shapes come on top)
      expect(shapesOf(small).size).toBeGreaterThanOrEqual(4);
      expect(shapesOf(small).size).toBeLessThanOrEqual(12);
      // every catalogue shape has 1, 2, 4, 8 or 16 GiB per core (0.25-core shapes round memory to 64 MiB)
      for (const i of small) {
        const perCore = i.resources.memoryBytes / 2 ** 30 / (i.resources.cpuMillis / 1000);
        expect([1, 2, 4, 8, 16].some((f) => Math.abs(perCore / f - 1) < 0.05)).toBe(true);
      }
      // large instances are rare, at most half a node
      expect(large.length / items.length).toBeLessThan(0.1);
      expect(large.every((i) => i.resources.memoryBytes <= 128 * 2 ** 30)).toBe(true);
    }
    expect(generate("shapes", { count: 3000, seed: 1 }).items.some((i) => i.resources.cpuMillis >= 16_000)).toBe(true);
  });
  test("memheavy: memory per core above the node's 4 GiB, a long tail up to half a node", () => {
    const items = generate("memheavy", { count: 5000, seed: 2 }).items;
    const perCore = items.map((i) => i.resources.memoryBytes / 2 ** 30 / (i.resources.cpuMillis / 1000));
    expect(perCore.filter((x) => x >= 3.9).length / items.length).toBeGreaterThan(0.95);
    const mem = items.map((i) => i.resources.memoryBytes);
    expect(Math.max(...mem)).toBeLessThanOrEqual(128 * 2 ** 30);
    expect(mem.filter((x) => x >= 32 * 2 ** 30).length).toBeGreaterThan(0);
  });
  test("churn: instances arrive over time and leave; far fewer run at the peak than arrive", () => {
    const w = generate("churn", { count: 3000, seed: 2 });
    expect(w.items.every((i) => i.duration !== undefined && i.duration >= 1)).toBe(true);
    expect(w.items[w.items.length - 1]!.time).toBeGreaterThan(1000);
    const alive = peakSet(w, defaultNodeFor("churn")).length;
    expect(alive).toBeLessThan(1500);
    expect(alive).toBeGreaterThan(100);
  });
  test("the held-out seeds are at least 10 and none of them is a tuning seed", () => {
    expect(HELDOUT_SEEDS.length).toBeGreaterThanOrEqual(10);
    expect(HELDOUT_SEEDS.filter((s) => TUNING_SEEDS.includes(s))).toEqual([]);
  });
});

describe("CSV traces", () => {
  test("round-trips and replays departures", () => {
    const w = generate("mixed", { count: 30, seed: 3, interArrival: 2, meanDuration: 20 });
    const back = parseTrace(formatTrace(w), "w.csv");
    expect(back.items).toEqual(w.items.map((i) => ({ ...i, resources: { ...i.resources, pids: 1 } })));
  });
  test.each([
    ["time,event,id\n1,arrive,a\n", "t.csv:2: cpu: required for arrive"],
    ["time,event,id,cpu,memory\n1,arrive,a,2,lots\n", "t.csv:2: memory:"],
    ["time,event,id,cpu,memory\n-1,arrive,a,2,1Gi\n", 't.csv:2: time: expected seconds >= 0, got "-1"'],
    ["time,event,id,cpu,memory\n1,leave,a,2,1Gi\n", 't.csv:2: event: expected arrive or depart, got "leave"'],
    ["time,event,id,cpu,memory\n# comment\n1,arrive,a,2\n", "t.csv:3: expected 5 fields, got 4"],
    ["time,event,id,cpu,memory,colour\n", 't.csv:1: unknown column "colour"'],
    ["time,id\n", 't.csv:1: missing column "event"'],
    ["time,event,id,cpu,memory\n1,arrive,a,2,1Gi\n2,arrive,a,2,1Gi\n", 't.csv:3: id: "a" arrives twice'],
    ["time,event,id\n1,depart,zz\n", 't.csv: depart of "zz" which never arrives'],
    ["", "t.csv: empty trace"],
  ])("bad input %j is rejected with file:line and column", (text, msg) => {
    expect(() => parseTrace(text, "t.csv")).toThrow(msg);
  });
  test("explicit depart rows free the room", () => {
    const w = parseTrace(
      "time,event,id,app,cpu,memory\n0,arrive,a,x,4,1Gi\n1,arrive,b,x,4,1Gi\n2,depart,a,,,\n",
      "t.csv",
    );
    const r = run({ cluster: homogeneous(1, node), workload: w, profile: profileByName("default"), seed: 1 });
    expect(r.placed).toBe(2); // b waits for a to leave, then runs
    expect(r.pending).toBe(0);
    expect(r.nodesUsed).toBe(1);
  });
});

describe("the event-driven run", () => {
  test("uniform pods pack to the lower bound with a bin-pack profile", () => {
    const w = generate("k8s", { count: 100, seed: 3 });
    const r = run({
      cluster: homogeneous(50, node),
      workload: w,
      profile: profileByName("most-allocated"),
      seed: 1,
      timing: false,
    });
    // 100 x 500Mi = 50000Mi over 8192Mi nodes -> 7 nodes by memory; cpu 10000m -> 3.
    expect(r.lb1).toBe(7);
    expect(r.placed).toBe(100);
    expect(r.nodesUsed).toBe(7);
    expect(r.ratio).toBe(1);
  });

  test("is deterministic for a seed and reports what does not fit as pending", () => {
    const w = generate("mixed", { count: 200, seed: 9 });
    const opts = {
      cluster: homogeneous(3, node),
      workload: w,
      profile: profileByName("default"),
      seed: 9,
      timing: false,
    };
    const a = run(opts);
    expect(run(opts)).toEqual(a);
    expect(a.pending).toBeGreaterThan(0);
    expect(a.nodesUsed).toBeLessThanOrEqual(3);
    expect(a.utilization.memory).toBeLessThanOrEqual(1);
  });

  test("higher priority arrivals preempt lower ones, which wait as pending", () => {
    const w = parseTrace(
      "time,event,id,app,cpu,memory,priority\n0,arrive,low,l,4,1Gi,0\n1,arrive,high,h,4,1Gi,10\n",
      "t.csv",
    );
    const r = run({ cluster: homogeneous(1, node), workload: w, profile: profileByName("default"), seed: 1 });
    expect(r.preemptions).toBe(1);
    expect(r.pending).toBe(1);
  });

  test("LB1 is never above the nodes any policy used (property)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...GENERATORS),
        fc.integer({ min: 1, max: 150 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.constantFrom(...PROFILE_NAMES),
        fc.boolean(),
        (g, count, seed, profile, churn) => {
          const w = generate(g, { count, seed, ...(churn ? { interArrival: 1, meanDuration: 30 } : {}) });
          const r = run({
            cluster: homogeneous(40, defaultNodeFor(g)),
            workload: w,
            profile: profileByName(profile),
            seed,
            timing: false,
          });
          for (const s of r.timeline) expect(s.lb1).toBeLessThanOrEqual(s.nodesUsed);
          expect(r.lb1).toBeLessThanOrEqual(r.nodesUsed);
        },
      ),
      { numRuns: 60 },
    );
  });

  test("peakLb1 is the highest LB1 at any moment, not the LB1 when most nodes were used", () => {
    // Two full nodes' worth leave; then three small instances are spread over three nodes.
    const w = parseTrace(
      "time,event,id,cpu,memory,duration\n0,arrive,a,4,1Gi,5\n0,arrive,b,4,1Gi,5\n" +
        "10,arrive,c,1,1Gi,\n10,arrive,d,1,1Gi,\n10,arrive,e,1,1Gi,\n",
      "t.csv",
    );
    const r = run({ cluster: homogeneous(3, node), workload: w, profile: profileByName("least-allocated"), seed: 1 });
    expect(r.peakNodesUsed).toBe(3);
    expect(r.peakLb1).toBe(2); // a and b at time 0; when 3 nodes are used LB1 is 1
    expect(r.peakRatio).toBe(1.5);
  });

  test("meanRatio weights each state by how long it lasted", () => {
    // ratio 1 on [0, 10), 2 on [10, 100) (least-allocated spreads a and b), then the run ends at 100
    const w = parseTrace("time,event,id,cpu,memory,duration\n0,arrive,a,1,1Gi,\n10,arrive,b,1,1Gi,90\n", "t.csv");
    const r = run({ cluster: homogeneous(2, node), workload: w, profile: profileByName("least-allocated"), seed: 1 });
    expect(r.meanRatio).toBeCloseTo((1 * 10 + 2 * 90) / 100, 10);
    // everything at one instant: the ratio at the end
    const once = run({
      cluster: homogeneous(40, node),
      workload: generate("k8s", { count: 100, seed: 3 }),
      profile: profileByName("least-allocated"),
      seed: 1,
    });
    expect(once.meanRatio).toBe(once.ratio);
  });

  test("the open cluster is sized from the peak demand, not from all arrivals summed", () => {
    // 100 instances of one full node each, one at a time: the peak demand is one node
    const w = parseTrace(
      "time,event,id,cpu,memory,duration\n" +
        Array.from({ length: 100 }, (_, i) => `${i * 10},arrive,i${i},4,1Gi,5`).join("\n") +
        "\n",
      "t.csv",
    );
    expect(peakDemandLb1(w, node)).toBe(1);
    expect(openClusterSize(w, node)).toBe(4); // ceil(1.5 x 1) + 2
    const all = generate("k8s", { count: 100, seed: 1 }); // 100 x 500Mi on 8 GiB nodes: 7 by memory
    expect(peakDemandLb1(all, node)).toBe(7);
  });

  test("LB1 with mixed node shapes counts the largest nodes first", () => {
    const nodes = buildNodes({
      pools: [
        { name: "s", count: 10, node: { cpuMillis: 1000, memoryBytes: GiB, pids: 10 } },
        { name: "b", count: 2, node: { cpuMillis: 8000, memoryBytes: 8 * GiB, pids: 10 } },
      ],
    });
    expect(lowerBound({ cpuMillis: 17000, memoryBytes: GiB, pids: 0 }, nodes)).toBe(3);
    expect(lowerBound({ cpuMillis: 16000, memoryBytes: 16 * GiB, pids: 0 }, nodes)).toBe(2);
  });
});

describe("compaction", () => {
  test("finds the smallest cluster that fits, per seed, never below LB1", () => {
    const w = generate("mixed", { count: 150, seed: 4 });
    const cluster = homogeneous(60, { cpuMillis: 16000, memoryBytes: 64 * GiB, pids: 32768 });
    const k = compact(cluster, w.items, profileByName("most-allocated"), { seeds: 5 });
    expect(k.perSeed).toHaveLength(5);
    for (const n of k.perSeed) expect(n).toBeGreaterThanOrEqual(k.lb1);
    expect(k.p90).toBe([...k.perSeed].sort((a, b) => a - b)[4]);
    expect(k.fitsAll).toBe(true);
  });
  test("scaled() keeps pool proportions; peakSet keeps the instances alive at peak demand", () => {
    const c = {
      pools: [
        { name: "a", count: 10, node },
        { name: "b", count: 30, node },
      ],
    };
    expect(scaled(c, 20).pools.map((p) => p.count)).toEqual([5, 15]);
    const w = parseTrace(
      "time,event,id,cpu,memory,duration\n0,arrive,a,1,1Gi,10\n5,arrive,b,1,1Gi,10\n12,arrive,c,1,1Gi,\n",
      "t.csv",
    );
    expect(peakSet(w, node).map((i) => i.id)).toEqual(["a", "b"]);
  });
});

describe("comparison and report", () => {
  const c = compare({
    cluster: homogeneous(30, { cpuMillis: 16000, memoryBytes: 64 * GiB, pids: 32768 }),
    workload: generate("mixed", { count: 120, seed: 2, interArrival: 1, meanDuration: 60 }),
    seeds: 3,
    timing: false,
  });
  test("every profile runs on the same events", () => {
    expect(c.policies.map((p) => p.run.profile)).toEqual([...PROFILE_NAMES]);
    for (const p of c.policies) expect(p.run.instances).toBe(120);
  });
  test("the terminal table, JSON and the self-contained HTML with inline SVG charts", () => {
    expect(table(c)).toMatch(/^workload mixed: 120 instances on up to 30 nodes/);
    expect(table(c).split("\n")).toHaveLength(3 + PROFILE_NAMES.length);
    const json = JSON.parse(toJson(c)) as { policies: Array<{ profile: string; compaction: { p90: number } }> };
    expect(json.policies[0]!.compaction.p90).toBeGreaterThan(0);
    const svgs = charts(c);
    expect(Object.keys(svgs)).toEqual(["utilization.svg", "nodes-over-time.svg", "nodes-used.svg", "ratio-lb1.svg"]);
    for (const svg of Object.values(svgs))
      expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"[^]*<\/svg>$/);
    const page = html(c, svgs);
    expect(page).toContain("<!doctype html>");
    expect(page.match(/<svg /g)).toHaveLength(4);
    expect(page).not.toMatch(/<script|src="http|href="http/);
  });
});

test("grove-sim --report writes report.html, each chart as its own .svg file, and result.json", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `grove-sim-report-${process.pid}-`));
  const log = jest.spyOn(console, "log").mockImplementation(() => {});
  try {
    await main(["node", "grove-sim", "--workload", "borg", "--count", "60", "--seeds", "2", "--report", dir]);
    expect(process.exitCode ?? 0).toBe(0);
    expect(fs.readdirSync(dir).sort()).toEqual([
      "nodes-over-time.svg",
      "nodes-used.svg",
      "ratio-lb1.svg",
      "report.html",
      "result.json",
      "utilization.svg",
    ]);
    for (const f of ["nodes-over-time.svg", "nodes-used.svg", "ratio-lb1.svg", "utilization.svg"]) {
      expect(fs.readFileSync(path.join(dir, f), "utf8")).toMatch(
        /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"[^]*<\/svg>$/,
      );
    }
    expect(fs.readFileSync(path.join(dir, "report.html"), "utf8").match(/<svg /g)).toHaveLength(4);
    expect(log.mock.calls.map((c) => String(c[0])).join("\n")).toContain(`report: ${path.join(dir, "report.html")}`);
  } finally {
    log.mockRestore();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("snapshotFrom groups node shapes and keeps unfinished instances", () => {
  const mk = (name: string, cpu: number) =>
    ({
      apiVersion: "grove/v1",
      kind: "Node",
      metadata: { name },
      spec: {},
      status: { allocatable: { cpuMillis: cpu, memoryBytes: GiB, pids: 100 } },
    }) as const;
  const inst = (name: string, state: "Running" | "Exited", nodeName?: string) => ({
    apiVersion: "grove/v1" as const,
    kind: "Instance" as const,
    metadata: { name, namespace: "default" },
    spec: {
      app: "web",
      appUid: "u",
      index: 0,
      rootfs: "busybox",
      command: ["x"],
      resources: { cpuMillis: 100, memoryBytes: 1, pids: 1 },
      restartPolicy: "Always" as const,
      stopGracePeriodSeconds: 1,
      restarts: 0,
      ...(nodeName ? { nodeName } : {}),
    },
    status: { state },
  });
  const s = snapshotFrom(
    [mk("a", 1000), mk("b", 1000), mk("c", 2000)],
    [inst("w-0", "Running", "a"), inst("w-1", "Exited", "b"), inst("w-2", "Running")],
  );
  expect(s.cluster.pools.map((p) => [p.count, p.node.cpuMillis])).toEqual([
    [2, 1000],
    [1, 2000],
  ]);
  expect(s.workload.items.map((i) => i.id)).toEqual(["default/w-0", "default/w-2"]);
  expect(s.liveNodesUsed).toBe(1);
});
