// An App deleted and another created at once that wants the same fixed host
// port, on one harness host: grove-server with its etcd, one agent in a
// network namespace, the real CNI portmap plugin publishing the ports.
//
// The old instance keeps serving for 4 s after SIGTERM, its port's DNAT rule
// in place until its agent tears its network down. Its Node holds the port
// (status.heldHostPorts) from the delete until the agent reports the
// container gone, so the new instance is not placed on that port before: a
// request to the published address while the new instance is listed Running
// never reaches the old process, and the new one starts once the old is gone.
import { GroveClient, type App, type Instance } from "@grove/api";
import { HostCluster } from "./harness/hosts";
import { waitFor } from "./harness/processes";
import { httpGet } from "./harness/probes";

const PORT = 18090;

function app(name: string): App {
  const script =
    'd=/tmp/www; mkdir -p $d; echo "$(hostname)" > $d/index.html; ' +
    'httpd -f -p 8080 -h $d & p=$!; trap "sleep 4; kill $p; exit 0" TERM; wait $p';
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, namespace: "default" },
    spec: {
      rootfs: "busybox",
      command: ["/bin/sh", "-c", script],
      instances: 1,
      stopGracePeriodSeconds: 8,
      resources: { cpu: "50m", memory: "16Mi", pids: 16 },
      ports: [{ name: "http", containerPort: 8080, hostPort: PORT }],
    },
  };
}

describe("host ports of a deleted App on one node", () => {
  let cluster: HostCluster;
  let client: GroveClient;

  beforeAll(async () => {
    cluster = await HostCluster.start({ hosts: 1 });
    client = cluster.adminClient();
    await cluster.waitAllReady(client);
  }, 180_000);

  afterAll(async () => {
    for (const name of ["hold-old", "hold-new"]) await client?.delete("App", name, "default").catch(() => undefined);
    await cluster?.destroy();
  }, 120_000);

  it("keeps the port held until the old container is gone: the new instance is never answered by it", async () => {
    const address = `${cluster.hosts[0]!.address}:${PORT}`;
    await client.apply(app("hold-old"));
    const instanceOf = async (a: string): Promise<Instance | undefined> =>
      (await client.list("Instance", { namespace: "default" })).items.find((i) => i.spec.app === a);
    const old = await waitFor(
      `hold-old to answer on ${address}`,
      async () => {
        const i = await instanceOf("hold-old");
        return i?.status?.state === "Running" && (await httpGet(address, 2000)) === `ok ${i.metadata.name}`
          ? i
          : undefined;
      },
      120_000,
    );

    await client.delete("App", "hold-old", "default");
    await client.apply(app("hold-new"));

    // A router's view: send to the new instance's published address once it is listed Running.
    const seen = { held: false, pendingWhileHeld: false, requests: 0, misrouted: [] as string[] };
    const node = cluster.hosts[0]!.name;
    const fresh = await waitFor(
      "hold-new Running and answering on its port",
      async () => {
        const n = await client.get("Node", node);
        const held = (n.status?.heldHostPorts ?? []).some((h) => h.uid === old.metadata.uid);
        const inst = await instanceOf("hold-new");
        if (held) {
          seen.held = true;
          if (inst && !inst.spec.nodeName) seen.pendingWhileHeld = true;
        }
        if (inst?.status?.state !== "Running") return undefined;
        seen.requests++;
        const answer = await httpGet(address, 2000);
        if (answer === `ok ${old.metadata.name}`) seen.misrouted.push(answer);
        return answer === `ok ${inst.metadata.name}` ? inst : undefined;
      },
      60_000,
    );
    console.log(`host-port holds: ${JSON.stringify(seen)}`);
    // Listed Running, its address never answered by the old container.
    expect(seen.misrouted).toEqual([]);
    // The port was held for the deleted instance while the new one waited.
    expect(seen.held).toBe(true);
    expect(seen.pendingWhileHeld).toBe(true);
    expect(fresh.spec.ports?.[0]?.hostPort).toBe(PORT);
    // The hold went with the old container.
    const n = await client.get("Node", node);
    expect(n.status?.heldHostPorts ?? []).toEqual([]);
    await client.delete("App", "hold-new", "default");
  }, 180_000);
});
