import { parseJsonPathTemplate } from "./jsonpath-template";

const LIST = {
  items: [
    { metadata: { name: "web", labels: { tier: "front" } }, spec: { instances: 3 }, status: { state: "Running" } },
    { metadata: { name: "db" }, spec: { instances: 1 }, status: { state: "Pending" } },
  ],
};

const render = (t: string, v: unknown = LIST) => parseJsonPathTemplate(t).render(v);

describe("-o jsonpath templates", () => {
  it("joins several results with a space and prints text outside braces as is", () => {
    expect(render("{.items[*].metadata.name}")).toBe("web db");
    expect(render("names: {.items[*].metadata.name}!")).toBe("names: web db!");
    expect(render("{$.items[0].spec.instances}")).toBe("3");
  });

  it("prints objects as JSON and nothing for a missing field", () => {
    expect(render("{.items[0].metadata.labels}")).toBe('{"tier":"front"}');
    expect(render("[{.items[1].metadata.labels}]")).toBe("[]");
  });

  it("ranges over results with expressions relative to each, and quoted literals", () => {
    expect(render('{range .items[*]}{.metadata.name}{"\\t"}{.spec.instances}{"\\n"}{end}')).toBe("web\t3\ndb\t1\n");
  });

  it("takes kubectl's filter form", () => {
    expect(render('{.items[?(@.status.state=="Running")].metadata.name}')).toBe("web");
  });

  it("rejects a broken template, naming the place", () => {
    expect(() => parseJsonPathTemplate("{.items[}")).toThrow(/invalid expression \{\.items\[\} at character 1/);
    expect(() => parseJsonPathTemplate("{.a")).toThrow(/"\{" at character 1 is never closed/);
    expect(() => parseJsonPathTemplate("a}")).toThrow(/"\}" at character 2 closes nothing/);
    expect(() => parseJsonPathTemplate("{range .items[*]}{.x}")).toThrow(/has no \{end\}/);
    expect(() => parseJsonPathTemplate("{end}")).toThrow(/has no \{range \.\.\.\} to end/);
    expect(() => parseJsonPathTemplate("")).toThrow(/the template is empty/);
  });
});
