// Revisions, automatic rollback and canaries end to end: real etcd,
// grove-server, one agent as a host in its own network namespace probing
// busybox httpd instances (http readiness check), and the `grove` CLI.
//
// A version whose readiness file is never written ("bad") never becomes
// ready: it must get no traffic (never in the endpoints) and the App must
// return to the revision before it at the progress deadline, saying why. A
// canary update pauses with its N new instances, `grove rollout promote`
// finishes it and `grove rollout undo` returns to the revision before.
import { GroveClient, type App, type Instance } from "@grove/api";
import { HostCluster } from "./harness/hosts";
import { isReady as nodeReady, runCli, waitFor } from "./harness/processes";

/**
 * The progress deadline of the rollback test: what it waits out, so it is short; long enough that
 * the bad version's surge instance is seen running (not ready) first, which takes a few seconds.
 */
const DEADLINE_S = 15;
/** The canary test's deadline, never reached: a canary instance slow to start on a busy machine must not roll back. */
const CANARY_DEADLINE_S = 25;

function webApp(
  name: string,
  version: string,
  update: App["spec"]["update"] = {},
  instances = 2,
  deadlineS = DEADLINE_S,
): App {
  // The readiness file exists unless the version is "bad".
  const script =
    'mkdir -p /tmp/www; [ "$VERSION" = bad ] || echo "$VERSION" > /tmp/www/ready.html; exec httpd -f -p 8080 -h /tmp/www';
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, namespace: "default" },
    spec: {
      rootfs: "busybox",
      command: ["/bin/sh", "-c", script],
      env: { VERSION: version },
      instances,
      stopGracePeriodSeconds: 1,
      resources: { cpu: "50m", memory: "16Mi", pids: 16 },
      ports: [{ name: "http", containerPort: 8080 }],
      checks: { readiness: { http: { path: "/ready.html", port: "http" }, periodSeconds: 1, failureThreshold: 1 } },
      update: { progressDeadlineSeconds: deadlineS, ...update },
    },
  };
}

