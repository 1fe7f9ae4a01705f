// Namespaces as objects on a real grove-server with its embedded etcd (no
// agent: admission happens before anything is placed). Tenant tokens see only
// their namespace; quotas hold under parallel writes (one etcd transaction per
// admitted write); the restricted and baseline levels name each refused field;
// deleting a namespace refuses or cascades.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import { GroveClient, type App, type Namespace } from "@grove/api";
import { runCli, startServer, tempDir, waitFor, type ServerProcess } from "./harness/processes";

let dir: string;
let server: ServerProcess;
let admin: GroveClient;
const tokens: Record<string, string> = {};

interface Answer {
  status: number;
  body: { code?: string; message?: string; details?: Array<{ path: string; message: string }> } & Record<
    string,
    unknown
  >;
}

async function call(token: string, method: string, url: string, body?: unknown): Promise<Answer> {
  const res = await fetch(server.url + url, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Answer["body"]) : {} };
}

function app(ns: string, name: string, spec: Partial<App["spec"]> = {}): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, namespace: ns },
    spec: {
      rootfs: "busybox",
      command: ["/bin/sh", "-c", "sleep 600"],
      instances: 1,
      security: { userNamespace: true },
      ...spec,
    },
  };
}

function namespace(name: string, spec: Namespace["spec"]): Namespace {
  return { apiVersion: "grove/v1", kind: "Namespace", metadata: { name }, ...(spec ? { spec } : {}) };
}

const putApp = (token: string, a: App) =>
  call(token, "PUT", `/v1/namespaces/${a.metadata.namespace}/apps/${a.metadata.name}`, a);

beforeAll(async () => {
  dir = tempDir("grove-it-ns");
  server = await startServer({ dataDir: path.join(dir, "server") });
  admin = new GroveClient({ server: server.url, token: server.adminToken });
  for (const [name, spec] of [
    ["ns-quota", { policy: "privileged", quota: { cpu: "1", memory: "1Gi", instances: 3, hostPorts: 2 } }],
    ["ns-restricted", { hostPortRange: { first: 20000, last: 20009 } }],
    ["ns-baseline", { policy: "baseline" }],
    ["ns-other", {}],
  ] as const) {
    const r = await call(server.adminToken, "POST", "/v1/namespaces", namespace(name, spec as Namespace["spec"]));
    expect(r.status).toBe(201);
  }
  tokens.edit = (await admin.createToken("ns-editor", "edit", "ns-quota")).token!;
  tokens.view = (await admin.createToken("ns-viewer", "view", "ns-quota")).token!;
  tokens.nsadmin = (await admin.createToken("ns-nsadmin", "namespace-admin", "ns-quota")).token!;
}, 120_000);

