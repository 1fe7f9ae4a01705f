// Output: the comparison table for the terminal, JSON, SVG charts and a
// self-contained HTML report that inlines them.
import type { Comparison } from "./compare";

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

export function table(c: Comparison): string {
  const head = [
    "PROFILE",
    "PLACED",
    "PENDING",
    "NODES",
    "LB1",
    "RATIO",
    "PEAK NODES",
    "PEAK LB1",
    "PEAK RATIO",
    "MEAN RATIO",
    "COMPACT P90",
    "P90/LB1",
    "CPU",
    "MEM",
    "STRANDED CPU",
    "STRANDED MEM",
    "PREEMPT",
    "P99 US",
  ];
  const rows = c.policies.map(({ run: r, compaction: k }) => [
    r.profile,
    String(r.placed),
    String(r.pending),
    String(r.nodesUsed),
    String(r.lb1),
    r.ratio.toFixed(3),
    String(r.peakNodesUsed),
    String(r.peakLb1),
    r.peakRatio.toFixed(3),
    r.meanRatio.toFixed(3),
    k ? `${k.p90}${k.fitsAll ? "" : "!"}` : "-",
    k ? k.ratioP90.toFixed(3) : "-",
    pct(r.utilization.cpu),
    pct(r.utilization.memory),
    pct(r.stranded.cpu),
    pct(r.stranded.memory),
    String(r.preemptions),
    r.latencyUs.p99.toFixed(0),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((v, i) => v.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  const title =
    `workload ${c.workload}: ${c.instances} instances on up to ${c.nodes} nodes, seed ${c.seed}` +
    (c.seeds > 0 ? `, compaction over ${c.seeds} seeds (90th percentile)` : "");
  return [title, "", line(head), ...rows.map(line)].join("\n");
}

/** JSON without the per-sample timelines unless asked. */
export function toJson(c: Comparison, withTimeline = false): string {
  const policies = c.policies.map(({ run: r, compaction }) => {
    const { timeline, ...rest } = r;
    return { ...rest, ...(withTimeline ? { timeline } : {}), ...(compaction ? { compaction } : {}) };
  });
  return JSON.stringify({ ...c, policies }, null, 2);
}

// ---- SVG ----

const COLORS = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#17becf",
  "#7f7f7f",
  "#bcbd22",
  "#e377c2",
];
const W = 720;
const H = 320;
const M = { l: 56, r: 150, t: 36, b: 44 };

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function niceMax(x: number): number {
  if (x <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(x)));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

function frame(title: string, yMax: number, yFmt: (v: number) => string, xLabel: string, body: string): string {
  const ph = H - M.t - M.b;
  const ticks = [0, 0.25, 0.5, 0.75, 1]
    .map((f) => {
      const y = M.t + ph * (1 - f);
      return (
        `<line x1="${M.l}" x2="${W - M.r}" y1="${y}" y2="${y}" stroke="#ddd"/>` +
        `<text x="${M.l - 6}" y="${y + 4}" text-anchor="end" font-size="11">${esc(yFmt(yMax * f))}</text>`
      );
    })
    .join("");
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">` +
    `<rect width="${W}" height="${H}" fill="white"/>` +
    `<text x="${M.l}" y="20" font-size="14" font-weight="bold">${esc(title)}</text>` +
    ticks +
    `<text x="${(M.l + W - M.r) / 2}" y="${H - 8}" text-anchor="middle" font-size="11">${esc(xLabel)}</text>` +
    body +
    `</svg>`
  );
}

function legend(names: string[]): string {
  return names
    .map(
      (n, i) =>
        `<rect x="${W - M.r + 12}" y="${M.t + i * 18}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>` +
        `<text x="${W - M.r + 30}" y="${M.t + i * 18 + 10}" font-size="11">${esc(n)}</text>`,
    )
    .join("");
}

export interface Series {
  name: string;
  points: Array<[number, number]>;
}

export function lineChart(title: string, series: Series[], yFmt: (v: number) => string, xLabel: string, yMax?: number) {
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const xMin = Math.min(0, ...xs);
  const xMax = Math.max(1e-9, ...xs);
  const top = yMax ?? niceMax(Math.max(0, ...ys));
  const pw = W - M.l - M.r;
  const ph = H - M.t - M.b;
  const px = (x: number) => M.l + ((x - xMin) / (xMax - xMin || 1)) * pw;
  const py = (y: number) => M.t + ph * (1 - y / top);
  const paths = series
    .map((s, i) => {
      if (s.points.length === 0) return "";
      const d = s.points.map((p, k) => `${k ? "L" : "M"}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join("");
      return `<path d="${d}" fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.8"/>`;
    })
    .join("");
  return frame(title, top, yFmt, xLabel, paths + legend(series.map((s) => s.name)));
}

export function barChart(
  title: string,
  bars: Array<{ name: string; value: number }>,
  yFmt: (v: number) => string,
  yMin = 0,
) {
  const top = niceMax(Math.max(...bars.map((b) => b.value), yMin + 1e-9));
  const pw = W - M.l - M.r;
  const ph = H - M.t - M.b;
  const bw = pw / Math.max(1, bars.length);
  const body = bars
    .map((b, i) => {
      const h = (b.value / top) * ph;
      const x = M.l + i * bw + bw * 0.15;
      return (
        `<rect x="${x.toFixed(1)}" y="${(M.t + ph - h).toFixed(1)}" width="${(bw * 0.7).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[i % COLORS.length]}"/>` +
        `<text x="${(x + bw * 0.35).toFixed(1)}" y="${(M.t + ph - h - 4).toFixed(1)}" text-anchor="middle" font-size="11">${esc(yFmt(b.value))}</text>` +
        `<text x="${(x + bw * 0.35).toFixed(1)}" y="${M.t + ph + 14}" text-anchor="middle" font-size="10">${esc(b.name)}</text>`
      );
    })
    .join("");
  return frame(title, top, yFmt, "", body);
}

/** The report's charts by file name. */
export function charts(c: Comparison): Record<string, string> {
  const names = c.policies.map((p) => p.run.profile);
  const def = c.policies.find((p) => p.run.profile === "default") ?? c.policies[0]!;
  const out: Record<string, string> = {};
  out["utilization.svg"] = lineChart(
    `Utilization of the nodes in use over time (${def.run.profile})`,
    [
      { name: "cpu", points: def.run.timeline.map((s) => [s.time, s.cpu]) },
      { name: "memory", points: def.run.timeline.map((s) => [s.time, s.memory]) },
    ],
    pct,
    "time (s)",
    1,
  );
  out["nodes-over-time.svg"] = lineChart(
    "Nodes used over time, per profile (LB1 dashed in legend as 'LB1')",
    [
      ...c.policies.map((p) => ({
        name: p.run.profile,
        points: p.run.timeline.map((s): [number, number] => [s.time, s.nodesUsed]),
      })),
      { name: "LB1", points: def.run.timeline.map((s): [number, number] => [s.time, s.lb1]) },
    ],
    (v) => v.toFixed(0),
    "time (s)",
  );
  out["nodes-used.svg"] = barChart(
    c.seeds > 0 ? `Nodes needed per profile (compaction, p90 of ${c.seeds} seeds)` : "Nodes used per profile (end)",
    c.policies.map((p) => ({ name: p.run.profile, value: p.compaction ? p.compaction.p90 : p.run.nodesUsed })),
    (v) => v.toFixed(0),
  );
  out["ratio-lb1.svg"] = barChart(
    "Ratio to the lower bound LB1 (lower is denser; 1 is optimal)",
    c.policies.map((p) => ({ name: p.run.profile, value: p.compaction ? p.compaction.ratioP90 : p.run.ratio })),
    (v) => v.toFixed(3),
  );
  void names;
  return out;
}

export function html(c: Comparison, svgs: Record<string, string> = charts(c)): string {
  const rows = c.policies
    .map(
      ({ run: r, compaction: k }) =>
        `<tr><td>${esc(r.profile)}</td><td>${r.placed}</td><td>${r.pending}</td><td>${r.nodesUsed}</td><td>${r.lb1}</td>` +
        `<td>${r.ratio.toFixed(3)}</td><td>${k ? k.p90 : "-"}</td><td>${k ? k.ratioP90.toFixed(3) : "-"}</td>` +
        `<td>${pct(r.utilization.cpu)}</td><td>${pct(r.utilization.memory)}</td><td>${pct(r.stranded.cpu)}</td>` +
        `<td>${pct(r.stranded.memory)}</td><td>${r.preemptions}</td><td>${r.latencyUs.mean.toFixed(1)}</td><td>${r.latencyUs.p99.toFixed(1)}</td></tr>`,
    )
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>grove-sim: ${esc(c.workload)}</title>
<style>
body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
td:first-child,th:first-child{text-align:left}figure{margin:1.5em 0}
</style></head><body>
<h1>grove-sim report</h1>
<p>Workload <b>${esc(c.workload)}</b>: ${c.instances} instances on up to ${c.nodes} nodes, seed ${c.seed}.
Every profile runs the control plane's placement library on the same events.
LB1 = max over resources of ceil(sum of demand / node capacity) (for mixed node shapes: the fewest largest nodes covering the demand).
${c.seeds > 0 ? `Compaction: the smallest cluster on which the workload (at its peak) still fits, repacked from scratch, over ${c.seeds} seeds; the 90th percentile is shown.` : ""}</p>
<table><tr><th>profile</th><th>placed</th><th>pending</th><th>nodes used</th><th>LB1</th><th>ratio</th><th>compaction p90</th><th>p90/LB1</th><th>cpu util</th><th>mem util</th><th>stranded cpu</th><th>stranded mem</th><th>preemptions</th><th>mean µs</th><th>p99 µs</th></tr>
${rows}
</table>
${Object.entries(svgs)
  .map(([name, svg]) => `<figure>${svg}<figcaption>${esc(name)}</figcaption></figure>`)
  .join("\n")}
</body></html>
`;
}
