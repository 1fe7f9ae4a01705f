// A Task manifest's checks: the schema's and taskProblems', each problem at
// its field, as `grove apply -f` and the server report them.
import { parseManifestText } from "./manifest";
import { runTaskName } from "./cli/task-commands";
import { MAX_TASK_NAME_LENGTH, retryBackoffMs } from "./task-rules";

function problems(spec: string, name = "job"): string[] {
  const text = `apiVersion: grove/v1\nkind: Task\nmetadata: { name: ${name} }\nspec:\n${spec}`;
  return parseManifestText(text, "t.yaml").problems.map((p) => `${p.line}:${p.pointer ?? ""}: ${p.message}`);
}

describe("Task manifests", () => {
  it("accepts a Task with its own rootfs, and one from an App", () => {
    expect(problems("  rootfs: busybox\n  command: [echo, hi]\n  retries: 2\n  ttlSecondsAfterFinished: 60\n")).toEqual(
      [],
    );
    expect(problems("  fromApp: web\n  command: [./migrate]\n  env: { A: b }\n")).toEqual([]);
  });

  it("refuses negative retries and TTLs, naming the field", () => {
    expect(problems("  rootfs: busybox\n  command: [echo]\n  retries: -1\n")).toEqual([
      "7:/spec/retries: Expected integer to be greater or equal to 0",
    ]);
    expect(problems("  rootfs: busybox\n  command: [echo]\n  ttlSecondsAfterFinished: -5\n")).toEqual([
      "7:/spec/ttlSecondsAfterFinished: Expected integer to be greater or equal to 0",
    ]);
  });

  it("refuses an empty command, an empty program, and fromApp without a command", () => {
    expect(problems("  rootfs: busybox\n  command: []\n")).toEqual([
      "6:/spec/command: Expected array length to be greater or equal to 1",
    ]);
    expect(problems('  rootfs: busybox\n  command: [""]\n')).toEqual([
      "6:/spec/command/0: the program to run must not be empty",
    ]);
    expect(problems("  fromApp: web\n")).toEqual(["5:/spec/command: required with fromApp: the command to run"]);
  });

  it("refuses a source besides fromApp, and no source at all", () => {
    expect(problems("  fromApp: web\n  rootfs: busybox\n  command: [x]\n")).toEqual([
      "6:/spec/rootfs: not with fromApp (the App's is used)",
    ]);
    expect(problems("  command: [x]\n")).toEqual(["5:/spec: one of fromApp, rootfs or image is required"]);
  });

  it("refuses a name too long for its attempts' names", () => {
    const long = "a".repeat(MAX_TASK_NAME_LENGTH + 1);
    expect(problems("  rootfs: busybox\n  command: [x]\n", long)).toEqual([
      `3:/metadata/name: a Task's name may have at most ${MAX_TASK_NAME_LENGTH} characters (its attempts are <name>-t<N>)`,
    ]);
  });
});

describe("Task helpers", () => {
  it("names grove run's Tasks after the App, within the length limit", () => {
    expect(runTaskName("web")).toMatch(/^web-run-[0-9a-f]{5}$/);
    expect(runTaskName("w".repeat(63)).length).toBeLessThanOrEqual(MAX_TASK_NAME_LENGTH);
  });
  it("doubles the retry backoff from 1 s up to 60 s", () => {
    expect([2, 3, 4, 8, 20].map(retryBackoffMs)).toEqual([1000, 2000, 4000, 60_000, 60_000]);
  });
});