afterAll(async () => {
  await server?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe("Namespace objects and tenant tokens", () => {
  test("a tenant reads (and lists) its own Namespace and nothing beyond it; only a cluster-admin writes Namespaces", async () => {
    for (const role of ["edit", "view", "nsadmin"]) {
      const own = await call(tokens[role]!, "GET", "/v1/namespaces/ns-quota");
      expect({ role, status: own.status }).toEqual({ role, status: 200 });
      expect((await call(tokens[role]!, "GET", "/v1/namespaces/ns-other")).status).toBe(403);
      const mine = await call(tokens[role]!, "GET", "/v1/namespaces");
      expect((mine.body.items as Namespace[]).map((n) => n.metadata.name)).toEqual(["ns-quota"]);
      expect((await call(tokens[role]!, "GET", "/v1/nodes")).status).toBe(403);
      expect((await call(tokens[role]!, "GET", "/v1/namespaces/ns-other/apps")).status).toBe(403);
      const raise = namespace("ns-quota", { policy: "privileged", quota: { instances: 1000 } });
      expect((await call(tokens[role]!, "PUT", "/v1/namespaces/ns-quota", raise)).status).toBe(403);
      expect((await call(tokens[role]!, "POST", "/v1/namespaces", namespace("ns-mine", {}))).status).toBe(403);
      expect((await call(tokens[role]!, "DELETE", "/v1/namespaces/ns-quota")).status).toBe(403);
    }
    const list = await call(server.adminToken, "GET", "/v1/namespaces");
    const names = (list.body.items as Namespace[]).map((n) => n.metadata.name);
    expect(names).toEqual(expect.arrayContaining(["ns-quota", "ns-restricted", "ns-baseline", "ns-other"]));
    const fresh = (list.body.items as Namespace[]).find((n) => n.metadata.name === "ns-other")!;
    expect(fresh.spec?.policy).toBe("restricted");
  });

  test("bad Namespace specs are refused naming the field", async () => {
    const bad = await call(server.adminToken, "PUT", "/v1/namespaces/ns-bad", {
      ...namespace("ns-bad", { hostPortRange: { first: 30000, last: 20000 } }),
    });
    expect(bad.status).toBe(400);
    expect(bad.body.details?.[0]?.path).toBe("/spec/hostPortRange/first");
    const level = await call(server.adminToken, "PUT", "/v1/namespaces/ns-bad", {
      ...namespace("ns-bad", {}),
      spec: { policy: "anything" },
    });
    expect(level.status).toBe(400);
    expect(level.body.details?.some((d) => d.path === "/spec/policy")).toBe(true);
    expect((await call(server.adminToken, "GET", "/v1/namespaces/ns-bad")).status).toBe(404);
  });
});

describe("quotas", () => {
  afterEach(async () => {
    for (const a of (await admin.list("App", { namespace: "ns-quota" })).items) {
      await admin.delete("App", a.metadata.name, "ns-quota");
    }
  });

  test("parallel applies that each fit but not together: exactly as many pass as the quota holds", async () => {
    // instances: 3, each App asks for 2: one fits, and a second never, however the writes interleave.
    const names = Array.from({ length: 12 }, (_, i) => `par-${i}`);
    await warmConnections(names.length);
    const answers = await Promise.all(names.map((n) => putApp(tokens.edit!, app("ns-quota", n, { instances: 2 }))));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([201, ...Array<number>(11).fill(403)]);
    for (const a of answers.filter((x) => x.status === 403)) {
      expect(a.body.code).toBe("QuotaExceeded");
      expect(a.body.message).toMatch(
        /quota instances exceeded: requested 2, used 2 by the rest of the namespace, limit 3/,
      );
    }
    const stored = (await admin.list("App", { namespace: "ns-quota" })).items;
    expect(stored.map((a) => a.spec.instances)).toEqual([2]);
  });

  test("parallel creates (POST) of 1 instance each fill the quota exactly", async () => {
    await warmConnections(6);
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        call(tokens.edit!, "POST", "/v1/namespaces/ns-quota/apps", app("ns-quota", `post-${i}`, { instances: 1 })),
      ),
    );
    expect(answers.filter((a) => a.status === 201)).toHaveLength(3);
    expect(answers.filter((a) => a.status === 403 && a.body.code === "QuotaExceeded")).toHaveLength(3);
    const ns = (await call(tokens.view!, "GET", "/v1/namespaces/ns-quota")).body as unknown as Namespace;
    expect(ns.status?.used).toMatchObject({ instances: 3, cpuMillis: 300 });
    expect(ns.status?.hard).toEqual({ cpuMillis: 1000, memoryBytes: 2 ** 30, instances: 3, hostPorts: 2 });
  });

  test("cpu, memory and host port quotas name the quota and the amounts; scaling down always passes", async () => {
    const cpu = await putApp(tokens.edit!, app("ns-quota", "big-cpu", { resources: { cpu: "1500m" } }));
    expect(cpu.status).toBe(403);
    expect(cpu.body.message).toMatch(
      /quota cpu exceeded: requested 1500m, used 0m by the rest of the namespace, limit 1000m/,
    );
    const mem = await putApp(
      tokens.edit!,
      app("ns-quota", "big-mem", { instances: 2, resources: { memory: "600Mi" } }),
    );
    expect(mem.body.message).toMatch(
      /quota memory exceeded: requested 1200Mi, used 0 by the rest of the namespace, limit 1Gi/,
    );
    const ports = [1, 2].map((i) => ({ name: `p${i}`, containerPort: 8000 + i }));
    const hp = await putApp(tokens.edit!, app("ns-quota", "ports", { instances: 2, ports }));
    expect(hp.body.message).toMatch(
      /quota hostPorts exceeded: requested 4, used 0 by the rest of the namespace, limit 2/,
    );
    expect((await admin.list("App", { namespace: "ns-quota" })).items).toEqual([]);

    expect((await putApp(tokens.edit!, app("ns-quota", "fits", { instances: 3 }))).status).toBe(201);
    // The operator lowers the quota below the usage: growing is refused, shrinking is not.
    const lowered = namespace("ns-quota", {
      policy: "privileged",
      quota: { cpu: "1", memory: "1Gi", instances: 1, hostPorts: 2 },
    });
    expect((await call(server.adminToken, "PUT", "/v1/namespaces/ns-quota", lowered)).status).toBe(200);
    try {
      expect((await putApp(tokens.edit!, app("ns-quota", "fits", { instances: 4 }))).status).toBe(403);
      expect((await putApp(tokens.edit!, app("ns-quota", "fits", { instances: 2 }))).status).toBe(200);
    } finally {
      const back = namespace("ns-quota", {
        policy: "privileged",
        quota: { cpu: "1", memory: "1Gi", instances: 3, hostPorts: 2 },
      });
      expect((await call(server.adminToken, "PUT", "/v1/namespaces/ns-quota", back)).status).toBe(200);
    }
  });

  test("a Task counts one instance while it has not finished", async () => {
    expect((await putApp(tokens.edit!, app("ns-quota", "two", { instances: 3 }))).status).toBe(201);
    const task = {
      apiVersion: "grove/v1",
      kind: "Task",
      metadata: { name: "once", namespace: "ns-quota" },
      spec: { rootfs: "busybox", command: ["true"] },
    };
    const r = await call(tokens.edit!, "PUT", "/v1/namespaces/ns-quota/tasks/once", task);
    expect(r.status).toBe(403);
    expect(r.body.message).toMatch(/quota instances exceeded: requested 1, used 3/);
  });
});

