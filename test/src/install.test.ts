// The install path on three hosts, from the packed release: deploy/pack.sh
// makes two release tarballs (two versions), deploy/install-server.sh and
// deploy/install-agent.sh install them into one directory per host (--root),
// and the services run as their unit files say (test/src/harness/systemd-unit.ts:
// ExecStart from the generated unit, the EnvironmentFile, User=) inside each
// host's network namespace. The server host runs grove-server as an
// unprivileged system user with the installed defaults (0.0.0.0:7480/7481,
// embedded etcd); two agent hosts join with single-use tokens and the CA pin;
// an App runs on both; one agent is upgraded in place (its container keeps
// running and is adopted) and rolled back, the other is uninstalled.
//
// Packing two releases, copying and checksumming each onto three hosts and
// building a root filesystem take minutes on a machine shared with other
// builds (phases below, GROVE_TEST_VERBOSE prints them): this runs in the
// chaos suite (`npm run test:chaos`, GROVE_CHAOS=1) and is skipped in `npm test`.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { GroveClient, type App, type Instance, type Node } from "@grove/api";
import { cgroupGone } from "./harness/cleanup";
import {
  InstallHosts,
  Phases,
  UNIT_DIR,
  agentUp,
  alive,
  mountsUnder,
  packRelease,
  parseLine,
  run,
  serverUp,
  userExists,
  type InstHost,
} from "./harness/install-hosts";
import { tempDir, waitFor } from "./harness/processes";
import { readUnit } from "./harness/systemd-unit";
import { trustServerCa } from "./harness/tls";
import { RUN_TAG } from "./harness/run-id";

const ID = RUN_TAG;
const VERSIONS = ["0.1.0-inst.1", "0.1.0-inst.2"] as const;
const USER = `grove-i${ID}`;

const chaosOnly = process.env.GROVE_CHAOS === "1" ? describe : describe.skip;

