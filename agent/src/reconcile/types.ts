// What the reconciler's parts share: its options and the node services it
// uses (networking, images, private roots), the record it keeps per
// instance, and what its start steps, adoption and resize use of it.
import type { Logger } from "pino";
import type { InstanceSpec__Output, InstanceStatus } from "@grove/proto";
import type { ContainerExit, ContainerHandle, ContainerResources, ContainerRuntime } from "../runtime/types";
import type { InstanceNetwork, InstanceNetworkRequest } from "../network/manager";
import type { ImageRunConfig, PullProgress } from "../images/types";
import type { UsernsPool } from "./userns-pool";
import type { Held } from "./prepare-steps";

/** What the reconciler needs from instance networking (agent/src/network). */
export interface InstanceNetworks {
  /** False until the node's subnet is known: starts wait (and retry) until then. */
  readonly ready: boolean;
  setup(req: InstanceNetworkRequest): Promise<InstanceNetwork>;
  teardown(uid: string): Promise<void>;
  cleanupStale(keep?: ReadonlySet<string>): Promise<string[]>;
  /** Takes over the network of a running container whose records were lost (NetworkManager.adopt). */
  adopt?(req: InstanceNetworkRequest, pid: number): Promise<InstanceNetwork>;
}

/** What the reconciler needs from the image store (agent/src/images ImageService). */
export interface InstanceImages {
  prepareRootfs(
    id: string,
    reference: string,
    opts: { pullSecret?: string; onProgress?: (progress: PullProgress) => void },
  ): Promise<{ rootfs: string; image: { reference: string; config: ImageRunConfig } }>;
  unmountRootfs(id: string): Promise<void>;
  /** Unmounts and removes every container root but those of `keep` (adopted containers). */
  cleanupContainers(keep?: ReadonlySet<string>): Promise<string[]>;
}

/** What the reconciler needs for private roots over rootfs directories (agent/src/images TemplateRoots). */
export interface InstanceTemplates {
  /** The real path of the rootfs directory `name`; throws why it cannot be used. */
  template(name: string): Promise<string>;
  /** Mounts a fresh private root over `template` for container `id`; resolves with its path. */
  mount(id: string, template: string): Promise<string>;
  unmount(id: string): Promise<void>;
  /** Unmounts and removes every private root but those of `keep` (adopted containers). */
  cleanup(keep?: ReadonlySet<string>): Promise<string[]>;
}

export interface ReconcilerOptions {
  runtime: ContainerRuntime;
  /** Directory holding the root filesystems named by InstanceSpec.rootfs. */
  rootfsDir: string;
  /** The agent's state directory; container logs go to <stateDir>/logs/<uid>.log. */
  stateDir: string;
  /** Told about every status change, in order per uid. */
  onStatus?: (status: InstanceStatus) => void;
  /**
   * Told, with its last status and `released: true`, when an instance that
   * left the desired set is gone: container removed, network, host ports and
   * the rest of its start released. Not on a shutdown.
   */
  onReleased?: (status: InstanceStatus) => void;
  logger?: Logger;
  /** This node's name, for messages that name it (default: the host name). */
  nodeName?: string;
  /** Distinct uids synced at the same time (default 16). */
  concurrency?: number;
  /** Backoff of a failing sync: first delay, doubling up to the max (default 200 ms .. 30 s). */
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
  /** Re-syncs every known uid this often as a safety net; 0 turns it off (default 30 s). */
  resyncIntervalMs?: number;
  now?: () => number;
  /** Instance networking; without it every container gets an empty network namespace with lo. */
  network?: InstanceNetworks;
  /** Fault injection for tests: wait this long between CNI ADD and the container start. */
  pauseAfterNetworkMs?: number;
  /** OCI images (agent/src/images); without it instances naming an image fail with ImagePullFailed. */
  images?: InstanceImages;
  /**
   * Private roots over root filesystem directories (agent/src/images
   * TemplateRoots): each instance gets its own overlay with the directory as
   * the read-only lower layer. Without it (unit tests with the fake runtime)
   * the container is pointed at the directory itself.
   */
  templates?: InstanceTemplates;
  /** Least time between two pull-progress reports of one instance (default 1000 ms). */
  pullProgressIntervalMs?: number;
  /** A refused resize is tried again (at a resync) no sooner than this (default 60 s). */
  resizeRetryDelayMs?: number;
  /**
   * How long the node has been without contact with the control plane (ms,
   * monotonic; grpc/client.ts). Without it stop_after_ms is never acted on.
   */
  withoutContactMs?: () => number;
  /** How often instances with stop_after_ms are checked against it (default 500 ms). */
  disconnectCheckIntervalMs?: number;
  /**
   * Host id ranges for `security.userNamespace: auto` (--userns-range); without
   * it such instances fail to start. Explicit ranges need no pool.
   */
  userns?: UsernsPool;
}

/** What the reconciler knows about one instance it started (or refused to start, or adopted). */
export interface TrackedInstance {
  uid: string;
  spec: InstanceSpec__Output;
  /** Last status reported. */
  status: InstanceStatus;
  /** The status is terminal: the instance is never started again. */
  finished: boolean;
  handle?: ContainerHandle;
  /** The container's exit, once observed and not yet folded into `status`. */
  exit?: ContainerExit;
  exitError?: unknown;
  /** The agent asked the runtime to stop it. */
  stopRequested: boolean;
  /**
   * What its start set up on the host (or adoption found set up), in step
   * order: its root, network, user-namespace range, container. Released in
   * reverse when it finishes or goes; empty once nothing of it is left.
   */
  held: Held[];
  /** The cpu, memory and pids limits its container has (set once it runs). */
  applied?: ContainerResources;
  /** The last refused resize: its target and when, so it is not retried in a hot loop. */
  resizeFailure?: { target: string; atMs: number };
  /** To be stopped: the node was without contact this many ms (spec.disconnect.stopAfter). */
  disconnectStopMs?: number;
  /** Its running health checks (agent/src/health); stopped when it finishes. */
  health?: { stop(): void };
  /** To be stopped: its liveness (or startup) check failed; the message says how. */
  livenessFailure?: string;
}

/** What the start steps, adoption and resize use of the reconciler. */
export interface ReconcilerCore {
  readonly options: ReconcilerOptions;
  readonly runtime: ContainerRuntime;
  readonly log: Logger;
  now(): number;
  /** <stateDir>/logs: where container logs go. */
  readonly logDir: string;
  /** Records a status as the instance's last and tells onStatus (in order per uid). */
  report(tracked: TrackedInstance, status: InstanceStatus): void;
  /** Tracks an instance whose container runs: its exit (or the loss of it) enqueues a sync. */
  trackRunning(tracked: TrackedInstance): void;
}
