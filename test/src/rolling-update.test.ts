// Rolling updates without downtime, end to end: grove-server with its etcd,
// three agents as hosts in network namespaces, the real CNI plugins giving
// each instance its IP. A router-like client follows the endpoints watch
// (GET .../apps/{name}/endpoints?watch=1) and sends requests, one at a time,
// to the instance IPs it lists, throughout an update of the App's env. The
// requests leave from inside host h1's namespace (a small node process
// there, fed the target of each request), where the instance subnets are
// routed; nothing is routed in the machine's own namespace.
//
// Instance IPs here; published host ports (a stopped instance holds its
// port until its agent released it) are tested in
// rolling-update-host-ports.test.ts. Under Rolling (the default) no request fails; under
// Recreate, for comparison, the App has no endpoints for a while and requests
// fail (the count is printed).
//
// What the app has to do that is not Grove's part: an instance that is
// stopped keeps serving for 2 s after SIGTERM (the app's own graceful
// shutdown, so requests already routed to it by a router that has not yet
// seen the endpoints change still succeed), and it has a readiness check, so
// an instance is listed once it answers, not once its process started. (The
// router used to give each new endpoint a 500 ms warm-up instead; a full run
// on a quiet machine rolled three instances out within it and had no endpoint
// past its warm-up for two requests.)
import { GroveClient, type App } from "@grove/api";
import { HostCluster } from "./harness/hosts";
import { isReady, waitFor } from "./harness/processes";
import { route, type Traffic } from "./harness/router";

const INSTANCES = 3;
/** Pause between two requests: about 20 per second at most, bounded by MAX_REQUESTS. */
const REQUEST_GAP_MS = 50;
const MAX_REQUESTS = 4000;

function webApp(name: string, version: string, update?: App["spec"]["update"]): App {
  // httpd in the background; on SIGTERM the shell keeps it serving for 2 s, then stops it.
  const script =
    'd=/tmp/www; mkdir -p $d; echo "$VERSION $(hostname)" > $d/index.html; ' +
    'httpd -f -p 8080 -h $d & p=$!; trap "sleep 2; kill $p; exit 0" TERM; wait $p';
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, namespace: "default" },
    spec: {
      rootfs: "busybox",
      command: ["/bin/sh", "-c", script],
      env: { VERSION: version },
      instances: INSTANCES,
      stopGracePeriodSeconds: 5,
      checks: { readiness: { http: { port: 8080, path: "/" }, periodSeconds: 1 } },
      resources: { cpu: "50m", memory: "16Mi", pids: 16 },
      ...(update ? { update } : {}),
    },
  };
}

