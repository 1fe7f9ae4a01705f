// Health checks end to end: real etcd, grove-server and an agent in its own
// network namespace (a "host"), busybox httpd as the instance. The agent
// probes from inside the instance's network namespace (http and tcp, to its
// 127.0.0.1, through a socket the addon makes there) and runs a command in it
// (exec liveness); the test breaks and mends the files they look at through
// `grove exec`. A server that listens only on the instance's 127.0.0.1 passes
// (nothing outside the instance could reach it), a closed port fails.
import { GroveClient, type App, type Instance } from "@grove/api";
import { HostCluster } from "./harness/hosts";
import { isReady as nodeReady, runCli, waitFor } from "./harness/processes";

function webApp(): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name: "checked", namespace: "default" },
    spec: {
      rootfs: "busybox",
      command: [
        "/bin/sh",
        "-c",
        "mkdir -p /tmp/www && echo ok > /tmp/www/ready.html && touch /tmp/alive && exec httpd -f -p 8080 -h /tmp/www",
      ],
      instances: 1,
      stopGracePeriodSeconds: 1,
      resources: { cpu: "100m", memory: "32Mi", pids: 32 },
      ports: [{ name: "http", containerPort: 8080 }],
      checks: {
        readiness: { http: { path: "/ready.html", port: "http" }, periodSeconds: 1, failureThreshold: 1 },
        liveness: { exec: { command: ["test", "-f", "/tmp/alive"] }, periodSeconds: 1, failureThreshold: 2 },
      },
    },
  };
}

describe("health checks", () => {
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
    await cluster?.destroy();
  }, 120_000);

  const instances = async (): Promise<Instance[]> =>
    (await client.list("Instance", { namespace: "default" })).items.filter((i) => i.spec.app === "checked");
  const endpointNames = async () => (await client.endpoints("checked")).endpoints.map((e) => e.instance);
  async function exec(inst: Instance, ...argv: string[]): Promise<void> {
    const r = await runCli(["exec", inst.metadata.name, "--", ...argv], env);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
  }

  it("takes an instance out of endpoints while its readiness check fails, and back when it passes", async () => {
    await client.apply(webApp());
    const inst = await waitFor(
      "a ready instance in endpoints",
      async () => {
        const [i] = await instances();
        return i?.status?.ready === true && (await endpointNames()).includes(i.metadata.name) ? i : undefined;
      },
      90_000,
    );
    expect(inst.status!.lastCheck).toMatchObject({ ok: true });

    await exec(inst, "rm", "/tmp/www/ready.html");
    const unready = await waitFor(
      "the instance unready and out of endpoints",
      async () => {
        const [i] = await instances();
        return i?.status?.ready === false && (await endpointNames()).length === 0 ? i : undefined;
      },
      30_000,
    );
    // Still the same running instance: readiness does not restart it.
    expect(unready.metadata.uid).toBe(inst.metadata.uid);
    expect(unready.status!.state).toBe("Running");
    expect(unready.status!.lastCheck).toMatchObject({ check: "readiness", kind: "http", ok: false });
    expect(unready.status!.lastCheck!.message).toMatch(/HTTP 404/);

    await exec(inst, "sh", "-c", "echo ok > /tmp/www/ready.html");
    await waitFor(
      "the instance back in endpoints",
      async () => (await endpointNames()).includes(inst.metadata.name),
      30_000,
    );
  }, 180_000);

  it("restarts an instance whose liveness check fails, with reason LivenessFailed", async () => {
    // Applied here too (unchanged if the test before made it), so the test runs alone.
    await client.apply(webApp());
    const inst = await waitFor(
      "a Running instance",
      async () => (await instances()).find((i) => i.status?.state === "Running"),
      90_000,
    );
    await exec(inst, "rm", "/tmp/alive");
    const failed = await waitFor(
      "the instance Failed with reason LivenessFailed",
      async () => (await instances()).find((i) => i.metadata.uid === inst.metadata.uid && i.status?.state === "Failed"),
      60_000,
    );
    expect(failed.status!.reason).toBe("LivenessFailed");
    expect(failed.status!.message).toMatch(/liveness check failed 2 times/);
    // Its restart policy (Always) replaces it, and the replacement becomes ready.
    await waitFor(
      "a ready replacement",
      async () => (await instances()).find((i) => i.metadata.uid !== inst.metadata.uid && i.status?.ready === true),
      90_000,
    );
  }, 180_000);

  it("probes from inside the instance: a server on its 127.0.0.1 only is ready, a closed port is not", async () => {
    const loopbackApp = (name: string, readiness: NonNullable<App["spec"]["checks"]>["readiness"]): App => ({
      apiVersion: "grove/v1",
      kind: "App",
      metadata: { name, namespace: "default" },
      spec: {
        rootfs: "busybox",
        command: [
          "/bin/sh",
          "-c",
          "mkdir -p /tmp/www && echo ok > /tmp/www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /tmp/www",
        ],
        instances: 1,
        stopGracePeriodSeconds: 1,
        resources: { cpu: "50m", memory: "16Mi", pids: 16 },
        ports: [
          { name: "http", containerPort: 8080 },
          { name: "other", containerPort: 8081 },
        ],
        checks: { readiness },
      },
    });
    const of = async (app: string) =>
      (await client.list("Instance", { namespace: "default" })).items.find((i) => i.spec.app === app);
    await client.apply(loopbackApp("lo-http", { http: { port: "http" }, periodSeconds: 1, failureThreshold: 1 }));
    await client.apply(loopbackApp("lo-closed", { tcp: { port: "other" }, periodSeconds: 1, failureThreshold: 1 }));
    try {
      const ready = await waitFor(
        "lo-http ready",
        async () => {
          const i = await of("lo-http");
          return i?.status?.ready === true ? i : undefined;
        },
        90_000,
      );
      expect(ready.status!.lastCheck).toMatchObject({
        check: "readiness",
        kind: "http",
        ok: true,
        message: "HTTP 200",
      });
      expect((await client.endpoints("lo-http")).endpoints.map((e) => e.instance)).toEqual([ready.metadata.name]);
      // From the node (the agent's own namespace) the same port is closed: only a probe from inside passes.
      const fromNode = await cluster.execAsync(cluster.hosts[0]!, process.execPath, [
        "-e",
        `const s=require("net").connect(8080,${JSON.stringify(ready.status!.ip)});` +
          `s.on("connect",()=>{console.log("open");s.destroy()});s.on("error",(e)=>console.log(e.code))`,
      ]);
      expect(fromNode.trim()).toBe("ECONNREFUSED");

      const closed = await waitFor(
        "lo-closed running and reported unready",
        async () => {
          const i = await of("lo-closed");
          return i?.status?.state === "Running" && i.status.lastCheck?.ok === false ? i : undefined;
        },
        90_000,
      );
      expect(closed.status!.ready).toBe(false);
      expect(closed.status!.lastCheck).toMatchObject({ check: "readiness", kind: "tcp", ok: false });
      expect(closed.status!.lastCheck!.message).toMatch(/ECONNREFUSED 127\.0\.0\.1:8081/);
      expect((await client.endpoints("lo-closed")).endpoints).toEqual([]);
    } finally {
      await client.delete("App", "lo-http", "default").catch(() => undefined);
      await client.delete("App", "lo-closed", "default").catch(() => undefined);
    }
  }, 240_000);
});
