// Events end to end: real etcd, grove-server (with a short --event-ttl) and an
// agent in its own network namespace. The test follows the events watch API
// as a client would and checks what arrives, in which order, and that events
// expire with their lease.
import { performance } from "node:perf_hooks";
import { GroveClient, type App, type Event, type WatchEvent } from "@grove/api";
import { HostCluster } from "./harness/hosts";
import { isReady as nodeReady, runCli, waitFor } from "./harness/processes";

const TTL_S = 8;
const SECRET = "hunter2-do-not-leak";

function app(name: string, script: string, spec: Partial<App["spec"]> = {}): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, namespace: "default" },
    spec: {
      rootfs: "busybox",
      command: ["/bin/sh", "-c", script],
      instances: 1,
      stopGracePeriodSeconds: 1,
      resources: { cpu: "100m", memory: "32Mi", pids: 32 },
      env: { SECRET_TOKEN: SECRET },
      ...spec,
    },
  };
}

/** Everything the events watch delivered, with when it arrived (monotonic). */
interface Seen {
  at: number;
  type: WatchEvent<Event>["type"];
  event: Event;
}

describe("events", () => {
  let cluster: HostCluster;
  let client: GroveClient;
  let env: NodeJS.ProcessEnv;
  const seen: Seen[] = [];
  let closeWatch: (() => void) | undefined;
  let following: Promise<void> | undefined;

  beforeAll(async () => {
    cluster = await HostCluster.start({ hosts: 1, serverArgs: ["--event-ttl", `${TTL_S}s`] });
    client = cluster.adminClient();
    env = { GROVE_SERVER: cluster.server!.url, GROVE_TOKEN: cluster.server!.adminToken, GROVE_CONFIG: "" };
    await waitFor("a Ready node", async () => (await client.list("Node")).items.some((n) => nodeReady(n)), 60_000);
    const watch = await client.watchEvents({ namespace: "default" });
    closeWatch = () => watch.close();
    following = (async () => {
      try {
        for await (const ev of watch) {
          if (ev.type !== "ERROR") seen.push({ at: performance.now(), type: ev.type, event: ev.object });
        }
      } catch {
        // closed at the end
      }
    })();
  }, 180_000);

  afterAll(async () => {
    closeWatch?.();
    await following;
    await cluster?.destroy();
  }, 120_000);

  /** Puts (ADDED or MODIFIED) of events about this App, in arrival order, as "reason instance count". */
  const putsOf = (appName: string) =>
    seen.filter((s) => s.type !== "DELETED" && s.event.involvedObject.name === appName).map((s) => s.event);
  const indexOf = (events: Event[], pred: (e: Event) => boolean) => events.findIndex(pred);

  it("a rollout: Scheduled, Started, then RolledOut; an update adds the new instances' and RolledOut again", async () => {
    await client.apply(app("roll", "exec sleep 100000", { instances: 2 }));
    let evs = await waitFor(
      "RolledOut",
      async () => {
        const e = putsOf("roll");
        return e.some((x) => x.reason === "RolledOut") ? e : undefined;
      },
      90_000,
    );
    for (const inst of ["roll-0", "roll-1"]) {
      const scheduled = indexOf(evs, (e) => e.reason === "Scheduled" && e.involvedObject.instance === inst);
      const started = indexOf(evs, (e) => e.reason === "Started" && e.involvedObject.instance === inst);
      expect(scheduled).toBeGreaterThanOrEqual(0);
      expect(started).toBeGreaterThan(scheduled);
      expect(indexOf(evs, (e) => e.reason === "RolledOut")).toBeGreaterThan(started);
      expect(evs[scheduled]!.message).toContain(cluster.hosts[0]!.name);
      expect(evs[started]!.source).toMatchObject({ component: "grove-agent", node: cluster.hosts[0]!.name });
    }

    // A template change: rolling, make before break.
    await client.apply(app("roll", "echo v2; exec sleep 100000", { instances: 2 }));
    evs = await waitFor(
      "a second RolledOut",
      async () => {
        const e = putsOf("roll");
        return e.some((x) => x.reason === "RolledOut" && x.count === 2) ? e : undefined;
      },
      120_000,
    );
    const second = indexOf(evs, (e) => e.reason === "RolledOut" && e.count === 2);
    const surgeStarts = evs.filter(
      (e, i) => i < second && e.reason === "Started" && /^roll-\d-/.test(e.involvedObject.instance!),
    );
    expect(surgeStarts.map((e) => e.involvedObject.instance!.slice(0, 6)).sort()).toEqual(["roll-0", "roll-1"]);
    const stopped = evs.filter((e) => e.reason === "Stopped");
    expect(stopped.map((e) => e.message).join("\n")).toMatch(/RolledOut/);

    // grove describe app shows its latest events; grove get events lists them by time.
    const d = await runCli(["describe", "app", "roll"], env);
    expect(d.code).toBe(0);
    expect(d.stdout).toMatch(/Events:\n(.*\n)*.*RolledOut/);
    const g = await runCli(["get", "events"], env);
    expect(g.code).toBe(0);
    expect(g.stdout.split("\n")[0]).toMatch(/^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+COUNT\s+MESSAGE/);
    expect(g.stdout).toMatch(/RolledOut\s+app\/roll\s+2 /);
    await client.delete("App", "roll", "default");
  }, 240_000);

  it("a crash loop: Started, then Restarted with the exit code, one Event whose count rises", async () => {
    await client.apply(app("crash", "echo crashing; exit 3", { restartPolicy: "Always" }));
    const restarted = await waitFor(
      "Restarted x3",
      async () => {
        const r = putsOf("crash").filter((e) => e.reason === "Restarted");
        return r.length > 0 && r[r.length - 1]!.count >= 3 ? r : undefined;
      },
      120_000,
    );
    // One Event, updated: the same name each time, count 1, 2, 3, ... (merged repeats may skip a number).
    expect(new Set(restarted.map((e) => e.metadata.name)).size).toBe(1);
    const counts = restarted.map((e) => e.count);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    expect(restarted[0]!).toMatchObject({ type: "Warning", involvedObject: { instance: "crash-0" } });
    expect(restarted[0]!.message).toMatch(/exit code 3/);
    const evs = putsOf("crash");
    const firstStart = indexOf(evs, (e) => e.reason === "Started");
    expect(firstStart).toBeGreaterThanOrEqual(0);
    expect(firstStart).toBeLessThan(indexOf(evs, (e) => e.reason === "Restarted"));
    // Only a few keys for any number of restarts.
    const listed = (await client.events({ namespace: "default" }, { involvedName: "crash" })).items;
    expect(listed.length).toBeLessThanOrEqual(4);

    const d = await runCli(["describe", "instance", "crash-0"], env);
    expect(d.stdout).toMatch(/Restarted\s+app\/crash\/crash-0\s+x\d+\s+.*exit code 3/);
    // No event carries an env value of the App.
    expect(JSON.stringify(seen)).not.toContain(SECRET);
    await client.delete("App", "crash", "default");
  }, 180_000);

  it("a failing readiness check is a Warning with the last result", async () => {
    await client.apply(
      app("unready", "exec sleep 100000", {
        checks: { readiness: { exec: { command: ["test", "-f", "/nope"] }, periodSeconds: 1, failureThreshold: 1 } },
      }),
    );
    const ev = await waitFor(
      "ReadinessCheckFailed",
      async () => putsOf("unready").find((e) => e.reason === "ReadinessCheckFailed"),
      60_000,
    );
    expect(ev).toMatchObject({ type: "Warning", involvedObject: { instance: "unready-0" } });
    expect(ev.message).toMatch(/^readiness check \(exec\) failed: /);
    await client.delete("App", "unready", "default");
  }, 120_000);

  it("an event expires after the TTL (its lease) once it stops recurring", async () => {
    // A crash loop of its own (so the test runs alone and in any order): once it has a Restarted
    // event, the App goes and the event stops recurring.
    await client.apply(app("expire", "echo crashing; exit 3", { restartPolicy: "Always" }));
    await waitFor(
      "a Restarted event of expire",
      async () => putsOf("expire").some((e) => e.reason === "Restarted"),
      120_000,
    );
    await client.delete("App", "expire", "default");
    // The last write of the crash loop's Restarted event:
    const lastPut = () => {
      const puts = seen.filter(
        (s) => s.type !== "DELETED" && s.event.reason === "Restarted" && s.event.involvedObject.name === "expire",
      );
      return puts[puts.length - 1]!;
    };
    const deleted = await waitFor(
      "the Restarted event to expire",
      async () =>
        seen.find(
          (s) => s.type === "DELETED" && s.event.reason === "Restarted" && s.event.involvedObject.name === "expire",
        ),
      (TTL_S + 20) * 1000,
    );
    const lived = (deleted.at - lastPut().at) / 1000;
    // At least the TTL after its last write; at most the lease-sharing window (a tenth) and etcd's expiry sweep more.
    expect(lived).toBeGreaterThanOrEqual(TTL_S - 0.5);
    expect(lived).toBeLessThan(TTL_S + 6);
    const listed = (await client.events({ namespace: "default" }, { involvedName: "expire", instance: "expire-0" }))
      .items;
    expect(listed.find((e) => e.reason === "Restarted")).toBeUndefined();
  }, 240_000);
});
