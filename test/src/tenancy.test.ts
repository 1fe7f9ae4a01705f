// Multi-tenant API on real components: grove-server with its embedded etcd,
// a real grove-agent running instances on this kernel. Tokens bound to roles
// (a role x verb x route matrix), Secrets encrypted at rest and delivered only
// into the instance's environment, key rotation, and the audit trail.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import { GroveClient, type App, type Instance } from "@grove/api";
import {
  BIN,
  etcdctlTlsArgs,
  runCli,
  waitFor,
  waitNodeReady,
  type ServerProcess,
  type Started,
} from "./harness/processes";
import { startMachine, type TestMachine } from "./harness/machine";
import { RUN_TAG } from "./harness/run-id";

const NODE = "it-tenancy-1";
const CGROUP_PARENT = `grove-it-tenancy-${RUN_TAG}`;
const WATCH_LIMIT = 3;
const SECRET_VALUE = `s3cr3t-${randomBytes(12).toString("hex")}`;

function app(ns: string, name: string, spec: Partial<App["spec"]> = {}): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, namespace: ns },
    spec: {
      rootfs: "busybox",
      command: ["/bin/sh", "-c", "sleep 600"],
      instances: 1,
      stopGracePeriodSeconds: 1,
      ...spec,
    },
  };
}

interface Answer {
  status: number;
  text: string;
}

let dir: string;
let m: TestMachine;
let server: ServerProcess;
let agent: Started;
let admin: GroveClient;
let etcdEndpoint: string;
const tokens: Record<string, string> = {};

async function call(token: string | undefined, method: string, url: string, body?: unknown): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const ctl = new AbortController();
  const res = await fetch(server.url + url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: ctl.signal,
  });
  // An accepted watch would not end: its status is what is asked.
  if (url.includes("watch=1") && res.ok) {
    ctl.abort();
    return { status: res.status, text: "" };
  }
  return { status: res.status, text: await res.text() };
}

function etcdGet(key: string, prefix = false): string {
  const args = [...etcdctlTlsArgs(server), "--endpoints", etcdEndpoint, "get", key, ...(prefix ? ["--prefix"] : [])];
  return execFileSync("etcdctl", args, {
    env: { ...process.env, ETCDCTL_API: "3" },
  }).toString();
}

