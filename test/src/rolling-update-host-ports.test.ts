// A rolling update of an App with a dynamic host port, all instances on one
// harness host: grove-server with its etcd, one agent in a network namespace,
// the real CNI portmap plugin publishing each instance's port with DNAT rules.
//
// A stopped (RolledOut) instance keeps serving for 4 s after SIGTERM with its
// port's DNAT rule in place; the scheduler must not hand that port to the
// next new instance on the same node until the agent reports the old one
// released (status.releasedAt). A router-like client follows the endpoints
// watch and sends every request to the published address (hostIP:hostPort)
// of a listed instance; each answer names the instance that served it
// ("$VERSION $(hostname)"), so a request misrouted to an old process is
// seen; and each new instance must have been placed after any old one with
// its port was released.
import { GroveClient, type App, type Endpoints, type Instance } from "@grove/api";
import { HostCluster } from "./harness/hosts";
import { waitFor } from "./harness/processes";
import { httpGet } from "./harness/probes";

const INSTANCES = 3;
const REQUEST_GAP_MS = 40;

function webApp(version: string): App {
  const script =
    'd=/tmp/www; mkdir -p $d; echo "$VERSION $(hostname)" > $d/index.html; ' +
    'httpd -f -p 8080 -h $d & p=$!; trap "sleep 4; kill $p; exit 0" TERM; wait $p';
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name: "hp", namespace: "default" },
    spec: {
      rootfs: "busybox",
      command: ["/bin/sh", "-c", script],
      env: { VERSION: version },
      instances: INSTANCES,
      stopGracePeriodSeconds: 8,
      resources: { cpu: "50m", memory: "16Mi", pids: 16 },
      ports: [{ name: "http", containerPort: 8080 }], // no hostPort: one from the dynamic range
      checks: { readiness: { tcp: { port: "http" }, periodSeconds: 1 } },
    },
  };
}

describe("rolling update with a dynamic host port on one node", () => {
  let cluster: HostCluster;
  let client: GroveClient;

  beforeAll(async () => {
    cluster = await HostCluster.start({ hosts: 1 });
    client = cluster.adminClient();
    await cluster.waitAllReady(client);
  }, 180_000);

  afterAll(async () => {
    await client?.delete("App", "hp", "default").catch(() => undefined);
    await cluster?.destroy();
  }, 120_000);

  it("gives new instances ports the stopped ones no longer hold; every request reaches the instance it was sent to", async () => {
    await client.apply(webApp("v1"));
    await waitFor("v1 ready", async () => (await client.endpoints("hp")).endpoints.length === INSTANCES, 120_000);

    // The router: sends only to published addresses the endpoints watch lists.
    const watch = await client.watchEndpoints("hp");
    let current: Endpoints["endpoints"] = [];
    const following = (async () => {
      try {
        for await (const ev of watch) current = ev.object.endpoints;
      } catch {
        // closed
      }
    })();
    // misrouted: answered by another instance than the one the address was listed for.
    const t = { requests: 0, misrouted: 0, errors: 0, served: {} as Record<string, number>, log: [] as string[] };
    let stopped = false;
    let next = 0;
    const sending = (async () => {
      while (!stopped) {
        const targets = current.flatMap((e) =>
          e.ports.flatMap((p) => (p.address ? [{ instance: e.instance, address: p.address }] : [])),
        );
        if (targets.length > 0) {
          const { instance, address } = targets[next++ % targets.length]!;
          t.requests++;
          const answer = await httpGet(address, 3000);
          const [, version, servedBy] = answer.split(" ");
          if (answer.startsWith("ok ")) t.served[version!] = (t.served[version!] ?? 0) + 1;
          if (answer.startsWith("ok ") && servedBy !== instance) t.misrouted++;
          else if (!answer.startsWith("ok ")) t.errors++;
          if (t.log.length < 10 && (!answer.startsWith("ok ") || servedBy !== instance)) {
            t.log.push(`${new Date().toISOString()} ${instance} at ${address}: ${answer}`);
          }
        }
        await new Promise((r) => setTimeout(r, REQUEST_GAP_MS));
      }
    })();

    await new Promise((r) => setTimeout(r, 1_000));
    await client.apply(webApp("v2"));
    try {
      await waitFor(
        "v2 rolled out, old instances released",
        async () => {
          const app = await client.get("App", "hp", "default");
          const items = (await client.list("Instance", { namespace: "default" })).items;
          const old = items.filter((i) => i.spec.env?.VERSION === "v1");
          return (
            app.status?.conditions?.find((c) => c.type === "Progressing")?.reason === "Complete" &&
            app.status?.available === INSTANCES &&
            old.length === INSTANCES &&
            old.every((i) => i.status?.releasedAt)
          );
        },
        180_000,
      );
      await new Promise((r) => setTimeout(r, 1_000));
    } finally {
      stopped = true;
      await sending;
      watch.close();
      await following;
    }
    console.log(`host-port rolling update: ${JSON.stringify(t)}`);
    for (const i of (await client.list("Instance", { namespace: "default" })).items) {
      const st = i.status;
      console.log(
        `${i.metadata.name} ${i.spec.ports?.[0]?.hostPort} sched=${st?.scheduledAt} start=${st?.startedAt} fin=${st?.finishedAt} rel=${st?.releasedAt}`,
      );
    }

    // Every new instance got a port no unreleased instance held when it was placed.
    const items: Instance[] = (await client.list("Instance", { namespace: "default" })).items;
    const portOf = (i: Instance) => i.spec.ports?.[0]?.hostPort;
    const olds = items.filter((i) => i.spec.env?.VERSION === "v1");
    const news = items.filter((i) => i.spec.env?.VERSION === "v2");
    expect(olds.map((i) => i.status?.reason)).toEqual(["RolledOut", "RolledOut", "RolledOut"]);
    expect(news).toHaveLength(INSTANCES);
    for (const n of news) {
      expect(portOf(n)).toBeGreaterThan(0);
      for (const o of olds.filter((x) => portOf(x) === portOf(n))) {
        const placed = Date.parse(n.status!.scheduledAt!);
        const released = Date.parse(o.status!.releasedAt!);
        expect({ port: portOf(n), old: o.metadata.name, placedAfterRelease: placed >= released }).toEqual({
          port: portOf(n),
          old: o.metadata.name,
          placedAfterRelease: true,
        });
      }
    }
    // No request reached an old process through a port handed on too early.
    expect(t.misrouted).toBe(0);
    // Nor failed any other way (refused by a new instance counted available before it listened, say).
    expect(t.log).toEqual([]);
    expect(t.errors).toBe(0);
    expect(t.served.v1).toBeGreaterThan(0);
    expect(t.served.v2).toBeGreaterThan(0);
  }, 400_000);
});
