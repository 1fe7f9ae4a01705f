// Per-node limits on the agents' endpoint: token buckets per node and kind
// (a node over its rate is read more slowly, others are not), the stream cap,
// and the flag's parser naming what it refuses.
import { AgentLimits, DEFAULT_AGENT_LIMITS, parseAgentLimits } from "./agent-limits";

const condition = { condition: { type: "X", status: "True", reason: "R", message: "" } } as never;
const heartbeat = { heartbeat: { sentAtMs: "1" } } as never;
const output = (bytes: number) => ({ streamOutput: { streamId: 1, fd: 1, data: Buffer.alloc(bytes) } }) as never;

describe("AgentLimits", () => {
  let now = 0;
  const limits = () => new AgentLimits({ ...DEFAULT_AGENT_LIMITS, reports: 5, heartbeats: 2, output: 1000 }, () => now);
  beforeEach(() => (now = 1_000));

  it("lets a burst of twice the rate through, then asks to wait for the refill", () => {
    const l = limits();
    for (let i = 0; i < 10; i++) expect(l.delayFor("a", condition)).toBe(0);
    expect(l.delayFor("a", condition)).toBeCloseTo(200); // one report owed at 5/s
    expect(l.delayFor("a", condition)).toBeCloseTo(400);
    now += 400; // refilled what was owed
    expect(l.delayFor("a", condition)).toBeCloseTo(200);
  });

  it("keeps each node's and each kind's buckets apart", () => {
    const l = limits();
    for (let i = 0; i < 20; i++) l.delayFor("a", condition);
    expect(l.delayFor("b", condition)).toBe(0);
    // heartbeats=2: a burst of 4, then one every 500 ms.
    for (let i = 0; i < 4; i++) expect(l.delayFor("a", heartbeat)).toBe(0);
    expect(l.delayFor("a", heartbeat)).toBeCloseTo(500);
  });

  it("counts output in bytes, at least one sub-stream window in a burst", () => {
    const l = limits();
    expect(l.delayFor("a", output(256 * 1024))).toBe(0);
    expect(l.delayFor("a", output(1000))).toBeCloseTo(1000);
    expect(l.delayFor("a", { register: {} } as never)).toBe(0);
  });

  it("caps the streams a node holds open; a release makes room once", () => {
    const l = new AgentLimits({ ...DEFAULT_AGENT_LIMITS, streams: 2 });
    const r1 = l.openStream("a");
    expect(l.openStream("a")).toBeDefined();
    expect(l.openStream("a")).toBeUndefined();
    expect(l.openStream("b")).toBeDefined();
    r1!();
    r1!();
    expect(l.openStream("a")).toBeDefined();
    expect(l.openStream("a")).toBeUndefined();
  });

  it("forgets refilled buckets", () => {
    const l = limits();
    l.delayFor("a", condition);
    now += 10_000;
    l.prune();
    expect((l as unknown as { buckets: Map<string, unknown> }).buckets.size).toBe(0);
  });

  it("parses the flag and names what it refuses", () => {
    expect(parseAgentLimits("reports=20,output=2Mi,streams=3")).toEqual({
      ...DEFAULT_AGENT_LIMITS,
      reports: 20,
      output: 2 * 1024 * 1024,
      streams: 3,
    });
    expect(() => parseAgentLimits("reports=0")).toThrow(/--agent-limits: "reports=0" is not one of/);
    expect(() => parseAgentLimits("streams=2Mi")).toThrow(/"streams=2Mi"/);
    expect(() => parseAgentLimits("bogus=1")).toThrow(/"bogus=1"/);
  });
});
