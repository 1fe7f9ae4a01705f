// etcd's own counters, read from its /metrics endpoint (the client port, with
// grove-server's etcd client certificate): what the hollow benchmark and the
// hollow-agents test count etcd writes with.
import * as https from "node:https";
import { createStore } from "@grove/control-plane";
import { etcdClientTls, type ServerProcess } from "./processes";

/** The counters kept (monotonic totals since etcd started). */
export const ETCD_WRITE_COUNTERS = [
  "etcd_mvcc_put_total",
  "etcd_mvcc_delete_total",
  "etcd_mvcc_txn_total",
  "etcd_server_proposals_committed_total",
] as const;

/** The client URL of the embedded etcd grove-server started (from its "embedded etcd is up" log line). */
export function embeddedEtcdEndpoint(server: ServerProcess): string {
  for (const line of server.output) {
    try {
      const l = JSON.parse(line) as { msg?: string; endpoints?: string[] };
      if (l.msg === "embedded etcd is up" && l.endpoints?.[0]) return l.endpoints[0];
    } catch {
      // not a log line
    }
  }
  throw new Error("grove-server did not say where its embedded etcd is");
}

export async function etcdCounters(endpoint: string, server: ServerProcess): Promise<Map<string, number>> {
  const tls = etcdClientTls(server);
  const text = await new Promise<string>((resolve, reject) => {
    https
      .get(`${endpoint}/metrics`, { ca: tls.caPem, cert: tls.certPem, key: tls.keyPem }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve(body));
      })
      .on("error", reject);
  });
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const [name, value] = line.split(" ");
    if ((ETCD_WRITE_COUNTERS as readonly string[]).includes(name ?? "")) out.set(name!, Number(value));
  }
  for (const c of ETCD_WRITE_COUNTERS) if (!out.has(c)) throw new Error(`etcd's /metrics has no ${c}`);
  return out;
}

/** Puts and deletes (etcd's own counters) between two readings. */
export function writesBetween(a: Map<string, number>, b: Map<string, number>): number {
  const d = (m: string) => (b.get(m) ?? 0) - (a.get(m) ?? 0);
  return d("etcd_mvcc_put_total") + d("etcd_mvcc_delete_total");
}

/**
 * Counts the writes under /grove/ by kind of key (the first two path parts,
 * e.g. /grove/instances) while it runs: what the steady writes are.
 */
export async function writesByPrefix(server: ServerProcess, endpoint: string) {
  const store = createStore([endpoint], { tls: etcdClientTls(server) });
  const counts = new Map<string, number>();
  const from = (BigInt((await store.list("/grove/cluster")).revision) + 1n).toString();
  const watch = await store.watch<unknown>("/grove/", from, {
    onEvent: (ev) => {
      const prefix = ev.key.split("/").slice(0, 3).join("/");
      counts.set(prefix, (counts.get(prefix) ?? 0) + 1);
    },
  });
  return {
    stop: async () => {
      await watch.close();
      await store.close();
      const presence = (counts.get("/grove/heartbeats") ?? 0) + (counts.get("/grove/replica-presence") ?? 0);
      const text = [...counts]
        .sort((a, b) => b[1] - a[1])
        .map(([k, n]) => `${k} ${n}`)
        .join(", ");
      return { text, presence, events: counts.get("/grove/events") ?? 0 };
    },
  };
}
