// /proc/self/mountinfo, shared by the network namespaces (is a path mounted?) and the OCI bundle
// writer (which flags does a volume's source mount have?).
import * as fs from "node:fs";

/** A mount point as the kernel writes it in mountinfo: space, tab, newline and backslash as \ooo. */
export function unescapeMount(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function readMountinfoSync(): string {
  return fs.readFileSync("/proc/self/mountinfo", "utf8");
}

/** A reader that reads the table at most once, and only when first asked. */
export function mountinfoOnce(read: () => string = readMountinfoSync): () => string {
  let text: string | undefined;
  return () => (text ??= read());
}
