// Small probes several integration tests share: one HTTP GET on a fresh
// connection, and an App's Running instance as the API reports it.
import * as http from "node:http";
import type { GroveClient, Instance } from "@grove/api";
import { waitFor } from "./processes";

/**
 * GET / on HOST:PORT over a connection of its own (no keep-alive pool, so
 * every request meets the current port rules): resolves `ok BODY` (trimmed)
 * on a 200, `err status N` on another status, `err MESSAGE` on a failure or
 * after `timeoutMs`. Never rejects.
 */
export function httpGet(address: string, timeoutMs: number): Promise<string> {
  const [host, port] = address.split(":");
  return new Promise((resolve) => {
    const req = http.get({ host, port: Number(port), path: "/", timeout: timeoutMs, agent: false }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve(res.statusCode === 200 ? `ok ${body.trim()}` : `err status ${res.statusCode}`));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (e) => resolve(`err ${e.message}`));
  });
}

/** What a test remembers of a Running instance. */
export interface SeenInstance {
  uid: string;
  pid: number;
  ip: string;
  startedAt: string;
}

/** Waits (90 s at most) for instance `name`-0 of namespace default to be Running with a pid and IP, the pid other than `not` when given. */
export function runningInstance(client: GroveClient, name: string, not?: number): Promise<SeenInstance> {
  return waitFor(
    `${name}-0 to run${not !== undefined ? ` with a pid other than ${not}` : ""}`,
    async () => {
      const i: Instance = await client.get("Instance", `${name}-0`, "default").catch(() => undefined as never);
      const s = i?.status;
      if (s?.state !== "Running" || !s.pid || !s.ip || s.pid === not) return undefined;
      return { uid: i.metadata.uid ?? "", pid: s.pid, ip: s.ip, startedAt: s.startedAt ?? "" };
    },
    90_000,
  );
}
