// Published ports and instances cannot reach the node's own services
// (issue 10): reserved host ports are refused at apply and by the agent; the
// node's connections to 127.0.0.1 are never DNATed into an instance; an
// instance cannot open connections to its node's addresses beyond what the
// operator allows; a SYN for 127.0.0.1 that a container with NET_RAW sends to
// the bridge gets no answer (CVE-2020-8558). One agent host in a network
// namespace (test/src/harness/hosts.ts), real CNI plugins, real iptables.
// Processes listening in the host's namespace stand in for grove-server,
// the agents' gRPC and etcd on that node (the harness runs the real control
// plane on the machine, outside every host).
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as readline from "node:readline";
import { GroveClient, type App, type Instance } from "@grove/api";
import { HostCluster, type Host } from "./harness/hosts";
import { REPO_ROOT, isReady, runCli, waitFor } from "./harness/processes";

const PUBLISHED = 18090;
/** A node port the agent allows instances to reach (its --node-ports-allowed), like DNS on the node. */
const NODE_DNS = 15353;
/** Allowed too, but its service listens on 127.0.0.1 only (a loopback-only stub, as systemd-resolved's). */
const NODE_LOOPBACK_ONLY = 15354;
const NODE_SERVICES = [7480, 7481, 2479];

function app(name: string, spec: Partial<App["spec"]>): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, namespace: "default" },
    spec: {
      rootfs: "busybox",
      command: ["sleep", "1000"],
      instances: 1,
      stopGracePeriodSeconds: 1,
      resources: { cpu: "100m", memory: "32Mi", pids: 32 },
      ...spec,
    },
  };
}

/**
 * TCP services in a host's network namespace: each "ADDR:PORT:LABEL" answers
 * every connection with an HTTP/1.0 response whose body is LABEL (fetch and
 * nc both read it).
 */
async function standIns(host: Host, specs: string[]): Promise<ChildProcess> {
  const script = `
    const net = require("net");
    let up = 0;
    for (const spec of process.argv.slice(1)) {
      const [addr, port, label] = spec.split(":");
      net.createServer((s) => {
        let done = false;
        const answer = () => {
          if (done) return;
          done = true;
          s.end("HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\n" + label + "\\n");
        };
        s.on("data", answer);
        s.on("error", () => undefined);
        setTimeout(answer, 200);
      }).listen(Number(port), addr, () => {
        if (++up === process.argv.length - 1) console.log("ready");
      });
    }`;
  const proc = spawn("nsenter", [`--net=/run/netns/${host.netns}`, process.execPath, "-e", script, ...specs], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("the stand-in services did not start")), 15_000);
    readline.createInterface({ input: proc.stdout! }).on("line", (l) => {
      if (l === "ready") {
        clearTimeout(t);
        resolve();
      }
    });
    proc.on("exit", (code) => reject(new Error(`the stand-in services exited with ${code}`)));
  });
  return proc;
}

