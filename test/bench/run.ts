// `npm run bench -- NAME`: runs the benchmark test/bench/NAME.ts, prints its
// table and writes bench-results/NAME.json with every figure it measured.
// Benchmarks measure Grove and its anchor in the same run and report the ratio.
import * as fs from "node:fs";
import * as path from "node:path";

export interface BenchRow {
  name: string;
  [column: string]: string | number;
}

export interface BenchReport {
  /** One line saying what was measured and against what. */
  title: string;
  rows: BenchRow[];
  /** Every figure, flat; written to bench-results/NAME.json. */
  results: Record<string, number | string>;
}

export type Benchmark = () => Promise<BenchReport>;

function repoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const pj = path.join(dir, "package.json");
    if (fs.existsSync(pj) && "workspaces" in (JSON.parse(fs.readFileSync(pj, "utf8")) as object)) return dir;
    if (path.dirname(dir) === dir) throw new Error("no repository root found");
  }
}

export function formatTable(rows: BenchRow[]): string {
  if (rows.length === 0) return "(no rows)";
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: unknown) =>
    typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : String(v ?? "");
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(cols.map((c) => c.toUpperCase())), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join("\n");
}

async function main(): Promise<void> {
  const name = process.argv[2];
  const available = fs
    .readdirSync(__dirname)
    .filter((f) => f.endsWith(".js") && f !== "run.js" && !f.startsWith("lib-"))
    .map((f) => f.replace(/\.js$/, ""));
  if (!name || !available.includes(name)) {
    console.error(`usage: npm run bench -- NAME   (benchmarks: ${available.join(", ")})`);
    process.exitCode = 2;
    return;
  }
  const mod = (await import(path.join(__dirname, `${name}.js`))) as { run: Benchmark };
  const report = await mod.run();
  console.log(`\n${report.title}\n`);
  console.log(formatTable(report.rows));
  const dir = path.join(repoRoot(), "bench-results");
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(
    file,
    JSON.stringify({ benchmark: name, at: new Date().toISOString(), ...report.results }, null, 2) + "\n",
  );
  console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
