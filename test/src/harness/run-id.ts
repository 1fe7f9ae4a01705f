// The run id: what every kernel object, directory and process a test makes
// on the host is named after, instead of a process id. Two jest workers are
// two processes; naming by pid made the leak check (which outside CI counts
// only this run's objects) blind to a worker's leaks, and a pid says nothing
// about which run made an object. The global setup (test/src/global-setup.js)
// draws one id per jest run and exports it as GROVE_TEST_RUN_ID before any
// worker starts; each worker adds its number, so two workers never share a
// name. A bench or a script run outside jest draws its own id here. This file
// is the only place ids are drawn: the global setup and the leak check
// (plain JavaScript, run by jest untransformed) require its compiled form,
// test/dist/src/harness/run-id.js, after checking the build is fresh.
//
// Format: "r" and five base-36 characters (the tag adds "w" and the worker
// number): letters and digits only, so it fits in interface names (15
// characters with the harness's prefixes), cgroup, netns, iptables chain and
// user names; the "r" keeps it from ever matching inside a hex uuid or a
// pid, which is all the leak check looks at.
import { randomInt } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const RUN_ID_ENV = "GROVE_TEST_RUN_ID";
const FORMAT = /^r[a-z0-9]{5}$/;

/** The run id from the environment (checked), or a new one put there. */
export function runId(): string {
  const set = process.env[RUN_ID_ENV];
  if (set !== undefined) {
    if (!FORMAT.test(set)) throw new Error(`${RUN_ID_ENV}=${set}: expected "r" and five of [a-z0-9]`);
    return set;
  }
  const id =
    "r" +
    randomInt(36 ** 5)
      .toString(36)
      .padStart(5, "0");
  // Child processes (agents, their shims, etcd) carry it too: the leak check finds them by it.
  process.env[RUN_ID_ENV] = id;
  return id;
}

/** This jest run's id (every worker's names contain it). */
export const RUN_ID = runId();

/** 1-based jest worker number (1 under --runInBand), 0 outside jest. */
export const WORKER = Number(process.env.JEST_WORKER_ID ?? "0");

/** This worker's tag: put it in every name a test makes on the host (`grove-it-${RUN_TAG}`). */
export const RUN_TAG = `${RUN_ID}w${WORKER}`;

function hash(s: string): number {
  let h = 2166136261; // FNV-1a: a stable spread of the run id, no need for crypto
  for (const c of s) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  return h;
}

/**
 * A number in [0, size) for this worker, for numeric ranges on the host
 * (user-namespace id ranges, subnets): the run's hash plus the worker
 * number, so two workers of one run never get the same slot (runs side by
 * side differ by their hash). `offset` separates two users of one range.
 */
export function runSlot(size: number, offset = 0): number {
  return (hash(RUN_ID) + WORKER + offset) % size;
}

/**
 * A new directory under the system's temporary one, named
 * `PREFIX-<run tag>-XXXXXX` (the leak check finds it by the run id). Only
 * node's own modules here, so runtime tests need not load the harness's
 * server side to get one.
 */
export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix.includes(RUN_ID) ? `${prefix}-` : `${prefix}-${RUN_TAG}-`));
}
