// A seeded generator for tie-breaking, so placements replay exactly.

import type { Rng } from "./types";

/** mulberry32: a tiny, fast 32-bit PRNG; the same seed gives the same sequence. */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return {
    next(): number {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
}

/** The seeded Rng placement uses (currently mulberry32). */
export const seededRng = mulberry32;
