// The image service's two concurrency helpers: a bounded parallel map (layers
// fetched and unpacked at once) and the pull/gc lock.

/** Runs fn over items, at most `limit` at a time; throws the first failure once all have settled. */
export async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (next < items.length && failed === undefined) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed;
}

/** Many shared holders or one exclusive holder; waiting exclusives block new shared ones. */
export class SharedLock {
  private sharedCount = 0;
  private exclusiveHeld = false;
  private waiting: (() => void)[] = [];
  private exclusiveWaiting = 0;

  async shared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.exclusiveHeld || this.exclusiveWaiting > 0) await new Promise<void>((r) => this.waiting.push(r));
    this.sharedCount++;
    try {
      return await fn();
    } finally {
      this.sharedCount--;
      this.wake();
    }
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    this.exclusiveWaiting++;
    while (this.exclusiveHeld || this.sharedCount > 0) await new Promise<void>((r) => this.waiting.push(r));
    this.exclusiveWaiting--;
    this.exclusiveHeld = true;
    try {
      return await fn();
    } finally {
      this.exclusiveHeld = false;
      this.wake();
    }
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = [];
    for (const r of w) r();
  }
}
