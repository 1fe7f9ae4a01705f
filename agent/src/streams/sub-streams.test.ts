import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { AgentMessage, ControlMessage__Output, InstanceStatus, StreamEnd } from "@grove/proto";
import { FakeRuntime } from "../runtime/fake";
import { readLog, tailStart } from "./log-reader";
import { MAX_CHUNK_BYTES, SubStreamServer, type StreamOutlet } from "./sub-streams";

const UID = "uid-1";

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "grove-streams-"));
}

async function until(what: string, f: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Records what the server writes; each write "drains" at once. */
class Recorder implements StreamOutlet {
  readonly messages: AgentMessage[] = [];
  async write(message: AgentMessage): Promise<void> {
    this.messages.push(message);
  }
  output(id: number, fd = 1): string {
    return Buffer.concat(
      this.messages
        .filter((m) => m.streamOutput?.streamId === id && m.streamOutput.fd === fd)
        .map((m) => Buffer.from(m.streamOutput!.data as Buffer)),
    ).toString();
  }
  end(id: number): StreamEnd | undefined {
    return this.messages.find((m) => m.streamEnd?.streamId === id)?.streamEnd ?? undefined;
  }
}

function msg(m: Partial<ControlMessage__Output>): ControlMessage__Output {
  return m as ControlMessage__Output;
}

function open(
  id: number,
  kind: "LOGS" | "EXEC" | "STATS",
  extra: Record<string, unknown> = {},
): ControlMessage__Output {
  return msg({
    streamOpen: {
      streamId: id,
      kind,
      instanceUid: UID,
      logs: null,
      exec: null,
      window: 0,
      ...extra,
    } as ControlMessage__Output["streamOpen"],
  });
}

describe("log reader", () => {
  it("tails across the rotated and the current file, with and without a final newline", async () => {
    const dir = tmp();
    const log = path.join(dir, "x.log");
    fs.writeFileSync(`${log}.1`, "a\nb\nc\n");
    fs.writeFileSync(log, "d\ne\n");
    const read = async (n: number) => {
      const out: Buffer[] = [];
      await readLog(log, { tailLines: n, follow: false, signal: new AbortController().signal }, async (d) => {
        out.push(d);
      });
      return Buffer.concat(out).toString();
    };
    expect(await read(1)).toBe("e\n");
    expect(await read(3)).toBe("c\nd\ne\n");
    expect(await read(0)).toBe("");
    expect(await read(-1)).toBe("a\nb\nc\nd\ne\n");
    expect(await read(99)).toBe("a\nb\nc\nd\ne\n");
    fs.appendFileSync(log, "partial");
    expect(await read(2)).toBe("e\npartial");
    expect(await tailStart([`${log}.1`, log], 0)).toEqual({ file: 1, offset: fs.statSync(log).size });
    fs.rmSync(dir, { recursive: true });
  });

  it("follows across a rotation the way grove-shim rotates (rename to .1, new file)", async () => {
    const dir = tmp();
    const log = path.join(dir, "x.log");
    fs.writeFileSync(log, "one\n");
    const ac = new AbortController();
    const out: string[] = [];
    const done = readLog(log, { tailLines: 10, follow: true, signal: ac.signal, pollMs: 20 }, async (d) => {
      out.push(d.toString());
    });
    await until("first line", () => out.join("") === "one\n");
    fs.appendFileSync(log, "two\n");
    fs.renameSync(log, `${log}.1`);
    fs.writeFileSync(log, "three\n");
    await until("lines after the rotation", () => out.join("") === "one\ntwo\nthree\n");
    // Two rotations between two looks: the file in between (now .1) is not skipped.
    await new Promise((r) => setTimeout(r, 50));
    const before = out.join("").length;
    fs.appendFileSync(log, "four\n");
    fs.renameSync(log, `${log}.1`);
    fs.writeFileSync(log, "five\n");
    fs.renameSync(log, `${log}.1`);
    fs.writeFileSync(log, "six\n");
    await until("lines after two rotations", () => out.join("").slice(before) === "four\nfive\nsix\n");
    ac.abort();
    await done;
    fs.rmSync(dir, { recursive: true });
  });
});

describe("SubStreamServer", () => {
  let dir: string;
  let runtime: FakeRuntime;
  let statuses: InstanceStatus[];
  let server: SubStreamServer;
  let out: Recorder;

  beforeEach(async () => {
    dir = tmp();
    runtime = new FakeRuntime();
    await runtime.start({
      id: UID,
      rootfs: dir,
      command: ["sleep"],
      env: {},
      hostname: "h",
      resources: { cpuMillis: 100, memoryBytes: 1 << 20, pids: 10 },
      logPath: path.join(dir, `${UID}.log`),
    });
    statuses = [{ uid: UID, namespace: "default", name: "hello-0", state: "RUNNING" }];
    server = new SubStreamServer({ runtime, logDir: dir, instances: () => statuses, followPollMs: 20 });
    out = new Recorder();
    server.attach(out);
  });

  afterEach(() => {
    server.detach();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("answers logs of an unknown instance with NotFound", async () => {
    server.handle(
      msg({
        streamOpen: {
          ...open(1, "LOGS").streamOpen!,
          instanceUid: "nope",
          logs: {
            follow: true,
            tailLines: -1,
            previous: false,
            namespace: "",
            name: "",
            sinceMs: "0",
            timestamps: false,
          },
        },
      }),
    );
    await until("the end", () => out.end(1) !== undefined);
    expect(out.end(1)).toMatchObject({ errorCode: "NotFound" });
  });

  it("sends no more than the credit window, in chunks of at most 32 KiB, and goes on with credit", async () => {
    fs.writeFileSync(path.join(dir, `${UID}.log`), "x".repeat(200 * 1024));
    server.handle(open(2, "LOGS", { logs: { follow: false, tailLines: -1 }, window: 100 * 1024 }));
    await until("the window to be used", () => out.output(2).length === 100 * 1024);
    await new Promise((r) => setTimeout(r, 50));
    expect(out.output(2).length).toBe(100 * 1024);
    expect(out.end(2)).toBeUndefined();
    for (const m of out.messages)
      expect((m.streamOutput?.data as Buffer | undefined)?.length ?? 0).toBeLessThanOrEqual(MAX_CHUNK_BYTES);
    server.handle(msg({ streamCredit: { streamId: 2, bytes: 100 * 1024 } }));
    await until("the end", () => out.end(2) !== undefined);
    expect(out.output(2).length).toBe(200 * 1024);
    expect(out.end(2)?.errorCode).toBeUndefined();
  });

  it("stops a follow when cancelled and when the Connect stream ends", async () => {
    fs.writeFileSync(path.join(dir, `${UID}.log`), "a\n");
    server.handle(open(3, "LOGS", { logs: { follow: true, tailLines: 5 } }));
    server.handle(open(4, "LOGS", { logs: { follow: true, tailLines: 5 } }));
    await until("both to start", () => out.output(3) === "a\n" && out.output(4) === "a\n");
    server.handle(msg({ streamCancel: { streamId: 3 } }));
    await until("stream 3 to end", () => out.end(3) !== undefined);
    expect(server.openStreams).toBe(1);
    server.detach();
    expect(server.openStreams).toBe(0);
  });

  it("runs exec with stdin and reports the exit code; cancel kills the process", async () => {
    server.handle(
      open(5, "EXEC", {
        exec: {
          command: ["sh", "-c", "cat; echo err >&2; exit 3"],
          env: {},
          workingDir: "",
          user: "",
          tty: false,
          cols: 0,
          rows: 0,
        },
      }),
    );
    server.handle(
      msg({ streamInput: { streamId: 5, stdin: Buffer.from("hi\n"), closeStdin: true, cols: 0, rows: 0 } }),
    );
    await until("the exit", () => out.end(5) !== undefined);
    expect(out.end(5)).toMatchObject({ exitCode: 3 });
    expect(out.output(5, 1)).toBe("hi\n");
    expect(out.output(5, 2)).toBe("err\n");

    server.handle(
      open(6, "EXEC", {
        exec: { command: ["sleep", "30"], env: {}, workingDir: "", user: "", tty: false, cols: 0, rows: 0 },
      }),
    );
    await until("the start ack", () => out.messages.some((m) => m.streamOutput?.streamId === 6));
    const started = Date.now();
    server.handle(msg({ streamCancel: { streamId: 6 } }));
    await until("the end", () => out.end(6) !== undefined);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(out.end(6)).toMatchObject({ signal: 9 });
  });

  it("refuses exec into an instance that is not running", async () => {
    statuses = [{ uid: UID, namespace: "default", name: "hello-0", state: "EXITED" }];
    server.handle(
      open(7, "EXEC", { exec: { command: ["true"], env: {}, workingDir: "", user: "", tty: false, cols: 0, rows: 0 } }),
    );
    await until("the end", () => out.end(7) !== undefined);
    expect(out.end(7)).toMatchObject({ errorCode: "Conflict" });
  });

  it("reports stats of one instance and of every running instance", async () => {
    runtime.setStats(UID, { cpuUsageNs: 5, memoryBytes: 6, memoryPeakBytes: 7, pids: 2, oomKills: 0 });
    server.handle(open(8, "STATS"));
    server.handle(msg({ streamOpen: { ...open(9, "STATS").streamOpen!, instanceUid: "" } }));
    await until("both ends", () => out.end(8) !== undefined && out.end(9) !== undefined);
    expect(out.end(8)?.stats).toEqual([
      expect.objectContaining({ uid: UID, name: "hello-0", memoryBytes: 6, pids: 2 }),
    ]);
    expect(out.end(9)?.stats).toHaveLength(1);
  });
});
