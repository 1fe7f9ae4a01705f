// Rollout: requests lost while an App is updated. Three harness hosts
// (network namespaces, real agents, real containers, the real CNI plugins),
// grove-server with default settings. An App of 6 instances whose process
// waits about 2 s before it listens (busybox httpd behind `sleep 2`), with an
// http readiness check (probed from inside each instance), and that keeps
// serving 2 s after SIGTERM (graceful shutdown). A router-like client
// (test/src/harness/router.ts) follows the endpoints watch and sends requests throughout,
// only to listed instance IPs. One rolling update (the default: maxSurge 1,
// maxUnavailable 0) of its env, then, for comparison, the same App under
// `update.strategy: Recreate` (today's behaviour before rolling updates)
// updated the same way. Target: failed_requests 0. A request fails on an
// error or timeout (3 s), or when the list is empty (the router has nowhere
// to send it).
import { performance } from "node:perf_hooks";
import { GroveClient, type App } from "@grove/api";
import { HostCluster } from "../src/harness/hosts";
import { waitFor } from "../src/harness/processes";
import { route, type Traffic } from "../src/harness/router";
import type { BenchReport } from "./run";

const INSTANCES = 6;
const GAP_MS = 50;

function app(name: string, version: string, update: App["spec"]["update"]): App {
  const script =
    'd=/tmp/www; mkdir -p $d; echo "$VERSION $(hostname)" > $d/index.html; sleep 2; ' +
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
      resources: { cpu: "50m", memory: "16Mi", pids: 16 },
      ports: [{ name: "http", containerPort: 8080 }],
      checks: { readiness: { http: { port: "http", path: "/" }, periodSeconds: 1, failureThreshold: 1 } },
      update,
    },
  };
}

/** The App's instances are all of `version` and ready, and the endpoints list exactly those. */
async function settledAt(client: GroveClient, name: string, version: string): Promise<boolean> {
  const a = await client.get("App", name, "default");
  const items = (await client.list("Instance", { namespace: "default" })).items.filter((i) => i.spec.app === name);
  const eps = (await client.endpoints(name)).endpoints;
  const ofVersion = (n: string) => items.find((i) => i.metadata.name === n)?.spec.env?.VERSION === version;
  return (
    a.status?.observedGeneration === a.metadata.generation &&
    a.status?.conditions?.find((c) => c.type === "Progressing")?.reason === "Complete" &&
    eps.length === INSTANCES &&
    eps.every((e) => ofVersion(e.instance))
  );
}

/** Deploys v1, routes traffic, updates to v2; returns the traffic and the seconds the update took. */
async function measure(
  cluster: HostCluster,
  client: GroveClient,
  name: string,
  update: App["spec"]["update"],
): Promise<{ traffic: Traffic; seconds: number; instances: string[] }> {
  await client.apply(app(name, "v1", update));
  await waitFor(`${name} v1 settled`, () => settledAt(client, name, "v1"), 300_000);
  const router = await route(client, name, cluster.hosts[0]!, { gapMs: GAP_MS });
  await new Promise((r) => setTimeout(r, 1_500)); // traffic before the update
  const t0 = performance.now();
  let seconds: number;
  let traffic: Traffic;
  try {
    await client.apply(app(name, "v2", update));
    await waitFor(`${name} v2 settled`, () => settledAt(client, name, "v2"), 600_000);
    seconds = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 1_500)); // traffic after it
  } finally {
    traffic = await router.stop();
  }
  const instances = (await client.list("Instance", { namespace: "default" })).items
    .filter((i) => i.spec.app === name)
    .map(
      (i) =>
        `${i.metadata.name} ${i.status?.ip ?? "-"} ${i.spec.env?.VERSION} started ${i.status?.startedAt ?? "-"} ` +
        `finished ${i.status?.finishedAt ?? "-"} ${i.status?.reason ?? ""}`,
    );
  await client.delete("App", name, "default");
  await waitFor(`${name}'s instances gone`, async () => {
    const items = (await client.list("Instance", { namespace: "default" })).items;
    return !items.some((i) => i.spec.app === name);
  });
  return { traffic, seconds, instances };
}

export async function run(): Promise<BenchReport> {
  const cluster = await HostCluster.start({ hosts: 3, id: `ro${process.pid}` });
  const client = new GroveClient({ server: cluster.server!.url, token: cluster.server!.adminToken });
  try {
    await cluster.waitAllReady(client);
    const nodes = (await client.list("Node")).items;
    // The operator's network routes instance subnets between nodes; here the bench plays it.
    cluster.routeSubnets(Object.fromEntries(nodes.map((n) => [n.metadata.name, n.status!.subnet!])));
    const rolling = await measure(cluster, client, "rollout", { strategy: "Rolling" });
    const recreate = await measure(cluster, client, "recreate", { strategy: "Recreate" });
    const r3 = (x: number) => Math.round(x * 1000) / 1000;
    const row = (name: string, m: { traffic: Traffic; seconds: number }) => ({
      name,
      requests: m.traffic.requests,
      failed: m.traffic.failed,
      no_endpoint: m.traffic.noEndpoint,
      seconds: r3(m.seconds),
      served_v1: m.traffic.versions.v1 ?? 0,
      served_v2: m.traffic.versions.v2 ?? 0,
    });
    if (rolling.traffic.errors.length > 0) {
      // What failed and when, next to each instance's start and end, to tell why.
      console.error(`rolling update errors: ${rolling.traffic.errors.join("; ")}`);
      for (const i of rolling.instances) console.error(i);
    }
    return {
      title:
        `rollout: ${INSTANCES} instances on 3 hosts, each listening ~2 s after start (http readiness check), ` +
        `a router following the endpoints watch, a request every ${GAP_MS} ms; one rolling update ` +
        "(maxSurge 1, maxUnavailable 0) and one Recreate update (target: 0 failed requests for Rolling)",
      rows: [row("Rolling", rolling), row("Recreate", recreate)],
      results: {
        instances: INSTANCES,
        failed_requests: rolling.traffic.failed,
        requests: rolling.traffic.requests,
        rollout_s: r3(rolling.seconds),
        recreate_failed_requests: recreate.traffic.failed,
        recreate_requests: recreate.traffic.requests,
        recreate_no_endpoint_requests: recreate.traffic.noEndpoint,
        recreate_s: r3(recreate.seconds),
      },
    };
  } finally {
    await client.delete("App", "rollout", "default").catch(() => undefined);
    await client.delete("App", "recreate", "default").catch(() => undefined);
    await cluster.destroy();
  }
}
