import { GroveError } from "@grove/api";
import { matchesLabels, parseLabelSelector } from "./label-selector";

describe("label selectors", () => {
  it("parses equality, inequality, existence and absence", () => {
    expect(parseLabelSelector("app=web, tier==front,env!=prod,canary,!legacy")).toEqual([
      { key: "app", op: "=", value: "web" },
      { key: "tier", op: "=", value: "front" },
      { key: "env", op: "!=", value: "prod" },
      { key: "canary", op: "exists" },
      { key: "legacy", op: "!exists" },
    ]);
    expect(parseLabelSelector("")).toEqual([]);
    expect(parseLabelSelector("grove.dev/team=a")).toEqual([{ key: "grove.dev/team", op: "=", value: "a" }]);
  });

  it("matches every requirement", () => {
    const s = parseLabelSelector("app=web,env!=prod,!legacy");
    expect(matchesLabels(s, { app: "web" })).toBe(true);
    expect(matchesLabels(s, { app: "web", env: "dev" })).toBe(true);
    expect(matchesLabels(s, { app: "web", env: "prod" })).toBe(false);
    expect(matchesLabels(s, { app: "db" })).toBe(false);
    expect(matchesLabels(s, { app: "web", legacy: "" })).toBe(false);
    expect(matchesLabels(s, undefined)).toBe(false);
    expect(matchesLabels(parseLabelSelector("canary"), { canary: "" })).toBe(true);
    expect(matchesLabels([], undefined)).toBe(true);
  });

  it.each(["app=we b", "=web", "bad key=1", "a,,b", "app=" + "x".repeat(64)])("refuses %j naming the field", (text) => {
    let err: unknown;
    try {
      parseLabelSelector(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GroveError);
    expect((err as GroveError).code).toBe("BadRequest");
    expect((err as GroveError).message).toMatch(/^labelSelector: /);
  });
});
