// The steps of an instance start, in order. Each prepares one thing the
// container needs and points the container spec at it; those that hold
// something on the host say how to release it (prepare-steps.ts runs them
// and unwinds on failure; the reconciler releases the rest when the
// instance goes):
//
//   image root        pull the image, mount its overlay root, merge its config   release: unmount the root
//   rootfs directory  resolve the rootfs directory a private root goes over      (nothing held)
//   private root      mount the instance's own overlay over that directory       release: unmount it
//   network           CNI ADD (address, host ports, egress rules), the netns     release: CNI DEL, netns
//   /etc files        /etc/hosts and resolv.conf in the instance's own root      (goes with the root)
//   pause             fault injection between network and start (tests only)   (nothing held)
//   user namespace    the host id range: a pool slot, or the App's own range     release: free the slot
//   container         runtime.start with the annotations a restart reads back    release: runtime.remove
//
// A step that fails throws a StartFailure naming the status reason; the
// instance then ends FAILED with it and what is held is released.
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import type { InstanceSpec__Output } from "@grove/proto";
import type { ContainerHandle, ContainerSpec } from "../runtime/types";
import { RuntimeError } from "../runtime/errors";
import type { InstanceNetwork } from "../network/manager";
import { hostsFile, resolvConfFor, writeEtcFiles } from "../network/etc-files";
import { HostPortRefusedError } from "../network/host-ports";
import { isImageError } from "../images/errors";
import { mergeRunConfig } from "../images/run-config";
import type { PullProgress } from "../images/types";
import type { UsernsPool, UsernsRange } from "./userns-pool";
import { StartFailure, type PrepareStep } from "./prepare-steps";
import { errorMessage, StatusReason } from "./instance-status";
import { instanceAnnotations, networkRequestOf, UID_PATTERN } from "./instance-spec";
import type { ReconcilerCore, TrackedInstance } from "./types";

/** What the steps of one start share: the instance, the container spec they build, what they made. */
export interface StartContext {
  readonly tracked: TrackedInstance;
  readonly spec: InstanceSpec__Output;
  /** Built up step by step; the container step hands it to runtime.start. */
  readonly container: ContainerSpec;
  /** The real path of the rootfs directory a private root goes over. */
  template?: string;
  /** The root is the instance's alone (an image's or a private overlay): its /etc files go into it. */
  ownRoot: boolean;
  network?: InstanceNetwork;
  usernsRange?: UsernsRange;
  handle?: ContainerHandle;
}

/** The steps' names (in the held list, in logs). */
export const StepName = {
  ImageRoot: "image root",
  RootfsDirectory: "rootfs directory",
  PrivateRoot: "private root",
  Network: "network",
  EtcFiles: "/etc files",
  Pause: "pause",
  UserNamespace: "user namespace",
  Container: "container",
} as const;

/** The start steps, in order, bound to the reconciler's services. */
export function startSteps(core: ReconcilerCore): PrepareStep<StartContext>[] {
  return [
    imageRoot(core),
    rootfsDirectory(core),
    privateRoot(core),
    network(core),
    etcFiles(core),
    pauseAfterNetwork(core),
    userNamespace(core),
    container(core),
  ];
}

/**
 * Pulls the instance's image and mounts its overlay root, then points the
 * container spec at it with the image config merged in; reports progress
 * while pulling. Fails ImagePullFailed.
 */
function imageRoot(core: ReconcilerCore): PrepareStep<StartContext> {
  return {
    name: StepName.ImageRoot,
    when: (ctx) => Boolean(ctx.spec.image),
    async setup(ctx) {
      const { spec, tracked, container } = ctx;
      const base = { uid: spec.uid, namespace: spec.namespace, name: spec.name };
      const images = core.options.images;
      const interval = core.options.pullProgressIntervalMs ?? 1000;
      let lastReport = 0;
      const onProgress = (p: PullProgress) => {
        const now = core.now();
        const complete = p.layersDone === p.layersTotal;
        if (!complete && now - lastReport < interval) return;
        lastReport = now;
        core.report(tracked, {
          ...base,
          state: "STARTING",
          reason: StatusReason.PullingImage,
          message: `pulling ${p.image}: ${p.layersDone}/${p.layersTotal} layers, ${p.bytesDone} of ${p.bytesTotal} bytes`,
          pull: { ...p },
        });
      };
      try {
        if (!images) throw new Error("this agent has no image store");
        core.log.info({ uid: spec.uid, image: spec.image }, "pulling image");
        const opts = spec.imagePullSecret ? { pullSecret: spec.imagePullSecret, onProgress } : { onProgress };
        const { rootfs, image } = await images.prepareRootfs(spec.uid, spec.image, opts);
        const merged = mergeRunConfig(
          image.config,
          { entrypoint: spec.entrypoint, command: spec.command, env: spec.env, workingDir: spec.workingDir },
          image.reference,
        );
        container.rootfs = rootfs;
        container.command = merged.command;
        container.env = merged.env;
        container.workingDir = merged.workingDir;
        // The App's security.user wins over the image's User, as `docker run --user` does.
        if (merged.user && !container.user) container.user = merged.user;
        ctx.ownRoot = true;
      } catch (error) {
        core.log.warn({ uid: spec.uid, image: spec.image, err: error }, "image pull failed");
        const reason = isImageError(error, "CACHED_IMAGE_UNAUTHORIZED")
          ? StatusReason.ImagePullUnauthorized
          : StatusReason.ImagePullFailed;
        throw new StartFailure(reason, `${spec.image}: ${errorMessage(error)}`);
      }
    },
    async release(ctx) {
      await core.options.images?.unmountRootfs(ctx.spec.uid);
    },
  };
}

