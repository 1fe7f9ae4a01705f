// At most a few agent registrations in flight at once; the others wait their
// turn, in order. A registration is a handful of etcd round trips (the Node,
// the subnet claims, the presence key, the reported statuses). When thousands
// of agents register at once (a fleet joining, every agent of a replica that
// restarted) and each starts its round trips at once, the store's answers
// queue behind one another until calls pass their deadlines; each failed
// registration ends its stream, the agent dials again and registers again: a
// storm that feeds itself. 2,000 hollow nodes joining on a loaded machine got
// 205 registered out of 800 joined before the store was marked down and the
// benchmark failed. Waiting costs an agent nothing: it sends nothing but its
// Register until the answer comes, and its stream stays open meanwhile.
//
// A waiter whose stream ended before its turn is skipped (`wanted`), so a
// queue of streams that gave up does not register nodes no one holds.

/** Registrations in flight at once by default. */
export const REGISTRATIONS_IN_FLIGHT = 16;

export class RegistrationGate {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit = REGISTRATIONS_IN_FLIGHT) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`registrations in flight: ${limit} is not at least 1`);
  }

  /** Registrations waiting for their turn now. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Registrations running now. */
  get inFlight(): number {
    return this.running;
  }

  /**
   * Runs `fn` when fewer than `limit` others run; undefined without running
   * it when `wanted()` says no once its turn comes (its stream ended).
   */
  async run<T>(wanted: () => boolean, fn: () => Promise<T>): Promise<T | undefined> {
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running++;
    try {
      return wanted() ? await fn() : undefined;
    } finally {
      // The slot passes straight to the next waiter (running stays counted).
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
