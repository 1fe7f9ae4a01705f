import { jsonStructureProblem, parseYamlBody } from "./manifest-bodies";

describe("jsonStructureProblem", () => {
  test("a duplicate key is named with its line and column", () => {
    expect(jsonStructureProblem('{"a": 1,\n "b": {"c": 1, "c": 2}}')).toEqual({
      line: 2,
      col: 16,
      message: 'duplicate key "c"',
    });
  });
  test("the same key in sibling objects, escaped keys and keys as values are fine", () => {
    expect(jsonStructureProblem('[{"a": 1}, {"a": "a"}, {"\\u0061x": 1, "ax2": "\\"a\\""}]')).toBeUndefined();
  });
  test("keys differing only in escapes are the same key", () => {
    expect(jsonStructureProblem('{"a": 1, "\\u0061": 2}')?.message).toBe('duplicate key "a"');
  });
  test("nesting deeper than 64 levels", () => {
    expect(jsonStructureProblem("[".repeat(64) + "]".repeat(64))).toBeUndefined();
    expect(jsonStructureProblem("[".repeat(65) + "]".repeat(65))).toEqual({
      line: 1,
      col: 65,
      message: "nested more than 64 levels deep",
    });
  });
});

describe("parseYamlBody", () => {
  test("one document is its value", () => {
    expect(parseYamlBody(Buffer.from("a: 1\nb: [x]\n"))).toEqual({ a: 1, b: ["x"] });
  });
  test("two documents are refused with the second one's line", () => {
    expect(() => parseYamlBody(Buffer.from("a: 1\n---\nb: 2\n"))).toThrow(/line 2.*exactly one YAML document/);
  });
  test("a duplicate key is refused with its line", () => {
    expect(() => parseYamlBody(Buffer.from("a: 1\na: 2\n"))).toThrow(/line 2, column 1/);
  });
});

describe("keys naming a prototype", () => {
  // Found by manifest-fuzz.test.ts (fast-check seed -461720223): Fastify's guard refused
  // {"__proto__": ...} as "Body is not valid JSON", naming no key or line.
  test("__proto__ in a JSON body is named with its line and column", () => {
    expect(jsonStructureProblem('{"spec": {"env":\n  {"__proto__": "x"}}}')).toEqual({
      line: 2,
      col: 4,
      message: 'key "__proto__" is not allowed (it names an object\'s prototype)',
    });
    expect(jsonStructureProblem('{"a": {"\\u005f_proto__": 1}}')?.message).toMatch(/__proto__/);
  });
  test("prototype under constructor, and only there", () => {
    expect(jsonStructureProblem('{"a": 1, "constructor": {"b": 1, "prototype": {}}}')?.message).toMatch(
      /"prototype" under "constructor"/,
    );
    expect(jsonStructureProblem('{"constructor": "x", "prototype": 1, "b": {"prototype": 2}}')).toBeUndefined();
  });
  test("the same keys in a YAML body are refused with their line", () => {
    expect(() => parseYamlBody(Buffer.from("spec:\n  env:\n    __proto__: x\n"))).toThrow(
      /line 3, column 5: key "__proto__" is not allowed/,
    );
    expect(() => parseYamlBody(Buffer.from("constructor:\n  prototype: 1\n"))).toThrow(/line 2, column 3/);
    expect(parseYamlBody(Buffer.from("constructor: x\nprototype: 1\n"))).toEqual({ constructor: "x", prototype: 1 });
  });
});
