// Whether each side of the image-pull benchmark makes what it downloaded
// durable (issue 18): one extra, untimed pull per side under
// `strace -f -e trace=fsync,fdatasync,syncfs,sync_file_range`, counting the
// calls. Grove's pull runs in a child process (this file run as a script:
// `node lib-image-fsync.js STORE REF`) so that only its calls are counted.
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import { promisify } from "node:util";
import { images } from "@grove/agent";

const exec = promisify(execFile);
const SYNC_CALLS = "fsync,fdatasync,syncfs,sync_file_range";

/** How many fsync-like calls `argv` (and every process it starts) made. */
export async function syncCalls(argv: string[], traceFile: string): Promise<number> {
  await exec("strace", ["-f", "-qq", "-e", `trace=${SYNC_CALLS}`, "-o", traceFile, ...argv], {
    maxBuffer: 16 << 20,
  });
  // "PID fsync(12) = 0" or "PID fsync(12 <unfinished ...>": one line per call (resumed lines start with "<...").
  const calls = fs
    .readFileSync(traceFile, "utf8")
    .split("\n")
    .filter((l) => /^\d+\s+(fsync|fdatasync|syncfs|sync_file_range)\(/.test(l)).length;
  fs.rmSync(traceFile, { force: true });
  return calls;
}

async function pullOnce(store: string, ref: string): Promise<void> {
  const service = new images.ImageService({ root: store });
  await service.init();
  await service.pull(ref);
  service.close();
}

if (require.main === module) {
  pullOnce(process.argv[2]!, process.argv[3]!).catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
