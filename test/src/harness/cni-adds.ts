// Two CNI ADDs at once through one CniCaller with the real plugins and the agent's default
// network list, run as its own process inside a "node" network namespace the test made (CNI
// plugins work in their caller's namespace: bridge, iptables chains). Usage:
//   node cni-adds.js SUBNET IPAM_DIR CACHE_DIR NETNS_FILE...
// Prints one JSON line: per ADD {"ok":true,"ip":…} or {"ok":false,"error":…}.
import { CniCaller, DEFAULT_PLUGIN_DIRS, defaultNetworkList } from "@grove/agent";

const [subnet, ipamDir, cacheDir, ...netnsFiles] = process.argv.slice(2);
const list = defaultNetworkList(subnet!, ipamDir!);
const caller = new CniCaller({ pluginDirs: DEFAULT_PLUGIN_DIRS, cacheDir: cacheDir!, timeoutMs: 30_000 });

void Promise.all(
  netnsFiles.map((netns, i) =>
    caller.add(list, { containerId: `first-add-${i}`, netns, ifName: "eth0" }).then(
      (r) => ({ ok: true, ip: r.ips?.[0]?.address }),
      (err: Error) => ({ ok: false, error: err.message }),
    ),
  ),
).then((results) => process.stdout.write(`${JSON.stringify(results)}\n`));
