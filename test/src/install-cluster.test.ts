// The install path in `npm test` (issue 15's "three harness hosts joined with
// tokens through the install path"): deploy/pack.sh packs the built tree once,
// the release is unpacked as an operator would, and deploy/install-server.sh
// and deploy/install-agent.sh install it into one --root directory per host.
// The services run exactly as their generated unit files say
// (harness/systemd-unit.ts: ExecStart, EnvironmentFile, User=, systemd's PATH)
// inside each host's network namespace: grove-server on h1 as an unprivileged
// system user with the installed defaults (0.0.0.0:7480/7481, embedded etcd),
// and an agent on each of h1, h2, h3 that joins with its own single-use token
// and the CA pin. An App with one instance per host runs on all three, and
// its output comes back through the control plane. A broken install script,
// unit or ExecStart fails it; so does a release that does not start.
//
// Upgrade, rollback, uninstall and a tampered release are install.test.ts
// (chaos suite). Phases: GROVE_TEST_VERBOSE=1; figures in docs/testing.md.
import * as fs from "node:fs";
import * as path from "node:path";
import { GroveClient, type App, type Instance } from "@grove/api";
import {
  InstallHosts,
  Phases,
  agentUp,
  alive,
  packRelease,
  parseLine,
  run,
  serverUp,
  type InstHost,
} from "./harness/install-hosts";
import { tempDir, waitFor } from "./harness/processes";
import { readUnit } from "./harness/systemd-unit";
import { trustServerCa } from "./harness/tls";
import { RUN_TAG } from "./harness/run-id";

const ID = RUN_TAG;
const VERSION = "0.1.0-ci";
const USER = `grove-c${ID}`;
const HELLO = "hello from an installed grove";

describe("install path in CI: one packed release, three hosts joined with tokens, an App on all three", () => {
  let dir: string;
  let hosts: InstallHosts;
  let release: string;
  const phases = new Phases("install-cluster test");

  beforeAll(async () => {
    dir = tempDir(`grove-instci-${ID}`);
    hosts = new InstallHosts(dir);
    hosts.create(["h1", "h2", "h3"]);
    release = (await packRelease(path.join(dir, "release"), VERSION)).release;
    phases.phase("network, pack, checksum and unpack");
  }, 180_000);

  afterAll(async () => {
    try {
      await hosts?.destroy([USER], phases);
    } finally {
      phases.print();
    }
  }, 60_000);

  test("grove-server and three agents installed from the release run an App end to end", async () => {
    const [h1, h2, h3] = ["h1", "h2", "h3"].map((n) => hosts.host(n)) as [InstHost, InstHost, InstHost];

    // h1 is the control-plane machine: the hardened server unit, as an unprivileged user.
    await run(path.join(release, "deploy", "install-server.sh"), [
      "install",
      "--root",
      h1.root,
      "--user",
      USER,
      "--tls-san",
      h1.address,
    ]);
    expect(readUnit(hosts.unitFile(h1, "grove-server")).service.get("User")).toEqual([USER]);
    phases.phase("install-server.sh install");
    const server = await hosts.start(h1, "grove-server", serverUp);
    phases.phase("grove-server up");
    const up = parseLine(server.output.find(serverUp)!) as { caFile: string; caHash: string };
    const url = `https://${h1.address}:7480`;
    trustServerCa(url, up.caFile);
    const client = new GroveClient({
      server: url,
      token: fs.readFileSync(path.join(h1.root, "var/lib/grove/server/admin-token"), "utf8").trim(),
    });

    // An agent on every host, h1 included (beside the server, from the same
    // /opt/grove), each with a single-use token bound to its node name.
    const installAgent = async (h: InstHost) => {
      const join = await client.createJoinToken({ node: `ci-${h.name}`, ttl: "10m" });
      await run(path.join(release, "deploy", "install-agent.sh"), [
        "install",
        "--root",
        h.root,
        "--server",
        url,
        "--join",
        join.token,
        "--ca-hash",
        up.caHash,
        "--node-name",
        `ci-${h.name}`,
        "--address",
        h.address,
        "--busybox-rootfs",
        "--",
        "--cgroup-parent",
        h.cgroupParent,
      ]);
    };
    // All three at once; h1's keeps the release its server already runs from
    // (the same files, not a fresh copy swapped in under the running server).
    const serverRelease = path.join(h1.root, "opt/grove", VERSION);
    const serverFile = fs.statSync(path.join(serverRelease, "control-plane/bin/grove-server.js")).ino;
    await Promise.all([h1, h2, h3].map(installAgent));
    phases.phase("three install-agent.sh installs");
    expect(fs.realpathSync(path.join(h1.root, "opt/grove/current"))).toBe(serverRelease);
    expect(fs.statSync(path.join(serverRelease, "control-plane/bin/grove-server.js")).ino).toBe(serverFile);
    expect(alive(server.pid)).toBe(true);
    await Promise.all([h1, h2, h3].map((h) => hosts.start(h, "grove-agent", agentUp)));
    phases.phase("three agents joined and registered");
    for (const h of [h1, h2, h3]) {
      expect(fs.existsSync(path.join(h.root, "var/lib/grove/agent/pki/node.crt"))).toBe(true);
    }

    const app: App = {
      apiVersion: "grove/v1",
      kind: "App",
      metadata: { name: "ci-hello", namespace: "default" },
      spec: {
        rootfs: "busybox",
        command: ["/bin/sh", "-c", `echo ${HELLO}; while true; do sleep 5; done`],
        instances: 3,
        placement: { antiAffinity: true },
        stopGracePeriodSeconds: 1,
      },
    };
    await client.apply(app);
    const running = await waitFor("ci-hello Running on all three hosts", async () => {
      const items = (await client.list("Instance", { namespace: "default" })).items.filter(
        (i) => i.spec.app === "ci-hello" && i.status?.state === "Running",
      );
      const byNode = new Map<string, Instance>(items.map((i) => [i.status!.nodeName!, i]));
      return byNode.size === 3 ? byNode : undefined;
    });
    phases.phase("App running on three hosts");
    for (const h of [h1, h2, h3]) {
      const inst = running.get(`ci-${h.name}`)!;
      // The container is the installed agent's on that host: in its cgroup parent.
      expect(fs.readFileSync(`/proc/${inst.status!.pid!}/cgroup`, "utf8")).toContain(`/${h.cgroupParent}/`);
      // Its output, from the host's agent through grove-server's API.
      await waitFor(`${inst.metadata.name}'s log`, async () => {
        let text = "";
        for await (const chunk of await client.logs(inst.metadata.name, "default")) text += Buffer.from(chunk);
        return text.includes(HELLO);
      });
    }
    phases.phase("containers and logs checked");
  }, 240_000);
});
