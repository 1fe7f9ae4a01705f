// Adoption: taking over containers a previous agent run left running
// (containers outlive the agent). From the runtime's records (recover()) at
// start, or, when those records were lost, from the host and the first
// desired set that names the container (adoptLost).
import type { InstanceSpec__Output, InstanceStatus } from "@grove/proto";
import type { ContainerHandle, ContainerResources } from "../runtime/types";
import type { InstanceNetwork } from "../network/manager";
import type { UsernsRange } from "./userns-pool";
import { holdWithoutSetup, type PrepareStep } from "./prepare-steps";
import {
  containerSpecOf,
  instanceAnnotations,
  networkRequestOf,
  readAnnotations,
  resourcesOf,
  USERNS_ANNOTATION,
} from "./instance-spec";
import { StepName, type StartContext } from "./start-steps";
import type { ReconcilerCore, TrackedInstance } from "./types";
import { initialReadiness } from "../health/from-spec";

/** What adoption found in the runtime's records. */
export interface Recovered {
  /** Uids adopted (running or exited meanwhile), and those found without records. */
  uids: string[];
  /** Running containers whose records were lost: adopted once the desired set names them. */
  recordsLost: Map<string, ContainerHandle>;
}

/**
 * Takes over the containers a previous agent run left (runtime.recover()):
 * running ones are tracked as RUNNING with their pid, exited ones get their
 * recorded exit reported (through the exit watch). Call before anything is
 * cleaned up: what it returns is kept.
 */
export async function adoptRecovered(
  core: ReconcilerCore,
  steps: readonly PrepareStep<StartContext>[],
): Promise<Recovered> {
  const found: Recovered = { uids: [], recordsLost: new Map() };
  if (core.runtime.recover === undefined) return found;
  for (const { handle, annotations, resources, recordsLost } of await core.runtime.recover()) {
    if (recordsLost) {
      // Known again once the desired set names it (adoptLost); kept until then.
      found.recordsLost.set(handle.id, handle);
      found.uids.push(handle.id);
      core.log.warn(
        { uid: handle.id, pid: handle.pid },
        "found a running container whose records were lost; the desired set decides whether it is adopted",
      );
      continue;
    }
    // Not started by a reconciler (or unreadable): sync() stops it as unknown.
    const recorded = readAnnotations(annotations);
    if (recorded === undefined) continue;
    const { spec, net } = recorded;
    const uid = handle.id;
    claimUsernsRange(core, uid, annotations[USERNS_ANNOTATION]);
    // The limits it has: as the runtime recorded them (a live update
    // changes them), else those it was started with.
    const applied = resources ? { ...resources } : resourcesOf(spec);
    trackAdopted(core, steps, uid, spec, handle, applied, {
      ...(net.ip !== undefined ? { ip: net.ip, ports: net.ports ?? [] } : {}),
      networkUp: core.options.network !== undefined && recorded.hasNetwork,
    });
    found.uids.push(uid);
    core.log.info({ uid, pid: handle.pid }, "adopted container from a previous agent run");
  }
  return found;
}

/** Takes an adopted container's user-namespace range out of the pool again, so no new instance gets it. */
function claimUsernsRange(core: ReconcilerCore, uid: string, raw: string | undefined): void {
  const pool = core.options.userns;
  if (raw === undefined || !pool) return;
  try {
    if (!pool.claim(uid, JSON.parse(raw) as UsernsRange)) {
      core.log.warn({ uid, range: raw }, "adopted container's user namespace range is not a free slot of the pool");
    }
  } catch {
    core.log.warn({ uid, range: raw }, "adopted container has an unreadable user namespace range");
  }
}

/**
 * Adopts a running container whose records were lost, with its desired
 * spec: its network is taken over from the host (namespace, address,
 * allocation, CNI cache), its spec recorded again, and it is reported
 * RUNNING with the same pid: no restart, no second copy, no second IP.
 * Throws to be retried (e.g. before the node's subnet is known).
 */
export async function adoptLost(
  core: ReconcilerCore,
  steps: readonly PrepareStep<StartContext>[],
  spec: InstanceSpec__Output,
  handle: ContainerHandle,
): Promise<void> {
  const { uid } = spec;
  let network: InstanceNetwork | undefined;
  const networks = core.options.network;
  if (networks) {
    if (!networks.ready) throw new Error("waiting for the node's subnet from the control plane");
    if (!networks.adopt) throw new Error("this agent's networking cannot adopt a running container");
    network = await networks.adopt(networkRequestOf(spec), handle.pid);
  }
  const containerSpec = containerSpecOf(spec, { rootfsDir: core.options.rootfsDir, logDir: core.logDir });
  if (network) containerSpec.netnsPath = network.netnsPath;
  containerSpec.annotations = instanceAnnotations(spec, network);
  await core.runtime.recordSpec?.(containerSpec);
  const tracked = trackAdopted(core, steps, uid, spec, handle, resourcesOf(spec), {
    ...(network ? { ip: network.ip, ports: network.ports } : {}),
    networkUp: network !== undefined,
  });
  core.log.info(
    { uid, pid: handle.pid, ip: network?.ip },
    "adopted a container whose records were lost, from the host and the desired set",
  );
  core.report(tracked, tracked.status);
}

/**
 * Tracks a running container this agent did not start: RUNNING with its
 * pid, its limits, its network, and holding what its start would have set
 * up (its root, which the container runs on, its network, its id range, the
 * container itself), so that removing it releases them all.
 */
function trackAdopted(
  core: ReconcilerCore,
  steps: readonly PrepareStep<StartContext>[],
  uid: string,
  spec: InstanceSpec__Output,
  handle: ContainerHandle,
  applied: ContainerResources,
  net: { ip?: string; ports?: InstanceStatus["ports"]; networkUp: boolean },
): TrackedInstance {
  const tracked: TrackedInstance = {
    uid,
    spec,
    status: {
      uid,
      namespace: spec.namespace,
      name: spec.name,
      state: "RUNNING",
      pid: handle.pid,
      startedAtMs: handle.startedAt.getTime(),
      ...(net.ip !== undefined ? { ip: net.ip, ports: net.ports ?? [] } : {}),
      appliedResources: { ...applied },
      ...initialReadiness(spec),
    },
    finished: false,
    handle,
    applied,
    stopRequested: false,
    held: [],
  };
  const held = new Set<string>([StepName.UserNamespace, StepName.Container]);
  if (net.networkUp) held.add(StepName.Network);
  if (core.options.images !== undefined && spec.image) held.add(StepName.ImageRoot);
  if (core.options.templates !== undefined && !spec.image) held.add(StepName.PrivateRoot);
  const ctx: StartContext = {
    tracked,
    spec,
    container: containerSpecOf(spec, { rootfsDir: core.options.rootfsDir, logDir: core.logDir }),
    ownRoot: true,
  };
  holdWithoutSetup(steps, ctx, held, tracked.held);
  core.trackRunning(tracked);
  return tracked;
}
