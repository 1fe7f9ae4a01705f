// A router-like client for tests and benchmarks: follows an App's endpoints
// watch (GET .../apps/{name}/endpoints?watch=1) and sends one request at a
// time, round-robin, only to instance IPs the latest list holds. The requests
// leave from inside a harness host's namespace (a small node process there,
// fed the target of each request), where the instance subnets are routed;
// nothing is routed in the machine's own namespace.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { Endpoints, GroveClient } from "@grove/api";
import type { Host } from "./hosts";

export interface Traffic {
  requests: number;
  failed: number;
  /** Requests counted failed because the list was empty (or held no endpoint past its warm-up). */
  noEndpoint: number;
  /** Answers per first word of the body (the App's version). */
  versions: Record<string, number>;
  /** The first ten failures, with the time, instance and IP. */
  errors: string[];
}

export interface RouteOptions {
  /** Pause between two requests. */
  gapMs: number;
  /**
   * An endpoint listed after the router started gets traffic only this long
   * after it first appeared (what is listed at the start is in service). 0: at once.
   */
  warmUpMs?: number;
  /** Stops sending after this many requests (a bound on a test's traffic). */
  maxRequests?: number;
}

// For each line "IP" on stdin, GET http://IP:8080/ (3 s timeout); answer "ok BODY" or "err MESSAGE".
const SENDER = `
const http = require("node:http");
require("node:readline").createInterface({ input: process.stdin }).on("line", (ip) => {
  const req = http.get({ host: ip, port: 8080, path: "/", timeout: 3000, agent: false }, (res) => {
    let body = "";
    res.on("data", (c) => (body += c));
    res.on("end", () => console.log(res.statusCode === 200 ? "ok " + body.trim() : "err status " + res.statusCode));
  });
  req.on("timeout", () => req.destroy(new Error("timeout")));
  req.on("error", (e) => console.log("err " + e.message));
});
`;

/** A process in `host`'s namespace that sends one request per call, in order. */
function sender(host: Host): { get: (ip: string) => Promise<string>; close: () => Promise<void> } {
  const child = spawn("ip", ["netns", "exec", host.netns, process.execPath, "-e", SENDER]);
  const waiting: ((line: string) => void)[] = [];
  createInterface({ input: child.stdout }).on("line", (l) => waiting.shift()?.(l));
  const exited = new Promise<void>((r) => child.on("exit", () => r()));
  return {
    get: (ip) =>
      new Promise((resolve) => {
        waiting.push(resolve);
        child.stdin.write(`${ip}\n`);
      }),
    close: async () => {
      child.stdin.end();
      await exited;
    },
  };
}

/** Starts routing to `app` from `from`; stop() ends it and returns the counts. */
export async function route(
  client: GroveClient,
  app: string,
  from: Host,
  opts: RouteOptions,
): Promise<{ stop: () => Promise<Traffic> }> {
  const warmUpMs = opts.warmUpMs ?? 0;
  const maxRequests = opts.maxRequests ?? Infinity;
  const send = sender(from);
  const watch = await client.watchEndpoints(app);
  let current: Endpoints["endpoints"] = [];
  const firstSeen = new Map<string, number>();
  let listed!: () => void;
  const firstList = new Promise<void>((r) => (listed = r));
  const following = (async () => {
    try {
      for await (const ev of watch) {
        current = ev.object.endpoints;
        listed();
        // What is listed when the router starts is in service already: no warm-up.
        const now = ev.type === "ADDED" ? -Infinity : performance.now();
        for (const e of current) if (!firstSeen.has(e.uid ?? e.instance)) firstSeen.set(e.uid ?? e.instance, now);
      }
    } catch {
      // closed
    }
  })();
  await firstList; // a router sends nothing before it has the list
  const t: Traffic = { requests: 0, failed: 0, noEndpoint: 0, versions: {}, errors: [] };
  let stopped = false;
  let next = 0;
  const sending = (async () => {
    while (!stopped && t.requests < maxRequests) {
      const now = performance.now();
      const usable = current.filter((e) => e.ip && now - (firstSeen.get(e.uid ?? e.instance) ?? now) >= warmUpMs);
      t.requests++;
      if (usable.length === 0) {
        t.failed++;
        t.noEndpoint++;
      } else {
        const e = usable[next++ % usable.length]!;
        const answer = await send.get(e.ip!);
        if (answer.startsWith("ok ")) {
          const v = answer.slice(3).split(" ")[0]!;
          t.versions[v] = (t.versions[v] ?? 0) + 1;
        } else {
          t.failed++;
          if (t.errors.length < 10) t.errors.push(`${new Date().toISOString()} ${e.instance} ${e.ip}: ${answer}`);
        }
      }
      await new Promise((r) => setTimeout(r, opts.gapMs));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await sending;
      watch.close();
      await following;
      await send.close();
      return t;
    },
  };
}