describe("admission policy", () => {
  const refused = async (ns: string, spec: Partial<App["spec"]>, pointer: string) => {
    const r = await putApp(server.adminToken, app(ns, "probe", spec));
    expect({ status: r.status, code: r.body.code }).toEqual({ status: 422, code: "AdmissionDenied" });
    expect(r.body.details?.map((d) => d.path)).toContain(pointer);
    expect((await call(server.adminToken, "GET", `/v1/namespaces/${ns}/apps/probe`)).status).toBe(404);
  };

  test("restricted: each refusal names its field and nothing is written", async () => {
    await refused(
      "ns-restricted",
      { security: { userNamespace: true, capabilities: { add: ["NET_ADMIN"] } } },
      "/spec/security/capabilities/add/0",
    );
    await refused(
      "ns-restricted",
      { security: { userNamespace: true, seccomp: "unconfined" } },
      "/spec/security/seccomp",
    );
    await refused("ns-restricted", { security: {} }, "/spec/security/userNamespace");
    await refused(
      "ns-restricted",
      { security: { userNamespace: { hostUid: 100000, hostGid: 100000 } } },
      "/spec/security/userNamespace",
    );
    await refused("ns-restricted", { rootfs: undefined, command: undefined, image: "oci:/var/lib/x:1" }, "/spec/image");
    await refused(
      "ns-restricted",
      { ports: [{ name: "w", containerPort: 80, hostPort: 20010 }] },
      "/spec/ports/0/hostPort",
    );
    // A Task is held to the same rules.
    const task = {
      apiVersion: "grove/v1",
      kind: "Task",
      metadata: { name: "t", namespace: "ns-restricted" },
      spec: { rootfs: "busybox", command: ["true"], security: { seccomp: "unconfined", userNamespace: true } },
    };
    const t = await call(server.adminToken, "PUT", "/v1/namespaces/ns-restricted/tasks/t", task);
    expect(t.status).toBe(422);
    expect(t.body.details?.map((d) => d.path)).toEqual(["/spec/security/seccomp"]);
  });

  test("restricted admits what follows the rules; baseline and implicit namespaces are looser", async () => {
    const ok = app("ns-restricted", "fine", {
      security: { userNamespace: true, capabilities: { add: ["NET_BIND_SERVICE"] } },
      ports: [{ name: "w", containerPort: 80, hostPort: 20005 }],
    });
    expect((await putApp(server.adminToken, ok)).status).toBe(201);
    const base = app("ns-baseline", "raw", { security: { capabilities: { add: ["NET_RAW"] } } });
    expect((await putApp(server.adminToken, base)).status).toBe(201);
    await refused(
      "ns-baseline",
      { security: { capabilities: { add: ["SYS_ADMIN"] } } },
      "/spec/security/capabilities/add/0",
    );
    // A namespace without an object keeps the behaviour it had before Namespaces existed.
    const implicit = app("ns-implicit", "loose", { security: { seccomp: "unconfined" } });
    expect((await putApp(server.adminToken, implicit)).status).toBe(201);
    for (const [ns, name] of [
      ["ns-restricted", "fine"],
      ["ns-baseline", "raw"],
      ["ns-implicit", "loose"],
    ] as const) {
      await admin.delete("App", name, ns);
    }
  });

  test("restricted: exec as another user than the App's is refused before any upgrade", async () => {
    expect((await putApp(server.adminToken, app("ns-restricted", "sh"))).status).toBe(201);
    try {
      // The controller makes the instance object (Pending: no node) without an agent.
      const deadline = performance.now() + 30_000;
      while ((await admin.list("Instance", { namespace: "ns-restricted" })).items.length === 0) {
        if (performance.now() > deadline) throw new Error("no instance of ns-restricted/sh");
        await new Promise((r) => setTimeout(r, 100));
      }
      const outcome = await rawUpgrade("/v1/namespaces/ns-restricted/instances/sh-0/exec?command=id&user=root");
      expect(outcome).toBe("403");
    } finally {
      await admin.delete("App", "sh", "ns-restricted");
    }
  });
});