describe("rollouts: revisions, automatic rollback, canary", () => {
  let cluster: HostCluster;
  let client: GroveClient;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    cluster = await HostCluster.start({ hosts: 1 });
    client = cluster.adminClient();
    env = { GROVE_SERVER: cluster.server!.url, GROVE_TOKEN: cluster.server!.adminToken, GROVE_CONFIG: "" };
    await waitFor("a Ready node", async () => (await client.list("Node")).items.some((n) => nodeReady(n)), 60_000);
  }, 180_000);

  afterAll(async () => {
    for (const name of ["rb", "cn"]) await client?.delete("App", name, "default").catch(() => undefined);
    await cluster?.destroy();
  }, 120_000);

  const live = async (app: string): Promise<Instance[]> =>
    (await client.list("Instance", { namespace: "default" })).items.filter(
      (i) => i.spec.app === app && !["Exited", "Failed", "OOMKilled"].includes(i.status?.state ?? ""),
    );
  const progressing = (a: App) => a.status?.conditions?.find((c) => c.type === "Progressing");

  /** The App's current generation is observed with Progressing reason `reason`. */
  async function reaches(name: string, reason: string, timeoutMs = 120_000): Promise<App> {
    return waitFor(
      `${name} Progressing ${reason}`,
      async () => {
        const a = await client.get("App", name, "default");
        return a.status?.observedGeneration === a.metadata.generation && progressing(a)?.reason === reason && a;
      },
      timeoutMs,
    );
  }

  it("a version that never becomes ready gets no traffic and is rolled back at the deadline, saying why", async () => {
    await client.apply(webApp("rb", "v1"));
    await reaches("rb", "Complete");
    await waitFor("rb's two endpoints", async () => (await client.endpoints("rb")).endpoints.length === 2, 60_000);

    // Everything the endpoints list from now on, as a router following the watch sees it.
    const listed = new Set<string>();
    const watch = await client.watchEndpoints("rb");
    const following = (async () => {
      try {
        for await (const ev of watch) for (const e of ev.object.endpoints) listed.add(e.instance);
      } catch {
        // closed
      }
    })();
    const t0 = performance.now();
    await client.apply(webApp("rb", "bad"));
    const status = runCli(["rollout", "status", "rb", "--timeout", "3m"], env);
    const surge = await waitFor(
      "a running new-version instance that is not ready",
      async () =>
        (await live("rb")).find(
          (i) => i.spec.env?.VERSION === "bad" && i.status?.state === "Running" && i.status.ready === false,
        ),
      60_000,
    );

    const back = await reaches("rb", "RolledBack", (DEADLINE_S + 60) * 1000);
    const seconds = (performance.now() - t0) / 1000;
    console.log(`rolled back after ${seconds.toFixed(1)} s (deadline ${DEADLINE_S} s)`);
    // Not before the deadline (the instance never crashed), and not long after it.
    expect(seconds).toBeGreaterThanOrEqual(DEADLINE_S - 1);
    expect(seconds).toBeLessThan(DEADLINE_S + 30);
    const c = progressing(back)!;
    expect(c.status).toBe("False");
    expect(c.message).toContain("rolled back from revision 2 to revision 1");
    expect(c.message).toMatch(new RegExp(`instance rb-\\d-[0-9a-f]{5} never became ready`));
    // The last check whose outcome changed: the first failure (connection refused before httpd listened, or 404).
    expect(c.message).toMatch(/last readiness check \(http\): failed: (connect ECONNREFUSED|HTTP 404)/);
    expect(back.status?.rollout?.rolledBack).toMatchObject({ from: 2, to: 1, reason: "ProgressDeadlineExceeded" });
    expect(back.spec.env).toEqual({ VERSION: "v1" });

    // `grove rollout status` followed it live and failed.
    const cli = await status;
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain("RolledBack");

    // The bad instances are gone, the old ones serve on; none of the bad ones was ever an endpoint.
    await waitFor(
      "only v1 instances left",
      async () => {
        const items = await live("rb");
        return items.length === 2 && items.every((i) => i.spec.env?.VERSION === "v1");
      },
      60_000,
    );
    watch.close();
    await following;
    expect(listed.has(surge.metadata.name)).toBe(false);
    expect([...listed].sort()).toEqual(["rb-0", "rb-1"]);

    const history = await runCli(["rollout", "history", "rb"], env);
    expect(history.code).toBe(0);
    expect(history.stdout).toMatch(/^1 \(current\)/m);
    expect(history.stdout).toMatch(/^2 /m);
  }, 300_000);

  it("a canary pauses with N new instances, promote finishes it, undo returns to the revision before", async () => {
    await client.apply(webApp("cn", "v1", { canary: 1 }, 3, CANARY_DEADLINE_S));
    await reaches("cn", "Complete");

    await client.apply(webApp("cn", "v2", { canary: 1 }, 3, CANARY_DEADLINE_S));
    await reaches("cn", "CanaryPaused");
    // It stays there: exactly one new instance, the other two old ones running.
    await new Promise((r) => setTimeout(r, 3_000));
    let items = await live("cn");
    expect(items.map((i) => i.spec.env?.VERSION).sort()).toEqual(["v1", "v1", "v2"]);
    expect(progressing(await client.get("App", "cn", "default"))?.reason).toBe("CanaryPaused");

    const promote = await runCli(["rollout", "promote", "cn"], env);
    expect({ code: promote.code, stderr: promote.stderr }).toEqual({ code: 0, stderr: "" });
    const status = await runCli(["rollout", "status", "cn", "--timeout", "3m"], env);
    expect({ code: status.code, stderr: status.stderr }).toEqual({ code: 0, stderr: "" });
    expect(status.stdout).toContain("rolled out to revision 2");
    items = await live("cn");
    expect(items.map((i) => i.spec.env?.VERSION)).toEqual(["v2", "v2", "v2"]);

    const undo = await runCli(["rollout", "undo", "cn"], env);
    expect({ code: undo.code, stderr: undo.stderr }).toEqual({ code: 0, stderr: "" });
    // Straight back (no canary stop on the way to an older revision).
    const back = await reaches("cn", "Complete");
    expect(back.spec.env).toEqual({ VERSION: "v1" });
    expect(back.spec.update?.canary).toBe(1);
    expect(back.status?.rollout?.revision).toBe(1);
    await waitFor(
      "three v1 instances",
      async () => (await live("cn")).map((i) => i.spec.env?.VERSION).join() === "v1,v1,v1",
      60_000,
    );
  }, 300_000);

  it("refuses a canary larger than the instance count, naming the field, and writes nothing", async () => {
    const err = await client.apply(webApp("toobig", "v1", { canary: 3 }, 2)).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    expect(String((err as Error).message)).toContain("/spec/update/canary");
    await expect(client.get("App", "toobig", "default")).rejects.toThrow(/not found/);
  });
});
