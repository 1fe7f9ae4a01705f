// Instance networking, in one run:
//  - cni_add_del_ms: CNI ADD + DEL of the default list (loopback, bridge with
//    host-local, firewall, portmap with one port) for one container, through
//    Grove's CNI caller on the Debian plugins; and the whole instance network
//    lifecycle (netns + ADD + egress chain, then teardown) through NetworkManager.
//  - published_vs_host_rps_ratio: requests/s of busybox httpd reached through
//    a published port (portmap DNAT, bridge, veth, into the instance's network
//    namespace) over the same busybox httpd on the host network, same client
//    (autocannon), same connections and duration.
// Everything happens inside a network namespace this benchmark creates (the
// "host"); traffic goes only to addresses in it.
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { BenchReport } from "./run";

const HOST_ADDR = "198.18.0.1"; // benchmark range (RFC 2544), on a link inside our namespace

function repoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "deploy", "make-rootfs.sh"))) return dir;
    if (path.dirname(dir) === dir) throw new Error("no repository root found");
  }
}

export async function run(): Promise<BenchReport> {
  const ns = `grove-bench-${process.pid}`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `grove-bench-net-${process.pid}-`));
  execFileSync("ip", ["netns", "add", ns]);
  try {
    const ip = (...args: string[]) => execFileSync("ip", ["-n", ns, ...args]);
    ip("link", "set", "lo", "up");
    // The host's "NIC": one end of a veth pair whose both ends stay in the namespace.
    ip("link", "add", "eth0", "type", "veth", "peer", "name", "eth0p");
    ip("addr", "add", `${HOST_ADDR}/24`, "dev", "eth0");
    ip("link", "set", "eth0", "up");
    ip("link", "set", "eth0p", "up");
    execFileSync(path.join(repoRoot(), "deploy", "make-rootfs.sh"), [path.join(tmp, "rootfs")]);
    // The measuring half runs inside the namespace, so CNI plugins and iptables act there.
    const out = await new Promise<string>((resolve, reject) => {
      const p = spawn(
        "nsenter",
        [`--net=/run/netns/${ns}`, process.execPath, path.join(__dirname, "lib-network-worker.js"), tmp, HOST_ADDR],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      let s = "";
      p.stdout.on("data", (d: Buffer) => (s += d.toString()));
      p.on("error", reject);
      p.on("exit", (code) => (code === 0 ? resolve(s) : reject(new Error(`network bench worker exited ${code}`))));
    });
    const r = JSON.parse(out.trim().split("\n").pop()!) as Record<string, number>;
    return {
      title:
        `instance networking: CNI ADD+DEL (${r.samples} samples) and busybox httpd requests/s through a ` +
        `published port vs on the host network (autocannon, ${r.connections} connections, ${r.duration_s} s each)`,
      rows: [
        { name: "cni ADD+DEL (caller + plugins)", p50_ms: r.cni_add_del_ms!, p90_ms: r.cni_add_del_p90_ms! },
        { name: "  of which ADD", p50_ms: r.cni_add_ms!, p90_ms: r.cni_add_p90_ms! },
        { name: "  of which DEL", p50_ms: r.cni_del_ms!, p90_ms: r.cni_del_p90_ms! },
        {
          name: "instance network setup+teardown",
          p50_ms: r.network_lifecycle_ms!,
          p90_ms: r.network_lifecycle_p90_ms!,
        },
        { name: "httpd via published port", rps: r.published_rps!, p50_latency_ms: r.published_p50_latency_ms! },
        { name: "httpd on the host network", rps: r.host_rps!, p50_latency_ms: r.host_p50_latency_ms! },
        { name: "ratio published/host", rps: r.published_vs_host_rps_ratio! },
      ],
      results: r,
    };
  } finally {
    try {
      execFileSync("sh", ["-c", `grep -o " ${tmp}/[^ ]*" /proc/self/mountinfo | xargs -r -n1 umount -l`]);
    } catch {
      /* nothing mounted */
    }
    execFileSync("ip", ["netns", "del", ns]);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
