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
