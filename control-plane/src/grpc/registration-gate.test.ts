import { RegistrationGate } from "./registration-gate";

/** A registration that finishes when the test says so. */
function pending() {
  let finish!: (v: string) => void;
  let fail!: (e: Error) => void;
  const promise = new Promise<string>((resolve, reject) => ((finish = resolve), (fail = reject)));
  return { promise, finish, fail };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("RegistrationGate", () => {
  it("runs at most `limit` registrations at once and starts the others in order", async () => {
    const gate = new RegistrationGate(2);
    const started: number[] = [];
    const work = Array.from({ length: 5 }, () => pending());
    const results = work.map((w, i) =>
      gate.run(
        () => true,
        () => (started.push(i), w.promise),
      ),
    );
    await tick();
    expect(started).toEqual([0, 1]);
    expect(gate.queued).toBe(3);
    work[1]!.finish("b");
    await tick();
    expect(started).toEqual([0, 1, 2]);
    // A failed registration gives its slot up too.
    work[0]!.fail(new Error("store down"));
    await expect(results[0]).rejects.toThrow("store down");
    await tick();
    expect(started).toEqual([0, 1, 2, 3]);
    expect(gate.inFlight).toBe(2);
    for (const w of work) w.finish("x");
    expect(await Promise.all(results.slice(1))).toEqual(["b", "x", "x", "x"]);
    expect(gate.inFlight).toBe(0);
    expect(gate.queued).toBe(0);
  });

  it("skips a waiter whose stream ended before its turn", async () => {
    const gate = new RegistrationGate(1);
    const first = pending();
    const a = gate.run(
      () => true,
      () => first.promise,
    );
    let ended = false;
    const ran = jest.fn(() => Promise.resolve("registered"));
    const b = gate.run(() => !ended, ran);
    ended = true;
    first.finish("a");
    expect(await a).toBe("a");
    expect(await b).toBeUndefined();
    expect(ran).not.toHaveBeenCalled();
    expect(gate.inFlight).toBe(0);
  });

  it("refuses a limit below one", () => {
    expect(() => new RegistrationGate(0)).toThrow("registrations in flight: 0 is not at least 1");
  });
});