describe("quotas enforced by the scheduler", () => {
  // No agent: every instance stays Pending. Without the scheduler's own check
  // each would say Unschedulable (no node fits) whatever its namespace's quota.
  const instancesOf = async (ns: string, appName: string) =>
    (await admin.list("Instance", { namespace: ns })).items.filter(
      (i) => i.spec.app === appName && !["Exited", "Failed", "Succeeded"].includes(i.status?.state ?? ""),
    );
  const reasons = async (ns: string, appName: string) =>
    (await instancesOf(ns, appName)).map((i) => `${i.status?.reason}: ${i.status?.message ?? ""}`).sort();

  test("after the quota is lowered, instances beyond it stay Pending with the quota named", async () => {
    const spec = { policy: "privileged" as const, quota: { instances: 3 } };
    expect((await call(server.adminToken, "POST", "/v1/namespaces", namespace("ns-low", spec))).status).toBe(201);
    expect((await putApp(server.adminToken, app("ns-low", "low", { instances: 3 }))).status).toBe(201);
    await waitFor("3 instances looked at by the scheduler", async () => {
      const r = await reasons("ns-low", "low");
      return r.length === 3 && r.every((x) => x.startsWith("Unschedulable"));
    });
    const lowered = namespace("ns-low", { ...spec, quota: { instances: 1 } });
    expect((await call(server.adminToken, "PUT", "/v1/namespaces/ns-low", lowered)).status).toBe(200);
    const r = await waitFor("2 instances held by the quota", async () => {
      const now = await reasons("ns-low", "low");
      return now.filter((x) => x.startsWith("QuotaExceeded")).length === 2 ? now : undefined;
    });
    expect(r[0]).toMatch(
      /^QuotaExceeded: low-\d would exceed the quota of namespace ns-low: quota instances exceeded: requested 1, used 1 by the rest of the namespace, limit 1$/,
    );
    expect(r[2]).toMatch(/^Unschedulable/);
  });

  test("rollout undo to a template with more ports than the quota has room for stays Pending", async () => {
    const spec = { policy: "privileged" as const, quota: { hostPorts: 2 } };
    expect((await call(server.adminToken, "POST", "/v1/namespaces", namespace("ns-undo", spec))).status).toBe(201);
    const two = [
      { name: "a", containerPort: 80 },
      { name: "b", containerPort: 81 },
    ];
    expect((await putApp(server.adminToken, app("ns-undo", "u", { ports: two }))).status).toBe(201);
    // v2 publishes nothing, which frees the namespace's host ports for w.
    expect((await putApp(server.adminToken, app("ns-undo", "u", { ports: [], env: { V: "2" } }))).status).toBe(200);
    await waitFor("u's revision 2", async () => {
      const h = await call(server.adminToken, "GET", "/v1/namespaces/ns-undo/apps/u/revisions");
      return (h.body.items as unknown[] | undefined)?.length === 2;
    });
    expect((await putApp(server.adminToken, app("ns-undo", "w", { ports: [two[0]!] }))).status).toBe(201);
    await waitFor("w looked at by the scheduler", async () =>
      (await reasons("ns-undo", "w"))[0]?.startsWith("Unschedulable"),
    );
    const undo = await call(server.adminToken, "POST", "/v1/namespaces/ns-undo/apps/u/rollout/undo", {});
    expect(undo.status).toBe(200);
    const r = await waitFor("u's instance held by the quota", async () => {
      const now = await instancesOf("ns-undo", "u");
      const back = now.filter((i) => (i.spec.ports?.length ?? 0) === 2);
      return back.length === 1 && back[0]!.status?.reason === "QuotaExceeded" ? back[0] : undefined;
    });
    expect(r.status?.message).toMatch(
      /quota hostPorts exceeded: requested 2, used 1 by the rest of the namespace, limit 2/,
    );
    expect(await reasons("ns-undo", "w")).toEqual([expect.stringMatching(/^Unschedulable/)]);
  });
});