function auditLines(): Array<Record<string, unknown>> {
  return fs
    .readFileSync(path.join(server.dataDir, "audit.log"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function instanceOf(ns: string, appName: string): Promise<Instance | undefined> {
  return (await admin.list("Instance", { namespace: ns })).items.find((i) => i.spec.app === appName);
}

async function running(ns: string, appName: string): Promise<Instance> {
  return waitFor(
    `${ns}/${appName} to run`,
    async () => {
      const i = await instanceOf(ns, appName);
      return i?.status?.state === "Running" ? i : undefined;
    },
    60_000,
  );
}

beforeAll(async () => {
  m = await startMachine("grove-it-tenancy", {
    extraArgs: ["--identity-limits", `watches=${WATCH_LIMIT}`],
  });
  ({ dir, server } = m);
  const up = server.output
    .map((l) => {
      try {
        return JSON.parse(l) as { msg?: string; endpoints?: string[] };
      } catch {
        return {};
      }
    })
    .find((l) => l.msg === "embedded etcd is up");
  etcdEndpoint = up!.endpoints![0]!;
  agent = await m.startAgent({
    nodeName: NODE,
    cgroupParent: CGROUP_PARENT,
  });
  admin = new GroveClient({ server: server.url, token: server.adminToken });
  await waitNodeReady(admin, NODE);

  // Tokens: one through the CLI (shown once on stdout), the others through the API.
  const env = m.env;
  const cli = await runCli(["create", "token", "alice", "--namespace", "team-a", "--role", "edit"], env);
  expect(cli).toMatchObject({ code: 0 });
  tokens.edit = cli.stdout.trim();
  expect(tokens.edit).toMatch(/^grove_/);
  tokens["namespace-admin"] = (await admin.createToken("nadmin", "namespace-admin", "team-a")).token!;
  tokens.view = (await admin.createToken("viewer", "view", "team-a")).token!;
  tokens["cluster-admin"] = (await admin.createToken("ops", "cluster-admin")).token!;

  // A Secret in team-a and an App per team; a1 takes its PASSWORD from the Secret.
  const put = await call(server.adminToken, "PUT", "/v1/namespaces/team-a/secrets/db", {
    apiVersion: "grove/v1",
    kind: "Secret",
    metadata: { name: "db" },
    data: { password: SECRET_VALUE },
  });
  expect(put.status).toBe(201);
  await admin.apply(
    app("team-a", "a1", {
      env: { PLAIN: "x", PASSWORD: { valueFrom: { secretKeyRef: { name: "db", key: "password" } } } },
    }),
  );
  await admin.apply(app("team-b", "b1"));
  await running("team-a", "a1");
  await running("team-b", "b1");
}, 180_000);

afterAll(async () => {
  await agent?.stop();
  await server?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const ROLES = ["cluster-admin", "namespace-admin", "edit", "view"] as const;
type Row = [
  method: string,
  url: string,
  expected: [number | null, number, number, number],
  body?: (role: string) => unknown,
];
const A = 200;
const D = 403;
const appBody = (ns: string, name: string) => () => app(ns, name, { instances: 0 });

// Each row: the status each role gets (null: not asked of that role).
const MATRIX: Row[] = [
  ["GET", "/v1/namespaces/team-a/apps", [A, A, A, A]],
  ["GET", "/v1/namespaces/team-a/apps?watch=1", [A, A, A, A]],
  ["GET", "/v1/namespaces/team-a/apps/a1", [A, A, A, A]],
  ["GET", "/v1/namespaces/team-a/apps/a1/endpoints", [A, A, A, A]],
  ["PUT", "/v1/namespaces/team-a/apps/m", [201, 201, 201, D], appBody("team-a", "m")],
  ["DELETE", "/v1/namespaces/team-a/apps/d", [A, A, A, D]],
  ["POST", "/v1/namespaces/team-a/apps", [201, 201, 201, D], appBody("team-a", "n")],
  ["GET", "/v1/namespaces/team-a/instances", [A, A, A, A]],
  ["GET", "/v1/namespaces/team-b/apps", [A, D, D, D]],
  ["GET", "/v1/namespaces/team-b/apps/b1", [A, D, D, D]],
  ["PUT", "/v1/namespaces/team-b/apps/b1", [null, D, D, D], appBody("team-b", "b1")],
  ["DELETE", "/v1/namespaces/team-b/apps/b1", [null, D, D, D]],
  ["GET", "/v1/namespaces/team-b/instances?watch=1", [A, D, D, D]],
  ["GET", "/v1/apps", [A, D, D, D]],
  ["GET", "/v1/instances?watch=1", [A, D, D, D]],
  ["GET", "/v1/nodes", [A, D, D, D]],
  ["GET", `/v1/nodes/${NODE}`, [A, D, D, D]],
  ["PUT", `/v1/nodes/${NODE}`, [null, D, D, D], () => ({})],
  ["DELETE", `/v1/nodes/${NODE}`, [null, D, D, D]],
  ["GET", "/v1/capacity", [A, D, D, D]],
  ["POST", "/v1/plan", [A, D, D, D], () => ({ items: [] })],
  ["GET", "/v1/stats", [A, D, D, D]],
  ["GET", "/v1/stats?namespace=team-a", [A, A, A, A]],
  ["GET", "/v1/stats?namespace=team-b", [A, D, D, D]],
  ["GET", "/v1/namespaces/team-a/instances/a1-0/logs", [A, A, A, D]],
  ["GET", "/v1/namespaces/team-a/instances/a1-0/stats", [A, A, A, A]],
  ["GET", "/v1/namespaces/team-b/instances/b1-0/logs", [A, D, D, D]],
  ["GET", "/v1/namespaces/team-b/instances/b1-0/stats", [A, D, D, D]],
  ["GET", "/v1/namespaces/team-a/secrets", [A, A, A, A]],
  ["GET", "/v1/namespaces/team-a/secrets/db", [A, A, A, A]],
  ["GET", "/v1/namespaces/team-b/secrets", [A, D, D, D]],
  ["GET", "/v1/secrets", [A, D, D, D]],
  ["GET", "/v1/namespaces/team-a/tokens", [A, A, D, D]],
  ["POST", "/v1/namespaces/team-a/tokens", [201, 201, D, D], (r) => ({ name: `made-by-${r}`, role: "view" })],
  // Not an escalation path: a namespaced route never makes a cluster-admin token (400 for whoever may make tokens).
  ["POST", "/v1/namespaces/team-a/tokens", [null, 400, D, D], () => ({ name: "escalate", role: "cluster-admin" })],
  ["GET", "/v1/tokens", [A, D, D, D]],
  ["POST", "/v1/tokens", [201, D, D, D], (r) => ({ name: `ca-by-${r}`, role: "cluster-admin" })],
];

describe("role x verb x route", () => {
  test.each(
    MATRIX.flatMap(([method, url, expected, body]) =>
      ROLES.map((role, k) => ({ role, method, url, want: expected[k], body })).filter((c) => c.want !== null),
    ),
  )("$role: $method $url -> $want", async ({ role, method, url, want, body }) => {
    // Each role writes its own object so the rows do not depend on one another's order.
    let u = url;
    let b = body?.(role);
    if (u.endsWith("/apps/m")) {
      u = `${u}-${role}`;
      b = app("team-a", `m-${role}`, { instances: 0 });
    }
    if (u.endsWith("/apps/d")) {
      u = `${u}-${role}`;
      await admin.apply(app("team-a", `d-${role}`, { instances: 0 }));
    }
    if (u.endsWith("/apps") && method === "POST") b = app("team-a", `n-${role}`, { instances: 0 });
    const res = await call(tokens[role], method, u, b);
    expect({ status: res.status, body: res.status === want ? "" : res.text }).toEqual({ status: want, body: "" });
    if (want === D) expect(JSON.parse(res.text)).toMatchObject({ code: "Forbidden" });
  });

  test("no token or a wrong one is 401, a revoked one stops working", async () => {
    expect((await call(undefined, "GET", "/v1/namespaces/team-a/apps")).status).toBe(401);
    expect((await call("grove_nope", "GET", "/v1/namespaces/team-a/apps")).status).toBe(401);
    const t = (await admin.createToken("short-lived", "view", "team-a")).token!;
    expect((await call(t, "GET", "/v1/namespaces/team-a/apps")).status).toBe(200);
    expect((await call(server.adminToken, "DELETE", "/v1/namespaces/team-a/tokens/short-lived")).status).toBe(200);
    await waitFor(
      "the revoked token to be refused",
      async () => (await call(t, "GET", "/v1/namespaces/team-a/apps")).status === 401,
      10_000,
    );
  });

  test("exec on a team-b instance with a team-a token is refused before any upgrade", async () => {
    const u = new URL(`${server.url}/v1/namespaces/team-b/instances/b1-0/exec?command=id`);
    const outcome = await new Promise<string>((resolve, reject) => {
      const req = https.request({
        host: u.hostname,
        port: u.port,
        ca: server.caPem,
        path: u.pathname + u.search,
        headers: {
          authorization: `Bearer ${tokens.edit}`,
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
    expect(outcome).toBe("403");
  });
});

describe("Secrets", () => {
  test("the raw etcd value is ciphertext naming its key id; the value is nowhere but the instance's env", async () => {
    const raw = etcdGet("/grove/secrets/team-a/db");
    expect(raw).not.toContain(SECRET_VALUE);
    expect(raw).not.toContain("password");
    const stored = JSON.parse(raw.split("\n")[1]!) as { encrypted: { keyId: string; alg: string; ciphertext: string } };
    const keys = JSON.parse(fs.readFileSync(path.join(server.dataDir, "encryption-keys.json"), "utf8")) as {
      primary: string;
    };
    expect(stored.encrypted).toMatchObject({ alg: "AES-256-GCM", keyId: keys.primary });
    expect(fs.statSync(path.join(server.dataDir, "encryption-keys.json")).mode & 0o777).toBe(0o600);

    // The instance's process has it in its environment.
    const inst = await running("team-a", "a1");
    const environ = fs.readFileSync(`/proc/${inst.status!.pid}/environ`, "utf8").split("\0");
    expect(environ).toContain(`PASSWORD=${SECRET_VALUE}`);

    // Nowhere else: not in etcd at all, not in Apps or Instances, not in any log line or audit record.
    expect(etcdGet("/grove/", true)).not.toContain(SECRET_VALUE);
    const objects = JSON.stringify([
      await admin.list("App", { allNamespaces: true }),
      await admin.list("Instance", { allNamespaces: true }),
    ]);
    expect(objects).toContain("secretKeyRef");
    expect(objects).not.toContain(SECRET_VALUE);
    expect(server.output.join("\n")).not.toContain(SECRET_VALUE);
    expect(agent.output.join("\n")).not.toContain(SECRET_VALUE);
    expect(fs.readFileSync(path.join(server.dataDir, "audit.log"), "utf8")).not.toContain(SECRET_VALUE);
  });

  test("lists show keys only; a get shows values to edit but not to view", async () => {
    const list = await call(tokens.view, "GET", "/v1/namespaces/team-a/secrets");
    expect(list.text).not.toContain(SECRET_VALUE);
    // Other tests add Secrets to team-a too (any order): look for this one by name.
    const items = JSON.parse(list.text).items as { metadata: { name: string } }[];
    expect(items.find((i) => i.metadata.name === "db")).toMatchObject({ metadata: { name: "db" }, keys: ["password"] });
    const asView = await call(tokens.view, "GET", "/v1/namespaces/team-a/secrets/db");
    expect(asView.text).not.toContain(SECRET_VALUE);
    const asEdit = JSON.parse((await call(tokens.edit, "GET", "/v1/namespaces/team-a/secrets/db")).text);
    expect(asEdit.data).toEqual({ password: SECRET_VALUE });
  });

  test("an App naming a missing Secret stays Pending with the Secret named", async () => {
    await admin.apply(app("team-a", "a2", { env: { X: { valueFrom: { secretKeyRef: { name: "nope", key: "k" } } } } }));
    const inst = await waitFor("a2 to say its Secret is missing", async () => {
      const i = await instanceOf("team-a", "a2");
      return i?.status?.reason === "SecretMissing" ? i : undefined;
    });
    expect(inst.status).toMatchObject({ state: "Pending" });
    expect(inst.status!.message).toContain("team-a/nope");
    await admin.delete("App", "a2", "team-a");
  });

  test("after rotate-encryption-key old and new Secrets read back and etcd holds them under the new key", async () => {
    const secret = (name: string, v: string) => ({
      apiVersion: "grove/v1",
      kind: "Secret",
      metadata: { name },
      data: { v },
    });
    expect(
      (await call(server.adminToken, "PUT", "/v1/namespaces/team-a/secrets/old", secret("old", "old-value"))).status,
    ).toBe(201);
    const before = JSON.parse(etcdGet("/grove/secrets/team-a/old").split("\n")[1]!).encrypted.keyId as string;
    const out = execFileSync(process.execPath, [
      BIN.server,
      "rotate-encryption-key",
      "--data-dir",
      server.dataDir,
      "--etcd-endpoints",
      etcdEndpoint,
    ]).toString();
    expect(out).toMatch(/new primary key (\S+); re-encrypted \d+ Secret/);
    const after = JSON.parse(etcdGet("/grove/secrets/team-a/old").split("\n")[1]!).encrypted.keyId as string;
    expect(after).not.toBe(before);
    expect(out).toContain(after);
    expect(JSON.parse(etcdGet("/grove/secrets/team-a/db").split("\n")[1]!).encrypted.keyId).toBe(after);
    expect(
      (await call(server.adminToken, "PUT", "/v1/namespaces/team-a/secrets/new", secret("new", "new-value"))).status,
    ).toBe(201);
    expect(JSON.parse(etcdGet("/grove/secrets/team-a/new").split("\n")[1]!).encrypted.keyId).toBe(after);
    for (const [name, v] of [
      ["old", "old-value"],
      ["new", "new-value"],
      ["db", SECRET_VALUE],
    ] as const) {
      const got = JSON.parse((await call(server.adminToken, "GET", `/v1/namespaces/team-a/secrets/${name}`)).text);
      expect(got.data).toEqual(name === "db" ? { password: v } : { v });
    }
  });
});

describe("audit", () => {
  test("one record per accepted mutation and per refused attempt, metadata only, file 0600", async () => {
    const t = (await admin.createToken("auditor", "edit", "team-a")).token!;
    const mine = () => auditLines().filter((r) => r.user === "auditor");
    const anonymousBefore = auditLines().filter((r) => r.code === 401).length;
    const accepted = [
      await call(t, "PUT", "/v1/namespaces/team-a/apps/au", app("team-a", "au", { instances: 0 })),
      await call(t, "PUT", "/v1/namespaces/team-a/secrets/au", {
        apiVersion: "grove/v1",
        kind: "Secret",
        metadata: { name: "au" },
        data: { k: SECRET_VALUE },
      }),
      await call(t, "DELETE", "/v1/namespaces/team-a/apps/au"),
      await call(t, "GET", "/v1/namespaces/team-a/instances/a1-0/logs"),
    ];
    expect(accepted.map((a) => a.status)).toEqual([201, 201, 200, 200]);
    // An exec session: recorded when it ends, without its command.
    const session = await new GroveClient({ server: server.url, token: t }).exec("a1-0", "team-a", {
      command: ["/bin/echo", "exec-marker-7f3"],
    });
    let out = "";
    session.onStdout((d) => (out += d.toString()));
    expect(await session.exited).toMatchObject({ exitCode: 0 });
    session.close();
    expect(out).toContain("exec-marker-7f3");
    // Reads are not audited.
    expect((await call(t, "GET", "/v1/namespaces/team-a/apps")).status).toBe(200);
    const refused = [
      await call(t, "PUT", "/v1/namespaces/team-b/apps/x", app("team-b", "x", { instances: 0 })),
      await call(t, "GET", "/v1/namespaces/team-b/apps"),
    ];
    expect(refused.map((a) => a.status)).toEqual([403, 403]);
    expect((await call("grove_wrong", "DELETE", "/v1/namespaces/team-a/apps/a1")).status).toBe(401);

    const records = await waitFor("the audit records", async () => (mine().length >= 7 ? mine() : undefined));
    expect(records.filter((r) => (r.code as number) < 400)).toHaveLength(5);
    expect(records.filter((r) => r.code === 403)).toHaveLength(2);
    expect(records).toHaveLength(7);
    expect(records.map((r) => `${r.verb} ${r.resource} ${r.namespace} ${r.code}`).sort()).toEqual([
      "delete apps team-a 200",
      "exec instances team-a 101",
      "list apps team-b 403",
      "logs instances team-a 200",
      "update apps team-a 201",
      "update apps team-b 403",
      "update secrets team-a 201",
    ]);
    expect(records[0]).toMatchObject({
      resource: "apps",
      namespace: "team-a",
      name: "au",
      code: 201,
      role: "edit",
      source: "127.0.0.1",
    });
    for (const r of records)
      expect(Object.keys(r).sort()).toEqual(
        expect.arrayContaining(["code", "requestId", "source", "time", "user", "verb"]),
      );
    expect(auditLines().filter((r) => r.code === 401).length).toBe(anonymousBefore + 1);
    const log = fs.readFileSync(path.join(server.dataDir, "audit.log"), "utf8");
    expect(log).not.toContain(SECRET_VALUE);
    expect(log).not.toContain("exec-marker-7f3");
    expect(fs.statSync(path.join(server.dataDir, "audit.log")).mode & 0o777).toBe(0o600);
  });
});

describe("limits", () => {
  test(`watch number ${WATCH_LIMIT + 1} of one token gets 429; closing one lets the next in`, async () => {
    const t = (await admin.createToken("watcher", "view", "team-a")).token!;
    const open: AbortController[] = [];
    const watch = async () => {
      const ctl = new AbortController();
      const res = await fetch(`${server.url}/v1/namespaces/team-a/apps?watch=1`, {
        headers: { authorization: `Bearer ${t}` },
        signal: ctl.signal,
      });
      if (res.ok) open.push(ctl);
      else await res.text();
      return res.status;
    };
    try {
      for (let i = 0; i < WATCH_LIMIT; i++) expect(await watch()).toBe(200);
      expect(await watch()).toBe(429);
      // Another token is not affected.
      expect((await call(tokens.view, "GET", "/v1/namespaces/team-a/apps?watch=1")).status).toBe(200);
      open.shift()!.abort();
      await waitFor(
        "a freed watch slot",
        async () => {
          const s = await watch();
          return s === 200;
        },
        10_000,
      );
    } finally {
      for (const c of open) c.abort();
    }
  });
});
