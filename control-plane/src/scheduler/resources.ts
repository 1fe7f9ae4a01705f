// Resource arithmetic on the library's Resources (disk only when either side has it).

import type { Resources } from "@grove/api";

export function zeroResources(): Resources {
  return { cpuMillis: 0, memoryBytes: 0, pids: 0 };
}

export function subtractResources(a: Resources, b: Resources): Resources {
  const out: Resources = {
    cpuMillis: a.cpuMillis - b.cpuMillis,
    memoryBytes: a.memoryBytes - b.memoryBytes,
    pids: a.pids - b.pids,
  };
  if (a.diskBytes !== undefined || b.diskBytes !== undefined) out.diskBytes = (a.diskBytes ?? 0) - (b.diskBytes ?? 0);
  return out;
}

export function addResources(a: Resources, b: Resources): Resources {
  const out: Resources = {
    cpuMillis: a.cpuMillis + b.cpuMillis,
    memoryBytes: a.memoryBytes + b.memoryBytes,
    pids: a.pids + b.pids,
  };
  if (a.diskBytes !== undefined || b.diskBytes !== undefined) out.diskBytes = (a.diskBytes ?? 0) + (b.diskBytes ?? 0);
  return out;
}
