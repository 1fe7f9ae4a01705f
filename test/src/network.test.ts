// Instance networking across real hosts: three agents, each in its own
// network namespace (a "host") joined to a bridge on this machine; the real
// CNI plugins (Debian containernetworking-plugins) give every instance an IP
// on its node's subnet and publish its ports with portmap; egress rules are
// iptables chains per instance. Traffic only to addresses inside the
// namespaces this test made.
import * as fs from "node:fs/promises";
import { GroveClient, type App, type Endpoints, type Instance } from "@grove/api";
import { HostCluster, type Host } from "./harness/hosts";
import { busyboxLayout } from "./harness/registry";
import { isReady, runCli, waitFor } from "./harness/processes";

const WEB_PORT = 18080;

function httpdCommand(): string[] {
  return [
    "/bin/sh",
    "-c",
    'd=/tmp/www-$(hostname); mkdir -p $d; echo "hello from $(hostname)" > $d/index.html; exec httpd -f -p 8080 -h $d',
  ];
}

function webApp(name: string, spec: Partial<App["spec"]> = {}): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, namespace: "default" },
    spec: {
      rootfs: "busybox",
      command: httpdCommand(),
      instances: 3,
      stopGracePeriodSeconds: 1,
      resources: { cpu: "100m", memory: "32Mi", pids: 32 },
      // A fixed host port: at most one instance per node, so three nodes get one each.
      ports: [{ name: "http", containerPort: 8080, hostPort: WEB_PORT }],
      ...spec,
    },
  };
}

async function get(url: string, timeoutMs = 5_000): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  return res.text();
}

