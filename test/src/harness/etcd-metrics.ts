// etcd's own counters, read from its /metrics endpoint (the client port, with
// grove-server's etcd client certificate): what the hollow benchmark and the
// hollow-agents test count etcd writes with.
import * as https from "node:https";
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
