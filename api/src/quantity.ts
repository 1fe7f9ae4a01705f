// Parsing of the resource quantities users write in manifests.

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
const DECIMAL: Record<string, number> = { k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12 };

/** "250m" -> 250, "0.5" -> 500, 2 -> 2000. Throws on anything else. */
export function parseCpuMillis(q: string | number): number {
  if (typeof q === "number") {
    if (!(q > 0) || !Number.isFinite(q)) throw new Error(`cpu must be a positive number of cores, got ${q}`);
    return Math.round(q * 1000);
  }
  const m = /^([0-9]+)m$/.exec(q);
  if (m) return Number(m[1]);
  if (/^[0-9]+(\.[0-9]{1,3})?$/.test(q)) return Math.round(Number(q) * 1000);
  throw new Error(`invalid cpu quantity "${q}": use millicores like "250m" or cores like "0.5"`);
}

/** "64Mi" -> 67108864, "1G" -> 1e9, 4096 -> 4096. Throws on anything else. */
export function parseBytes(q: string | number): number {
  if (typeof q === "number") {
    if (!Number.isInteger(q) || q < 0) throw new Error(`byte quantity must be a whole number, got ${q}`);
    return q;
  }
  const m = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|K|M|G|T)?$/.exec(q);
  if (!m) throw new Error(`invalid byte quantity "${q}": use e.g. "64Mi", "1Gi" or a number of bytes`);
  const unit = m[2] ? (BINARY[m[2]] ?? DECIMAL[m[2]] ?? 1) : 1;
  return Math.round(Number(m[1]) * unit);
}

// Formatting amounts for display is shared with the agent and the controllers.
export { formatBytes, formatCpu } from "@grove/common";
