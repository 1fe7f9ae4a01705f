// A private root for every instance of a rootfs directory, end to end on real
// components (grove-server with its etcd, grove-agent, the native runtime,
// overlayfs on this kernel): what one instance writes into its root (even
// /etc/passwd, /bin/sh or a setuid file) is seen by no other instance, not
// by the agent resolving `security.user`, and never lands in the template
// on the host; deploy/make-rootfs.sh never writes through a symlink an old
// tree holds. The attacks are the ones found against a shared root.
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { GroveClient, type App, type Instance } from "@grove/api";
import { REPO_ROOT, runCli, waitFor, waitNodeReady, type ServerProcess, type Started } from "./harness/processes";
import { startMachine, type TestMachine } from "./harness/machine";
import { RUN_TAG } from "./harness/run-id";

const NODE = "it-rootfs-iso";
const CGROUP_PARENT = `grove-it-${RUN_TAG}-iso`;
const MAKE_ROOTFS = path.join(REPO_ROOT, "deploy", "make-rootfs.sh");

/** A digest of a whole tree: every entry's path, type, mode, owner, size, link target and content. */
function treeDigest(root: string): string {
  const hash = createHash("sha256");
  const walk = (rel: string) => {
    const p = path.join(root, rel);
    const st = fs.lstatSync(p);
    hash.update(`${rel}\0${st.mode}\0${st.uid}\0${st.gid}\0${st.size}\0`);
    if (st.isSymbolicLink()) hash.update(fs.readlinkSync(p));
    else if (st.isFile()) hash.update(fs.readFileSync(p));
    else if (st.isDirectory()) for (const e of fs.readdirSync(p).sort()) walk(path.join(rel, e));
    hash.update("\n");
  };
  walk(".");
  return hash.digest("hex");
}

/** Paths of setuid or setgid files in a tree (symlinks not followed). */
function setuidFiles(root: string): string[] {
  return execFileSync("find", [root, "-xdev", "-perm", "/6000"], { encoding: "utf8" }).split("\n").filter(Boolean);
}

function hostUidOf(pid: number): number {
  return Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
}

function mountsUnder(dir: string): string[] {
  return fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => (l.split(" ")[4] ?? "").startsWith(dir + "/"));
}

/** mode and ctime of a host path: both change on a chmod, a chown or a write through a symlink. */
function modeAndCtime(p: string): string {
  const st = fs.statSync(p);
  return `${(st.mode & 0o7777).toString(8)} ${st.ctimeMs}`;
}

