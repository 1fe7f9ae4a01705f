// Durations in manifests ("500ms", "30s", "5m", "1h"), as the Duration schema admits them.

const DURATION = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$/;
const FACTOR = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** Milliseconds of a duration; throws naming the text when it is not one. */
export function parseDurationMs(text: string): number {
  const m = DURATION.exec(text);
  if (!m)
    throw new Error(`invalid duration ${JSON.stringify(text)}: use a number and a unit, e.g. 30s, 5m, 1h or 500ms`);
  return Math.round(Number(m[1]) * FACTOR[m[2] as keyof typeof FACTOR]);
}
