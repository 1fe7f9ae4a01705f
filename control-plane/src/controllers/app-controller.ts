// The App controller: turns `spec.instances: N` into N Instance objects and
// keeps that count. Handlers only enqueue the App's key; sync(key) reads the
// App and its instances from the informers and converges, idempotently.
//
// An instance that ended is replaced (same name and index, a new uid,
// spec.restarts + 1) when the App's restart policy says so, after a crash-loop
// backoff of min(1 s * 2^restarts, 60 s) counted from when it finished.
import { createHash, randomUUID } from "node:crypto";
import type { Logger } from "pino";
import {
  API_VERSION,
  DEFAULT_RESTART_POLICY,
  DEFAULT_STOP_GRACE_SECONDS,
  GroveError,
  TERMINAL_STATES,
  normalizeResources,
  type App,
  type Instance,
  type InstanceSpec,
} from "@grove/api";
import type { Repository } from "../resources/repository";
import { Informer, objectKey } from "./informer";
import { WorkQueue } from "./work-queue";

export const APP_LABEL = "grove.io/app";
export const TEMPLATE_HASH_LABEL = "grove.io/template-hash";
const MAX_BACKOFF_MS = 60_000;

export interface Clock {
  now(): number;
}

/** The part of an instance's spec that comes from its App. */
export function instanceTemplate(app: App): Omit<InstanceSpec, "index" | "restarts" | "nodeName"> {
  const s = app.spec;
  return {
    app: app.metadata.name,
    appUid: app.metadata.uid ?? "",
    rootfs: s.rootfs ?? "",
    command: [...(s.command ?? [])],
    env: { ...(s.env ?? {}) },
    // With an image an unset working directory means the image's own.
    ...(s.workingDir !== undefined || !s.image ? { workingDir: s.workingDir ?? "/" } : {}),
    resources: normalizeResources(s.resources),
    restartPolicy: s.restartPolicy ?? DEFAULT_RESTART_POLICY,
    stopGracePeriodSeconds: s.stopGracePeriodSeconds ?? DEFAULT_STOP_GRACE_SECONDS,
    // Only when given, so that Apps without them keep their template hash.
    ...(s.ports?.length ? { ports: s.ports.map((p) => ({ ...p, protocol: p.protocol ?? "tcp" })) } : {}),
    ...(s.egress?.length ? { egress: s.egress.map((r) => ({ ...r })) } : {}),
    ...(s.security !== undefined ? { security: structuredClone(s.security) } : {}),
    ...(s.image ? { image: s.image } : {}),
    ...(s.imagePullSecret ? { imagePullSecret: s.imagePullSecret } : {}),
    ...(s.entrypoint?.length ? { entrypoint: [...s.entrypoint] } : {}),
    ...(s.placement ? { placement: structuredClone(s.placement) } : {}),
    ...(s.priority !== undefined ? { priority: s.priority } : {}),
  };
}

export function templateHash(app: App): string {
  const t = instanceTemplate(app);
  const { appUid: _uid, ...rest } = t;
  return createHash("sha256").update(JSON.stringify(rest)).digest("hex").slice(0, 10);
}

export function isTerminal(inst: Instance): boolean {
  return inst.status !== undefined && TERMINAL_STATES.includes(inst.status.state);
}

/** Whether an ended instance should be replaced under its restart policy. */
export function shouldReplace(inst: Instance): boolean {
  const st = inst.status;
  if (!st || !TERMINAL_STATES.includes(st.state)) return false;
  switch (inst.spec.restartPolicy) {
    case "Always":
      return true;
    case "OnFailure":
      return !(st.state === "Exited" && (st.exitCode ?? 0) === 0);
    case "Never":
      return false;
  }
}

/** Milliseconds to wait before replacing an ended instance (crash-loop backoff). */
export function restartDelayMs(inst: Instance, now: number): number {
  const finished = inst.status?.finishedAt ? Date.parse(inst.status.finishedAt) : NaN;
  if (Number.isNaN(finished)) return 0;
  const backoff = Math.min(1000 * 2 ** inst.spec.restarts, MAX_BACKOFF_MS);
  return Math.max(0, finished + backoff - now);
}

export function newInstance(app: App, index: number, restarts: number, now: number): Instance {
  const ns = app.metadata.namespace ?? "default";
  return {
    apiVersion: API_VERSION,
    kind: "Instance",
    metadata: {
      name: `${app.metadata.name}-${index}`,
      namespace: ns,
      uid: randomUUID(),
      labels: { [APP_LABEL]: app.metadata.name, [TEMPLATE_HASH_LABEL]: templateHash(app) },
      creationTimestamp: new Date(now).toISOString(),
    },
    spec: { ...instanceTemplate(app), index, restarts },
    status: { state: "Pending", reason: "Unscheduled", message: "waiting for the scheduler" },
  };
}

