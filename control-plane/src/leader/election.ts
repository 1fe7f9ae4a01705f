// Leader election over etcd (etcd3's Election: a lease-backed key under
// election/<name>; the oldest live key leads). Only the leader runs the
// controllers and the scheduler; every grove-server serves the API and the
// agents. When the leader's lease is lost (its etcd session fails or the
// process dies), another server's campaign wins after the lease TTL.
//
// The TTL is what a failover costs: a paused or dead leader's key stays
// until etcd expires its lease, TTL after its last renewal (renewals go out
// every TTL/3), and a standby's campaign is woken by that key's deletion.
// Measured (test/bench/leader-failover.ts), the expiry was nearly all of a
// failover (the new leader placed within 0.1-0.6 s of it), so the default
// TTL is 3 s: failover in about 2-4 s, under the 5 s target on a loaded
// machine, where 5 s gave 4.2-6.1 s.
//
// Fencing: the leader's campaign key and its create revision (the epoch) are
// the LeaderFence its controllers' store view compares in every write
// (store/fenced-store.ts). etcd3 reports a lost lease only after 2 x TTL by
// the wall clock; a leader here stops acting on its own monotonic clock
// (performance.now) once no keepalive it sent has been answered for TTL minus
// a margin, so it stops before etcd can expire its lease and elect another.
import * as os from "node:os";
import { Etcd3, type Campaign, type Lease } from "etcd3";
import { etcdCredentials, type EtcdClientTls } from "../store/etcd-store";
import type { Logger } from "pino";
import { Backoff } from "@grove/common";
import type { LeaderFence } from "../store/fenced-store";
import { failoverPolicy, runOncePolicy } from "../store/etcd-policies";
import { hardenWatchManager, resetWatchStream, watchStreamAnswers } from "../store/etcd-watch-stream";

/** Unary calls' deadline on the election's client (a grant or txn must not hang a campaign). */
const CALL_TIMEOUT_MS = 5000;
/** While campaigning and not leading, how often the watch stream is checked (etcd-watch-stream.ts). */
const WATCH_CHECK_EVERY_MS = 5000;

/** The default lease TTL (seconds): see the header. */
export const DEFAULT_LEADER_LEASE_TTL_SECONDS = 3;

export interface LeaderCallbacks {
  /** Became leader: start the controllers; every write of theirs goes through `fence`. */
  onElected(fence: LeaderFence): void;
  /** Lost leadership: stop them at once (another server may already lead). */
  onLost(): void;
}

