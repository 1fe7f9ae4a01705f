// The kubectl-style essentials: version, -o name / jsonpath, -l, apply -f -, diff, config contexts.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { GroveError } from "../errors";
import type { App } from "../schemas";
import type { Kind } from "../resource-kinds";
import { run } from "./main";
import type { CliClient, CliDeps } from "./deps";
import { app, FIXED_NOW } from "./render/testing";
import { clientVersion } from "./version";

class FakeClient {
  readonly apps = new Map<string, App>();
  readonly calls: string[] = [];
  /** Answer ?labelSelector= with 400, as a server that validates its query might. */
  refuseSelector = false;
  version: unknown = { version: "9.9.9", apiVersion: "grove/v1", node: "20.19.0" };

  async list(kind: Kind, options: { namespace?: string; labelSelector?: string }) {
    this.calls.push(`list ${kind} ${options.namespace}${options.labelSelector ? ` ${options.labelSelector}` : ""}`);
    if (options.labelSelector && this.refuseSelector) {
      throw new GroveError("BadRequest", "querystring must NOT have additional properties: labelSelector");
    }
    // Like today's server: the selector is ignored, every object comes back.
    return {
      apiVersion: "grove/v1",
      kind: "AppList",
      metadata: { resourceVersion: "7" },
      items: [...this.apps.values()],
    };
  }

  async get(kind: Kind, name: string) {
    this.calls.push(`get ${kind} ${name}`);
    const found = this.apps.get(name);
    if (!found) throw new GroveError("NotFound", `${kind} "${name}" not found`);
    return found;
  }

  async apply(object: App) {
    this.calls.push(`apply ${object.metadata.name}`);
    const created = !this.apps.has(object.metadata.name);
    this.apps.set(object.metadata.name, object);
    return { object, created };
  }

  readonly objects = new Map<string, unknown>();

  async call(method: string, p: string, body?: unknown) {
    this.calls.push(`${method} ${p}`);
    if (p.startsWith("/v1/namespaces/")) {
      if (method === "PUT") this.objects.set(p, body);
      if (!this.objects.has(p)) throw new GroveError("NotFound", `${p} not found`);
      return this.objects.get(p);
    }
    if (this.version === undefined) throw new GroveError("NotFound", "Route GET:/version not found");
    return this.version;
  }
}

const WEB = `apiVersion: grove/v1
kind: App
metadata:
  name: web
  labels: { tier: front }
spec:
  rootfs: busybox
  command: ["sleep", "1000"]
  instances: 2
`;

