// Removes everything instance networking made in the current network
// namespace, for `deploy/quickstart.sh down` on a single node: every
// instance network the agent's state knows (CNI DEL with the cached results:
// veths, addresses, port mappings, masquerade rules), the egress chains and
// their hook, the node guard (node-guard.ts) and the bridge. Run it after the
// containers are gone.
// Usage: node agent/dist/network/node-cleanup.js NETWORK_STATE_DIR
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { ADMIN_CHAIN, DEFAULT_BRIDGE } from "./conflist";
import { EGRESS_CHAIN } from "./egress";
import { removeNodeGuard } from "./node-guard";
import { pino } from "pino";
import { NetworkManager } from "./manager";

const exec = promisify(execFile);

async function quietly(cmd: string, args: string[]): Promise<void> {
  await exec(cmd, args).catch(() => undefined);
}

export async function removeNodeNetwork(stateDir: string): Promise<string[]> {
  const mgr = new NetworkManager({ stateDir, logger: pino({ level: "warn" }, pino.destination(2)) });
  await mgr.init();
  const removed = await mgr.cleanupStale(new Set());
  while (
    (await exec("iptables", ["-w", "10", "-D", "FORWARD", "-j", EGRESS_CHAIN]).catch(() => undefined)) !== undefined
  ) {
    /* every copy of the hook */
  }
  await removeNodeGuard();
  await quietly("iptables", ["-w", "10", "-F", EGRESS_CHAIN]);
  await quietly("iptables", ["-w", "10", "-X", EGRESS_CHAIN]);
  // The firewall plugin's chains, once no instance rule is left in them.
  const forward = await exec("iptables", ["-w", "10", "-S", "CNI-FORWARD"]).catch(() => undefined);
  const perIp = (forward?.stdout ?? "").split("\n").filter((l) => / -[sd] \d/.test(l));
  if (forward && perIp.length === 0) {
    await quietly("iptables", [
      "-w",
      "10",
      "-D",
      "FORWARD",
      "-m",
      "comment",
      "--comment",
      "CNI firewall plugin rules",
      "-j",
      "CNI-FORWARD",
    ]);
    await quietly("iptables", ["-w", "10", "-F", "CNI-FORWARD"]);
    await quietly("iptables", ["-w", "10", "-X", "CNI-FORWARD"]);
    await quietly("iptables", ["-w", "10", "-F", ADMIN_CHAIN]);
    await quietly("iptables", ["-w", "10", "-X", ADMIN_CHAIN]);
  }
  await quietly("ip", ["link", "del", DEFAULT_BRIDGE]);
  return removed;
}

if (require.main === module) {
  const dir = process.argv[2];
  if (!dir) {
    console.error("usage: node-cleanup.js NETWORK_STATE_DIR");
    process.exit(2);
  }
  removeNodeNetwork(dir).then(
    (removed) => console.log(`removed ${removed.length} instance network(s)`),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