describe("rolling update: new instances available before old ones stop", () => {
  let cluster: HostCluster;
  let client: GroveClient;

  beforeAll(async () => {
    cluster = await HostCluster.start({ hosts: 3 });
    client = cluster.adminClient();
    const nodes = await waitFor(
      "three Ready nodes with subnets",
      async () => {
        const nodes = (await client.list("Node")).items;
        return nodes.length === 3 && nodes.every((n) => n.status?.subnet && isReady(n)) && nodes;
      },
      60_000,
    );
    // The operator's network routes instance subnets between nodes; here the test plays it.
    cluster.routeSubnets(Object.fromEntries(nodes.map((n) => [n.metadata.name, n.status!.subnet!])));
  }, 180_000);

  afterAll(async () => {
    for (const name of ["roll", "recreate"]) await client?.delete("App", name, "default").catch(() => undefined);
    await cluster?.destroy();
  }, 120_000);

  /** Every instance is of `version`, the App's status says so, and the endpoints serve only it. */
  async function rolledOutTo(name: string): Promise<void> {
    await waitFor(
      `${name} rolled out`,
      async () => {
        const app = await client.get("App", name, "default");
        const c = app.status?.conditions?.find((x) => x.type === "Progressing");
        return (
          app.status?.observedGeneration === app.metadata.generation &&
          app.status?.updated === INSTANCES &&
          app.status?.available === INSTANCES &&
          c?.reason === "Complete"
        );
      },
      120_000,
    );
  }

  async function deploy(name: string, update?: App["spec"]["update"]): Promise<void> {
    await client.apply(webApp(name, "v1", update));
    await rolledOutTo(name);
    await waitFor(`${name}'s endpoints`, async () => (await client.endpoints(name)).endpoints.length === INSTANCES);
  }

  async function update(name: string, up?: App["spec"]["update"]): Promise<{ traffic: Traffic; seconds: number }> {
    const router = await route(client, name, cluster.hosts[0]!, {
      gapMs: REQUEST_GAP_MS,
      warmUpMs: 0,
      maxRequests: MAX_REQUESTS,
    });
    await new Promise((r) => setTimeout(r, 1_500)); // traffic before the update
    const t0 = performance.now();
    await client.apply(webApp(name, "v2", up));
    try {
      await rolledOutTo(name);
      await waitFor(
        `${name}'s endpoints to list only new instances`,
        async () => {
          const items = (await client.list("Instance", { namespace: "default" })).items;
          const eps = (await client.endpoints(name)).endpoints;
          const v2 = (n: string) => items.find((i) => i.metadata.name === n)?.spec.env?.VERSION === "v2";
          return eps.length === INSTANCES && eps.every((e) => v2(e.instance));
        },
        60_000,
      );
    } finally {
      await new Promise((r) => setTimeout(r, 1_500)); // traffic after it
    }
    const seconds = (performance.now() - t0) / 1000;
    return { traffic: await router.stop(), seconds };
  }

  it("Rolling: zero failed requests while all instances are replaced, the status reports progress", async () => {
    await deploy("roll");
    const { traffic, seconds } = await update("roll");
    console.log(`rolling update: ${JSON.stringify({ ...traffic, rollout_s: seconds })}`);
    expect(traffic.errors).toEqual([]);
    expect(traffic.failed).toBe(0);
    // Both versions served: the requests spanned the update.
    expect(traffic.versions.v1).toBeGreaterThan(0);
    expect(traffic.versions.v2).toBeGreaterThan(0);
    expect(traffic.requests).toBeGreaterThan(40);
    // The old instances were stopped by the rollout, each after its replacement.
    const items = (await client.list("Instance", { namespace: "default" })).items.filter((i) => i.spec.app === "roll");
    const retired = items.filter((i) => i.status?.reason === "RolledOut");
    expect(retired.map((i) => i.spec.env?.VERSION)).toEqual(["v1", "v1", "v1"]);
    const app = await client.get("App", "roll", "default");
    expect(app.status).toMatchObject({ updated: 3, available: 3, ready: 3 });
  }, 300_000);

  it("Recreate, for comparison: every instance replaced at once, requests fail meanwhile", async () => {
    await deploy("recreate", { strategy: "Recreate" });
    const { traffic, seconds } = await update("recreate", { strategy: "Recreate" });
    console.log(`recreate update: ${JSON.stringify({ ...traffic, rollout_s: seconds })}`);
    // The client sees the outage (this is what the Rolling test would see without rolling updates).
    expect(traffic.failed).toBeGreaterThan(0);
    expect(traffic.versions.v2).toBeGreaterThan(0);
  }, 300_000);

  it("refuses bad spec.update values, naming the field, and writes nothing", async () => {
    const bad: [App["spec"]["update"], string][] = [
      [{ maxSurge: 0, maxUnavailable: 0 }, "/spec/update/maxUnavailable"],
      [{ maxSurge: -1 }, "/spec/update/maxSurge"],
      [{ minReadySeconds: 30, progressDeadlineSeconds: 20 }, "/spec/update/progressDeadlineSeconds"],
    ];
    for (const [up, pointer] of bad) {
      const err = await client.apply(webApp("bad", "v1", up)).catch((e: unknown) => e as Error);
      expect(err).toBeInstanceOf(Error);
      expect(String((err as Error).message)).toContain(pointer);
    }
    await expect(client.get("App", "bad", "default")).rejects.toThrow();
  });
});
