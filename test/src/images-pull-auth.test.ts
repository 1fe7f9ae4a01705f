// An image one namespace pulled with its credentials is not started for
// another namespace from the node's cache unless the registry serves it to
// that namespace's own credentials (docs/security.md, "Images per tenant";
// Kubernetes' KEP-2535). Real components: grove-server with its embedded
// etcd, one grove-agent, a registry verifying Bearer tokens from a token
// server started here.
import * as fs from "node:fs";
import * as path from "node:path";
import { GroveClient, type App, type Instance } from "@grove/api";
import {
  BIN,
  GiveUp,
  joinArgs,
  startNode,
  startServer,
  tempDir,
  waitFor,
  waitNodeReady,
  type ServerProcess,
  type Started,
} from "./harness/processes";
import {
  busyboxLayout,
  push,
  startRegistry,
  startTokenServer,
  unmountUnder,
  type Registry,
  type TokenServer,
} from "./harness/registry";
import { RUN_TAG } from "./harness/run-id";

const NODE = "pullauth-node-1";
const CGROUP_PARENT = `grove-pullauth-${RUN_TAG}`;
jest.setTimeout(240_000);

let dir: string;
let plain: Registry;
let tokenRegistry: Registry;
let tokens: TokenServer;
let server: ServerProcess;
let agent: Started;
let client: GroveClient;
let image: string;

beforeAll(async () => {
  dir = tempDir("grove-pullauth");
  const layout = path.join(dir, "layout");
  await busyboxLayout(layout, "app", dir);
  // Pushed to a registry without auth; served by one that wants tokens over the same storage.
  const storage = path.join(dir, "registry-storage");
  plain = await startRegistry(path.join(dir, "registry"), storage);
  await push(layout, "app", plain.address, "private/app:1");
  tokens = await startTokenServer(dir, "tenant", "tenant-pass");
  tokenRegistry = await startRegistry(path.join(dir, "registry-token"), storage, {
    kind: "token",
    realm: tokens.realm,
    service: tokens.service,
    issuer: tokens.issuer,
    certFile: tokens.certFile,
  });
  image = `${tokenRegistry.address}/private/app:1`;
  const imageConfig = path.join(dir, "image-config.json");
  // No node-wide credentials for the token registry: only the pull secrets.
  const creds = { [tokenRegistry.address]: { username: "tenant", password: "tenant-pass" } };
  fs.writeFileSync(imageConfig, JSON.stringify({ pullSecrets: { "team-a": creds, "team-b": creds } }));

  server = await startServer({ dataDir: path.join(dir, "server") });
  fs.mkdirSync(path.join(dir, "rootfs"), { recursive: true });
  agent = await startNode(
    BIN.agent,
    [
      ...(await joinArgs(server, NODE)),
      "--node-name",
      NODE,
      "--state-dir",
      path.join(dir, "agent"),
      "--rootfs-dir",
      path.join(dir, "rootfs"),
      "--cgroup-parent",
      CGROUP_PARENT,
      "--image-config",
      imageConfig,
      "--network",
      "none",
      "--stop-containers-on-exit",
    ],
    (l) => l.includes('"registered with the control plane"'),
    { name: "grove-agent", timeoutMs: 60_000 },
  );
  client = new GroveClient({ server: server.url, token: server.adminToken });
  await waitNodeReady(client, NODE, 60_000);
});

afterAll(async () => {
  await agent?.stop(60_000);
  await server?.stop();
  await tokenRegistry?.stop();
  await plain?.stop();
  await tokens?.stop();
  if (dir) {
    unmountUnder(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

function app(namespace: string, name: string, pullSecret?: string): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name, namespace },
    spec: {
      image,
      command: ["/bin/sh", "-c", "exec sleep 600"],
      instances: 1,
      stopGracePeriodSeconds: 1,
      restartPolicy: "Never",
      ...(pullSecret ? { imagePullSecret: pullSecret } : {}),
    },
  };
}

/** The App's instance once it is `state` (giving up at once on another terminal state). */
function waitState(namespace: string, name: string, state: "Running" | "Failed"): Promise<Instance> {
  return waitFor(
    `${namespace}/${name} to be ${state}`,
    async () => {
      const list = await client.list("Instance", { namespace });
      const i = list.items.find((x) => x.spec.app === name);
      const s = i?.status?.state;
      if (s && s !== state && ["Exited", "Failed", "OOMKilled", "Running"].includes(s)) {
        throw new GiveUp(`${name} is ${s}: ${i?.status?.reason} ${i?.status?.message}`);
      }
      return s === state ? i : undefined;
    },
    120_000,
  );
}

/** The token registry's authorized GETs of a manifest by digest (the re-checks; a pull asks by tag first). */
function digestChecks(): number {
  return tokenRegistry
    .requests()
    .filter((r) => r.method === "GET" && r.authorized && r.status === 200 && /\/manifests\/sha256:/.test(r.uri)).length;
}

test("team-b cannot start team-a's privately pulled image from the cache without credentials; with its own it can", async () => {
  await client.apply(app("team-a", "web", "team-a"));
  await waitState("team-a", "web", "Running");
  const tokensBefore = tokens.requests.length;
  const checksBefore = digestChecks();

  // Same reference, no credentials: the cache has it, the registry refuses an anonymous pull.
  await client.apply(app("team-b", "copycat"));
  const refused = await waitState("team-b", "copycat", "Failed");
  expect(refused.status?.reason).toBe("ImagePullUnauthorized");
  expect(refused.status?.message).toContain(`${image} is in this node's cache from a pull with other credentials`);
  expect(refused.status?.message).toContain("no credentials");
  // It asked the registry (which sent it to the token server) rather than trusting the cache.
  expect(tokens.requests.slice(tokensBefore)).toContainEqual({ user: "", scope: "repository:private/app:pull" });

  // Its own valid credentials: the manifest is fetched by digest with them, then it runs.
  await client.apply(app("team-b", "own", "team-b"));
  await waitState("team-b", "own", "Running");
  expect(digestChecks()).toBe(checksBefore + 1);

  // Later starts under a recorded pull secret need no new check.
  await client.apply(app("team-a", "web2", "team-a"));
  await client.apply(app("team-b", "own2", "team-b"));
  await waitState("team-a", "web2", "Running");
  await waitState("team-b", "own2", "Running");
  expect(digestChecks()).toBe(checksBefore + 1);
});
