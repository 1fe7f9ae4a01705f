// EmbeddedEtcd's supervision, with a stand-in "etcd" that answers /health but
// ignores SIGTERM: stop() must escalate to SIGKILL, and a crash restarts it.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { EmbeddedEtcd } from "@grove/control-plane";

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
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "embedded-etcd-test-"));
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