describe("image pull secrets belong to namespaces", () => {
  const pulling = (ns: string, name: string, secret: string) =>
    app(ns, name, { rootfs: undefined, image: "127.0.0.1:5000/team/web:1", imagePullSecret: secret } as never);

  test("an App names only its namespace's pull secrets; a secret has one owner; refusals name the field", async () => {
    const ns = (name: string, pullSecrets?: string[]) =>
      namespace(name, { policy: "baseline", ...(pullSecrets ? { pullSecrets } : {}) });
    expect((await call(server.adminToken, "POST", "/v1/namespaces", ns("ns-pull-a", ["reg-a"]))).status).toBe(201);
    expect((await call(server.adminToken, "POST", "/v1/namespaces", ns("ns-pull-b"))).status).toBe(201);
    expect((await putApp(server.adminToken, pulling("ns-pull-a", "web", "reg-a"))).status).toBe(201);

    const other = await putApp(server.adminToken, pulling("ns-pull-b", "web", "reg-a"));
    expect(other.status).toBe(422);
    expect(other.body).toMatchObject({
      code: "AdmissionDenied",
      details: [
        { path: "/spec/imagePullSecret", message: expect.stringMatching(/does not belong to namespace ns-pull-b/) },
      ],
    });
    // A namespace without an object may not name a secret a Namespace owns either.
    const implicit = await putApp(server.adminToken, pulling("ns-pull-none", "web", "reg-a"));
    expect(implicit.status).toBe(422);
    expect(implicit.body.details).toEqual([
      { path: "/spec/imagePullSecret", message: "pull secret reg-a belongs to namespace ns-pull-a" },
    ]);
    for (const where of ["ns-pull-b", "ns-pull-none"]) {
      expect((await call(server.adminToken, "GET", `/v1/namespaces/${where}/apps/web`)).status).toBe(404);
    }
    // Another Namespace cannot claim it.
    const claim = await call(server.adminToken, "PUT", "/v1/namespaces/ns-pull-b", ns("ns-pull-b", ["reg-a"]));
    expect(claim.status).toBe(400);
    expect(claim.body.details).toEqual([{ path: "/spec/pullSecrets/0", message: "belongs to namespace ns-pull-a" }]);
    // A secret no Namespace owns stays usable where there is no object (as before).
    expect((await putApp(server.adminToken, pulling("ns-pull-none", "web", "reg-free"))).status).toBe(201);
  });
});

