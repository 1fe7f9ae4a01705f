import { parseDuration, parseKindArg, refOf, UsageError } from "./kinds";

describe("parseKindArg", () => {
  it("accepts singular, plural and short names in any case", () => {
    expect(["app", "apps", "App"].map((a) => parseKindArg(a).kind)).toEqual(["App", "App", "App"]);
    expect(["instance", "instances", "inst"].map((a) => parseKindArg(a).kind)).toEqual([
      "Instance",
      "Instance",
      "Instance",
    ]);
    expect(["node", "nodes", "no"].map((a) => parseKindArg(a).kind)).toEqual(["Node", "Node", "Node"]);
  });

  it("splits KIND/NAME", () => {
    expect(parseKindArg("inst/hello-0")).toEqual({ kind: "Instance", name: "hello-0" });
    expect(() => parseKindArg("app/")).toThrow(/names no object: write app\/NAME/);
  });

  it("names the known kinds for an unknown one", () => {
    expect(() => parseKindArg("deployments")).toThrow(UsageError);
    expect(() => parseKindArg("deployments")).toThrow(/unknown kind "deployments" \(known kinds: App, Instance, Node/);
  });
});

describe("refOf", () => {
  it("prints kind/name", () => {
    expect(refOf("App", "hello")).toBe("app/hello");
  });
});

describe("parseDuration", () => {
  it("reads units and bare seconds", () => {
    expect(parseDuration("60s")).toBe(60_000);
    expect(parseDuration("2m")).toBe(120_000);
    expect(parseDuration("1h")).toBe(3_600_000);
    expect(parseDuration("250ms")).toBe(250);
    expect(parseDuration("1.5")).toBe(1500);
    expect(() => parseDuration("5 minutes")).toThrow(/invalid duration "5 minutes"/);
  });
});
