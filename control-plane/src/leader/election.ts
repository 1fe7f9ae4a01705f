// Leader election over etcd (etcd3's Election: a lease-backed key under
// election/<name>; the oldest live key leads). Only the leader runs the
// controllers and the scheduler; every grove-server serves the API and the
// agents. When the leader's lease is lost (its etcd session fails or the
// process dies), another server's campaign wins after the lease TTL.
import * as os from "node:os";
import { Etcd3, type Campaign } from "etcd3";
import { etcdCredentials, type EtcdClientTls } from "../store/etcd-store";
import type { Logger } from "pino";
import { Backoff } from "@grove/common";

export interface LeaderCallbacks {
  /** Became leader: start the controllers. */
  onElected(): void;
  /** Lost leadership: stop them at once (another server may already lead). */
  onLost(): void;
}

export interface LeaderElectionOptions {
  endpoints: string[];
  /** Lease TTL in seconds: how long a dead leader blocks the others. Default 5. */
  ttlSeconds?: number;
  /** This server's identity as recorded in etcd. Default hostname:pid. */
  identity?: string;
  /** Election name. Default "grove-controllers". */
  name?: string;
  logger?: Logger;
  /** TLS to etcd (as the store's). */
  tls?: EtcdClientTls;
}

export class LeaderElection {
  private readonly client: Etcd3;
  private campaign: Campaign | undefined;
  private leading = false;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  /** Campaigning again after a failed campaign: every second, as before the shared backoff. */
  private readonly campaignBackoff = new Backoff({ initialMs: 1000, maxMs: 1000, factor: 1 });
  readonly identity: string;

  constructor(
    private readonly opts: LeaderElectionOptions,
    private readonly callbacks: LeaderCallbacks,
  ) {
    this.identity = opts.identity ?? `${os.hostname()}:${process.pid}`;
    this.client = new Etcd3({
      hosts: opts.endpoints,
      dialTimeout: 5000,
      ...(opts.tls ? { credentials: etcdCredentials(opts.tls) } : {}),
    });
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Starts campaigning; resolves once this server is the leader or the first campaign failed. */
  start(): Promise<void> {
    return new Promise((resolve) => this.campaignOnce(resolve));
  }

  private campaignOnce(firstOutcome?: () => void): void {
    if (this.closed) return;
    const election = this.client.election(this.opts.name ?? "grove-controllers", this.opts.ttlSeconds ?? 5);
    const campaign = election.campaign(this.identity);
    this.campaign = campaign;
    campaign.on("elected", () => {
      if (this.closed || this.campaign !== campaign) return;
      this.leading = true;
      this.campaignBackoff.reset();
      this.opts.logger?.info({ identity: this.identity }, "elected leader: running the controllers");
      this.callbacks.onElected();
      firstOutcome?.();
      firstOutcome = undefined;
    });
    campaign.on("error", (err: Error) => {
      if (this.closed || this.campaign !== campaign) return;
      this.opts.logger?.warn({ err: err.message }, "leader election failed; campaigning again");
      this.lose();
      firstOutcome?.();
      firstOutcome = undefined;
      this.campaign = undefined;
      campaign.resign().catch(() => undefined);
      this.retry = setTimeout(() => this.campaignOnce(), this.campaignBackoff.next());
    });
  }

  private lose(): void {
    if (!this.leading) return;
    this.leading = false;
    this.opts.logger?.warn({ identity: this.identity }, "lost leadership: controllers stopped");
    this.callbacks.onLost();
  }

  /** Resigns (so another server takes over at once) and closes the client. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.lose();
    const c = this.campaign;
    this.campaign = undefined;
    if (c) await c.resign().catch(() => undefined);
    this.client.close();
  }
}

/** The current leader's identity, if any (for status and tests). */
export async function currentLeader(
  endpoints: string[],
  name = "grove-controllers",
  tls?: EtcdClientTls,
): Promise<string | undefined> {
  const client = new Etcd3({
    hosts: endpoints,
    dialTimeout: 5000,
    ...(tls ? { credentials: etcdCredentials(tls) } : {}),
  });
  try {
    return await client.election(name).leader();
  } finally {
    client.close();
  }
}