chaosOnly(
  "install (GROVE_CHAOS=1, npm run test:chaos): packed release, install scripts and systemd units on three hosts",
  () => {
    let dir: string;
    let net: InstallHosts;
    let tarballs: string[] = [];
    const phases = new Phases("install test");
    const phase = (name: string) => phases.phase(name);

    beforeAll(async () => {
      dir = tempDir(`grove-inst-${ID}`);
      net = new InstallHosts(dir);
      net.create(["s", "a1", "a2"]);
      // Both releases at once, each checked and unpacked as an operator does.
      tarballs = (await Promise.all(VERSIONS.map((v) => packRelease(path.join(dir, "release"), v)))).map(
        (r) => r.tarball,
      );
      phase("network, two packs, checksums and unpacking");
    });

    afterAll(async () => {
      try {
        await net?.destroy([USER], phases);
      } finally {
        phases.print();
      }
    });

    const release = (v: string) => path.join(dir, "release", `grove-${v}`);
    const host = (name: string) => net.host(name);
    const unitFile = (h: InstHost, name: string) => net.unitFile(h, name);

    test("a release whose files do not match SHA256SUMS is refused and nothing is installed", async () => {
      const bad = path.join(dir, "bad");
      fs.mkdirSync(bad);
      await run("tar", ["-xzf", tarballs[0]!, "-C", bad]);
      const main = path.join(bad, `grove-${VERSIONS[0]}`, "agent", "dist", "main.js");
      fs.appendFileSync(main, "\n// tampered\n");
      const root = path.join(bad, "root");
      const script = path.join(bad, `grove-${VERSIONS[0]}`, "deploy", "install-agent.sh");
      const args = ["install", "--root", root, "--server", "https://127.0.0.1:7480", "--join", "x.y"];
      await expect(run(script, [...args, "--ca-hash", `sha256:${"0".repeat(64)}`])).rejects.toThrow(
        /does not match its SHA256SUMS: .*agent\/dist\/main\.js: FAILED/,
      );
      expect(fs.readdirSync(root)).toEqual([]);
      fs.rmSync(bad, { recursive: true, force: true });
      phase("tampered release refused");
    });

    test("install a server and two agents, run an App, upgrade and roll back one agent, uninstall the other", async () => {
      const [s, a1, a2] = [host("s"), host("a1"), host("a2")];
      const [v1, v2] = VERSIONS;

      // The server host: an unprivileged user, hardened unit, installed defaults.
      await run(path.join(release(v1), "deploy", "install-server.sh"), [
        "install",
        "--root",
        s.root,
        "--user",
        USER,
        "--tls-san",
        s.address,
      ]);
      const serverUnit = unitFile(s, "grove-server");
      expect((await run("systemd-analyze", ["verify", "--man=no", serverUnit])).stderr).toBe("");
      const su = readUnit(serverUnit).service;
      expect(su.get("User")).toEqual([USER]);
      expect(su.get("NoNewPrivileges")).toEqual(["yes"]);
      expect(su.get("ProtectSystem")).toEqual(["strict"]);
      expect(su.get("CapabilityBoundingSet")).toEqual([""]);
      expect(fs.statSync(path.join(s.root, "etc/grove/grove-server.env")).mode & 0o777).toBe(0o600);
      phase("install-server.sh install");
      const server = await net.start(s, "grove-server", serverUp);
      phase("grove-server up");
      const up = parseLine(server.output.find(serverUp)!) as { caFile: string; caHash: string };
      expect(fs.readFileSync(`/proc/${server.pid}/status`, "utf8")).toMatch(
        new RegExp(`^Uid:\\s+${execFileSync("id", ["-u", USER]).toString().trim()}\\s`, "m"),
      );
      const url = `https://${s.address}:7480`;
      trustServerCa(url, up.caFile);
      const dataDir = path.join(s.root, "var/lib/grove/server");
      const client = new GroveClient({
        server: url,
        token: fs.readFileSync(path.join(dataDir, "admin-token"), "utf8").trim(),
      });

      // Two agent hosts join with single-use tokens bound to their names.
      await Promise.all(
        [a1, a2].map(async (h) => {
          const join = await client.createJoinToken({ node: `inst-${h.name}`, ttl: "10m" });
          await run(path.join(release(v1), "deploy", "install-agent.sh"), [
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
            `inst-${h.name}`,
            "--address",
            h.address,
            // One busybox template, built by a1's install, serves both hosts (a2 needs it only
            // once the App runs): make-rootfs.sh is the slowest step on a busy machine.
            ...(h === a1 ? ["--busybox-rootfs"] : ["--rootfs-dir", path.join(a1.root, "var/lib/grove/rootfs")]),
            "--",
            "--cgroup-parent",
            h.cgroupParent,
          ]);
          const unit = unitFile(h, "grove-agent");
          expect((await run("systemd-analyze", ["verify", "--man=no", unit])).stderr).toBe("");
          const au = readUnit(unit).service;
          expect([au.get("KillMode"), au.get("Restart"), au.get("User")]).toEqual([["process"], ["always"], undefined]);
          await net.start(h, "grove-agent", agentUp);
        }),
      );
      phase("two agents installed, joined and registered");
      expect(fs.existsSync(path.join(a1.root, "var/lib/grove/agent/pki/node.crt"))).toBe(true);

      const app: App = {
        apiVersion: "grove/v1",
        kind: "App",
        metadata: { name: "inst-hello", namespace: "default" },
        spec: {
          rootfs: "busybox",
          command: ["/bin/sh", "-c", "while true; do sleep 5; done"],
          instances: 2,
          placement: { antiAffinity: true },
          stopGracePeriodSeconds: 1,
        },
      };
      await client.apply(app);
      const running = async (): Promise<Map<string, Instance>> => {
        const items = (await client.list("Instance", { namespace: "default" })).items.filter(
          (i) => i.spec.app === "inst-hello" && i.status?.state === "Running",
        );
        return new Map(items.map((i) => [i.status!.nodeName!, i]));
      };
      const before = await waitFor("inst-hello Running on both agent hosts", async () => {
        const m = await running();
        return m.size === 2 ? m : undefined;
      });
      const pidOn = (m: Map<string, Instance>, h: InstHost) => m.get(`inst-${h.name}`)!.status!.pid!;
      const a1Pid = pidOn(before, a1);
      const a2Pid = pidOn(before, a2);
      const agentVersion = async (h: InstHost) =>
        ((await client.get("Node", `inst-${h.name}`)) as Node).status?.agentVersion;
      expect(await agentVersion(a1)).toBe(v1);
      phase("App running on both");

      // Upgrade a1 in place: the new release becomes current, the unit restarts
      // (KillMode=process: SIGTERM to the agent alone) and adopts its container.
      await run(path.join(release(v2), "deploy", "install-agent.sh"), ["upgrade", "--root", a1.root]);
      const opt = path.join(a1.root, "opt/grove");
      expect([fs.readlinkSync(path.join(opt, "current")), fs.readlinkSync(path.join(opt, "previous"))]).toEqual([
        v2,
        v1,
      ]);
      expect(fs.readFileSync(path.join(a1.root, "etc/grove/grove-agent.env"), "utf8")).not.toMatch(/GROVE_AGENT_JOIN/);
      const restart = async (h: InstHost, version: string) => {
        await net.stop(h, "grove-agent");
        await net.start(h, "grove-agent", agentUp);
        await waitFor(`inst-${h.name} reporting agent ${version}`, async () => (await agentVersion(h)) === version);
      };
      await restart(a1, v2);
      expect(a1.units.get("grove-agent")!.argv[0]).toBe(path.join(opt, "current/bin/grove-agent"));
      expect(fs.realpathSync(path.join(opt, "current"))).toBe(path.join(opt, v2));
      phase("upgrade and restart");
      let after = await running();
      expect(pidOn(after, a1)).toBe(a1Pid);
      expect(alive(a1Pid)).toBe(true);

      // Roll back by switching the symlink: the old release runs again, the container still.
      await run(path.join(opt, "current", "deploy", "install-agent.sh"), ["rollback", "--root", a1.root]);
      expect(fs.readlinkSync(path.join(opt, "current"))).toBe(v1);
      await restart(a1, v1);
      after = await running();
      expect(pidOn(after, a1)).toBe(a1Pid);
      phase("rollback and restart");

      // Uninstall a2 (systemctl stop first, as the script does on a real host):
      // its containers, cgroups and runtime state go; its state directory stays.
      await net.stop(a2, "grove-agent");
      expect(alive(a2Pid)).toBe(true);
      const a2Script = path.join(a2.root, "opt/grove/current/deploy/install-agent.sh");
      await run(a2Script, ["uninstall", "--root", a2.root], a2.netns);
      expect(fs.existsSync(path.join(a2.root, UNIT_DIR, "grove-agent.service"))).toBe(false);
      expect(fs.existsSync(path.join(a2.root, "etc/grove/grove-agent.env"))).toBe(false);
      expect(fs.existsSync(path.join(a2.root, "opt/grove"))).toBe(false);
      expect(fs.existsSync(path.join(a2.root, "usr/local/bin/grove-agent"))).toBe(false);
      expect(fs.existsSync(path.join(a2.root, "var/lib/grove/agent/pki/node.crt"))).toBe(true);
      await waitFor("a2's container gone", async () => !alive(a2Pid), 10_000);
      expect(cgroupGone(a2.cgroupParent)).toBe(true);
      expect(fs.existsSync(`/run/grove/${a2.cgroupParent}`)).toBe(false);
      expect(mountsUnder(a2.root)).toEqual([]);
      phase("uninstall an agent");

      // The server, with --purge: data and the system user go too.
      await net.stop(s, "grove-server");
      await run(path.join(s.root, "opt/grove/current/deploy/install-server.sh"), [
        "uninstall",
        "--purge",
        "--root",
        s.root,
      ]);
      expect(fs.existsSync(dataDir)).toBe(false);
      expect(fs.existsSync(path.join(s.root, "opt/grove"))).toBe(false);
      expect(userExists(USER)).toBe(false);
      phase("uninstall the server");
      // On a machine shared with other builds and tests everything is slower; idle figures: docs/testing.md.
    }, 300_000);
  },
);