/** Resolves the rootfs directory a private root goes over. Fails InvalidRootfs. */
function rootfsDirectory(core: ReconcilerCore): PrepareStep<StartContext> {
  return {
    name: StepName.RootfsDirectory,
    when: (ctx) => !ctx.spec.image && core.options.templates !== undefined,
    async setup(ctx) {
      try {
        ctx.template = await core.options.templates!.template(ctx.spec.rootfs);
      } catch (error) {
        throw new StartFailure(StatusReason.InvalidRootfs, errorMessage(error));
      }
    },
  };
}

/**
 * Mounts the instance's private root over its rootfs directory and points
 * the container spec at it; users and groups are resolved from the
 * directory itself (the read-only lower layer), never from a writable one.
 * Fails StartFailed.
 */
function privateRoot(core: ReconcilerCore): PrepareStep<StartContext> {
  return {
    name: StepName.PrivateRoot,
    when: (ctx) => !ctx.spec.image && core.options.templates !== undefined,
    async setup(ctx) {
      const { spec, container } = ctx;
      const template = ctx.template!;
      try {
        container.rootfs = await core.options.templates!.mount(spec.uid, template);
        container.usersFrom = template;
        ctx.ownRoot = true;
      } catch (error) {
        core.log.warn({ uid: spec.uid, rootfs: spec.rootfs, err: error }, "could not mount the instance's root");
        throw new StartFailure(StatusReason.StartFailed, errorMessage(error));
      }
    },
    async release(ctx) {
      await core.options.templates?.unmount(ctx.spec.uid);
    },
  };
}

/** CNI ADD (address, host ports, egress rules) into a network namespace the container joins. */
function network(core: ReconcilerCore): PrepareStep<StartContext> {
  return {
    name: StepName.Network,
    when: () => core.options.network !== undefined,
    async setup(ctx) {
      try {
        ctx.network = await core.options.network!.setup(networkRequestOf(ctx.spec));
      } catch (error) {
        core.log.warn({ uid: ctx.spec.uid, err: error }, "instance network setup failed");
        const reason =
          error instanceof HostPortRefusedError ? StatusReason.HostPortRefused : StatusReason.NetworkFailed;
        throw new StartFailure(reason, errorMessage(error));
      }
      ctx.container.netnsPath = ctx.network.netnsPath;
    },
    /** CNI DEL, egress chain and namespace of the instance (and /etc files an older agent kept); throws to be retried. */
    async release(ctx) {
      const networks = core.options.network;
      if (!networks) return;
      await fs.rm(legacyEtcDir(core.options.stateDir, ctx.spec.uid), { recursive: true, force: true });
      await networks.teardown(ctx.spec.uid);
    },
  };
}

/** /etc/hosts (its hostname on its address) and resolv.conf in a root that is the instance's alone. */
function etcFiles(core: ReconcilerCore): PrepareStep<StartContext> {
  return {
    name: StepName.EtcFiles,
    when: (ctx) => ctx.network !== undefined && ctx.ownRoot,
    async setup(ctx) {
      const { container } = ctx;
      const hostResolv = await fs.readFile("/etc/resolv.conf", "utf8").catch(() => "");
      // Not fatal: the container starts with the root's own files.
      await writeEtcFiles(container.rootfs, {
        hosts: hostsFile(container.hostname, ctx.network!.ip),
        resolvConf: resolvConfFor(hostResolv),
      }).catch((err: unknown) =>
        core.log.warn({ uid: ctx.spec.uid, err }, "could not write /etc/hosts and /etc/resolv.conf"),
      );
    },
  };
}

