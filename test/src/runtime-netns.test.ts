// A container joins an existing network namespace (ContainerSpec.netnsPath),
// the way the networking layer hands it one it has wired up.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import { NativeRuntime, loadNativeBinding, type ContainerSpec } from "@grove/agent";
import { RUN_TAG, tempDir } from "./harness/run-id";

const MiB = 1024 * 1024;
const REPO = path.resolve(__dirname, "../..");
const PARENT = `grove-netns-${RUN_TAG}`;
const NETNS = `grove-${RUN_TAG}-x`;
const NETNS_PATH = `/run/netns/${NETNS}`;

let tmp: string;
let rootfs: string;
let rt: NativeRuntime;

function spec(id: string, script: string, over: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    id,
    rootfs,
    command: ["sh", "-c", script],
    env: { PATH: "/bin:/sbin:/usr/bin:/usr/sbin" },
    hostname: id,
    resources: { cpuMillis: 250, memoryBytes: 32 * MiB, pids: 16 },
    logPath: path.join(tmp, `${id}.log`),
    ...over,
  };
}

beforeAll(() => {
  loadNativeBinding();
  tmp = tempDir("grove-netns");
  rootfs = path.join(tmp, "rootfs");
  execFileSync(path.join(REPO, "deploy/make-rootfs.sh"), [rootfs], { stdio: "pipe" });
  rt = new NativeRuntime({ cgroupParent: PARENT });
  execFileSync("ip", ["netns", "add", NETNS]);
});

afterAll(async () => {
  for (const h of rt?.list() ?? []) {
    await rt.stop(h.id, 0);
    await rt.remove(h.id);
  }
  await rt?.removeParentCgroup();
  try {
    execFileSync("ip", ["netns", "delete", NETNS], { stdio: "pipe" });
  } catch {
    // not created
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe("netnsPath", () => {
  it("puts the container in the given network namespace, not a new one", async () => {
    const h = await rt.start(spec("joined", "sleep 60", { netnsPath: NETNS_PATH }));
    const want = fs.statSync(NETNS_PATH).ino;
    expect(fs.readlinkSync(`/proc/${h.pid}/ns/net`)).toBe(`net:[${want}]`);
    // Its other namespaces are still its own.
    expect(fs.readlinkSync(`/proc/${h.pid}/ns/mnt`)).not.toBe(fs.readlinkSync("/proc/self/ns/mnt"));
    expect(fs.readlinkSync(`/proc/${h.pid}/ns/pid`)).not.toBe(fs.readlinkSync("/proc/self/ns/pid"));

    // Without netnsPath a container gets a namespace of its own.
    const other = await rt.start(spec("own", "sleep 60"));
    expect(fs.readlinkSync(`/proc/${other.pid}/ns/net`)).not.toBe(`net:[${want}]`);
    expect(fs.readlinkSync(`/proc/${other.pid}/ns/net`)).not.toBe(fs.readlinkSync("/proc/self/ns/net"));

    for (const id of ["joined", "own"]) {
      await rt.stop(id, 0);
      await rt.remove(id);
    }
  });

  it("refuses a relative, missing or non-namespace netnsPath with a clear error", async () => {
    await expect(rt.start(spec("bad1", "true", { netnsPath: "run/netns/x" }))).rejects.toThrow(
      'netnsPath "run/netns/x" must be an absolute path',
    );
    await expect(rt.start(spec("bad2", "true", { netnsPath: `/run/netns/${NETNS}-nosuch` }))).rejects.toThrow(
      `netnsPath /run/netns/${NETNS}-nosuch does not exist`,
    );
    await expect(rt.start(spec("bad3", "true", { netnsPath: rootfs }))).rejects.toThrow(
      `netnsPath ${rootfs} is not a namespace file (nsfs)`,
    );
    expect(rt.list()).toEqual([]);
    expect(await loadNativeBinding().listCgroups(rt.cgroupMode, rt.cgroupRoot, PARENT)).toEqual([]);
  });
});