export class AppController {
  private readonly queue: WorkQueue;

  constructor(
    private readonly repo: Repository,
    private readonly apps: Informer<App>,
    private readonly instances: Informer<Instance>,
    private readonly logger: Logger,
    private readonly clock: Clock = { now: () => Date.now() },
  ) {
    this.queue = new WorkQueue({ name: "app-controller", sync: (k) => this.sync(k), logger });
    apps.on((ev) => this.queue.add(objectKey(ev.object)));
    instances.on((ev) => {
      const app = ev.object.spec.app;
      const ns = ev.object.metadata.namespace ?? "default";
      this.queue.add(`${ns}/${app}`);
    });
  }

  /** Enqueues every known App (after the informers synced). */
  resyncAll(): void {
    for (const a of this.apps.list()) this.queue.add(objectKey(a));
  }

  stop(): void {
    this.queue.stop();
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  private instancesOf(ns: string, appName: string): Instance[] {
    return this.instances.list().filter((i) => (i.metadata.namespace ?? "default") === ns && i.spec.app === appName);
  }

  async sync(key: string): Promise<void> {
    const [ns, name] = key.split("/") as [string, string];
    const app = this.apps.get(key);
    const owned = this.instancesOf(ns, name);

    if (!app) {
      // The App is gone: its instances go too (agents stop them when they
      // leave their desired set).
      for (const inst of owned) await this.deleteIgnoringMissing(inst);
      return;
    }
    // Instances left over from an earlier App of the same name.
    const mine: Instance[] = [];
    for (const inst of owned) {
      if (inst.spec.appUid !== app.metadata.uid) await this.deleteIgnoringMissing(inst);
      else mine.push(inst);
    }

    const want = app.spec.instances;
    const hash = templateHash(app);
    const now = this.clock.now();
    const byIndex = new Map<number, Instance>();
    for (const inst of mine) {
      if (inst.spec.index >= want || byIndex.has(inst.spec.index)) {
        await this.deleteIgnoringMissing(inst); // scaled down, or a duplicate index
        continue;
      }
      byIndex.set(inst.spec.index, inst);
    }

    for (let index = 0; index < want; index++) {
      const inst = byIndex.get(index);
      if (!inst) {
        await this.repo.create(newInstance(app, index, 0, now));
        continue;
      }
      const outdated = inst.metadata.labels?.[TEMPLATE_HASH_LABEL] !== hash;
      if (outdated) {
        // The App's template changed: replace the instance with the new one.
        await this.replace(inst, app, inst.spec.restarts, now);
        continue;
      }
      if (shouldReplace(inst)) {
        const delay = restartDelayMs(inst, now);
        if (delay > 0) {
          this.queue.addAfter(key, delay);
          continue;
        }
        await this.replace(inst, app, inst.spec.restarts + 1, now);
      }
    }

    await this.updateAppStatus(app, this.instancesOf(ns, name));
  }

  private async replace(old: Instance, app: App, restarts: number, now: number): Promise<void> {
    const next = newInstance(app, old.spec.index, restarts, now);
    next.metadata.resourceVersion = old.metadata.resourceVersion;
    this.logger.info(
      { instance: objectKey(old), oldUid: old.metadata.uid, restarts, state: old.status?.state },
      "replacing instance",
    );
    await this.repo.replace(next);
  }

  private async deleteIgnoringMissing(inst: Instance): Promise<void> {
    try {
      await this.repo.delete("Instance", inst.metadata.namespace ?? "default", inst.metadata.name);
    } catch (err) {
      if (err instanceof GroveError && err.code === "NotFound") return;
      throw err;
    }
  }

  private async updateAppStatus(app: App, instances: Instance[]): Promise<void> {
    const running = instances.filter((i) => i.status?.state === "Running").length;
    const pending = instances.filter((i) => !i.status || ["Pending", "Starting"].includes(i.status.state)).length;
    const status = {
      observedGeneration: app.metadata.generation ?? 1,
      instances: instances.length,
      running,
      pending,
    };
    const cur = app.status ?? {};
    if (
      cur.observedGeneration === status.observedGeneration &&
      cur.instances === status.instances &&
      cur.running === status.running &&
      cur.pending === status.pending
    ) {
      return;
    }
    try {
      await this.repo.updateStatus("App", app, (a) => {
        (a as App).status = status;
      });
    } catch (err) {
      if (err instanceof GroveError && err.code === "NotFound") return;
      throw err;
    }
  }
}
