// drainBody: what is left of a refused body is read and thrown away, within its bounds.
import { PassThrough } from "node:stream";
import type { IncomingMessage } from "node:http";
import { drainBody } from "./errors";

function body(): PassThrough & IncomingMessage {
  return new PassThrough() as unknown as PassThrough & IncomingMessage;
}

describe("drainBody", () => {
  test("reads to the end of the body, then resolves", async () => {
    const raw = body();
    let ended = false;
    const drained = drainBody(raw, 1_000, 5_000).then(() => (ended = raw.readableEnded));
    raw.write(Buffer.alloc(300));
    raw.write(Buffer.alloc(300));
    await new Promise((r) => setImmediate(r));
    expect(ended).toBe(false);
    raw.end(Buffer.alloc(300));
    await drained;
    expect(ended).toBe(true);
  });

  test("stops waiting once more than maxBytes came (the sender is then cut off)", async () => {
    const raw = body();
    const drained = drainBody(raw, 1_000, 60_000);
    raw.write(Buffer.alloc(600));
    raw.write(Buffer.alloc(600));
    await drained; // resolves without the end of the body
    expect(raw.readableEnded).toBe(false);
    raw.destroy();
  });

  test("stops waiting after maxMs", async () => {
    const raw = body();
    const t0 = performance.now();
    await drainBody(raw, 1_000, 100);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(95);
    raw.destroy();
  });

  test("a body already read answers at once", async () => {
    const raw = body();
    raw.resume();
    raw.end();
    await new Promise((r) => raw.once("end", r));
    await drainBody(raw, 1_000, 60_000);
  });
});
