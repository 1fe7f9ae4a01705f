import { decodeManifestBytes, positionOf, yamlDepthProblem } from "./manifest-text";
import { parseManifestText } from "./manifest";

const APP =
  'apiVersion: grove/v1\nkind: App\nmetadata: {name: a}\nspec:\n  rootfs: busybox\n  command: ["true"]\n  instances: 1\n';

describe("decodeManifestBytes", () => {
  test("well-formed UTF-8 decodes, multi-byte characters included", () => {
    expect(decodeManifestBytes(Buffer.from("a: ü€😀\n"))).toEqual({ text: "a: ü€😀\n" });
  });
  test.each([
    ["a stray continuation byte", [0x80]],
    ["0xff", [0xff]],
    ["an overlong NUL", [0xc0, 0x80]],
    ["a UTF-16 surrogate", [0xed, 0xa0, 0x80]],
    ["a truncated sequence", [0xe2, 0x82]],
    ["past U+10FFFF", [0xf4, 0x90, 0x80, 0x80]],
  ])("%s is a problem at its line and column", (_what, bad) => {
    const bytes = Buffer.concat([Buffer.from("a: 1\nb: x"), Buffer.from(bad), Buffer.from("y\n")]);
    const r = decodeManifestBytes(bytes);
    expect("problem" in r && r.problem).toMatchObject({ line: 2, col: 5 });
  });
});

describe("parseManifestText", () => {
  const problems = (text: string) => parseManifestText(text, "f.yaml").problems;
  test("a tag outside the core schema is refused, not read as a string", () => {
    for (const tag of ["!!python/object:os.system /x", "!foo /x", "!!binary aGVsbG8=", "!!timestamp 2001-12-14"]) {
      const p = problems(APP + `  workingDir: ${tag}\n`);
      expect(p).toEqual([expect.objectContaining({ line: 8, message: expect.stringContaining("unsupported tag") })]);
    }
  });
  test("core tags still work", () => {
    expect(problems(APP + '  workingDir: !!str "/x"\n')).toEqual([]);
  });
  test("an alias bomb is a problem, not an exception", () => {
    let bomb = "x0: &a0 [lol]\n";
    for (let i = 1; i <= 6; i++)
      bomb += `x${i}: &a${i} [${Array(9)
        .fill(`*a${i - 1}`)
        .join(", ")}]\n`;
    expect(problems(bomb)).toEqual([expect.objectContaining({ message: expect.stringContaining("alias bomb") })]);
  });
  test("nesting deeper than 64 levels is one problem, found before parsing", () => {
    const t0 = performance.now();
    const p = problems(APP.replace("busybox", "[".repeat(200_000) + "]".repeat(200_000)));
    expect(p).toEqual([{ file: "f.yaml", line: 5, col: 75, message: "nested more than 64 levels deep" }]);
    expect(performance.now() - t0).toBeLessThan(2000);
  });
  test("64 levels are fine for the depth check, brackets in quoted and block scalars do not count", () => {
    expect(yamlDepthProblem("a: " + "[".repeat(64) + "]".repeat(64))).toBeUndefined();
    expect(yamlDepthProblem(`a: "${"[".repeat(100)}"\nb: |\n  ${"{".repeat(100)}\n`)).toBeUndefined();
  });
});

test("positionOf counts lines and columns from 1", () => {
  expect(positionOf("ab\ncd", 0)).toEqual({ line: 1, col: 1 });
  expect(positionOf("ab\ncd", 4)).toEqual({ line: 2, col: 2 });
});