describe("networking across hosts in network namespaces", () => {
  let cluster: HostCluster;
  let client: GroveClient;

  beforeAll(async () => {
    cluster = await HostCluster.start({ hosts: 3, serverArgs: ["--egress-default", "deny"] });
    client = cluster.adminClient();
    await waitFor(
      "three Ready nodes with subnets",
      async () => {
        const nodes = (await client.list("Node")).items;
        return nodes.length === 3 && nodes.every((n) => n.status?.subnet && isReady(n));
      },
      60_000,
    );
  }, 180_000);

  afterAll(async () => {
    await cluster?.destroy();
  }, 120_000);

  // Every test starts from a cluster with no Apps, whatever ran before it (jest --randomize) and
  // whether it passed: no test counts another's instances, addresses or host ports. An instance
  // leaves the API at once; its container may still serve on its node's host port until its agent
  // tears it down (the Node holds the port until then: status.heldHostPorts).
  beforeEach(async () => {
    const apps = (await client.list("App", { namespace: "default" })).items;
    for (const a of apps) await client.delete("App", a.metadata.name, "default").catch(() => undefined);
    await waitFor(
      "the instances of earlier tests to be gone",
      async () => (await client.list("Instance", { namespace: "default" })).items.length === 0,
      60_000,
    );
    await waitFor(
      "no node to hold the host ports of earlier tests' instances",
      async () => (await client.list("Node")).items.every((n) => (n.status?.heldHostPorts ?? []).length === 0),
      60_000,
    );
    for (const h of cluster.hosts) {
      await waitFor(
        `${h.name} to have no addresses of earlier tests' instances`,
        async () => (await leases(h)).length === 0,
        60_000,
      );
    }
  }, 330_000);

  async function running(app: string, count: number): Promise<Instance[]> {
    return waitFor(
      `${count} Running instances of ${app}`,
      async () => {
        const items = (await client.list("Instance", { namespace: "default" })).items.filter((i) => i.spec.app === app);
        const up = items.filter((i) => i.status?.state === "Running" && i.status.ip);
        return up.length === count ? up : undefined;
      },
      90_000,
    );
  }

  it("gives nodes distinct subnets of the cluster CIDR", async () => {
    const nodes = (await client.list("Node")).items;
    const subnets = nodes.map((n) => n.status!.subnet!);
    expect(new Set(subnets).size).toBe(3);
    for (const s of subnets) expect(s).toMatch(/^10\.244\.\d+\.0\/24$/);
  });

  it("runs 3 httpd instances on 3 hosts, each answering on nodeAddress:hostPort, listed by the endpoints API", async () => {
    await client.apply(webApp("web"));
    // A router's view: the endpoints watch, opened before anything runs.
    const watch = await client.watchEndpoints("web");
    const watched = (async () => {
      const seen: number[] = [];
      for await (const ev of watch) {
        seen.push(ev.object.endpoints.length);
        if (ev.object.endpoints.length === 3) break;
      }
      return seen;
    })();
    const insts = await running("web", 3);
    const timer = setTimeout(() => watch.close(), 30_000);
    const seen = await watched;
    clearTimeout(timer);
    watch.close();
    // The list grows as instances turn Running; it never lists one that is not.
    expect(seen[seen.length - 1]).toBe(3);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(new Set(insts.map((i) => i.spec.nodeName)).size).toBe(3);

    const nodes = (await client.list("Node")).items;
    for (const inst of insts) {
      const node = nodes.find((n) => n.metadata.name === inst.spec.nodeName)!;
      const host = cluster.host(node.metadata.name);
      // The IP is from its node's subnet.
      const [net] = node.status!.subnet!.split("/");
      expect(inst.status!.ip!.split(".").slice(0, 3)).toEqual(net!.split(".").slice(0, 3));
      expect(inst.status!.ports).toEqual([
        { name: "http", protocol: "tcp", containerPort: 8080, hostPort: WEB_PORT, hostIP: host.address },
      ]);
      const body = await waitFor(`GET ${host.address}:${WEB_PORT}`, () => get(`http://${host.address}:${WEB_PORT}/`));
      expect(body.trim()).toBe(`hello from ${inst.metadata.name}`);
    }

    const eps = await client.endpoints("web");
    expect(eps.endpoints.map((e) => e.instance).sort()).toEqual(insts.map((i) => i.metadata.name).sort());
    for (const e of eps.endpoints) {
      expect(e.ports[0]!.address).toBe(`${cluster.host(e.nodeName!).address}:${WEB_PORT}`);
      expect((await get(`http://${e.ports[0]!.address}/`)).trim()).toBe(`hello from ${e.instance}`);
    }

    // The harness can cut a host's link and slow it; the published address follows. Restored
    // whatever happens: the tests after this one need h1.
    const h1 = cluster.host("h1");
    try {
      cluster.setLink(h1, false);
      await expect(get(`http://${h1.address}:${WEB_PORT}/`, 1_500)).rejects.toThrow();
      cluster.setLink(h1, true);
      cluster.slow(h1, { rateKbit: 512 });
      await waitFor("h1 to answer again (rate-limited)", () => get(`http://${h1.address}:${WEB_PORT}/`, 5_000));
    } finally {
      cluster.setLink(h1, true);
      cluster.unslow(h1);
    }

    // The CLI prints the same list.
    const cli = await runCli(["get", "endpoints", "web", "-o", "json"], {
      GROVE_SERVER: cluster.server!.url,
      GROVE_TOKEN: cluster.server!.adminToken,
      GROVE_CONFIG: "",
      HOME: cluster.dir,
    });
    expect(cli.stderr).toBe("");
    expect(cli.code).toBe(0);
    const printed = JSON.parse(cli.stdout) as Endpoints;
    expect(printed.endpoints.map((e) => e.ports[0]!.address).sort()).toEqual(
      eps.endpoints.map((e) => e.ports[0]!.address).sort(),
    );
  });

  it("refuses bad network input at apply time, naming the field, and writes nothing", async () => {
    const cases: Array<[Partial<App["spec"]>, string, RegExp]> = [
      [{ egress: [{ cidr: "10.0.0.1/8" }] }, "/spec/egress/0/cidr", /host bits set/],
      [{ egress: [{ cidr: "10.0.0.0/8", protocol: "tcp", ports: "9000-80" }] }, "/spec/egress/0/ports", /ascending/],
      [
        {
          ports: [
            { name: "a", containerPort: 80, hostPort: 18081 },
            { name: "b", containerPort: 81, hostPort: 18081 },
          ],
        },
        "/spec/ports/1/hostPort",
        /already used/,
      ],
      [{ ports: [{ name: "a", containerPort: 70000 }] }, "/spec/ports/0/containerPort", /65535/],
    ];
    for (const [spec, pointer, message] of cases) {
      const err = (await client.apply(webApp("bad", spec)).catch((e: unknown) => e)) as {
        code?: string;
        details?: Array<{ path: string; message: string }>;
      };
      expect(err.code).toBe("ValidationFailed");
      expect(err.details?.find((d) => d.path === pointer)?.message).toMatch(message);
    }
    await expect(client.get("App", "bad", "default")).rejects.toMatchObject({ code: "NotFound" });
  });

  it("keeps a fourth instance Pending: the fixed host port is taken on every node", async () => {
    await client.apply(webApp("web", { instances: 4 }));
    const pending = await waitFor("the fourth instance to be Unschedulable", async () => {
      const items = (await client.list("Instance", { namespace: "default" })).items.filter((i) => i.spec.app === "web");
      return items.find((i) => i.status?.reason === "Unschedulable");
    });
    expect(pending.status!.message).toMatch(/ports: 18080 in use on 3 of 3 nodes/);
    await client.apply(webApp("web", { instances: 3 }));
  });

  it("lets instances reach each other across hosts (published ports and instance IPs) only when egress allows it", async () => {
    await client.apply(webApp("web"));
    const web = await running("web", 3);
    // Grove does not route instance subnets between nodes (the operator's network does, as
    // with flannel host-gw); here the test plays that network.
    const nodes = (await client.list("Node")).items;
    cluster.routeSubnets(Object.fromEntries(nodes.map((n) => [n.metadata.name, n.status!.subnet!])));
    const targets = web.flatMap((w) => [
      { node: w.spec.nodeName!, addr: `${cluster.host(w.spec.nodeName!).address}:${WEB_PORT}`, kind: "published" },
      { node: w.spec.nodeName!, addr: `${w.status!.ip!}:8080`, kind: "ip" },
    ]);
    const loop = targets
      .map(({ addr }) => {
        const [h, p] = addr.split(":");
        return `if printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${h} ${p} | grep -q hello; then echo "OK ${addr}"; else echo "FAIL ${addr}"; fi`;
      })
      .join("; ");
    const probeApp = (egress: App["spec"]["egress"]): App => ({
      apiVersion: "grove/v1",
      kind: "App",
      metadata: { name: "probe", namespace: "default" },
      spec: {
        rootfs: "busybox",
        command: ["/bin/sh", "-c", `while true; do ${loop}; echo ROUND; sleep 0.5; done`],
        instances: 1,
        stopGracePeriodSeconds: 1,
        resources: { cpu: "100m", memory: "32Mi", pids: 32 },
        ...(egress ? { egress } : {}),
      },
    });
    /** What the probe saw in its last complete round, for targets on other hosts. */
    const lastRound = async (probe: Instance): Promise<Map<string, string> | undefined> => {
      const lines = (await probeLog(cluster.host(probe.spec.nodeName!), probe)).split("\n");
      const end = lines.lastIndexOf("ROUND");
      if (end < 0) return undefined;
      const start = lines.lastIndexOf("ROUND", end - 1);
      const out = new Map<string, string>();
      for (const l of lines.slice(start + 1, end)) {
        const [verdict, addr] = l.split(" ");
        const t = targets.find((x) => x.addr === addr);
        if (t && t.node !== probe.spec.nodeName) out.set(addr!, verdict!);
      }
      return out.size > 0 ? out : undefined;
    };

    // Default deny: nothing on another host answers.
    await client.apply(probeApp(undefined));
    const denied = (await running("probe", 1))[0]!;
    const round1 = await waitFor("a probe round", () => lastRound(denied), 30_000);
    expect(round1.size).toBe(4); // two other hosts, a published port and an instance IP each
    expect([...round1.values()]).toEqual(["FAIL", "FAIL", "FAIL", "FAIL"]);

    // Allow rules for the hosts' published ports and for instance IPs on port 8080.
    const bridgeNet = `${cluster.gateway.replace(/\.1$/, ".0")}/24`;
    await client.apply(
      probeApp([
        { cidr: bridgeNet, protocol: "tcp", ports: `${WEB_PORT}` },
        { cidr: "10.244.0.0/16", protocol: "tcp", ports: "8080" },
      ]),
    );
    const allowed = await waitFor("the replaced probe", async () => {
      const p = (await running("probe", 1))[0]!;
      return p.metadata.uid !== denied.metadata.uid ? p : undefined;
    });
    const round2 = await waitFor(
      "a probe round where every target answers",
      async () => {
        const r = await lastRound(allowed);
        return r && [...r.values()].every((v) => v === "OK") ? r : undefined;
      },
      30_000,
    );
    expect(round2.size).toBe(4);
    await client.delete("App", "probe", "default");
  });

  it("removes IPs, egress chains, veths and namespaces on every host when an App is deleted", async () => {
    await client.apply(webApp("web"));
    const web = await running("web", 3);
    await client.delete("App", "web", "default");
    await client.delete("App", "probe", "default").catch(() => undefined);
    await waitFor(
      "every instance to be gone",
      async () => (await client.list("Instance", { namespace: "default" })).items.length === 0,
      60_000,
    );
    for (const host of cluster.hosts) {
      await waitFor(
        `${host.name} to be clean`,
        async () => {
          // The host's own eth0 is a veth too (the harness's link to the bridge).
          const links = cluster
            .exec(host, "ip", ["-o", "link", "show", "type", "veth"])
            .split("\n")
            .filter((l) => l.trim() !== "" && !/^\d+: eth0@/.test(l))
            .join("\n");
          const chains = cluster
            .exec(host, "iptables", ["-S"])
            .split("\n")
            .filter((l) => l.startsWith("-N GROVE-EG-"));
          const dnat = cluster
            .exec(host, "iptables", ["-t", "nat", "-S"])
            .split("\n")
            .filter((l) => /CNI-DN-|--to-destination/.test(l));
          const ipam = await fs.readdir(`${host.stateDir}/network/ipam/grove`).catch(() => [] as string[]);
          const leases = ipam.filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
          const netns = await fs.readdir(`${host.stateDir}/network/netns`).catch(() => [] as string[]);
          const cache = await fs.readdir(`${host.stateDir}/network/cni/results`).catch(() => [] as string[]);
          const left = { links: links.trim(), chains, dnat, leases, netns, cache };
          return links.trim() === "" &&
            chains.length === 0 &&
            dnat.length === 0 &&
            leases.length === 0 &&
            netns.length === 0 &&
            cache.length === 0
            ? true
            : (lastLeft = left) && false;
        },
        30_000,
      ).catch((err: unknown) => {
        throw new Error(`${String(err)}; left on ${host.name}: ${JSON.stringify(lastLeft)}`);
      });
    }
    expect(web.length).toBe(3);
  });

  it("leaks nothing when an agent is killed with SIGKILL between CNI ADD and the container start", async () => {
    const h1 = cluster.host("h1");
    // The counts below are of this App's attempts alone: beforeEach waited until no network of an
    // earlier test's instance was left on h1.
    await h1.agent!.stop();
    await cluster.startAgent(h1, { GROVE_AGENT_PAUSE_AFTER_NETWORK_MS: "120000" });
    let pausing = true;
    try {
      const app: App = {
        ...webApp("crash", { instances: 1, ports: [{ name: "http", containerPort: 8080 }] }),
        spec: {
          ...webApp("crash").spec,
          instances: 1,
          ports: [{ name: "http", containerPort: 8080 }],
          placement: { nodeSelector: { "grove.test/host": "h1" } },
        },
      };
      await client.apply(app);
      const first = await waitFor("the crash instance", async () =>
        (await client.list("Instance", { namespace: "default" })).items.find((i) => i.spec.app === "crash"),
      );
      await waitFor(
        "the agent to pause after CNI ADD of the crash instance",
        async () =>
          h1.agent!.output.some(
            (l) => l.includes("pausing before the container start") && l.includes(first.metadata.uid!),
          ),
        60_000,
      );
      // The ADD happened: an address is allocated, to this instance.
      expect(Object.values(await leaseOwners(h1))).toEqual([first.metadata.uid]);
      await h1.agent!.kill9();

      const restarted = await cluster.startAgent(h1);
      pausing = false;
      const [inst] = await running("crash", 1);
      // The restarted agent found the half-made network (CNI DEL with the cached result) before anything else.
      expect(restarted.output.some((l) => l.includes("removed instance networks left by a previous agent run"))).toBe(
        true,
      );
      expect(inst!.spec.nodeName).toBe("h1");
      expect(inst!.status!.ports![0]!.hostPort).toBeGreaterThanOrEqual(20000);
      // Running means the process started; httpd may bind its port a moment later.
      const url = `http://${h1.address}:${inst!.status!.ports![0]!.hostPort}/`;
      expect((await waitFor(`GET ${url}`, () => get(url), 15_000)).trim()).toBe(`hello from ${inst!.metadata.name}`);
      // Exactly one address, namespace, cache entry, veth and egress chain: the new instance's.
      expect(await leaseOwners(h1)).toEqual({ [inst!.status!.ip!]: inst!.metadata.uid });
      expect(await fs.readdir(`${h1.stateDir}/network/netns`)).toEqual([inst!.metadata.uid]);
      expect((await fs.readdir(`${h1.stateDir}/network/cni/results`)).length).toBe(1);
      expect(instanceVeths(h1).length).toBe(1);
      const masq = cluster
        .exec(h1, "iptables", ["-t", "nat", "-S", "POSTROUTING"])
        .split("\n")
        .filter((l) => l.includes(" id: "));
      expect(masq).toHaveLength(1);
      expect(masq[0]).toContain(inst!.metadata.uid!);
      expect(
        cluster
          .exec(h1, "iptables", ["-S"])
          .split("\n")
          .filter((l) => l.startsWith("-N GROVE-EG-")).length,
      ).toBe(1);

      await client.delete("App", "crash", "default");
      await waitFor("h1 to have no addresses left", async () => (await leases(h1)).length === 0, 60_000);
      expect(instanceVeths(h1)).toEqual([]);
    } finally {
      // Whatever failed, the tests after this one get an h1 agent that does not pause. SIGKILL, as
      // above: the next agent removes what the paused start left.
      if (pausing) {
        await h1.agent!.kill9();
        await cluster.startAgent(h1);
      }
    }
  });

  it("writes /etc/hosts and /etc/resolv.conf into the instance's own root, of an image or a rootfs directory", async () => {
    const layout = `${cluster.dir}/layout`;
    await busyboxLayout(layout, "bb", cluster.dir);
    const etcApp = (name: string, source: { image: string } | { rootfs: string }): App => ({
      apiVersion: "grove/v1",
      kind: "App",
      metadata: { name, namespace: "default" },
      spec: {
        ...source,
        command: ["/bin/sh", "-c", "cat /etc/hosts; echo ---; cat /etc/resolv.conf; echo END; sleep 1000"],
        instances: 1,
        stopGracePeriodSeconds: 1,
        resources: { cpu: "100m", memory: "32Mi", pids: 32 },
      },
    });
    await client.apply(etcApp("etc", { image: `oci:${layout}:bb` }));
    await client.apply(etcApp("etcdir", { rootfs: "busybox" }));
    for (const app of ["etc", "etcdir"]) {
      const [inst] = await running(app, 1);
      const host = cluster.host(inst!.spec.nodeName!);
      const out = await waitFor(`the ${app} instance to print its /etc files`, async () => {
        const text = await probeLog(host, inst!);
        return text.includes("END") ? text : undefined;
      });
      expect(out).toContain(`${inst!.status!.ip}\t${inst!.metadata.name}\n`);
      expect(out).toContain("127.0.0.1\tlocalhost");
      expect(out).not.toMatch(/nameserver 127\./);
      // A rootfs-directory instance has them in its private root's upper layer, not in the shared directory.
      const etcDir = `${host.stateDir}/roots/${inst!.metadata.uid}`;
      if (app === "etcdir") {
        expect((await fs.readdir(`${etcDir}/upper/etc`)).sort()).toEqual(["hosts", "resolv.conf"]);
        expect(await fs.stat(`${cluster.rootfsDir}/busybox/etc/hosts`).catch(() => undefined)).toBeUndefined();
      }
      await client.delete("App", app, "default");
      // Only its own address: the other App's instance may run on the same host.
      await waitFor(`the ${app} instance to go`, async () => !(await leases(host)).includes(inst!.status!.ip!), 60_000);
      await waitFor(`the ${app} instance's /etc files to go`, async () => {
        return (await fs.stat(etcDir).catch(() => undefined)) === undefined;
      });
    }
  });

  async function leases(host: Host): Promise<string[]> {
    const files = await fs.readdir(`${host.stateDir}/network/ipam/grove`).catch(() => [] as string[]);
    return files.filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).sort();
  }

  /** Each of the host's IPAM leases and the instance (CNI container id) holding it. */
  async function leaseOwners(host: Host): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const ip of await leases(host)) {
      // host-local writes the container id, then the interface, one a line.
      out[ip] = (await fs.readFile(`${host.stateDir}/network/ipam/grove/${ip}`, "utf8")).split(/\r?\n/)[0]!;
    }
    return out;
  }

  function instanceVeths(host: Host): string[] {
    return cluster
      .exec(host, "ip", ["-o", "link", "show", "type", "veth"])
      .split("\n")
      .filter((l) => l.trim() !== "" && !/^\d+: eth0@/.test(l));
  }
});

let lastLeft: unknown;

async function probeLog(host: Host, inst: Instance): Promise<string> {
  return fs.readFile(`${host.stateDir}/logs/${inst.metadata.uid}.log`, "utf8").catch(() => "");
}