export interface LeaderElectionOptions {
  endpoints: string[];
  /** Lease TTL in seconds: how long a dead leader blocks the others. Default 3 (DEFAULT_LEADER_LEASE_TTL_SECONDS). */
  ttlSeconds?: number;
  /** This server's identity as recorded in etcd. Default hostname:pid. */
  identity?: string;
  /** Election name. Default "grove-controllers". */
  name?: string;
  /**
   * Stop acting this long before the lease could expire (ms): leadership
   * ends when no keepalive sent more than TTL - margin ago was answered.
   * Default: a fifth of the TTL, at least 500 ms.
   */
  stepDownMarginMs?: number;
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
  private deadlineCheck: NodeJS.Timeout | undefined;
  private watchCheck: NodeJS.Timeout | undefined;
  /** performance.now() of the oldest keepalive (or grant) whose answer renewed the lease last. */
  private renewedAt = 0;
  /** performance.now() of the oldest keepalive sent since the last answer. */
  private pendingSentAt: number | undefined;
  private fence: (LeaderFence & { key: string; epoch: string }) | undefined;
  private readonly ttlMs: number;
  private readonly marginMs: number;
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
      dialTimeout: CALL_TIMEOUT_MS,
      ...(opts.tls ? { credentials: etcdCredentials(opts.tls) } : {}),
      // As the store's client (etcd-store.ts): unary calls get a deadline,
      // keepalive pings find a dead connection, failover per call.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: new Date(Date.now() + CALL_TIMEOUT_MS) }),
      grpcOptions: {
        "grpc.keepalive_time_ms": 10_000,
        "grpc.keepalive_timeout_ms": 5_000,
        "grpc.keepalive_permit_without_calls": 0,
      },
      faultHandling: { global: failoverPolicy(opts.endpoints.length), host: () => runOncePolicy() },
    });
    hardenWatchManager(this.client, (message) =>
      this.opts.logger?.warn(
        { err: message },
        "the election's watch stream answered for a watcher it no longer has: reset",
      ),
    );
    this.ttlMs = this.ttlSeconds * 1000;
    this.marginMs = opts.stepDownMarginMs ?? Math.max(500, this.ttlMs / 5);
  }

  private get ttlSeconds(): number {
    return this.opts.ttlSeconds ?? DEFAULT_LEADER_LEASE_TTL_SECONDS;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** The fence of the current term, while this server leads. */
  get currentFence(): LeaderFence | undefined {
    return this.leading ? this.fence : undefined;
  }

  /** Whether the lease was renewed recently enough to act (monotonic clock). */
  private withinDeadline(): boolean {
    return performance.now() - this.renewedAt < this.ttlMs - this.marginMs;
  }

  /** Times lease renewals on the monotonic clock: a renewal counts from when its keepalive was sent. */
  private trackLease(campaign: Campaign): void {
    // etcd3 keeps the lease private; its events are public API.
    const lease = (campaign as unknown as { lease: Lease }).lease;
    lease.on("keepaliveFired", () => {
      this.pendingSentAt ??= performance.now();
    });
    lease.on("keepaliveSucceeded", (res: { TTL: string }) => {
      if (this.campaign !== campaign || Number(res.TTL) <= 0) return;
      if (this.pendingSentAt !== undefined) this.renewedAt = Math.max(this.renewedAt, this.pendingSentAt);
      this.pendingSentAt = undefined;
    });
  }

  /** Starts campaigning; resolves once this server is the leader or the first campaign failed. */
  start(): Promise<void> {
    this.watchCheck ??= setInterval(() => void this.checkWatchStream(), WATCH_CHECK_EVERY_MS);
    this.watchCheck.unref?.();
    return new Promise((resolve) => this.campaignOnce(resolve));
  }

  /**
   * A campaign waits for the keys ahead of it to be deleted through a watch.
   * If the client's watch stream stopped answering (etcd-watch-stream.ts),
   * that wait would never end and no server would lead: check the stream
   * while waiting, and open a new one when etcd does not confirm a watcher.
   */
  private async checkWatchStream(): Promise<void> {
    if (this.closed || this.leading || !this.campaign) return;
    if (await watchStreamAnswers(this.client, `election-watch-check/${this.identity}`, CALL_TIMEOUT_MS)) return;
    if (this.closed || this.leading) return;
    if (resetWatchStream(this.client, "etcd did not confirm a watcher while campaigning", CALL_TIMEOUT_MS)) {
      this.opts.logger?.warn({}, "the election's watch stream did not answer: opened a new one");
    }
  }

  private campaignOnce(firstOutcome?: () => void): void {
    if (this.closed) return;
    const election = this.client.election(this.opts.name ?? "grove-controllers", this.ttlSeconds);
    // The grant is sent after this: counting the lease from now is on the safe side.
    this.renewedAt = performance.now();
    this.pendingSentAt = undefined;
    const campaign = election.campaign(this.identity);
    this.campaign = campaign;
    this.trackLease(campaign);
    const giveUp = (err: Error) => {
      if (this.closed || this.campaign !== campaign) return;
      this.opts.logger?.warn({ err: err.message }, "leader election failed; campaigning again");
      this.lose();
      firstOutcome?.();
      firstOutcome = undefined;
      this.campaign = undefined;
      campaign.resign().catch(() => undefined);
      this.retry = setTimeout(() => this.campaignOnce(), this.campaignBackoff.next());
    };
    campaign.on("elected", () => {
      if (this.closed || this.campaign !== campaign) return;
      void this.becomeLeader(campaign, giveUp).then(() => {
        firstOutcome?.();
        firstOutcome = undefined;
      });
    });
    campaign.on("error", giveUp);
  }

  private async becomeLeader(campaign: Campaign, giveUp: (err: Error) => void): Promise<void> {
    let key: string;
    try {
      key = await campaign.getCampaignKey();
    } catch (err) {
      return giveUp(err as Error);
    }
    // etcd3 keeps the key's create revision private: it is the epoch.
    const epoch = String((campaign as unknown as { keyRevision?: unknown }).keyRevision ?? "");
    if (this.closed || this.campaign !== campaign) return;
    if (!/^[1-9]\d*$/.test(epoch)) return giveUp(new Error(`elected without a campaign key revision (${epoch})`));
    if (!this.withinDeadline()) return giveUp(new Error("elected, but the lease was not renewed in time"));
    const fence = {
      key,
      epoch,
      holds: () => this.leading && this.fence === fence && this.withinDeadline(),
    };
    this.fence = fence;
    this.leading = true;
    this.campaignBackoff.reset();
    this.deadlineCheck = setInterval(() => {
      if (this.leading && !this.withinDeadline()) {
        const silentMs = Math.round(performance.now() - this.renewedAt);
        giveUp(
          new Error(`lease not renewed for ${silentMs} ms (TTL ${this.ttlMs} ms): stepping down before it expires`),
        );
      }
    }, 100);
    this.opts.logger?.info({ identity: this.identity, epoch, key }, "elected leader: running the controllers");
    this.callbacks.onElected(fence);
  }

  private lose(): void {
    if (this.deadlineCheck) clearInterval(this.deadlineCheck);
    this.deadlineCheck = undefined;
    if (!this.leading) return;
    this.leading = false;
    this.opts.logger?.warn(
      { identity: this.identity, epoch: this.fence?.epoch },
      "lost leadership: controllers stopped",
    );
    this.callbacks.onLost();
  }

  /** Resigns (so another server takes over at once) and closes the client. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    if (this.watchCheck) clearInterval(this.watchCheck);
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

/**
 * Follows the election: calls `onChange` with the leader's identity now and
 * whenever another key leads (undefined: nobody). A leader whose key is
 * deleted (lease expired or resigned) is replaced as soon as etcd's watch
 * says so, so the calls time a failover from outside (the benchmark's
 * breakdown). Resolves with a function that stops following.
 */
export async function observeLeader(
  endpoints: string[],
  onChange: (identity: string | undefined) => void,
  opts: { name?: string; tls?: EtcdClientTls } = {},
): Promise<() => Promise<void>> {
  const client = new Etcd3({
    hosts: endpoints,
    dialTimeout: 5000,
    ...(opts.tls ? { credentials: etcdCredentials(opts.tls) } : {}),
  });
  try {
    const observer = await client.election(opts.name ?? "grove-controllers").observe();
    onChange(observer.leader());
    observer.on("change", (leader: string | undefined) => onChange(leader));
    observer.on("error", () => onChange(undefined));
    return async () => {
      await observer.cancel().catch(() => undefined);
      client.close();
    };
  } catch (err) {
    client.close();
    throw err;
  }
}
