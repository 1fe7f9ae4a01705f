// The addon's netnsSocket (agent/native/src/netns.c): a socket made inside
// another network namespace, for health probes from inside an instance.
// The C function runs under AddressSanitizer, LeakSanitizer and UBSan
// (agent/native/fuzz/build-netns-socket.sh): its failures and 500 sockets,
// each checked to belong to the namespace, no descriptor left open. Then the
// real addon: Node connects the socket to a server that listens only on the
// namespace's 127.0.0.1, and gets ECONNREFUSED from a closed port there.
import { spawn, spawnSync, execFileSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { loadNativeBinding } from "@grove/agent";
import { RUN_TAG, tempDir } from "./harness/run-id";

const REPO = path.resolve(__dirname, "../..");
const BUILD = path.join(REPO, "agent", "native", "fuzz", "build-netns-socket.sh");
const NETNS = `grove-nsock-${RUN_TAG}`;
const NETNS_PATH = `/run/netns/${NETNS}`;

let tmp: string;
let server: ChildProcess | undefined;
/** The server's port inside the namespace (any free one: nothing else listens there). */
let port = 0;

beforeAll(async () => {
  tmp = tempDir("grove-netns-socket");
  execFileSync("ip", ["netns", "add", NETNS]);
  execFileSync("ip", ["-n", NETNS, "link", "set", "lo", "up"]);
  // A server on the namespace's loopback only.
  server = spawn("ip", [
    "netns",
    "exec",
    NETNS,
    process.execPath,
    "-e",
    'const s = require("net").createServer((c) => c.end("hi")); s.listen(0, "127.0.0.1", () => console.log(s.address().port))',
  ]);
  await new Promise<void>((resolve, reject) => {
    server!.stdout!.once("data", (d: Buffer) => {
      port = Number(d.toString().trim());
      resolve();
    });
    server!.once("exit", (code) => reject(new Error(`server exited ${code}`)));
  });
}, 60_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server!.once("exit", r));
    server.kill("SIGKILL");
    await exited;
  }
  spawnSync("ip", ["netns", "del", NETNS]);
  if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true });
});

it("netns.c is clean under ASan, LSan and UBSan: failures, 500 sockets in the namespace, no descriptor left", () => {
  const bin = path.join(tmp, "grove-netns-socket-check");
  const built = spawnSync(BUILD, [bin], { encoding: "utf8", timeout: 120_000 });
  if (built.status !== 0) throw new Error(`${BUILD} failed (${built.status ?? built.signal}):\n${built.stderr}`);
  const run = spawnSync(bin, [NETNS_PATH], {
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env, ASAN_OPTIONS: "" },
  });
  expect({ status: run.status, stdout: run.stdout.trim(), stderr: run.stderr }).toEqual({
    status: 0,
    stdout: "ok 500",
    stderr: "",
  });
}, 180_000);

function connectInside(to: number): Promise<string> {
  const fd = loadNativeBinding().netnsSocket(NETNS_PATH, 4, "tcp");
  return new Promise((resolve) => {
    const s = new net.Socket({ fd, manualStart: true } as net.SocketConstructorOpts).connect({
      host: "127.0.0.1",
      port: to,
    });
    let got = "";
    s.on("data", (d: Buffer) => (got += d.toString()));
    s.on("end", () => {
      s.destroy();
      resolve(`data ${got}`);
    });
    s.on("error", (e: NodeJS.ErrnoException) => {
      s.destroy();
      resolve(`error ${e.code}`);
    });
  });
}

it("the addon's socket reaches the namespace's 127.0.0.1, which the agent's own namespace cannot", async () => {
  expect(await connectInside(port)).toBe("data hi");
  expect(await connectInside(port === 65535 ? port - 1 : port + 1)).toBe("error ECONNREFUSED");
  // The same address from this process's namespace: nothing listens there.
  const outside = await new Promise<string>((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    s.on("connect", () => {
      s.destroy();
      resolve("connected");
    });
    s.on("error", (e: NodeJS.ErrnoException) => resolve(`error ${e.code}`));
  });
  expect(outside).toBe("error ECONNREFUSED");
  // Errors name the path and carry the errno.
  expect(() => loadNativeBinding().netnsSocket("/nonexistent/ns", 4, "tcp")).toThrow(
    expect.objectContaining({ code: "ENOENT", message: expect.stringContaining("/nonexistent/ns") }),
  );
  expect(() => loadNativeBinding().netnsSocket("/proc/self/exe", 4, "tcp")).toThrow(
    expect.objectContaining({ code: "EINVAL" }),
  );
});
