import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { dottedPath, formatProblem, loadManifests, ManifestError, parseManifestText } from "./manifest";

const HELLO = `apiVersion: grove/v1
kind: App
metadata:
  name: hello
spec:
  rootfs: busybox
  instances: 3
  command: ["sh", "-c", "sleep 1000"]
  resources:
    cpu: 250m
    memory: 64Mi
`;

function problemsOf(text: string, file = "m.yaml"): string[] {
  return parseManifestText(text, file).problems.map(formatProblem);
}

describe("parseManifestText", () => {
  it("accepts a valid App and keeps it whole", () => {
    const { objects, problems } = parseManifestText(HELLO, "hello.yaml");
    expect(problems).toEqual([]);
    expect(objects).toHaveLength(1);
    expect(objects[0]?.object.metadata.name).toBe("hello");
    expect(objects[0]?.object.spec).toMatchObject({ instances: 3, resources: { cpu: "250m", memory: "64Mi" } });
    expect(objects[0]?.line).toBe(1);
  });

  it("reports a wrong type at the value's line and column", () => {
    const text = HELLO.replace("instances: 3", 'instances: "3"');
    expect(problemsOf(text, "examples/hello.yaml")).toEqual([
      "examples/hello.yaml:7:14: spec.instances: Expected integer",
    ]);
  });

  it("accepts updatePolicy.resources InPlace or Replace and names the field otherwise", () => {
    expect(problemsOf(`${HELLO}  updatePolicy:\n    resources: Replace\n`)).toEqual([]);
    const problems = problemsOf(`${HELLO}  updatePolicy:\n    resources: Sometimes\n`);
    expect(problems).toEqual(["m.yaml:13:16: spec.updatePolicy.resources: Expected union value"]);
  });

  it("reports a missing field at its nearest existing parent", () => {
    const text = HELLO.replace("  instances: 3\n", "");
    expect(problemsOf(text)).toEqual(["m.yaml:6:3: spec.instances: required field is missing"]);
  });

  it("wants one of rootfs or image, and a command with a rootfs", () => {
    expect(problemsOf(HELLO.replace("  rootfs: busybox\n", ""))).toEqual([
      "m.yaml:6:3: spec: one of rootfs or image is required",
    ]);
    expect(problemsOf(HELLO.replace("  rootfs: busybox\n", "  image: 127.0.0.1:5000/grove/busybox:1\n"))).toEqual([]);
    expect(problemsOf(HELLO.replace("  rootfs: busybox\n", "  rootfs: busybox\n  image: web\n"))).toEqual([
      "m.yaml:7:10: spec.image: give either rootfs or image, not both",
    ]);
    expect(problemsOf(HELLO.replace('  command: ["sh", "-c", "sleep 1000"]\n', ""))).toEqual([
      "m.yaml:6:3: spec.command: required with a rootfs (only an image can supply its own)",
    ]);
  });

  it("reports a missing spec at the document", () => {
    const text = "apiVersion: grove/v1\nkind: App\nmetadata:\n  name: x\n";
    expect(problemsOf(text)).toEqual(["m.yaml:1:1: spec: required field is missing"]);
  });

  it("reports unknown fields at the key", () => {
    const text = HELLO.replace("  rootfs: busybox", "  rootfs: busybox\n  replicas: 2");
    expect(problemsOf(text)).toEqual(["m.yaml:7:3: spec.replicas: unknown field"]);
  });

  it("reports array elements with an index", () => {
    const text = HELLO.replace('command: ["sh", "-c", "sleep 1000"]', "command:\n    - sh\n    - 7");
    expect(problemsOf(text)).toEqual(["m.yaml:10:7: spec.command[1]: Expected string"]);
  });

  it("explains bad quantities with the quantity parser's words", () => {
    const text = HELLO.replace("cpu: 250m", "cpu: lots").replace("memory: 64Mi", "memory: 64MB");
    const problems = problemsOf(text);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^m\.yaml:10:10: spec\.resources\.cpu: invalid cpu quantity "lots"/);
    expect(problems[1]).toMatch(/^m\.yaml:11:13: spec\.resources\.memory: invalid byte quantity "64MB"/);
  });

  it("rejects zero quantities that match the pattern", () => {
    const text = HELLO.replace("cpu: 250m", "cpu: 0m");
    expect(problemsOf(text)).toEqual(['m.yaml:10:10: spec.resources.cpu: must be at least 1m, got "0m"']);
  });

  it("reports YAML syntax errors with line and column", () => {
    const text = "apiVersion: grove/v1\nkind: App\nmetadata:\n  name: [hello\n";
    const problems = problemsOf(text);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0]).toMatch(/^m\.yaml:\d+:\d+: /);
    expect(problems[0]).not.toContain("\n");
  });

  it("positions a nested-mapping syntax error at the value it starts in", () => {
    const text = "apiVersion: grove/v1\nkind: App\nmetadata:\n  name: a\n   bad: indent: here\n";
    expect(problemsOf(text)[0]).toBe("m.yaml:4:9: Nested mappings are not allowed in compact mappings");
  });

  it("names the known kinds for an unknown kind", () => {
    const text = HELLO.replace("kind: App", "kind: Foo");
    expect(problemsOf(text)).toEqual([
      'm.yaml:2:7: kind: unknown kind "Foo" (known kinds: App, Instance, Node, Task, Secret, Namespace)',
    ]);
  });

  it("names the supported apiVersion", () => {
    const text = HELLO.replace("grove/v1", "apps/v1");
    expect(problemsOf(text)).toEqual([
      'm.yaml:1:13: apiVersion: unsupported apiVersion "apps/v1" (supported: grove/v1)',
    ]);
  });

  it("rejects Instance manifests with a reason", () => {
    const text = HELLO.replace("kind: App", "kind: Instance");
    const [problem] = problemsOf(text);
    expect(problem).toMatch(
      /^m\.yaml:2:7: kind: kind Instance cannot be submitted: Instances are created by the control plane/,
    );
  });

  it("accepts a Node manifest (labels, cordon)", () => {
    const text =
      "apiVersion: grove/v1\nkind: Node\nmetadata:\n  name: n1\n  labels: {zone: a}\nspec:\n  unschedulable: true\n";
    const { objects, problems } = parseManifestText(text, "n.yaml");
    expect(problems).toEqual([]);
    expect(objects[0]?.object.kind).toBe("Node");
  });

  it("rejects a document that is not a mapping", () => {
    expect(problemsOf("- a\n- b\n")).toEqual([
      "m.yaml:1:1: a manifest document must be a mapping with apiVersion, kind, metadata and spec",
    ]);
  });

  it("skips empty documents and handles several", () => {
    const text = `${HELLO}---\n${HELLO.replace("name: hello", "name: world")}---\n`;
    const { objects, problems } = parseManifestText(text, "m.yaml");
    expect(problems).toEqual([]);
    expect(objects.map((o) => [o.object.metadata.name, o.documentIndex, o.line])).toEqual([
      ["hello", 0, 1],
      ["world", 1, 13],
    ]);
  });

  it("positions problems in later documents against the whole file", () => {
    const text = `${HELLO}---\n${HELLO.replace("instances: 3", "instances: -1")}`;
    expect(problemsOf(text)).toEqual(["m.yaml:19:14: spec.instances: Expected integer to be greater or equal to 0"]);
  });

  it("parses JSON manifests with positions", () => {
    const text =
      '{\n  "apiVersion": "grove/v1",\n  "kind": "App",\n  "metadata": {"name": "j"},\n  "spec": {"rootfs": "busybox", "command": ["x"], "instances": true}\n}\n';
    expect(problemsOf(text, "a.json")).toEqual(["a.json:5:64: spec.instances: Expected integer"]);
  });
});