describe("deleting a Namespace", () => {
  test("refuses while it holds objects, naming them; ?cascade=true deletes them and its tokens", async () => {
    const r = await call(server.adminToken, "POST", "/v1/namespaces", namespace("ns-gone", { policy: "baseline" }));
    expect(r.status).toBe(201);
    expect((await putApp(server.adminToken, app("ns-gone", "a1", { instances: 0 }))).status).toBe(201);
    const t = (await admin.createToken("ns-gone-edit", "edit", "ns-gone")).token!;
    const refusedDelete = await call(server.adminToken, "DELETE", "/v1/namespaces/ns-gone");
    expect(refusedDelete.status).toBe(409);
    expect(refusedDelete.body.message).toMatch(/not empty \(1 apps, 1 tokens\)/);
    expect((await call(server.adminToken, "DELETE", "/v1/namespaces/ns-gone?cascade=true")).status).toBe(200);
    expect((await call(server.adminToken, "GET", "/v1/namespaces/ns-gone")).status).toBe(404);
    expect((await admin.list("App", { namespace: "ns-gone" })).items).toEqual([]);
    // The namespace's tokens went with it (servers re-read tokens within 2 s).
    const deadline = performance.now() + 10_000;
    while ((await call(t, "GET", "/v1/namespaces/ns-gone/apps")).status !== 401) {
      if (performance.now() > deadline) throw new Error("the deleted namespace's token still works");
      await new Promise((res) => setTimeout(res, 200));
    }
  });
});

describe("CLI", () => {
  test("grove create namespace, grove describe namespace shows quota and usage", async () => {
    const env = { GROVE_SERVER: server.url, GROVE_TOKEN: server.adminToken, HOME: dir, GROVE_CONFIG: "" };
    const made = await runCli(
      ["create", "namespace", "ns-cli", "--policy", "baseline", "--quota", "cpu=2,memory=1Gi,instances=4"],
      env,
    );
    expect(made).toMatchObject({ code: 0 });
    expect(
      (await putApp(server.adminToken, app("ns-cli", "w", { instances: 2, resources: { cpu: "250m" } }))).status,
    ).toBe(201);
    const d = await runCli(["describe", "namespace", "ns-cli"], env);
    expect(d.code).toBe(0);
    expect(d.stdout).toMatch(/Policy:\s+baseline/);
    expect(d.stdout).toMatch(/cpu\s+500m\s+2000m/);
    expect(d.stdout).toMatch(/instances\s+2\s+4/);
    const list = await runCli(["get", "namespaces"], env);
    expect(list.stdout).toMatch(/ns-cli\s+baseline/);
    const bad = await runCli(["create", "namespace", "ns-cli2", "--quota", "gpus=1"], env);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--quota: unknown quota "gpus"/);
  });
});

/**
 * Opens n keep-alive connections first: TLS handshakes are CPU-bound on the
 * server's one thread and would otherwise space the writes out so far that
 * they never overlap (the race a quota must win would not be run).
 */
async function warmConnections(n: number): Promise<void> {
  await Promise.all(Array.from({ length: n }, () => call(tokens.edit!, "GET", "/v1/namespaces/ns-quota")));
}

function rawUpgrade(pathAndQuery: string): Promise<string> {
  const u = new URL(server.url + pathAndQuery);
  return new Promise<string>((resolve, reject) => {
    const req = https.request({
      host: u.hostname,
      port: u.port,
      ca: server.caPem,
      path: u.pathname + u.search,
      headers: {
        authorization: `Bearer ${server.adminToken}`,
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": randomBytes(16).toString("base64"),
      },
    });
    req.on("upgrade", (_res, socket) => {
      socket.destroy();
      resolve("upgraded");
    });
    req.on("response", (res) => {
      res.resume();
      resolve(String(res.statusCode));
    });
    req.on("error", reject);
    req.end();
  });
}
