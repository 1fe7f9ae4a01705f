// The CLI's kubectl-style essentials against a real grove-server and agent (one of each,
// shared by the tests): apply -f - with --wait (following the real watch stream), diff,
// -o jsonpath / -o name, -l, a context with a token file, and grove version. Each test applies
// the Apps it reads and afterEach removes them, so any test runs alone and in any order.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { GroveClient, GroveError } from "@grove/api";
import { HostCluster } from "./harness/hosts";
import { BIN, isReady, REPO_ROOT, tempDir, waitFor } from "./harness/processes";

function manifest(name: string, instances: number, labels: Record<string, string> = {}): string {
  const labelLines = Object.entries(labels).map(([k, v]) => `    ${k}: ${v}\n`);
  return `apiVersion: grove/v1
kind: App
metadata:
  name: ${name}
${labelLines.length ? `  labels:\n${labelLines.join("")}` : ""}spec:
  rootfs: busybox
  command: ["/bin/sh", "-c", "exec sleep 100000"]
  instances: ${instances}
  stopGracePeriodSeconds: 1
  resources: { cpu: 50m, memory: 16Mi, pids: 16 }
`;
}

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

describe("CLI essentials", () => {
  let cluster: HostCluster;
  let client: GroveClient;
  let env: NodeJS.ProcessEnv;
  let dir: string;

  /** Runs `grove` with `input` on its standard input. */
  const grove = (args: string[], input = "", extraEnv: NodeJS.ProcessEnv = {}): Promise<CliResult> =>
    new Promise((resolve) => {
      const started = performance.now();
      const p = spawn(process.execPath, [BIN.cli, ...args], { env: { ...env, ...extraEnv }, cwd: REPO_ROOT });
      let stdout = "";
      let stderr = "";
      p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      p.on("exit", (code) => resolve({ code, stdout, stderr, ms: performance.now() - started }));
      p.stdin.end(input);
    });

  beforeAll(async () => {
    dir = tempDir("grove-cli-essentials");
    cluster = await HostCluster.start({ hosts: 1 });
    const server = cluster.server!;
    client = new GroveClient({ server: server.url, token: server.adminToken, caPem: server.caPem });
    env = {
      PATH: process.env.PATH,
      HOME: dir,
      GROVE_SERVER: server.url,
      GROVE_TOKEN: server.adminToken,
      GROVE_CA: server.caFile,
      GROVE_CONFIG: "",
    };
    await waitFor("a Ready node", async () => (await client.list("Node")).items.some((n) => isReady(n)), 60_000);
  }, 180_000);

  const APPS = ["cli-web", "cli-idle", "cli-bad"];
  /** Applies Apps through the CLI, as the first test does (so diff compares like with like). */
  const applyApps = async (...manifests: string[]) => {
    for (const m of manifests) {
      const r = await grove(["apply", "-f", "-"], m);
      expect([r.code, r.stderr]).toEqual([0, ""]);
    }
  };
  const webManifest = () => manifest("cli-web", 1, { tier: "cli" });
  const idleManifest = () => manifest("cli-idle", 0);
  /** cli-web's instance runs and the App's status says so (no status write is still to come). */
  const webRunning = () =>
    waitFor("cli-web-0 to be Running and the App's status to count it", async () => {
      const items = (await client.list("Instance", { namespace: "default" })).items;
      const st = (await client.get("App", "cli-web", "default")).status;
      return (
        items.some((i) => i.spec.app === "cli-web" && i.status?.state === "Running") &&
        st?.running === 1 &&
        st.ready === 1 &&
        st.available === 1
      );
    });

  afterEach(async () => {
    for (const name of APPS) await client.delete("App", name, "default").catch(() => undefined);
    await waitFor(
      "the test's Apps and their instances to be gone",
      async () => {
        const apps = (await client.list("App", { namespace: "default" })).items;
        const instances = (await client.list("Instance", { namespace: "default" })).items;
        return (
          !apps.some((a) => APPS.includes(a.metadata.name)) && !instances.some((i) => APPS.includes(i.spec.app ?? ""))
        );
      },
      60_000,
    );
  }, 90_000);

  afterAll(async () => {
    await cluster?.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it("apply -f - --wait reads standard input and returns once the instance runs, following a watch", async () => {
    const server = cluster.server!;
    const logFrom = server.output.length;
    const r = await grove(["apply", "-f", "-", "--wait", "--timeout", "90s"], manifest("cli-web", 1, { tier: "cli" }));
    // What was asked of instances while the CLI waited (grove-server logs each request's URL).
    const urls = server.output
      .slice(logFrom)
      .map((l) => /"url":"(\/v1\/namespaces\/default\/instances[^"]*)"/.exec(l)?.[1])
      .filter((u): u is string => u !== undefined);
    // One list, then one watch from its revision: no polling.
    expect(urls).toEqual([
      "/v1/namespaces/default/instances?limit=500",
      expect.stringMatching(/^\/v1\/namespaces\/default\/instances\?watch=1&resourceVersion=[0-9]+$/),
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toBe("app/cli-web created");
    expect(lines[lines.length - 1]).toBe("app/cli-web: 1/1 running");
    // It returned because the instance runs, which the server confirms.
    const instances = await client.list("Instance", { namespace: "default" });
    expect(instances.items.filter((i) => i.spec.app === "cli-web" && i.status?.state === "Running")).toHaveLength(1);
  }, 120_000);

  it("a bad manifest on standard input is reported as <stdin>:line:col and nothing is created", async () => {
    const r = await grove(["apply", "-f", "-"], manifest("cli-bad", 1).replace("instances: 1", "instances: one"));
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe("error: invalid manifest: <stdin>:8:14: spec.instances: Expected integer");
    await expect(client.get("App", "cli-bad", "default")).rejects.toThrow(GroveError);
  }, 30_000);

  it("diff exits 0 for what is applied and 1, with the change, for what is not, writing nothing", async () => {
    await applyApps(webManifest());
    await webRunning();
    const same = await grove(["diff", "-f", "-"], manifest("cli-web", 1, { tier: "cli" }));
    expect([same.code, same.stdout, same.stderr]).toEqual([0, "", ""]);
    const before = await client.get("App", "cli-web", "default");
    const changed = await grove(["diff", "-f", "-"], manifest("cli-web", 3, { tier: "cli" }));
    expect(changed.code).toBe(1);
    expect(changed.stdout).toContain(
      `--- app/cli-web in namespace default (live, resourceVersion ${before.metadata.resourceVersion})`,
    );
    expect(changed.stdout).toMatch(/^-  instances: 1\n\+  instances: 3$/m);
    const after = await client.get("App", "cli-web", "default");
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
  }, 30_000);

  it("-o jsonpath, -o name and -l select and print what the server holds", async () => {
    await applyApps(webManifest(), idleManifest());
    await webRunning();
    const names = await grove(["get", "apps", "-o", "jsonpath={.items[*].metadata.name}"]);
    expect(names.code).toBe(0);
    expect(names.stdout.trim().split(" ").sort()).toEqual(["cli-idle", "cli-web"]);
    const labelled = await grove(["get", "apps", "-l", "tier=cli", "-o", "name"]);
    expect(labelled.code).toBe(0);
    expect(labelled.stdout).toBe("app/cli-web\n");
    const others = await grove(["get", "apps", "-l", "tier!=cli", "-o", "name"]);
    expect(others.stdout).toBe("app/cli-idle\n");
    const range = await grove([
      "get",
      "instances",
      "-o",
      'jsonpath={range .items[?(@.spec.app=="cli-web")]}{.metadata.name} {.status.state}{"\\n"}{end}',
    ]);
    expect(range.stdout).toBe("cli-web-0 Running\n");
  }, 30_000);

  it("a context with a token file reaches the server; grove version asks it", async () => {
    const server = cluster.server!;
    const tokenFile = path.join(dir, "admin.token");
    fs.writeFileSync(tokenFile, server.adminToken, { mode: 0o600 });
    const config = path.join(dir, "config.json");
    const noEnv = { GROVE_SERVER: "", GROVE_TOKEN: "", GROVE_CA: "", GROVE_CONFIG: config };
    const set = await grove(
      ["config", "set-context", "test", "--server", server.url, "--token-file", tokenFile, "--ca", server.caFile],
      "",
      noEnv,
    );
    expect(set.code).toBe(0);
    await applyApps(webManifest());
    const got = await grove(["get", "app", "cli-web", "-o", "name"], "", noEnv);
    expect([got.code, got.stdout, got.stderr]).toEqual([0, "app/cli-web\n", ""]);
    const v = await grove(["version"], "", noEnv);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^Client Version: \S+ \(node \S+\)\nServer Version: \S+/);
  }, 30_000);
});