describe("strings and bounds (the server refuses the same)", () => {
  it("names a NUL in a command entry at its line, and an unpaired surrogate in a label", () => {
    const nul = HELLO.replace('"sleep 1000"', '"sleep\\0 1000"');
    expect(problemsOf(nul)).toEqual([
      expect.stringMatching(/^m\.yaml:8:25: spec\.command\[2\]: holds a NUL character \(U\+0000\) at character 5/),
    ]);
    const surrogate = HELLO.replace("  name: hello", '  name: hello\n  labels: {team: "a\\ud800"}');
    expect(problemsOf(surrogate)).toEqual([
      expect.stringMatching(/metadata\.labels\.team: holds an unpaired UTF-16 surrogate/),
    ]);
  });

  it("counts lengths in characters as the server does: 200 characters beyond U+FFFF fit a 253-character label", () => {
    const fits = HELLO.replace("  name: hello", `  name: hello\n  labels: {e: "${"\u{1F600}".repeat(200)}"}`);
    expect(problemsOf(fits)).toEqual([]);
    const over = HELLO.replace("  name: hello", `  name: hello\n  labels: {e: "${"\u{1F600}".repeat(254)}"}`);
    expect(problemsOf(over)).toEqual([
      expect.stringMatching(/metadata\.labels\.e: Expected string length less or equal to 253/),
    ]);
  });

  it("bounds command entries, env sizes and quantities", () => {
    const long = HELLO.replace('"sleep 1000"', `"${"x".repeat(32001)}"`);
    expect(problemsOf(long)).toEqual([
      expect.stringMatching(/spec\.command\[2\]: Expected string length less or equal to 32000/),
    ]);
    const cpu = HELLO.replace("cpu: 250m", `cpu: "${"0".repeat(40)}1"`);
    expect(problemsOf(cpu)).toEqual([expect.stringMatching(/spec\.resources\.cpu: longer than 32 characters/)]);
    const env = HELLO + "  env:\n" + Array.from({ length: 1025 }, (_, i) => `    V${i}: x\n`).join("");
    expect(problemsOf(env)).toEqual([
      expect.stringMatching(/spec\.env: Expected object to have no more than 1024 properties/),
    ]);
  });
});

