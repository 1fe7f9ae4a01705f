// /etc/hosts and /etc/resolv.conf for an instance, written into a root
// filesystem that belongs to that instance alone (an image's overlay root).
// The root comes from an image, so nothing in it is trusted: /etc must be a
// real directory, and an existing file (or symlink) is unlinked, never
// written through.
import * as fs from "node:fs/promises";
import * as path from "node:path";

export function hostsFile(hostname: string, ip: string): string {
  return ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", `${ip}\t${hostname}`, ""].join("\n");
}

/**
 * The node's resolv.conf without loopback nameservers (a resolver on the
 * node's 127.0.0.x is not reachable from the instance's namespace).
 */
export function resolvConfFor(hostResolvConf: string): string {
  const lines = hostResolvConf
    .split("\n")
    .filter((l) => !/^\s*nameserver\s+(127\.|::1\b)/.test(l))
    .map((l) => l.trimEnd());
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines.length > 0 ? lines.join("\n") + "\n" : "";
}

export async function writeEtcFiles(root: string, files: { hosts: string; resolvConf: string }): Promise<void> {
  const etc = path.join(root, "etc");
  const st = await fs.lstat(etc).catch(() => undefined);
  if (!st) await fs.mkdir(etc, { mode: 0o755 });
  else if (!st.isDirectory())
    throw new Error(`${etc} is not a directory (a symlink or file in the image): not writing into it`);
  for (const [name, content] of [
    ["hosts", files.hosts],
    ["resolv.conf", files.resolvConf],
  ] as const) {
    const file = path.join(etc, name);
    await fs.rm(file, { force: true }); // unlinks a symlink, does not follow it
    await fs.writeFile(file, content, { flag: "wx", mode: 0o644 });
  }
}
