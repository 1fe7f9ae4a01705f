// Arithmetic on resource amounts, shared by the scheduler, the controllers,
// the simulator, the agent and the CLI. The amounts are structural (the same
// fields as @grove/api's Resources and the agent's limits), so this package
// needs no schema; parsing what users write ("250m", "64Mi") is part of the
// HTTP contract and stays in @grove/api's quantity.ts.

export interface ResourceAmounts {
  cpuMillis: number;
  memoryBytes: number;
  pids: number;
  /** Scheduled only (the agent enforces no disk limit); absent means not asked for. */
  diskBytes?: number;
}

export function zeroResources(): ResourceAmounts {
  return { cpuMillis: 0, memoryBytes: 0, pids: 0 };
}

/** a + b per field; diskBytes only when either side has it. */
export function addResources(a: ResourceAmounts, b: ResourceAmounts): ResourceAmounts {
  return combine(a, b, 1);
}

/** a - b per field (may go negative); diskBytes only when either side has it. */
export function subtractResources(a: ResourceAmounts, b: ResourceAmounts): ResourceAmounts {
  return combine(a, b, -1);
}

function combine(a: ResourceAmounts, b: ResourceAmounts, sign: 1 | -1): ResourceAmounts {
  const out: ResourceAmounts = {
    cpuMillis: a.cpuMillis + sign * b.cpuMillis,
    memoryBytes: a.memoryBytes + sign * b.memoryBytes,
    pids: a.pids + sign * b.pids,
  };
  if (a.diskBytes !== undefined || b.diskBytes !== undefined) {
    out.diskBytes = (a.diskBytes ?? 0) + sign * (b.diskBytes ?? 0);
  }
  return out;
}

/** Each field raised to at least 0 (e.g. a reserve larger than the capacity leaves nothing). */
export function clampResources<R extends ResourceAmounts>(r: R): R {
  const out = { ...r, cpuMillis: Math.max(0, r.cpuMillis), memoryBytes: Math.max(0, r.memoryBytes) };
  out.pids = Math.max(0, r.pids);
  if (r.diskBytes !== undefined) out.diskBytes = Math.max(0, r.diskBytes);
  return out;
}

/** Whether two sizes match in what the agent enforces: cpu, memory and pids (disk is only scheduled). */
export function sameLimits(a: ResourceAmounts, b: ResourceAmounts): boolean {
  return a.cpuMillis === b.cpuMillis && a.memoryBytes === b.memoryBytes && a.pids === b.pids;
}

/** 67108864 -> "64Mi", 25006368768 -> "23.3Gi"; used for display. */
export function formatBytes(n: number): string {
  for (const [u, f] of [
    ["Ti", 2 ** 40],
    ["Gi", 2 ** 30],
    ["Mi", 2 ** 20],
    ["Ki", 2 ** 10],
  ] as const) {
    if (n >= f) return n % f === 0 ? `${n / f}${u}` : `${(n / f).toFixed(1)}${u}`;
  }
  return String(n);
}

/** 250 -> "250m", 2000 -> "2". */
export function formatCpu(millis: number): string {
  return millis % 1000 === 0 ? String(millis / 1000) : `${millis}m`;
}

/** "cpu 500m, memory 128Mi, pids 64". */
export function formatLimits(r: ResourceAmounts): string {
  return `cpu ${formatCpu(r.cpuMillis)}, memory ${formatBytes(r.memoryBytes)}, pids ${r.pids}`;
}
