// The start's root steps (image root, rootfs directory, private root) and
// the network step through the reconciler, against the FakeRuntime.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { InstanceStatus } from "@grove/proto";
import { FakeRuntime } from "../runtime/fake";
import type { PullProgress } from "../images/types";
import { HostPortRefusedError } from "../network/host-ports";
import { Reconciler } from "./reconciler";
import { UsernsPool } from "./userns-pool";
import { callsOf, desired, spec, START_MS, settle as settleQueue } from "./test-helpers";

describe("Reconciler with images", () => {
  class FakeImages {
    calls: string[] = [];
    fail: Error | undefined;
    async prepareRootfs(
      id: string,
      reference: string,
      opts: { pullSecret?: string; onProgress?: (p: PullProgress) => void },
    ) {
      this.calls.push(`prepare ${id} ${reference} ${opts.pullSecret ?? "-"}`);
      opts.onProgress?.({ image: reference, layersDone: 0, layersTotal: 2, bytesDone: 0, bytesTotal: 100 });
      opts.onProgress?.({ image: reference, layersDone: 2, layersTotal: 2, bytesDone: 100, bytesTotal: 100 });
      if (this.fail) throw this.fail;
      return {
        rootfs: `/images/containers/${id}/rootfs`,
        image: {
          reference,
          config: {
            Entrypoint: ["/entry"],
            Cmd: ["serve"],
            Env: ["PORT=1", "FROM_IMAGE=yes"],
            WorkingDir: "/app",
            User: "www:www",
          },
        },
      };
    }
    async unmountRootfs(id: string) {
      this.calls.push(`unmount ${id}`);
    }
    async cleanupContainers() {
      this.calls.push("cleanup");
      return [];
    }
  }

  let runtime: FakeRuntime;
  let images: FakeImages;
  let reports: InstanceStatus[];
  let stateDir: string;
  let reconciler: Reconciler;

  beforeEach(() => {
    runtime = new FakeRuntime({ yieldInCalls: true, clock: () => START_MS });
    images = new FakeImages();
    reports = [];
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-reconciler-"));
    reconciler = new Reconciler({
      runtime,
      images,
      rootfsDir: "/var/lib/grove/rootfs",
      stateDir,
      onStatus: (s) => reports.push(s),
      retryBaseDelayMs: 5,
      retryMaxDelayMs: 20,
      resyncIntervalMs: 0,
      pullProgressIntervalMs: 0,
    });
  });

  afterEach(() => {
    reconciler.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  const settle = () => settleQueue(reconciler);

  it("starts on the image's overlay root with its config merged, reports progress, and unmounts after removal", async () => {
    await reconciler.start();
    const s = spec("u1", { rootfs: "", image: "reg:5000/web:1", imagePullSecret: "team", command: [], workingDir: "" });
    reconciler.setDesired(desired(s));
    await settle();
    expect(images.calls).toEqual(["cleanup", "prepare u1 reg:5000/web:1 team"]);
    expect(runtime.started[0]).toMatchObject({
      rootfs: "/images/containers/u1/rootfs",
      command: ["/entry", "serve"],
      env: { PORT: "8080", FROM_IMAGE: "yes", PATH: expect.any(String) },
      workingDir: "/app",
      user: "www:www",
    });
    const pulling = reports.filter((r) => r.reason === "PullingImage");
    expect(pulling.map((r) => r.pull?.layersDone)).toEqual([0, 2]);
    expect(reports.at(-1)).toMatchObject({ state: "RUNNING" });
    expect(reports.at(-1)?.pull).toBeUndefined();

    reconciler.setDesired(desired());
    await settle();
    expect(images.calls.at(-1)).toBe("unmount u1");
  });

  it("runs as the App's security.user rather than the image's User", async () => {
    await reconciler.start();
    const security = {
      user: "1000",
      capabilitiesAdd: [],
      capabilitiesDrop: [],
      seccomp: "",
      readOnlyRootFilesystem: false,
      userNamespace: null,
    };
    const s = spec("u3", { rootfs: "", image: "reg:5000/web:1", command: [], workingDir: "", security });
    reconciler.setDesired(desired(s));
    await settle();
    expect(runtime.started[0]).toMatchObject({ user: "1000" });
  });

  it("ends ImagePullFailed with the reason when the pull fails, and starts nothing", async () => {
    images.fail = new Error("reg:5000/web manifests/nope: not found (404): MANIFEST_UNKNOWN: manifest unknown");
    await reconciler.start();
    reconciler.setDesired(desired(spec("u2", { rootfs: "", image: "reg:5000/web:nope" })));
    await settle();
    expect(runtime.started).toEqual([]);
    expect(reports.at(-1)).toMatchObject({
      state: "FAILED",
      reason: "ImagePullFailed",
      message: "reg:5000/web:nope: reg:5000/web manifests/nope: not found (404): MANIFEST_UNKNOWN: manifest unknown",
    });
    expect(images.calls.at(-1)).toBe("unmount u2");
  });
});

describe("Reconciler with private roots over rootfs directories", () => {
  /** Mounts nothing: a private root is a plain directory of the test's. */
  class FakeTemplates {
    calls: string[] = [];
    invalid = new Set<string>();
    constructor(private readonly dir: string) {}
    async template(name: string) {
      if (this.invalid.has(name)) throw new Error(`rootfs "${name}": /r/${name} does not exist`);
      return `/r/${name}`;
    }
    async mount(id: string, template: string) {
      this.calls.push(`mount ${id} ${template}`);
      const root = path.join(this.dir, id);
      fs.mkdirSync(root, { recursive: true });
      return root;
    }
    async unmount(id: string) {
      this.calls.push(`unmount ${id}`);
      fs.rmSync(path.join(this.dir, id), { recursive: true, force: true });
    }
    async cleanup(keep: ReadonlySet<string> = new Set()) {
      this.calls.push(`cleanup ${[...keep].join(",")}`);
      return [];
    }
  }

  let runtime: FakeRuntime;
  let stateDir: string;
  let templates: FakeTemplates;
  let reports: InstanceStatus[];
  let reconciler: Reconciler;
  const calls: string[] = [];

  beforeEach(() => {
    runtime = new FakeRuntime({ yieldInCalls: true, clock: () => START_MS });
    calls.length = 0;
    reports = [];
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-reconciler-"));
    templates = new FakeTemplates(path.join(stateDir, "roots"));
    reconciler = new Reconciler({
      runtime,
      templates,
      rootfsDir: "/r",
      stateDir,
      onStatus: (s) => reports.push(s),
      network: {
        ready: true,
        setup: async (req) => {
          calls.push(`setup ${req.uid}`);
          return { netnsPath: `/run/netns/${req.uid}`, ip: "10.244.0.7", ports: [] };
        },
        teardown: async (uid) => {
          calls.push(`teardown ${uid}`);
        },
        cleanupStale: async () => [],
        adopt: async (req) => {
          calls.push(`adopt ${req.uid}`);
          return { netnsPath: `/run/netns/${req.uid}`, ip: "10.244.0.9", ports: [] };
        },
      },
      retryBaseDelayMs: 5,
      retryMaxDelayMs: 20,
      resyncIntervalMs: 0,
    });
  });

  afterEach(() => {
    reconciler.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  const settle = () => settleQueue(reconciler);

  it("keeps the private root of a container whose records were lost, and releases it when the container goes", async () => {
    runtime.recoverable = [{ id: "u9", annotations: {}, recordsLost: true }];
    await reconciler.start();
    expect(templates.calls).toEqual(["cleanup u9"]); // kept: the container runs on it
    reconciler.setDesired(desired(spec("u9")));
    await settle();
    expect(runtime.started).toEqual([]); // adopted, not started again
    expect(calls).toEqual(["adopt u9"]);
    reconciler.setDesired(desired());
    await settle();
    expect(templates.calls.at(-1)).toBe("unmount u9");
  });

  it("starts on its own root over the directory, users from the directory, /etc files in its root; releases it with the instance", async () => {
    const stale = path.join(stateDir, "network", "etc", "gone");
    fs.mkdirSync(stale, { recursive: true });
    await reconciler.start();
    expect(fs.existsSync(stale)).toBe(false); // left by an older agent, no container adopted it
    reconciler.setDesired(desired(spec("u1")));
    await settle();
    const root = path.join(stateDir, "roots", "u1");
    expect(templates.calls).toEqual(["cleanup ", "mount u1 /r/busybox"]);
    expect(runtime.started[0]).toMatchObject({ rootfs: root, usersFrom: "/r/busybox" });
    expect(runtime.started[0]?.mounts).toBeUndefined();
    expect(fs.readFileSync(path.join(root, "etc", "hosts"), "utf8")).toContain("10.244.0.7\tweb-u1\n");
    expect(fs.existsSync(path.join(root, "etc", "resolv.conf"))).toBe(true);

    reconciler.setDesired(desired());
    await settle();
    expect(calls).toEqual(["setup u1", "teardown u1"]);
    expect(templates.calls.at(-1)).toBe("unmount u1");
    expect(fs.existsSync(root)).toBe(false);
  });

  it("ends InvalidRootfs when the directory cannot be used, and mounts nothing", async () => {
    templates.invalid.add("busybox");
    await reconciler.start();
    reconciler.setDesired(desired(spec("u2")));
    await settle();
    expect(runtime.started).toEqual([]);
    expect(reports.at(-1)).toMatchObject({
      state: "FAILED",
      reason: "InvalidRootfs",
      message: 'rootfs "busybox": /r/busybox does not exist',
    });
    expect(templates.calls).toEqual(["cleanup "]);
  });
});

describe("Reconciler: a failed start releases what its steps set up, in reverse", () => {
  /** Every set-up and release of the root, network and user-namespace steps, in order. */
  let events: string[];
  let runtime: FakeRuntime;
  let stateDir: string;
  let reports: InstanceStatus[];
  let reconciler: Reconciler;
  let pool: UsernsPool;
  let networkFailure: Error | undefined;
  let teardownFailures: number;

  class RecordingPool extends UsernsPool {
    override release(owner: string): void {
      events.push(`release range ${owner}`);
      super.release(owner);
    }
  }

  beforeEach(() => {
    events = [];
    networkFailure = undefined;
    teardownFailures = 0;
    runtime = new FakeRuntime({ yieldInCalls: true, clock: () => START_MS });
    reports = [];
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-reconciler-steps-"));
    pool = new RecordingPool({ base: 100_000_000, size: 65536, count: 2 });
    reconciler = new Reconciler({
      runtime,
      rootfsDir: "/r",
      stateDir,
      onStatus: (s) => reports.push(s),
      userns: pool,
      templates: {
        template: async (name) => `/r/${name}`,
        mount: async (id) => {
          events.push(`mount ${id}`);
          const root = path.join(stateDir, "roots", id);
          fs.mkdirSync(root, { recursive: true });
          return root;
        },
        unmount: async (id) => {
          events.push(`unmount ${id}`);
        },
        cleanup: async () => [],
      },
      network: {
        ready: true,
        setup: async (req) => {
          events.push(`setup ${req.uid}`);
          if (networkFailure) throw networkFailure;
          return { netnsPath: `/run/netns/${req.uid}`, ip: "10.244.0.7", ports: [] };
        },
        teardown: async (uid) => {
          events.push(`teardown ${uid}`);
          if (teardownFailures-- > 0) throw new Error("iptables: Resource temporarily unavailable");
        },
        cleanupStale: async () => [],
      },
      retryBaseDelayMs: 5,
      retryMaxDelayMs: 20,
      resyncIntervalMs: 0,
    });
  });

  afterEach(() => {
    reconciler.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
    expect(runtime.overlap).toBeUndefined();
  });

  const settle = () => settleQueue(reconciler);
  const withUserns = (uid: string) =>
    spec(uid, {
      security: {
        user: "",
        capabilitiesAdd: [],
        capabilitiesDrop: [],
        seccomp: "",
        readOnlyRootFilesystem: false,
        userNamespace: { auto: true, hostUid: 0, hostGid: 0, size: 0 },
      },
    });

  it("a container that fails to start: its id range, network and private root are released in that order, once each", async () => {
    runtime.failNextStart(new Error("clone: Cannot allocate memory"));
    await reconciler.start();
    reconciler.setDesired(desired(withUserns("u1")));
    await settle();
    expect(reports.at(-1)).toMatchObject({
      state: "FAILED",
      reason: "StartFailed",
      message: "clone: Cannot allocate memory",
    });
    expect(events).toEqual(["mount u1", "setup u1", "release range u1", "teardown u1", "unmount u1"]);
    expect(pool.used).toBe(0);
    // Nothing was made in the runtime: nothing to remove.
    expect(callsOf(runtime)).toEqual(["cleanupStale", "start u1"]);
    // Still desired: finished, nothing set up or released again.
    reconciler.setDesired(desired(withUserns("u1")));
    await settle();
    expect(events).toHaveLength(5);
  });

  it("a start that fails half way: the container it left is removed first, then the rest in reverse", async () => {
    runtime.failNextStart(new Error("pivot_root: EINVAL"), { leaveContainer: true });
    await reconciler.start();
    reconciler.setDesired(desired(withUserns("u4")));
    await settle();
    expect(reports.at(-1)).toMatchObject({ state: "FAILED", reason: "StartFailed", message: "pivot_root: EINVAL" });
    expect(callsOf(runtime)).toEqual(["cleanupStale", "start u4", "remove u4"]);
    expect(runtime.list()).toEqual([]);
    expect(events).toEqual(["mount u4", "setup u4", "release range u4", "teardown u4", "unmount u4"]);
  });

  it.each([
    ["NetworkFailed", new Error("no free address in 10.244.0.0/24")],
    ["HostPortRefused", new HostPortRefusedError("host port 22 is reserved on this node")],
  ])(
    "a network set-up that fails ends %s: what CNI made and the root are released, no container",
    async (reason, error) => {
      networkFailure = error;
      await reconciler.start();
      reconciler.setDesired(desired(spec("u2")));
      await settle();
      expect(reports.map((r) => r.state)).toEqual(["STARTING", "FAILED"]);
      expect(reports.at(-1)).toMatchObject({ reason, message: error.message });
      expect(events).toEqual(["mount u2", "setup u2", "teardown u2", "unmount u2"]);
      expect(runtime.started).toEqual([]);
    },
  );

  it("a release that fails after a failed start is retried until it succeeds, and the releases before it wait for it", async () => {
    networkFailure = new Error("CNI ADD: plugin timed out");
    teardownFailures = 2;
    await reconciler.start();
    reconciler.setDesired(desired(spec("u3")));
    await settle();
    expect(events).toEqual(["mount u3", "setup u3", "teardown u3", "teardown u3", "teardown u3", "unmount u3"]);
    expect(reports.at(-1)).toMatchObject({ state: "FAILED", reason: "NetworkFailed" });
    // Reported once: the retries only release.
    expect(reports.filter((r) => r.state === "FAILED")).toHaveLength(1);
  });
});