describe("every instance of a rootfs directory has its own root", () => {
  let dir: string;
  let m: TestMachine;
  let template: string;
  let stateDir: string;
  let pristine: string;
  let server: ServerProcess;
  let agent: Started;
  let client: GroveClient;
  let env: NodeJS.ProcessEnv;

  function launchAgent(): Promise<Started> {
    return m.startAgent({ nodeName: NODE, cgroupParent: CGROUP_PARENT });
  }

  beforeAll(async () => {
    m = await startMachine("grove-it-iso");
    ({ dir, server, client, env } = m);
    template = path.join(dir, "rootfs", "busybox");
    stateDir = path.join(dir, "agent");
    pristine = treeDigest(template);
    agent = await launchAgent();
    await waitNodeReady(client, NODE);
  }, 120_000);

  afterAll(async () => {
    for (const ns of ["default", "tenant-y"]) {
      const apps = await client?.list("App", { namespace: ns }).catch(() => undefined);
      for (const a of apps?.items ?? []) await client.delete("App", a.metadata.name, ns).catch(() => undefined);
    }
    await agent?.stop(60_000);
    await server?.stop();
    if (dir) {
      for (const l of mountsUnder(dir).reverse()) execFileSync("umount", ["-l", l.split(" ")[4]!]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  function app(name: string, namespace: string, spec: Partial<App["spec"]> = {}): App {
    return {
      apiVersion: "grove/v1",
      kind: "App",
      metadata: { name, namespace },
      spec: {
        rootfs: "busybox",
        command: ["/bin/sh", "-c", "exec sleep 100000"],
        instances: 1,
        stopGracePeriodSeconds: 0,
        restartPolicy: "Never",
        ...spec,
      },
    };
  }

  async function running(appName: string, namespace: string, count: number): Promise<Instance[]> {
    return waitFor(
      `${count} instance(s) of ${namespace}/${appName} to run`,
      async () => {
        const list = await client.list("Instance", { namespace });
        const mine = list.items.filter((i) => i.spec.app === appName);
        const failed = mine.find((i) => ["Failed", "Exited"].includes(i.status?.state ?? ""));
        if (failed) throw new Error(`${appName} ended ${failed.status?.state}: ${failed.status?.message}`);
        const up = mine.filter((i) => i.status?.state === "Running" && i.status.pid);
        return up.length === count ? up.sort((a, b) => a.spec.index - b.spec.index) : undefined;
      },
      90_000,
    );
  }

  async function exec(namespace: string, target: string, script: string): Promise<string> {
    const r = await runCli(["exec", "-n", namespace, target, "--", "/bin/busybox", "sh", "-c", script], env);
    if (r.code !== 0) throw new Error(`exec ${target} ${script}: exit ${r.code}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  async function deleteApp(name: string, namespace: string): Promise<void> {
    await client.delete("App", name, namespace);
    await waitFor(
      `${namespace}/${name}'s instances to be gone`,
      async () => !(await client.list("Instance", { namespace })).items.some((i) => i.spec.app === name),
      60_000,
    );
  }

  // Reads what an attacker would have changed: passwd's last line, what /bin/sh is, the planted files.
  const PROBE =
    "tail -n 1 /etc/passwd; ls -l /bin/sh | sed 's/.* -> /sh -> /'; " +
    "for f in /bin/suid /tmp/suid; do test -e $f && echo PLANTED $f; done; echo END";
  const PRISTINE_PROBE = "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\nsh -> busybox\nEND\n";

  describe.each([false, true])("security.userNamespace %s", (userns) => {
    const x = userns ? "xu" : "x";
    const y = userns ? "yu" : "y";
    const security = userns ? { security: { userNamespace: true as const } } : {};

    test("writes of one instance to /etc/passwd, /bin/sh and a setuid file reach no other instance and not the template", async () => {
      await client.apply(app(x, "default", { instances: 2, ...security }));
      await client.apply(app(y, "tenant-y", security));
      const [a, a2] = await running(x, "default", 2);
      const [b] = await running(y, "tenant-y", 1);

      const attack =
        "echo 'pwn:x:0:0::/:/bin/sh' >> /etc/passwd && " +
        "cp /bin/busybox /tmp/suid && chmod 4755 /tmp/suid && cp /bin/busybox /bin/suid && chmod 4755 /bin/suid && " +
        "rm /bin/sh && printf '#!/bin/busybox sh\\necho trojan\\n' > /bin/sh && chmod 755 /bin/sh && " +
        "ls -l /bin/suid && tail -n 1 /etc/passwd";
      const done = await exec("default", `${x}/0`, attack);
      expect(done).toMatch(/^-rwsr-xr-x .* \/bin\/suid$/m);
      expect(done).toContain("pwn:x:0:0::/:/bin/sh");
      // The writer sees its own changes...
      expect(await exec("default", `${x}/0`, PROBE)).toMatch(
        /pwn:x:0:0.*\n-rwxr-xr-x .*\/bin\/sh\nPLANTED \/bin\/suid\nPLANTED \/tmp\/suid\nEND/,
      );
      // ...the other instance of its App, an instance of another App in another namespace, and a new one don't.
      expect(await exec("default", `${x}/1`, PROBE)).toBe(PRISTINE_PROBE);
      expect(await exec("tenant-y", `${y}/0`, PROBE)).toBe(PRISTINE_PROBE);
      await client.apply(app(x, "default", { instances: 3, ...security }));
      const [, , a3] = await running(x, "default", 3);
      expect(await exec("default", `${x}/2`, PROBE)).toBe(PRISTINE_PROBE);

      // On the host: the template is as make-rootfs left it, without a setuid file.
      expect(treeDigest(template)).toBe(pristine);
      expect(setuidFiles(template)).toEqual([]);
      // The writes are in A's upper layer, under a directory only root may enter, on a nosuid,nodev mount.
      const roots = path.join(stateDir, "roots");
      expect(fs.statSync(roots).mode & 0o777).toBe(0o700);
      const upper = path.join(roots, a!.metadata.uid!, "upper");
      expect(fs.statSync(path.join(upper, "bin", "suid")).mode & 0o7777).toBe(0o4755);
      const mount = mountsUnder(roots).find((l) => l.split(" ")[4] === path.join(roots, a!.metadata.uid!, "rootfs"));
      expect(mount).toMatch(/ - overlay overlay /);
      expect(mount!.split(" ")[5]!.split(",")).toEqual(expect.arrayContaining(["nosuid", "nodev"]));
      expect(mount).toContain(`lowerdir=${template},`);
      if (userns) {
        // Container root is a pool uid; its files in the upper layer are that uid's, the template's root's.
        const hostUid = hostUidOf(a!.status!.pid!);
        expect(hostUid).toBeGreaterThanOrEqual(100_000_000);
        expect(fs.statSync(path.join(upper, "etc", "passwd")).uid).toBe(hostUid);
        expect(fs.statSync(path.join(template, "etc", "passwd")).uid).toBe(0);
      } else {
        expect(hostUidOf(a!.status!.pid!)).toBe(0);
      }

      // Deleting the Apps removes every upper layer and leaves nothing mounted.
      const uids = [a, a2, a3, b].map((i) => i!.metadata.uid!);
      await deleteApp(x, "default");
      await deleteApp(y, "tenant-y");
      await waitFor("the private roots to be unmounted and removed", async () => {
        return mountsUnder(roots).length === 0 && uids.every((u) => !fs.existsSync(path.join(roots, u)));
      });
      expect(fs.readdirSync(roots)).toEqual([]);
      expect(treeDigest(template)).toBe(pristine);
    }, 240_000);
  });

  test("security.user: nobody runs as 65534 after another App rewrote nobody's line in /etc/passwd", async () => {
    await client.apply(app("editor", "default"));
    await running("editor", "default", 1);
    await exec(
      "default",
      "editor/0",
      "sed -i 's/^nobody:x:65534:65534:/nobody:x:0:0:/' /etc/passwd && grep ^nobody:x:0:0: /etc/passwd",
    );
    await client.apply(app("victim", "tenant-y", { security: { user: "nobody" } }));
    const [v] = await running("victim", "tenant-y", 1);
    expect(hostUidOf(v!.status!.pid!)).toBe(65534);
    expect(await exec("tenant-y", "victim/0", "id -u; id -g")).toBe("65534\n65534\n");
    await deleteApp("victim", "tenant-y");
    await deleteApp("editor", "default");
  }, 180_000);

  test("readOnlyRootFilesystem: the write is refused and nothing reaches the upper layer or the template", async () => {
    await client.apply(app("ro", "default", { security: { readOnlyRootFilesystem: true } }));
    const [r] = await running("ro", "default", 1);
    // As root (the default user), so plain file permissions cannot be what refuses it.
    expect(await exec("default", "ro/0", "id -u")).toBe("0\n");
    const out = await exec("default", "ro/0", "(echo x > /probe) 2>&1; echo rc=$?");
    expect(out).toMatch(/Read-only file system/);
    expect(out).toMatch(/rc=1\n$/);
    expect(fs.existsSync(path.join(stateDir, "roots", r!.metadata.uid!, "upper", "probe"))).toBe(false);
    expect(fs.existsSync(path.join(template, "probe"))).toBe(false);
    await deleteApp("ro", "default");
  }, 120_000);

  test("symlinks a container plants where the shared root was are never followed when make-rootfs.sh runs again", async () => {
    // Host directories standing in for the host's /etc and /usr/bin (the real
    // ones are checked as well, below): a write through a planted link would
    // change them.
    const decoys = path.join(dir, "decoys");
    const fakeEtc = path.join(decoys, "etc");
    const fakeTmp = path.join(decoys, "tmp");
    fs.mkdirSync(fakeEtc, { recursive: true, mode: 0o755 });
    fs.mkdirSync(fakeTmp, { mode: 0o755 });
    fs.writeFileSync(path.join(fakeEtc, "passwd"), "host:x:0:0::/:/bin/sh\n");
    const decoysBefore = treeDigest(decoys);
    const hostBefore = ["/etc", "/etc/passwd"].map(modeAndCtime);

    await client.apply(app("planter", "default"));
    await running("planter", "default", 1);
    await exec(
      "default",
      "planter/0",
      `cd / && rm -rf /tmp && ln -s ${fakeTmp} /tmp && rm -rf /etc && ln -s ${fakeEtc} /etc && ls -ld /tmp /etc`,
    );
    // Refreshing the template while an instance runs on it.
    const r1 = execFileSync(MAKE_ROOTFS, [template], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    expect(r1).toBe("");
    expect(treeDigest(decoys)).toBe(decoysBefore);
    expect(["/etc", "/etc/passwd"].map(modeAndCtime)).toEqual(hostBefore);
    expect(fs.lstatSync(path.join(template, "tmp")).isDirectory()).toBe(true);
    expect(fs.statSync(path.join(template, "tmp")).mode & 0o7777).toBe(0o1777);
    // The old tree stays aside while the running instance uses it as its lower layer...
    const aside = () => fs.readdirSync(path.dirname(template)).filter((n) => n.startsWith(".busybox.old."));
    expect(aside()).toHaveLength(1);
    expect(await exec("default", "planter/0", "readlink /etc; ls /bin/busybox")).toBe(`${fakeEtc}\n/bin/busybox\n`);
    await deleteApp("planter", "default");
    // ...and goes at the next run once nothing mounts it. The agent reports the instance
    // finished before it releases its root (reconciler: finish, then releaseHeld), so the
    // Instance can leave the API while its overlay is still mounted: a full run once ran
    // make-rootfs.sh in between, and the tree stayed aside, as it should while mounted.
    await waitFor(
      "no overlay mount naming the template as its lower layer",
      async () =>
        !fs
          .readFileSync("/proc/self/mountinfo", "utf8")
          .split("\n")
          .some(
            (l) =>
              l.includes(" - overlay ") && (l.includes(`lowerdir=${template},`) || l.includes(`lowerdir=${template}:`)),
          ),
      30_000,
    );
    execFileSync(MAKE_ROOTFS, [template]);
    expect(aside()).toEqual([]);
    expect(treeDigest(decoys)).toBe(decoysBefore);
    expect(["/etc", "/etc/passwd"].map(modeAndCtime)).toEqual(hostBefore);
    pristine = treeDigest(template);
  }, 180_000);

  test("make-rootfs.sh run on an existing template holding planted symlinks (and on a symlinked DIR) changes nothing outside it", () => {
    const base = path.join(dir, "planted");
    const decoys = path.join(base, "decoys");
    for (const d of ["etc", "tmp", "root", "bin", "target"]) fs.mkdirSync(path.join(decoys, d), { recursive: true });
    fs.writeFileSync(path.join(decoys, "etc", "passwd"), "host:x:0:0::/:/bin/sh\n");
    fs.writeFileSync(path.join(decoys, "bin", "busybox"), "host binary\n");
    const before = treeDigest(decoys);
    const hostBefore = ["/etc", "/etc/passwd"].map(modeAndCtime);

    const t = path.join(base, "rootfs", "bb");
    execFileSync(MAKE_ROOTFS, [t]);
    for (const d of ["tmp", "etc", "root", "bin"]) {
      fs.rmSync(path.join(t, d), { recursive: true, force: true });
      fs.symlinkSync(path.join(decoys, d), path.join(t, d));
    }
    execFileSync(MAKE_ROOTFS, [t]);
    expect(treeDigest(decoys)).toBe(before);
    for (const d of ["tmp", "etc", "root", "bin"]) expect(fs.lstatSync(path.join(t, d)).isDirectory()).toBe(true);
    expect(fs.readFileSync(path.join(t, "etc", "passwd"), "utf8")).toContain("nobody:x:65534:65534:");

    // DIR itself a symlink to a host directory: the link is replaced, not written through.
    const t2 = path.join(base, "rootfs", "linked");
    fs.symlinkSync(path.join(decoys, "target"), t2);
    execFileSync(MAKE_ROOTFS, [t2]);
    expect(fs.lstatSync(t2).isDirectory()).toBe(true);
    expect(fs.readdirSync(path.join(decoys, "target"))).toEqual([]);
    expect(treeDigest(decoys)).toBe(before);
    expect(["/etc", "/etc/passwd"].map(modeAndCtime)).toEqual(hostBefore);
    // Root's, writable by root only, and nothing left beside it.
    const st = fs.statSync(t2);
    expect([st.uid, st.mode & 0o7777]).toEqual([0, 0o755]);
    expect(fs.readdirSync(path.join(base, "rootfs")).sort()).toEqual(["bb", "linked"]);
  });

  test("after an agent kill -9 the adopted instance keeps its root; a root nothing runs on is removed at start", async () => {
    await client.apply(app("survivor", "default"));
    const [s] = await running("survivor", "default", 1);
    await exec("default", "survivor/0", "echo kept > /etc/marker");
    const roots = path.join(stateDir, "roots");
    await agent.kill9();
    // A private root whose container is gone (left by a start the agent died in).
    const stale = path.join(roots, "stale-root");
    for (const d of ["upper", "work", "rootfs"]) fs.mkdirSync(path.join(stale, d), { recursive: true });
    execFileSync("mount", [
      "-t",
      "overlay",
      "overlay",
      "-o",
      `lowerdir=${template},upperdir=${stale}/upper,workdir=${stale}/work`,
      `${stale}/rootfs`,
    ]);
    agent = await launchAgent();
    await waitFor("the stale root to be unmounted and removed", async () => !fs.existsSync(stale));
    expect(mountsUnder(stale)).toEqual([]);
    const [again] = await running("survivor", "default", 1);
    expect(again!.status!.pid).toBe(s!.status!.pid);
    expect(await exec("default", "survivor/0", "cat /etc/marker")).toBe("kept\n");
    expect(fs.readFileSync(path.join(roots, s!.metadata.uid!, "upper", "etc", "marker"), "utf8")).toBe("kept\n");
    await deleteApp("survivor", "default");
    await waitFor("its root to be removed", async () => !fs.existsSync(path.join(roots, s!.metadata.uid!)));
    expect(mountsUnder(roots)).toEqual([]);
    expect(treeDigest(template)).toBe(pristine);
  }, 180_000);
});
