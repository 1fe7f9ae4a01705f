import { MAX_KEY_LENGTH, stringProblems } from "./string-rules";

const app = (spec: Record<string, unknown>, labels: Record<string, string> = {}) => ({
  apiVersion: "grove/v1",
  kind: "App",
  metadata: { name: "a", labels },
  spec: { rootfs: "busybox", instances: 1, ...spec },
});

describe("stringProblems", () => {
  test("a NUL in a command entry, an env value or an env name is named by its pointer", () => {
    const problems = stringProblems(
      app({ command: ["sh", "-c", "echo a\u0000b"], env: { A: "x\u0000", "B\u0000": "y" } }),
    );
    expect(problems.map((p) => p.pointer).sort()).toEqual(["/spec/command/2", "/spec/env/A", "/spec/env/B\u0000"]);
    expect(problems.find((p) => p.pointer === "/spec/command/2")?.message).toMatch(
      /NUL character \(U\+0000\) at character 6/,
    );
    expect(problems.find((p) => p.pointer === "/spec/env/B\u0000")?.message).toMatch(/^key holds a NUL/);
  });

  test("an unpaired surrogate is refused, a pair (a character beyond U+FFFF) is not", () => {
    expect(stringProblems(app({ command: ["\ud83d\ude00", "ok"] }))).toEqual([]);
    for (const bad of ["\ud800", "a\udc00", "\ude00\ud83d", "x\ud83d"]) {
      const problems = stringProblems(app({ command: [bad] }));
      expect(problems).toEqual([
        { pointer: "/spec/command/0", message: expect.stringMatching(/unpaired UTF-16 surrogate/) },
      ]);
    }
  });

  test("control characters: refused in labels and what is matched against node labels, fine in commands and env", () => {
    expect(stringProblems(app({ command: ["sh", "-c", "a\n\tb\u001b[0m"], env: { A: "l1\nl2" } }))).toEqual([]);
    const problems = stringProblems({
      ...app(
        {
          placement: {
            nodeSelector: { zone: "a\u0007" },
            constraints: [{ key: "k", op: "in", values: ["x", "\u009b"] }],
          },
        },
        {
          team: "a\u001b[2J",
          "k\n": "v",
        },
      ),
    });
    expect(problems.map((p) => p.pointer).sort()).toEqual([
      "/metadata/labels/k\n",
      "/metadata/labels/team",
      "/spec/placement/constraints/0/values/1",
      "/spec/placement/nodeSelector/zone",
    ]);
    expect(problems.find((p) => p.pointer === "/metadata/labels/team")?.message).toMatch(/control character U\+001B/);
  });

  test("keys longer than the limit, counted in characters", () => {
    expect(stringProblems(app({}, { ["k".repeat(MAX_KEY_LENGTH)]: "v" }))).toEqual([]);
    expect(stringProblems(app({}, { ["\ud83d\ude00".repeat(MAX_KEY_LENGTH)]: "v" }))).toEqual([]);
    expect(stringProblems(app({}, { ["k".repeat(MAX_KEY_LENGTH + 1)]: "v" }))).toEqual([
      {
        pointer: `/metadata/labels/${"k".repeat(MAX_KEY_LENGTH + 1)}`,
        message: `key longer than ${MAX_KEY_LENGTH} characters`,
      },
    ]);
  });

  test("JSON pointer escapes, a top-level status is skipped, problems are capped", () => {
    expect(stringProblems({ data: { "a/b~c": "\u0000" } })).toEqual([
      { pointer: "/data/a~1b~0c", message: expect.stringMatching(/NUL/) },
    ]);
    expect(stringProblems({ ...app({}), status: { message: "agent said \u0000" } })).toEqual([]);
    expect(stringProblems({ spec: { status: "\u0000" } })).toHaveLength(1);
    expect(stringProblems({ command: Array(1000).fill("\u0000") })).toHaveLength(20);
  });
});
