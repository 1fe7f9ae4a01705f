// The "Rollout:" part of `grove describe app`: revision, progress, canary or
// pause, and the last automatic rollback with its reason.
import type { App } from "../../schemas";

export function rolloutLines(app: App): string[] {
  const st = app.status;
  const r = st?.rollout;
  const c = st?.conditions?.find((x) => x.type === "Progressing");
  if (!r && !c) return [];
  const u = app.spec.update;
  const rows: [string, string | undefined][] = [
    ["Revision", r ? `${r.revision}${st?.revision ? ` (template ${st.revision})` : ""}` : st?.revision],
    ["From revision", r?.from !== undefined && !r.complete ? String(r.from) : undefined],
    ["Strategy", `${u?.strategy ?? "Rolling"}${u?.canary !== undefined ? `, canary ${u.canary}` : ""}`],
    [
      "Updated",
      `${st?.updated ?? 0} of ${app.spec.instances} (${st?.ready ?? 0} ready, ${st?.available ?? 0} available)`,
    ],
    ["Progressing", c ? `${c.status} ${c.reason ?? ""}: ${c.message ?? ""}` : undefined],
    ["Paused", u?.paused ? "yes (grove rollout resume)" : undefined],
    ["Promoted", r?.promoted && !r.complete ? "yes" : undefined],
    ["Last progress", r && !r.complete ? r.progressedAt : undefined],
    ["Rolled back", r?.rolledBack ? `${r.rolledBack.at} (${r.rolledBack.reason}): ${r.rolledBack.message}` : undefined],
  ];
  const present = rows.filter((x): x is [string, string] => x[1] !== undefined);
  const width = Math.max(...present.map(([k]) => k.length + 1));
  return ["Rollout:", ...present.map(([k, v]) => `  ${(k + ":").padEnd(width)}  ${v}`)];
}