describe("Secrets and Namespaces (as the server checks them)", () => {
  const accept = { acceptKinds: ["Secret", "Namespace"] as const };
  const problems = (text: string) =>
    parseManifestText(text, "t.yaml", { ...accept, acceptKinds: [...accept.acceptKinds] }).problems.map(formatProblem);
  it("a Namespace: quotas the parser refuses, a descending host port range, a namespace of its own; cpu 0 is a quota", () => {
    const ns = (spec: string, meta = "") =>
      `apiVersion: grove/v1\nkind: Namespace\nmetadata: {name: team-a${meta}}\nspec: ${spec}\n`;
    expect(problems(ns("{quota: {cpu: 0, memory: 0}}"))).toEqual([]);
    expect(problems(ns("{hostPortRange: {first: 20100, last: 20000}}"))).toEqual([
      "t.yaml:4:31: spec.hostPortRange.first: must be at most last (20000)",
    ]);
    expect(problems(ns("{policy: baseline}", ", namespace: x"))).toEqual([
      "t.yaml:3:37: metadata.namespace: must not be set: Namespace is cluster-scoped",
    ]);
  });
  it("a Secret: keys its pattern does not admit, values with NUL, and not by default", () => {
    const secret = (data: string) => `apiVersion: grove/v1\nkind: Secret\nmetadata: {name: db}\ndata: ${data}\n`;
    expect(problems(secret("{password: hunter2}"))).toEqual([]);
    expect(problems(secret("{pass word: x}"))).toEqual([
      't.yaml:4:8: data["pass word"]: key must match ^[A-Za-z0-9._-]+$',
    ]);
    expect(problems(secret('{password: "a\\0"}'))).toEqual([expect.stringMatching(/data\.password: holds a NUL/)]);
    expect(parseManifestText(secret("{a: b}"), "t.yaml").problems.map(formatProblem)).toEqual([
      "t.yaml:2:7: kind: kind Secret cannot be submitted: this command accepts App, Node, Task",
    ]);
  });
});

describe("dottedPath", () => {
  it("renders pointers readably", () => {
    expect(dottedPath("/spec/instances")).toBe("spec.instances");
    expect(dottedPath("/spec/command/0")).toBe("spec.command[0]");
    expect(dottedPath("/metadata/labels/grove.io~1zone")).toBe('metadata.labels["grove.io/zone"]');
  });
});

describe("loadManifests", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-manifest-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("loads a directory's manifests in name order, ignoring other files", () => {
    fs.writeFileSync(path.join(dir, "b.yaml"), HELLO.replace("name: hello", "name: bbb"));
    fs.writeFileSync(path.join(dir, "a.yml"), HELLO.replace("name: hello", "name: aaa"));
    fs.writeFileSync(path.join(dir, "README.md"), "# not a manifest: [");
    const objects = loadManifests(dir);
    expect(objects.map((o) => o.object.metadata.name)).toEqual(["aaa", "bbb"]);
    expect(objects[0]?.file).toBe(path.join(dir, "a.yml"));
  });

  it("accepts nothing when a later document is bad, and lists every problem", () => {
    const file = path.join(dir, "two.yaml");
    fs.writeFileSync(file, `${HELLO}---\n${HELLO.replace("kind: App", "kind: Foo")}`);
    fs.writeFileSync(path.join(dir, "z.yaml"), HELLO.replace("rootfs: busybox", "rootfs: Busy Box"));
    let caught: unknown;
    try {
      loadManifests(dir);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ManifestError);
    const lines = (caught as ManifestError).lines();
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe(
      `${file}:14:7: kind: unknown kind "Foo" (known kinds: App, Instance, Node, Task, Secret, Namespace)`,
    );
    expect(lines[1]).toMatch(/z\.yaml:6:11: spec\.rootfs: Expected string to match/);
  });

  it("reports a missing path", () => {
    expect(() => loadManifests(path.join(dir, "nope.yaml"))).toThrow(
      /nope\.yaml: cannot read: no such file or directory/,
    );
  });

  it("reports an empty directory", () => {
    expect(() => loadManifests(dir)).toThrow(/no manifests found/);
  });
});