describe("grove CLI essentials", () => {
  let dir: string;
  let client: FakeClient;
  let out: string[];
  let err: string[];
  let stdin: string | undefined;
  let env: NodeJS.ProcessEnv;
  const deps = (): CliDeps => ({
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env,
    home: dir,
    makeClient: () => client as unknown as CliClient,
    now: () => FIXED_NOW,
    sleep: async () => undefined,
    ...(stdin !== undefined ? { stdin: Readable.from([Buffer.from(stdin)]) } : {}),
  });
  const grove = (...args: string[]) => run(args, deps());

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-cli-essentials-"));
    client = new FakeClient();
    out = [];
    err = [];
    stdin = undefined;
    env = { GROVE_SERVER: "http://127.0.0.1:7443", GROVE_TOKEN: "t" };
    client.apps.set("web", { ...app("web", 2), metadata: { ...app("web", 2).metadata, labels: { tier: "front" } } });
    client.apps.set("db", app("db", 1));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe("version", () => {
    it("prints the client's and the server's version", async () => {
      expect(await grove("version")).toBe(0);
      expect(out).toEqual([
        `Client Version: ${clientVersion()} (node ${process.versions.node})`,
        "Server Version: 9.9.9 (API grove/v1, node 20.19.0)",
      ]);
      expect(client.calls).toEqual(["GET /version"]);
    });

    it("says so when the server has no /version, and --client asks nothing", async () => {
      client.version = undefined;
      expect(await grove("version")).toBe(0);
      expect(out[1]).toBe("Server Version: unknown (the server does not serve /version: older than this client)");
      client.calls.length = 0;
      env = {};
      expect(await grove("version", "--client", "-o", "json")).toBe(0);
      expect(JSON.parse(out[2] as string)).toEqual({
        clientVersion: { version: clientVersion(), node: process.versions.node },
      });
      expect(client.calls).toEqual([]);
    });

    it("prints the client's version, then fails, when no server is configured", async () => {
      env = {};
      expect(await grove("version")).toBe(1);
      expect(out).toHaveLength(1);
      expect(err[0]).toMatch(/^error: no control plane configured/);
    });
  });

  describe("get -o and -l", () => {
    it("-o name prints kind/name per object", async () => {
      expect(await grove("get", "apps", "-o", "name")).toBe(0);
      expect(out).toEqual(["app/web", "app/db"]);
    });

    it("-o jsonpath applies the template to {items} of a list and to the object itself for one name", async () => {
      expect(await grove("get", "apps", "-o", "jsonpath={.items[*].metadata.name}")).toBe(0);
      expect(await grove("get", "app", "web", "-o", "jsonpath={.spec.instances}")).toBe(0);
      expect(out).toEqual(["web db", "2"]);
    });

    it("rejects an unknown format and a bad template before any request", async () => {
      expect(await grove("get", "apps", "-o", "xml")).toBe(1);
      expect(err.join("\n")).toMatch(/Allowed choices are table, wide, yaml, json, name, jsonpath=TEMPLATE/);
      expect(await grove("get", "apps", "-o", "jsonpath={.items[}")).toBe(1);
      expect(err.join("\n")).toMatch(/-o jsonpath: invalid expression/);
      expect(client.calls).toEqual([]);
    });

    it("-l sends labelSelector and filters what comes back", async () => {
      expect(await grove("get", "apps", "-l", "tier=front", "-o", "name")).toBe(0);
      expect(out).toEqual(["app/web"]);
      expect(client.calls).toEqual(["list App default tier=front"]);
    });

    it("-l filters here, and says so, when the server refuses labelSelector", async () => {
      client.refuseSelector = true;
      expect(await grove("get", "apps", "-l", "tier!=front", "-o", "name")).toBe(0);
      expect(out).toEqual(["app/db"]);
      expect(err).toEqual([
        "(the server refused ?labelSelector= (querystring must NOT have additional properties: labelSelector); filtering here instead)",
      ]);
      expect(client.calls).toEqual(["list App default tier!=front", "list App default"]);
    });

    it("-l rejects a selector it cannot read, sending nothing", async () => {
      expect(await grove("get", "apps", "-l", "tier in (a)")).toBe(1);
      expect(err[0]).toMatch(/^error: -l: "tier in \(a\)"/);
      expect(client.calls).toEqual([]);
    });
  });

  describe("apply -f -", () => {
    it("reads manifests from standard input", async () => {
      client.apps.clear();
      stdin = WEB;
      expect(await grove("apply", "-f", "-")).toBe(0);
      expect(out).toEqual(["app/web created"]);
    });

    it("applies Namespaces and Secrets to their own routes, validated first, printing no value", async () => {
      const manifests =
        "apiVersion: grove/v1\nkind: Namespace\nmetadata: {name: team-a}\nspec: {policy: baseline}\n---\n" +
        "apiVersion: grove/v1\nkind: Secret\nmetadata: {name: db, namespace: team-a}\ndata: {password: hunter2}\n";
      stdin = manifests;
      expect(await grove("apply", "-f", "-")).toBe(0);
      expect(out).toEqual(["namespace/team-a created", "secret/db created"]);
      expect(client.calls).toEqual([
        "GET /v1/namespaces/team-a",
        "PUT /v1/namespaces/team-a",
        "GET /v1/namespaces/team-a/secrets/db",
        "PUT /v1/namespaces/team-a/secrets/db",
      ]);
      expect(client.objects.get("/v1/namespaces/team-a/secrets/db")).toMatchObject({ data: { password: "hunter2" } });
      stdin = manifests;
      expect(await grove("apply", "-f", "-")).toBe(0);
      expect(out.slice(2)).toEqual(["namespace/team-a configured", "secret/db configured"]);
      client.calls.length = 0;
      stdin = manifests.replace("hunter2", '"hunter\\0002"');
      expect(await grove("apply", "-f", "-")).toBe(1);
      expect(err).toEqual([
        expect.stringMatching(/^error: invalid manifest: <stdin>:9:18: data\.password: holds a NUL/),
      ]);
      expect(client.calls).toEqual([]);
    });

    it("names <stdin> and the line of a problem, and sends nothing", async () => {
      stdin = WEB.replace("instances: 2", "instances: two");
      expect(await grove("apply", "-f", "-")).toBe(1);
      expect(err).toEqual(["error: invalid manifest: <stdin>:9:14: spec.instances: Expected integer"]);
      expect(client.calls).toEqual([]);
      stdin = "";
      expect(await grove("apply", "-f", "-")).toBe(1);
      expect(err[1]).toBe("error: invalid manifest: <stdin>: no manifests: standard input was empty");
    });
  });

  describe("diff", () => {
    it("exits 0 when apply would change nothing", async () => {
      client.apps.set("web", {
        ...(client.apps.get("web") as App),
        spec: { rootfs: "busybox", command: ["sleep", "1000"], instances: 2 },
      });
      stdin = WEB;
      expect(await grove("diff", "-f", "-")).toBe(0);
      expect(out).toEqual([]);
    });

    it("prints what would change and exits 1; a new object is all additions", async () => {
      const live = client.apps.get("web") as App;
      client.apps.set("web", {
        ...live,
        metadata: { ...live.metadata, resourceVersion: "5" },
        spec: { rootfs: "busybox", command: ["sleep", "1000"], instances: 2 },
      });
      stdin = `${WEB.replace("instances: 2", "instances: 3")}---\n${WEB.replace("name: web", "name: new")}`;
      expect(await grove("diff", "-f", "-")).toBe(1);
      expect(out.slice(0, 8)).toEqual([
        "--- app/web in namespace default (live, resourceVersion 5)",
        "+++ app/web in namespace default (manifest)",
        "@@",
        "   command:",
        "     - sleep",
        '     - "1000"',
        "-  instances: 2",
        "+  instances: 3",
      ]);
      expect(out).toContain("--- app/new in namespace default (absent)");
      expect(out.filter((l) => l.startsWith("+") && !l.startsWith("+++")).length).toBeGreaterThan(5);
      expect(client.calls.some((c) => c.startsWith("apply"))).toBe(false);
    });

    it("exits 2 on an error", async () => {
      stdin = "kind: [";
      expect(await grove("diff", "-f", "-")).toBe(2);
      expect(err[0]).toMatch(/^error: invalid manifest: <stdin>:1/);
    });
  });

  describe("config contexts", () => {
    it("keeps a single-server file's settings as context default when adding one, and switches", async () => {
      const file = path.join(dir, "config.json");
      fs.writeFileSync(file, JSON.stringify({ server: "http://old:1", token: "old-token" }));
      fs.writeFileSync(path.join(dir, "new.token"), "new-token");
      env = { GROVE_CONFIG: file };
      const tokenFile = path.join(dir, "new.token");
      expect(await grove("config", "set-context", "new", "--server", "http://new:2", "--token-file", tokenFile)).toBe(
        0,
      );
      expect(JSON.parse(fs.readFileSync(file, "utf8"))).toEqual({
        "current-context": "default",
        contexts: {
          default: { server: "http://old:1", token: "old-token" },
          new: { server: "http://new:2", tokenFile },
        },
      });
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      expect(await grove("config", "use-context", "new")).toBe(0);
      expect(await grove("config", "current-context")).toBe(0);
      expect(await grove("config", "get-contexts")).toBe(0);
      expect(out).toEqual([
        'Context "new" created.',
        'Switched to context "new".',
        "new",
        "CURRENT   NAME      SERVER         NAMESPACE",
        "          default   http://old:1",
        "*         new       http://new:2",
      ]);
      expect(err).toEqual([`(${file} had one server at the top; it is now context "default" in the contexts shape)`]);
    });

    it("refuses an unknown context and a bad server, changing nothing", async () => {
      const file = path.join(dir, "config.json");
      fs.writeFileSync(file, JSON.stringify({ server: "http://old:1", token: "t" }));
      env = { GROVE_CONFIG: file };
      expect(await grove("config", "use-context", "nope")).toBe(1);
      expect(await grove("config", "set-context", "x", "--server", "cp:7480")).toBe(1);
      expect(err).toEqual([
        `error: no context "nope" in ${file} (known: default)`,
        'error: --server: "cp:7480": only http:// and https:// are supported',
      ]);
      expect(JSON.parse(fs.readFileSync(file, "utf8"))).toEqual({ server: "http://old:1", token: "t" });
    });
  });
});
