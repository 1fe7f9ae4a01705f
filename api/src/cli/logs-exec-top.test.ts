import { GroveError } from "../errors";
import type { ExecSession } from "../exec-client";
import type { InstanceStats, StatsList } from "../exec-and-stats";
import type { Instance, Node } from "../schemas";
import { run } from "./main";
import { instanceName, parseSince, renderTop } from "./logs-exec-top";
import type { CliClient, CliDeps } from "./program";
import { instance } from "./render/testing";

function stats(name: string, cpuNs: number, at: number, over: Partial<InstanceStats> = {}): InstanceStats {
  return {
    namespace: "default",
    name,
    app: name.replace(/-\d+$/, ""),
    uid: `uid-${name}`,
    nodeName: "n1",
    cpuUsageNs: cpuNs,
    memoryBytes: 32 * 2 ** 20,
    memoryPeakBytes: 40 * 2 ** 20,
    pids: 3,
    oomKills: 0,
    sampledAt: new Date(at).toISOString(),
    limits: { cpuMillis: 500, memoryBytes: 64 * 2 ** 20, pids: 100 },
    ...over,
  };
}

function node(name: string): Node {
  return {
    apiVersion: "grove/v1",
    kind: "Node",
    metadata: { name },
    spec: {},
    status: { allocatable: { cpuMillis: 2000, memoryBytes: 1024 * 2 ** 20, pids: 1000 } },
  } as Node;
}

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield Buffer.from(p);
}

function setup(client: Partial<CliClient>) {
  const out: string[] = [];
  const err: string[] = [];
  let raw = "";
  let rawErr = "";
  const deps: CliDeps = {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    write: (d) => (raw += Buffer.from(d).toString()),
    writeErr: (d) => (rawErr += Buffer.from(d).toString()),
    env: { GROVE_SERVER: "http://127.0.0.1:1", GROVE_TOKEN: "t" },
    home: "/nonexistent",
    makeClient: () => client as CliClient,
    now: () => 0,
    sleep: async () => undefined,
  };
  return { deps, out, err, raw: () => raw, rawErr: () => rawErr };
}