describe("instances cannot reach the node's own services", () => {
  let cluster: HostCluster;
  let client: GroveClient;
  let h1: Host;
  let services: ChildProcess | undefined;

  beforeAll(async () => {
    cluster = await HostCluster.start({
      hosts: 1,
      // The control plane lets 32768-40000 through, so that the agent's own check can be seen.
      serverArgs: ["--egress-default", "deny", "--allowed-host-ports", "10000-40000"],
      agentArgs: ["--node-ports-allowed", `tcp/${NODE_DNS}-${NODE_LOOPBACK_ONLY}`],
    });
    client = cluster.adminClient();
    h1 = cluster.host("h1");
    await waitFor("a Ready node with a subnet", async () => {
      const [n] = (await client.list("Node")).items;
      return n && n.status?.subnet && isReady(n);
    });
    services = await standIns(h1, [
      `127.0.0.1:${PUBLISHED}:grove-server stand-in`,
      ...NODE_SERVICES.map((p) => `0.0.0.0:${p}:node-service`),
      `0.0.0.0:${NODE_DNS}:node-service`,
      `127.0.0.1:${NODE_LOOPBACK_ONLY}:node-service`,
    ]);
  }, 180_000);

  afterAll(async () => {
    if (services?.pid !== undefined && services.exitCode === null) {
      process.kill(services.pid, "SIGKILL");
      await new Promise((r) => services!.once("exit", r));
    }
    await cluster?.destroy();
  }, 120_000);

  async function running(name: string): Promise<Instance> {
    return waitFor(
      `a Running instance of ${name}`,
      async () =>
        (await client.list("Instance", { namespace: "default" })).items.find(
          (i) => i.spec.app === name && i.status?.state === "Running" && i.status.ip,
        ),
      90_000,
    );
  }

  async function gone(name: string): Promise<void> {
    await client.delete("App", name, "default");
    await waitFor(
      `the instances of ${name} to go`,
      async () => !(await client.list("Instance", { namespace: "default" })).items.some((i) => i.spec.app === name),
      60_000,
    );
  }

  function logOf(inst: Instance): string {
    try {
      return fs.readFileSync(`${h1.stateDir}/logs/${inst.metadata.uid}.log`, "utf8");
    } catch {
      return "";
    }
  }

  /** The lines of the last complete round (between the last two ROUND lines) after the first `skip` rounds. */
  async function round(inst: Instance, skip = 0): Promise<string[]> {
    return waitFor(
      `a probe round of ${inst.metadata.name}`,
      async () => {
        const lines = logOf(inst).split("\n");
        const ends = lines.flatMap((l, i) => (l === "ROUND" ? [i] : []));
        if (ends.length < skip + 2) return undefined;
        const end = ends[ends.length - 1]!;
        return lines.slice(ends[ends.length - 2]! + 1, end);
      },
      60_000,
    );
  }

  const gatewayOf = (inst: Instance) => inst.status!.ip!.replace(/\.\d+$/, ".1");

  it("refuses hostPort 7480, 7481, 2479, 22 and the server's own port at apply and plan, naming the field, writing nothing", async () => {
    const before = (await client.list("App")).items.map((a) => `${a.metadata.name}@${a.metadata.resourceVersion}`);
    const ownPort = Number(new URL(cluster.server!.url).port);
    const cases: Array<[number, RegExp]> = [
      [7480, /hostPort 7480\/tcp is reserved: it is grove-server's HTTP API/],
      [7481, /hostPort 7481\/tcp is reserved: it is grove-server's agent gRPC endpoint/],
      [2479, /hostPort 2479\/tcp is reserved: it is the embedded etcd's client port/],
      [22, /hostPort 22\/tcp is reserved: it is sshd/],
      [ownPort, /is reserved: it is grove-server's HTTP API/],
    ];
    const cliEnv = {
      GROVE_SERVER: cluster.server!.url,
      GROVE_TOKEN: cluster.server!.adminToken,
      GROVE_CONFIG: "",
      HOME: cluster.dir,
    };
    for (const [hostPort, message] of cases) {
      const bad = app("hijack", { ports: [{ name: "http", containerPort: 8080, hostPort }] });
      const err = (await client.apply(bad).catch((e: unknown) => e)) as {
        code?: string;
        details?: Array<{ path: string; message: string }>;
      };
      expect(err.code).toBe("ValidationFailed");
      expect(err.details).toEqual([{ path: "/spec/ports/0/hostPort", message: expect.stringMatching(message) }]);

      // The HTTP status, and what the CLI prints for apply and apply --plan.
      const res = await fetch(`${cluster.server!.url}/v1/namespaces/default/apps/hijack`, {
        method: "PUT",
        headers: { authorization: `Bearer ${cluster.server!.adminToken}`, "content-type": "application/json" },
        body: JSON.stringify(bad),
      });
      expect(res.status).toBe(400);
      const file = path.join(cluster.dir, `hijack-${hostPort}.json`);
      fs.writeFileSync(file, JSON.stringify(bad));
      const cli = await runCli(["apply", "-f", file], cliEnv);
      expect(cli.code).toBe(1);
      expect(cli.stderr).toMatch(/\/spec\/ports\/0\/hostPort: hostPort \d+\/tcp is reserved/);
      const plan = await runCli(["apply", "--plan", "-f", file], cliEnv);
      expect(plan.code).toBe(1);
      expect(plan.stderr).toMatch(
        /\/items\/0\/spec\/ports\/0\/hostPort: App default\/hijack: hostPort \d+\/tcp is reserved/,
      );
    }
    await expect(client.get("App", "hijack", "default")).rejects.toMatchObject({ code: "NotFound" });
    const after = (await client.list("App")).items.map((a) => `${a.metadata.name}@${a.metadata.resourceVersion}`);
    expect(after).toEqual(before);
  });

  it("has the agent refuse a host port its own flags do not allow, whatever the control plane accepted", async () => {
    await client.apply(app("far", { ports: [{ name: "http", containerPort: 8080, hostPort: 35000 }] }));
    const failed = await waitFor(
      "the instance to fail with HostPortRefused",
      async () =>
        (await client.list("Instance", { namespace: "default" })).items.find(
          (i) => i.spec.app === "far" && i.status?.reason === "HostPortRefused",
        ),
      60_000,
    );
    expect(failed.status!.state).toBe("Failed");
    expect(failed.status!.message).toBe(
      'port "http": hostPort 35000/tcp is outside this node\'s allowed host ports 10000-32767 (grove-agent --allowed-host-ports)',
    );
    expect(cluster.exec(h1, "iptables", ["-t", "nat", "-S"])).not.toMatch(/35000/);
    await gone("far");
  });

  it("never DNATs the node's own connections to 127.0.0.1 into an instance that publishes the port", async () => {
    const httpd = [
      "/bin/sh",
      "-c",
      'mkdir -p /tmp/www; echo "hello from $(hostname)" > /tmp/www/healthz; exec httpd -f -p 8080 -h /tmp/www',
    ];
    await client.apply(
      app("pub", { command: httpd, ports: [{ name: "http", containerPort: 8080, hostPort: PUBLISHED }] }),
    );
    const inst = await running("pub");
    // Published: the machine reaches the instance on the node's address.
    const fromOutside = await waitFor("the published port to answer", async () => {
      const res = await fetch(`http://${h1.address}:${PUBLISHED}/healthz`, { signal: AbortSignal.timeout(3000) });
      return res.ok ? res.text() : undefined;
    });
    expect(fromOutside.trim()).toBe(`hello from ${inst.metadata.name}`);
    // On the node: 127.0.0.1 is the node's own service; the node's address is still the instance.
    // An HTTP GET made on the node (in its network namespace), as `curl` would.
    const getOnNode = (url: string) =>
      cluster.execAsync(h1, process.execPath, [
        "-e",
        "fetch(process.argv[1], { signal: AbortSignal.timeout(5000) }).then((r) => r.text()).then((t) => process.stdout.write(t))",
        url,
      ]);
    expect((await getOnNode(`http://127.0.0.1:${PUBLISHED}/healthz`)).trim()).toBe("grove-server stand-in");
    expect((await getOnNode(`http://${h1.address}:${PUBLISHED}/healthz`)).trim()).toBe(
      `hello from ${inst.metadata.name}`,
    );
    // portmap turned route_localnet on for the bridge; the agent turned it off again.
    expect(cluster.exec(h1, "sysctl", ["-n", "net.ipv4.conf.grove0.route_localnet"]).trim()).toBe("0");
    await gone("pub");
  });

  it("rejects an instance's connections to its node's addresses but for the node ports the operator allows", async () => {
    const n = await client.list("Node");
    const gateway = n.items[0]!.status!.subnet!.replace(/\.0\/\d+$/, ".1");
    const targets = [h1.address, gateway].flatMap((addr) => [...NODE_SERVICES, NODE_DNS].map((p) => `${addr}:${p}`));
    const loop = targets
      .map((t) => {
        const [h, p] = t.split(":");
        return `if echo | nc -w 2 ${h} ${p} 2>/dev/null | grep -q node-service; then echo "OK ${t}"; else echo "FAIL ${t}"; fi`;
      })
      .join("; ");
    await client.apply(
      app("probe", { command: ["/bin/sh", "-c", `while true; do ${loop}; echo ROUND; sleep 0.5; done`] }),
    );
    const probe = await running("probe");
    expect(gatewayOf(probe)).toBe(gateway);
    const seen = new Map((await round(probe)).map((l) => [l.split(" ")[1]!, l.split(" ")[0]!]));
    const want = new Map(targets.map((t) => [t, t.endsWith(`:${NODE_DNS}`) ? "OK" : "FAIL"]));
    expect(seen).toEqual(want);
    await gone("probe");
  });

  it("drops a SYN for 127.0.0.1 that a container with NET_RAW sends to the bridge, even with route_localnet on", async () => {
    // A root filesystem with a static raw-socket sender next to busybox.
    const rootfs = path.join(cluster.rootfsDir, "rawsyn");
    execFileSync("cp", ["-a", path.join(cluster.rootfsDir, "busybox"), rootfs]);
    execFileSync("gcc", [
      "-static",
      "-O2",
      "-o",
      path.join(rootfs, "bin", "raw-syn"),
      path.join(REPO_ROOT, "test", "src", "harness", "raw-syn.c"),
    ]);
    const gateway = (await client.list("Node")).items[0]!.status!.subnet!.replace(/\.0\/\d+$/, ".1");
    const probes = [
      `127.0.0.1 ${NODE_LOOPBACK_ONLY}`, // allowed node port, listening on loopback only
      `127.0.0.1 2479`, // the etcd stand-in
      `${gateway} ${NODE_DNS}`, // control: the same frames reach an allowed port on the node's address
    ];
    // The frames go to the bridge's MAC, which the container learns by ARP (a ping to its gateway).
    const loop = probes.map((p) => `raw-syn eth0 $mac ${p} 1500`).join("; ");
    const script =
      `ping -c 1 -W 1 ${gateway} >/dev/null 2>&1; mac=$(awk '$1 == "${gateway}" { print $4 }' /proc/net/arp); ` +
      `echo "MAC $mac"; while true; do ${loop}; echo ROUND; done`;
    await client.apply(
      app("rawsyn", {
        rootfs: "rawsyn",
        command: ["/bin/sh", "-c", script],
        security: { capabilities: { add: ["NET_RAW"] } },
      }),
    );
    const inst = await running("rawsyn");
    const bridgeMac = (
      JSON.parse(cluster.exec(h1, "ip", ["-j", "link", "show", "grove0"])) as Array<{ address: string }>
    )[0]!.address;
    const verdicts = (lines: string[]) => new Map(lines.map((l) => [l.split(" ")[0]!, l.split(" ")[1]!]));
    const want = new Map([
      [`127.0.0.1:${NODE_LOOPBACK_ONLY}`, "NOANSWER"],
      ["127.0.0.1:2479", "NOANSWER"],
      [`${gateway}:${NODE_DNS}`, "SYNACK"],
    ]);
    expect(verdicts(await round(inst))).toEqual(want);
    expect(logOf(inst)).toContain(`MAC ${bridgeMac}\n`);

    // portmap turns route_localnet on at every CNI ADD (the agent turns it off after): the drop must hold alone.
    cluster.exec(h1, "sysctl", ["-qw", "net.ipv4.conf.grove0.route_localnet=1"]);
    try {
      const done = logOf(inst)
        .split("\n")
        .filter((l) => l === "ROUND").length;
      expect(verdicts(await round(inst, done + 1))).toEqual(want);
    } finally {
      cluster.exec(h1, "sysctl", ["-qw", "net.ipv4.conf.grove0.route_localnet=0"]);
    }
    await gone("rawsyn");
  });

  it("leaves none of its rules behind after the node clean-up", async () => {
    const rules = () => ["raw", "filter", "nat"].map((t) => cluster.exec(h1, "iptables", ["-t", t, "-S"])).join("\n");
    expect(rules()).toMatch(/GROVE-NODE-INPUT/);
    expect(rules()).toMatch(/GROVE-NODE-RAW/);
    expect(rules()).toMatch(/grove-no-loopback-dnat/);
    await h1.agent!.stop(30_000);
    execFileSync("nsenter", [
      `--net=/run/netns/${h1.netns}`,
      process.execPath,
      path.join(REPO_ROOT, "agent", "dist", "network", "node-cleanup.js"),
      path.join(h1.stateDir, "network"),
    ]);
    expect(rules()).not.toMatch(/GROVE|grove-no-loopback-dnat/);
    expect(cluster.exec(h1, "ip", ["-o", "link"])).not.toMatch(/grove0/);
    // The other tests of this file need the node's agent: bring it back (it sets its guard up again),
    // so that they pass in any order (`--randomize`).
    await cluster.startAgent(h1);
    await waitFor("the node Ready again after the clean-up", async () => {
      const [n] = (await client.list("Node")).items;
      return n && n.status?.subnet && isReady(n);
    });
    await waitFor("the agent's node guard back", async () => /GROVE-NODE-INPUT/.test(rules()));
  }, 120_000);
});
