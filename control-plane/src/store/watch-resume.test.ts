import { ResumeTracker, parseRevision } from "./watch-resume";

const ev = (modRevision: string, key = "k") => ({ modRevision, key });

describe("ResumeTracker", () => {
  test("starts at the given revision (inclusive)", () => {
    const t = new ResumeTracker("10");
    expect(t.resumeRevision).toBe("10");
    expect(t.lastDeliveredRevision).toBe("9");
    expect(t.accept([ev("9"), ev("10"), ev("11")]).map((e) => e.modRevision)).toEqual(["10", "11"]);
  });

  test("resumes from the last delivered event + 1, not from any header revision", () => {
    // etcd3 would resume from header.revision + 1 (e.g. 100 while catching up
    // from 10): a drop after delivering 12 must resume at 13.
    const t = new ResumeTracker("10");
    t.accept([ev("10"), ev("12")]);
    expect(t.resumeRevision).toBe("13");
    // An event-less response (progress notification / create) leaves it alone.
    expect(t.accept([])).toEqual([]);
    expect(t.resumeRevision).toBe("13");
  });

  test("drops events replayed after a reconnect, keeps the new ones", () => {
    const t = new ResumeTracker("1");
    expect(t.accept([ev("5"), ev("6")])).toHaveLength(2);
    const replay = t.accept([ev("5"), ev("6"), ev("7")]);
    expect(replay.map((e) => e.modRevision)).toEqual(["7"]);
    expect(t.resumeRevision).toBe("8");
  });

  test("keeps every event of one revision (a txn touching several keys)", () => {
    const t = new ResumeTracker("3");
    const out = t.accept([ev("3", "a"), ev("4", "b"), ev("4", "c"), ev("4", "d")]);
    expect(out.map((e) => e.key)).toEqual(["a", "b", "c", "d"]);
    expect(t.resumeRevision).toBe("5");
    // Redelivery of that revision in a later batch is dropped as a whole.
    expect(t.accept([ev("4", "b"), ev("4", "c")])).toEqual([]);
  });

  test("never goes backwards within a batch", () => {
    const t = new ResumeTracker("1");
    expect(t.accept([ev("5"), ev("4"), ev("6")]).map((e) => e.modRevision)).toEqual(["5", "6"]);
    expect(t.resumeRevision).toBe("7");
  });

  test("relist moves the resume revision to list revision + 1, never backwards", () => {
    const t = new ResumeTracker("5");
    t.relisted("40");
    expect(t.resumeRevision).toBe("41");
    expect(t.accept([ev("40"), ev("41")]).map((e) => e.modRevision)).toEqual(["41"]);
    t.relisted("30");
    expect(t.resumeRevision).toBe("42");
  });

  test("the etcd watch starts one below the resume revision, never at 0", () => {
    // etcd accepts a watch from exactly the compact revision but may have lost
    // that revision's delete (tombstone compacted) and its prev_kv; one below
    // makes etcd refuse it as compacted, so we relist instead.
    const t = new ResumeTracker("10");
    expect(t.watchStartRevision).toBe("9");
    t.accept([ev("12")]);
    expect(t.watchStartRevision).toBe("12");
    // The replay of the start revision itself is dropped.
    expect(t.accept([ev("12"), ev("13")]).map((e) => e.modRevision)).toEqual(["13"]);
    t.relisted("40");
    expect(t.watchStartRevision).toBe("40");
    expect(new ResumeTracker("1").watchStartRevision).toBe("1"); // 0 would mean "from now"
    expect(new ResumeTracker("0").watchStartRevision).toBe("1");
  });

  test("handles revisions beyond 2^53", () => {
    const big = "9007199254740993"; // 2^53 + 1
    const t = new ResumeTracker(big);
    t.accept([ev(big)]);
    expect(t.resumeRevision).toBe("9007199254740994");
  });

  test("rejects non-revisions", () => {
    expect(() => new ResumeTracker("-1")).toThrow(/not an etcd revision/);
    expect(() => parseRevision("1e3")).toThrow();
    expect(() => new ResumeTracker("7").accept([ev("x")])).toThrow();
  });
});