describe("grove logs / exec / top", () => {
  it("names instances APP/INDEX", () => {
    expect(instanceName("hello/0")).toBe("hello-0");
    expect(instanceName("hello-3")).toBe("hello-3");
    expect(() => instanceName("hello/x")).toThrow(/APP\/INDEX/);
  });

  it("logs APP/INDEX passes tail and follow; APP prefixes each instance's lines", async () => {
    const asked: string[] = [];
    const instances: Instance[] = [instance("hello-0"), instance("hello-1", { index: 1 })];
    const client: Partial<CliClient> = {
      list: (async () => ({ items: instances, metadata: { resourceVersion: "1" } })) as never,
      logs: (async (name: string, _ns: string, o: { follow?: boolean; tail?: number }) => {
        asked.push(`${name} ${o.follow ? "f" : "-"} ${o.tail ?? "all"}`);
        return chunks(`${name} a\n${name} `, "b\n");
      }) as never,
    };
    const one = setup(client);
    expect(await run(["logs", "hello/0", "--tail", "2", "-f"], one.deps)).toBe(0);
    expect(one.raw()).toBe("hello-0 a\nhello-0 b\n");
    const all = setup(client);
    expect(await run(["logs", "hello"], all.deps)).toBe(0);
    expect(all.raw()).toBe("[hello-0] hello-0 a\n[hello-0] hello-0 b\n[hello-1] hello-1 a\n[hello-1] hello-1 b\n");
    expect(asked).toEqual(["hello-0 f 2", "hello-0 - all", "hello-1 - all"]);
    const bad = setup(client);
    expect(await run(["logs", "hello/0", "--tail", "x"], bad.deps)).toBe(1);
    expect(bad.err.join("\n")).toMatch(/--tail/);
    const none = setup({ ...client, list: (async () => ({ items: [], metadata: { resourceVersion: "1" } })) as never });
    expect(await run(["logs", "nope"], none.deps)).toBe(1);
    expect(none.err.join("\n")).toMatch(/no App nope .*no instance nope/);
  });

  it("exec exits with the command's status and prints its stdout and stderr", async () => {
    let closed = false;
    const client: Partial<CliClient> = {
      exec: (async (name: string, _ns: string, req: { command: string[] }) => {
        expect([name, req.command]).toEqual(["hello-0", ["sh", "-c", "exit 3"]]);
        let o: (d: Buffer) => void = () => undefined;
        let e: (d: Buffer) => void = () => undefined;
        const session: ExecSession = {
          onStdout: (cb) => (o = cb),
          onStderr: (cb) => (e = cb),
          write: () => undefined,
          closeStdin: () => (closed = true),
          resize: () => undefined,
          close: () => undefined,
          exited: new Promise((resolve) =>
            setImmediate(() => {
              o(Buffer.from("out\n"));
              e(Buffer.from("err\n"));
              resolve({ exitCode: 3, signal: 0 });
            }),
          ),
        };
        return session;
      }) as never,
    };
    const s = setup(client);
    expect(await run(["exec", "hello/0", "--", "sh", "-c", "exit 3"], s.deps)).toBe(3);
    expect([s.raw(), s.rawErr(), closed]).toEqual(["out\n", "err\n", true]);
    const failing = setup({
      exec: (async () => {
        throw new GroveError("Conflict", "instance hello-0 in namespace default is Exited; exec needs it Running");
      }) as never,
    });
    expect(await run(["exec", "hello/0", "--", "true"], failing.deps)).toBe(1);
    expect(failing.err.join("\n")).toMatch(/exec needs it Running/);
  });

  it("top shows CPU as the rate between two samples, per instance, App and node", async () => {
    const before: StatsList = { items: [stats("web-0", 1e9, 0), stats("web-1", 0, 0)], unavailable: [] };
    // 250m over one second for web-0; web-1 is new in the second sample.
    const after: StatsList = {
      items: [stats("web-0", 1.25e9, 1000), stats("web-1", 1e8, 1000, { uid: "uid-new" })],
      unavailable: [{ nodeName: "n2", message: "the agent of node n2 is not connected" }],
    };
    const inst = renderTop("instances", before, after, []);
    expect(inst[0]).toMatch(/^NAMESPACE\s+NAME\s+NODE\s+CPU\s+CPU%\s+MEMORY\s+MEM%\s+PEAK\s+PIDS\s+OOM$/);
    expect(inst[1]).toMatch(/^default\s+web-0\s+n1\s+250m\s+50%\s+32Mi\s+50%\s+40Mi\s+3\s+0$/);
    expect(inst[2]).toMatch(/^default\s+web-1\s+n1\s+-\s+-\s+32Mi/);
    expect(inst[3]).toBe("(node n2: the agent of node n2 is not connected)");
    expect(renderTop("apps", before, after, [])[1]).toMatch(/^default\s+web\s+2\s+250m\s+64Mi\s+6\s+0$/);
    const nodes = renderTop("nodes", before, after, [node("n1"), node("n2")]);
    expect(nodes[1]).toMatch(/^n1\s+2\s+250m\s+13%\s+64Mi\s+6%\s+6$/);
    expect(nodes[2]).toMatch(/^n2\s+-/);

    const calls: string[] = [];
    const s = setup({
      stats: (async (ns?: string) => {
        calls.push(ns ?? "*");
        return calls.length === 1 ? before : after;
      }) as never,
    });
    expect(await run(["top"], s.deps)).toBe(0);
    expect(calls).toEqual(["default", "default"]);
    expect(s.out[1]).toMatch(/web-0\s+n1\s+250m/);
  });
});

describe("grove logs --since", () => {
  it("takes a duration (seconds, counted by the server) or an RFC 3339 time", () => {
    expect(parseSince("90s")).toEqual({ sinceSeconds: 90 });
    expect(parseSince("5m")).toEqual({ sinceSeconds: 300 });
    expect(parseSince("500ms")).toEqual({ sinceSeconds: 1 });
    expect(parseSince("2026-01-02T03:04:05+01:00")).toEqual({ sinceTime: "2026-01-02T02:04:05.000Z" });
  });

  it("refuses anything else, naming the flag", () => {
    for (const bad of ["yesterday", "2026-01-02T03:04:05", "2026-13-45T00:00:00Z", "-5m"]) {
      expect(() => parseSince(bad)).toThrow(/--since/);
    }
  });
});
