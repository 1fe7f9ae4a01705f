import { formatSelector, matchesSelector, parseSelector } from "./selector";

describe("-l label selectors", () => {
  it("parses equality, inequality, presence and absence, comma-joined", () => {
    const reqs = parseSelector("app=web, tier!=db,canary,!legacy,example.com/team==a");
    expect(reqs).toEqual([
      { op: "=", key: "app", value: "web" },
      { op: "!=", key: "tier", value: "db" },
      { op: "exists", key: "canary" },
      { op: "!exists", key: "legacy" },
      { op: "=", key: "example.com/team", value: "a" },
    ]);
    expect(formatSelector(reqs)).toBe("app=web,tier!=db,canary,!legacy,example.com/team=a");
  });

  it("matches only objects whose labels satisfy every requirement", () => {
    const reqs = parseSelector("app=web,tier!=db,!legacy");
    expect(matchesSelector({ app: "web" }, reqs)).toBe(true);
    expect(matchesSelector({ app: "web", tier: "front" }, reqs)).toBe(true);
    expect(matchesSelector({ app: "web", tier: "db" }, reqs)).toBe(false);
    expect(matchesSelector({ app: "web", legacy: "" }, reqs)).toBe(false);
    expect(matchesSelector(undefined, reqs)).toBe(false);
    expect(matchesSelector(undefined, parseSelector("x!=1"))).toBe(true);
  });

  it("rejects what it cannot read, naming the requirement", () => {
    expect(() => parseSelector("app=web,")).toThrow(/-l: "" in selector "app=web,": empty requirement/);
    expect(() => parseSelector("env in (a,b)")).toThrow(/set-based forms are not supported/);
    expect(() => parseSelector("app=we b")).toThrow(/"we b" is not a label value/);
    expect(() => parseSelector("-x=1")).toThrow(/"-x" is not a label key/);
  });
});