/** Fault injection for tests (GROVE_AGENT_PAUSE_AFTER_NETWORK_MS): a window between CNI ADD and the start. */
function pauseAfterNetwork(core: ReconcilerCore): PrepareStep<StartContext> {
  const pause = () => core.options.pauseAfterNetworkMs ?? 0;
  return {
    name: StepName.Pause,
    when: () => core.options.network !== undefined && pause() > 0,
    async setup(ctx) {
      core.log.info({ uid: ctx.spec.uid, pauseMs: pause() }, "network ready; pausing before the container start");
      await new Promise((r) => setTimeout(r, pause()));
    },
  };
}

/** Maps container root to the instance's host id range. Fails StartFailed naming why it has none. */
function userNamespace(core: ReconcilerCore): PrepareStep<StartContext> {
  return {
    name: StepName.UserNamespace,
    when: (ctx) => Boolean(ctx.spec.security?.userNamespace),
    async setup(ctx) {
      let range: UsernsRange;
      try {
        range = userNamespaceRange(ctx.spec, core.options.userns);
      } catch (error) {
        throw new StartFailure(StatusReason.StartFailed, errorMessage(error));
      }
      ctx.usernsRange = range;
      ctx.container.userNamespace = {
        uidMap: [{ containerId: 0, hostId: range.hostUid, size: range.size }],
        gidMap: [{ containerId: 0, hostId: range.hostGid, size: range.size }],
      };
    },
    async release(ctx) {
      core.options.userns?.release(ctx.spec.uid);
    },
  };
}

/** Creates and starts the container, recording what an agent restart reads back. Fails StartFailed. */
function container(core: ReconcilerCore): PrepareStep<StartContext> {
  return {
    name: StepName.Container,
    async setup(ctx) {
      const { spec, container: containerSpec } = ctx;
      try {
        core.log.info({ uid: spec.uid, name: spec.name, rootfs: containerSpec.rootfs }, "starting instance");
        containerSpec.annotations = instanceAnnotations(spec, ctx.network, ctx.usernsRange);
        ctx.handle = await core.runtime.start(containerSpec);
      } catch (error) {
        core.log.warn({ uid: spec.uid, err: error }, "instance failed to start");
        if (error instanceof RuntimeError && error.code === "UNKNOWN_RUNTIME_CLASS") {
          const node = core.options.nodeName ?? os.hostname();
          throw new StartFailure(StatusReason.UnknownRuntimeClass, `${error.message} on node ${node}`);
        }
        throw new StartFailure(StatusReason.StartFailed, errorMessage(error));
      }
    },
    /** Removes the container (exited, or half made by a failed start); nothing when the runtime has none. */
    async release(ctx) {
      const { uid } = ctx.spec;
      if (core.runtime.list().some((h) => h.id === uid)) await core.runtime.remove(uid);
    },
  };
}

/**
 * The host id range of an instance with a user namespace: an allocation of
 * the pool (auto), or the App's explicit range. Throws why it has none.
 */
export function userNamespaceRange(spec: InstanceSpec__Output, pool: UsernsPool | undefined): UsernsRange {
  const u = spec.security!.userNamespace!;
  if (u.auto) {
    if (!pool) throw new Error("security.userNamespace: true needs the agent's --userns-range pool");
    return pool.allocate(spec.uid);
  }
  const range = { hostUid: u.hostUid, hostGid: u.hostGid, size: u.size };
  if (range.hostUid < 1 || range.hostGid < 1 || range.size < 1) {
    throw new Error(
      `security.userNamespace: hostUid, hostGid and size must be positive (got ${range.hostUid}, ${range.hostGid}, ${range.size})`,
    );
  }
  if (pool?.overlaps(range)) {
    throw new Error(
      `security.userNamespace: host ids ${range.hostUid}/${range.hostGid} (+${range.size}) overlap this node's --userns-range pool`,
    );
  }
  return range;
}

/**
 * <stateDir>/network/etc/<uid>: where agents before private roots kept the
 * /etc files of rootfs-directory instances (bind-mounted into them); only
 * removed now, for instances adopted from such an agent.
 */
export function legacyEtcDir(stateDir: string, uid?: string): string {
  const dir = path.join(stateDir, "network", "etc");
  if (uid === undefined) return dir;
  if (!UID_PATTERN.test(uid) || uid === "." || uid === "..")
    throw new Error(`uid ${JSON.stringify(uid)} is no path name`);
  return path.join(dir, uid);
}

/** Removes the legacy /etc files of every instance but those of `keep`; returns their uids. */
export async function cleanupLegacyEtcFiles(stateDir: string, keep: ReadonlySet<string>): Promise<string[]> {
  const uids = await fs.readdir(legacyEtcDir(stateDir)).catch(() => [] as string[]);
  const stale = uids.filter((uid) => !keep.has(uid) && uid !== "." && uid !== "..");
  for (const uid of stale) await fs.rm(legacyEtcDir(stateDir, uid), { recursive: true, force: true });
  return stale;
}
