// HollowRuntime: a ContainerRuntime that only pretends to start containers,
// for hollow agents (hollow-fleet.ts) and nothing else. Kubemark's hollow
// kubelet does the same with a fake container runtime: everything above the
// runtime (the reconciler, the Connect stream, registration, heartbeats and
// status reports) is the real agent code, so one machine can present
// thousands of nodes to a real grove-server and etcd.
//
// A "container" is a record with a made-up pid that runs until it is killed
// or stopped; nothing is created on the host (no cgroup, process, namespace
// or mount). Never used by grove-agent itself.
import type {
  CgroupMode,
  ContainerExit,
  ContainerHandle,
  ContainerResources,
  ContainerRuntime,
  ContainerSpec,
  ContainerStats,
} from "../runtime/types";
import { RuntimeError } from "../runtime/errors";
import { signalNumber, validateId } from "../runtime/validate";

const SIGKILL = 9;

interface HollowContainer {
  handle: ContainerHandle;
  resources: ContainerResources;
  exit: ContainerExit | undefined;
  resolve: (exit: ContainerExit) => void;
}

/** Pids no real process has (above the kernel's pid_max limit of 2^22). */
const FIRST_HOLLOW_PID = 1 << 22;

export class HollowRuntime implements ContainerRuntime {
  readonly cgroupMode: CgroupMode = "v2";
  private readonly containers = new Map<string, HollowContainer>();
  private nextPid: number;

  constructor(firstPid = FIRST_HOLLOW_PID) {
    this.nextPid = firstPid;
  }

  /** How many pretend containers run now. */
  get running(): number {
    let n = 0;
    for (const c of this.containers.values()) if (!c.exit) n++;
    return n;
  }

  start(spec: ContainerSpec): Promise<ContainerHandle> {
    validateId(spec.id);
    if (this.containers.has(spec.id)) {
      return Promise.reject(new RuntimeError("CONTAINER_EXISTS", `container ${spec.id} already exists`));
    }
    let resolve!: (exit: ContainerExit) => void;
    const exited = new Promise<ContainerExit>((r) => (resolve = r));
    const handle: ContainerHandle = { id: spec.id, pid: this.nextPid++, startedAt: new Date(), exited };
    this.containers.set(spec.id, {
      handle,
      resources: { ...spec.resources },
      exit: undefined,
      resolve,
    });
    return Promise.resolve(handle);
  }

  kill(id: string, signal: NodeJS.Signals | number): Promise<void> {
    const c = this.containers.get(id);
    if (!c) return Promise.reject(new RuntimeError("CONTAINER_NOT_FOUND", `no container ${id}`));
    // Every signal ends a pretend container: there is no process to handle it.
    this.end(c, signalNumber(signal));
    return Promise.resolve();
  }

  stop(id: string, _graceSeconds: number): Promise<ContainerExit> {
    const c = this.containers.get(id);
    if (!c) return Promise.reject(new RuntimeError("CONTAINER_NOT_FOUND", `no container ${id}`));
    this.end(c, 15);
    return c.handle.exited;
  }

  remove(id: string): Promise<void> {
    const c = this.containers.get(id);
    if (c && !c.exit) return Promise.reject(new RuntimeError("CONTAINER_RUNNING", `container ${id} still runs`));
    this.containers.delete(id);
    return Promise.resolve();
  }

  list(): ContainerHandle[] {
    return [...this.containers.values()].map((c) => c.handle);
  }

  /** A hollow agent's containers die with its process: nothing is ever left over. */
  cleanupStale(): Promise<string[]> {
    return Promise.resolve([]);
  }

  stats(id: string): Promise<ContainerStats> {
    const c = this.containers.get(id);
    if (!c) return Promise.reject(new RuntimeError("CONTAINER_NOT_FOUND", `no container ${id}`));
    return Promise.resolve({ cpuUsageNs: 0, memoryBytes: 0, memoryPeakBytes: 0, pids: c.exit ? 0 : 1, oomKills: 0 });
  }

  update(id: string, resources: ContainerResources): Promise<void> {
    const c = this.containers.get(id);
    if (!c || c.exit) return Promise.reject(new RuntimeError("CONTAINER_NOT_RUNNING", `no running container ${id}`));
    c.resources = { ...resources };
    return Promise.resolve();
  }

  /** Ends every pretend container (the hollow node is going away). */
  stopAll(): void {
    for (const c of this.containers.values()) this.end(c, SIGKILL);
  }

  private end(c: HollowContainer, signal: number): void {
    if (c.exit) return;
    c.exit = { exitCode: 128 + signal, signal, oomKilled: false, finishedAt: new Date() };
    c.resolve(c.exit);
  }
}
