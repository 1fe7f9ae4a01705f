// Per-identity limits: concurrent watches, log follows and exec sessions, and
// a request rate (a token bucket on the monotonic clock). Beyond them: 429.
// The bootstrap admin token is exempt (operators and the controllers' own
// tooling must not be locked out by a tenant's load).
import { GroveError } from "@grove/api";
import type { Identity } from "./policy";

export interface IdentityLimitOptions {
  watches: number;
  follows: number;
  execs: number;
  /** Requests per second (sustained); bursts up to twice that. */
  rate: number;
}

export const DEFAULT_IDENTITY_LIMITS: IdentityLimitOptions = { watches: 32, follows: 16, execs: 8, rate: 100 };

export type Session = "watches" | "follows" | "execs";

/** "watches=32,follows=16,execs=8,rate=100" (any subset) over the defaults. */
export function parseIdentityLimits(text: string, flag = "--identity-limits"): IdentityLimitOptions {
  const out = { ...DEFAULT_IDENTITY_LIMITS };
  for (const part of text.split(",").filter(Boolean)) {
    const [k, v] = part.split("=");
    if (!k || !(k in out) || !/^[1-9][0-9]*$/.test(v ?? "")) {
      throw new Error(`${flag}: "${part}" is not one of watches=N, follows=N, execs=N, rate=N (N > 0)`);
    }
    out[k as keyof IdentityLimitOptions] = Number(v);
  }
  return out;
}

function keyOf(who: Identity): string {
  return `${who.namespace ?? ""}/${who.name}`;
}

export class IdentityLimits {
  private readonly open = new Map<string, number>();
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly opts: IdentityLimitOptions = DEFAULT_IDENTITY_LIMITS) {}

  /** Counts one request against the identity's rate; throws TooManyRequests beyond it. */
  take(who: Identity): void {
    if (who.name === "admin" && who.role === "cluster-admin" && who.namespace === undefined) return;
    const k = keyOf(who);
    const now = performance.now();
    const burst = this.opts.rate * 2;
    const b = this.buckets.get(k) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * this.opts.rate);
    b.at = now;
    if (b.tokens < 1) {
      this.buckets.set(k, b);
      throw new GroveError("TooManyRequests", `${who.name}: more than ${this.opts.rate} requests per second`);
    }
    b.tokens -= 1;
    this.buckets.set(k, b);
  }

  /** Opens a long-lived session; answers its release (call once when it ends). */
  acquire(who: Identity, kind: Session): () => void {
    if (who.name === "admin" && who.role === "cluster-admin" && who.namespace === undefined) return () => undefined;
    const k = `${kind}:${keyOf(who)}`;
    const n = this.open.get(k) ?? 0;
    if (n >= this.opts[kind]) {
      throw new GroveError("TooManyRequests", `${who.name} has ${n} open ${kind} (at most ${this.opts[kind]})`);
    }
    this.open.set(k, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(k) ?? 1) - 1;
      if (left > 0) this.open.set(k, left);
      else this.open.delete(k);
    };
  }
}
