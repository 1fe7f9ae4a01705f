// EmbeddedEtcd's supervision, with a stand-in "etcd" that answers /health but
// ignores SIGTERM: stop() must escalate to SIGKILL, and a crash restarts it.

import * as fs from "node:fs";
import * as http from "node:http";
import type * as net from "node:net";
import * as path from "node:path";
import { EmbeddedEtcd } from "@grove/control-plane";
import { tempDir } from "./harness/run-id";

const STUBBORN_ETCD = `#!/usr/bin/env node
const http = require("node:http");
const url = process.argv.find((a) => a.startsWith("--listen-client-urls=")).split("=")[1];
process.on("SIGTERM", () => console.error("ignoring SIGTERM"));
http.createServer((_q, s) => s.end('{"health":"true"}')).listen(Number(new URL(url).port), "127.0.0.1");
`;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

let dir: string;
let bin: string;
beforeEach(() => {
  dir = tempDir("embedded-etcd-test");
  bin = path.join(dir, "fake-etcd");
  fs.writeFileSync(bin, STUBBORN_ETCD, { mode: 0o755 });
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test("stop() sends SIGTERM, then SIGKILL after the timeout, and waits for the exit", async () => {
  const etcd = new EmbeddedEtcd({ dataDir: dir, port: 0, etcdBinary: bin, stopTimeoutMs: 300 });
  await etcd.start();
  const pid = etcd.pid!;
  expect(alive(pid)).toBe(true);
  const t0 = Date.now();
  await etcd.stop();
  expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
  expect(alive(pid)).toBe(false);
  expect(etcd.restarts).toBe(0);
  expect(fs.readFileSync(path.join(dir, "etcd.log"), "utf8")).toContain("ignoring SIGTERM");
});

test("an unexpected exit is restarted on the same port with backoff", async () => {
  const etcd = new EmbeddedEtcd({
    dataDir: dir,
    port: 0,
    etcdBinary: bin,
    stopTimeoutMs: 300,
    restartBackoffBaseMs: 50,
  });
  await etcd.start();
  try {
    const endpoints = etcd.endpoints;
    const first = etcd.pid!;
    const ready = new Promise<number>((r) => etcd.once("ready", r));
    process.kill(first, "SIGKILL");
    const second = await ready;
    expect(second).not.toBe(first);
    expect(etcd.pid).toBe(second);
    expect(etcd.restarts).toBe(1);
    expect(etcd.endpoints).toEqual(endpoints);
    await etcd.waitReady(5000);
  } finally {
    await etcd.stop();
  }
});

test("start() fails with the log tail when etcd cannot start", async () => {
  fs.writeFileSync(bin, "#!/bin/sh\necho 'bad flag --frobnicate' >&2\nexit 2\n", { mode: 0o755 });
  const etcd = new EmbeddedEtcd({ dataDir: dir, port: 0, etcdBinary: bin });
  await expect(etcd.start()).rejects.toThrow(/etcd exited \(code 2[\s\S]*bad flag --frobnicate/);
  expect(etcd.pid).toBeUndefined();
  expect(etcd.restarts).toBe(0);
});

// The ports start() picks for port 0 are free when picked, then closed for
// etcd to bind: another process can take one in between.

/**
 * A stand-in etcd that counts its runs in `runsFile` and logs its client URL;
 * runs listed in `failRuns` fail to bind, the others serve /health after
 * `bindDelayMs`. (Settings are baked in: a child does not see jest's process.env.)
 */
const racingEtcd = (runsFile: string, failRuns: number[], bindDelayMs = 0) => `#!/usr/bin/env node
const RUNS_FILE = ${JSON.stringify(runsFile)};
const FAIL_RUNS = ${JSON.stringify(failRuns)};
const fs = require("node:fs");
const http = require("node:http");
const url = process.argv.find((a) => a.startsWith("--listen-client-urls=")).split("=")[1];
const runs = Number(fs.readFileSync(RUNS_FILE, "utf8") || "0") + 1;
fs.writeFileSync(RUNS_FILE, String(runs));
console.error("run " + runs + " on " + url);
if (FAIL_RUNS.includes(runs)) {
  console.error("listen tcp " + url.slice(7) + ": bind: address already in use");
  process.exit(1);
}
setTimeout(() => {
  http.createServer((_q, s) => s.end('{"health":"true"}')).listen(Number(new URL(url).port), "127.0.0.1");
}, ${bindDelayMs});
`;

describe("ports taken between the pick and etcd's bind", () => {
  let runsFile: string;
  beforeEach(() => {
    runsFile = path.join(dir, "runs");
    fs.writeFileSync(runsFile, "");
  });

  test("with port 0, start() picks new ports when etcd finds one taken (EADDRINUSE), and says so", async () => {
    fs.writeFileSync(bin, racingEtcd(runsFile, [1, 2]), { mode: 0o755 });
    const warnings: string[] = [];
    const logger = { info() {}, error() {}, warn: (_o: object, msg?: string) => void warnings.push(msg ?? "") };
    const etcd = new EmbeddedEtcd({ dataDir: dir, port: 0, etcdBinary: bin, stopTimeoutMs: 300, logger });
    await etcd.start();
    try {
      expect(fs.readFileSync(runsFile, "utf8")).toBe("3");
      const urls = [...fs.readFileSync(path.join(dir, "etcd.log"), "utf8").matchAll(/^run \d on (\S+)$/gm)].map(
        (m) => m[1],
      );
      expect(urls).toHaveLength(3);
      expect(urls[2]).toBe(etcd.clientUrl);
      expect(warnings.filter((w) => /port we picked was taken/.test(w))).toHaveLength(2);
      await etcd.waitReady(5000);
    } finally {
      await etcd.stop();
    }
  });

  test("a fixed port in use is not retried: start() fails naming EADDRINUSE", async () => {
    fs.writeFileSync(bin, racingEtcd(runsFile, [1, 2, 3, 4, 5, 6]), { mode: 0o755 });
    const etcd = new EmbeddedEtcd({ dataDir: dir, port: 1, peerPort: 2, etcdBinary: bin });
    await expect(etcd.start()).rejects.toThrow(/etcd exited \(code 1[\s\S]*address already in use/);
    expect(fs.readFileSync(runsFile, "utf8")).toBe("1");
    expect(etcd.pid).toBeUndefined();
  });

  test("another process answering /health on etcd's port is not taken for our etcd", async () => {
    // Someone else's "etcd" holds the port; ours is slow to start and would
    // then fail to bind. Polling /health alone would call the other one ours.
    const squatter = http.createServer((_q, s) => s.end('{"health":"true"}'));
    await new Promise<void>((r) => squatter.listen(0, "127.0.0.1", r));
    const port = (squatter.address() as net.AddressInfo).port;
    fs.writeFileSync(bin, racingEtcd(runsFile, [], 2000), { mode: 0o755 });
    try {
      const etcd = new EmbeddedEtcd({ dataDir: dir, port, peerPort: port + 1, etcdBinary: bin, stopTimeoutMs: 300 });
      await expect(etcd.start()).rejects.toThrow(
        new RegExp(`127\\.0\\.0\\.1:${port} is served by another process, not by the etcd we started`),
      );
      expect(etcd.pid).toBeUndefined();
    } finally {
      await new Promise((r) => squatter.close(r));
    }
  });
});
