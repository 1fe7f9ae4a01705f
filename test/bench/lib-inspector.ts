// A benchmark's handle on a node process started with --inspect=127.0.0.1:0:
// the DevTools protocol over its WebSocket, to force a full garbage collection
// (so a resident-set figure is not one GC's timing) and to take a CPU profile
// of just the measured interval. Nothing in the measured process changes: the
// inspector is node's own.
import * as fs from "node:fs";
import WebSocket from "ws";

/** `--inspect` on a free loopback port, for the child's NODE_OPTIONS. */
export const INSPECT_OPTION = "--inspect=127.0.0.1:0";

export class Inspector {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(private readonly ws: WebSocket) {
    ws.on("message", (data: WebSocket.RawData) => {
      const msg = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: { message: string } };
      const p = msg.id !== undefined ? this.pending.get(msg.id) : undefined;
      if (!p) return;
      this.pending.delete(msg.id!);
      if (msg.error) p.reject(new Error(msg.error.message));
      else p.resolve(msg.result);
    });
  }

  /** Connects to the inspector whose "Debugger listening on ws://..." line is in `output`. */
  static async attach(output: readonly string[]): Promise<Inspector> {
    const line = output.find((l) => l.startsWith("Debugger listening on ws://"));
    if (!line) throw new Error("the process printed no inspector URL (was it started with --inspect?)");
    const ws = new WebSocket(line.slice("Debugger listening on ".length).trim());
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    return new Inspector(ws);
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** A full, compacting collection in the process. */
  async collectGarbage(): Promise<void> {
    await this.send("HeapProfiler.collectGarbage");
  }

  /** The V8 heap in use (bytes): resident-set growth that is not the heap is allocator or native memory. */
  async heapUsed(): Promise<number> {
    const r = (await this.send("Runtime.evaluate", { expression: "process.memoryUsage().heapUsed" })) as {
      result: { value: number };
    };
    return r.result.value;
  }

  async startCpuProfile(): Promise<void> {
    await this.send("Profiler.enable");
    await this.send("Profiler.setSamplingInterval", { interval: 500 });
    await this.send("Profiler.start");
  }

  /** Stops the profile and writes it as a .cpuprofile (Chrome DevTools, speedscope) to `file`. */
  async stopCpuProfile(file: string): Promise<void> {
    const { profile } = (await this.send("Profiler.stop")) as { profile: unknown };
    fs.writeFileSync(file, JSON.stringify(profile));
  }

  close(): void {
    this.ws.close();
  }
}
