// The API server's close() with clients that hold connections: one that sent nothing, one that
// stopped half-way through its headers (plain HTTP and HTTPS, where the handshake may not even be
// done), next to a request in flight, which is let finish (for drainMs at most).
import * as net from "node:net";
import * as tls from "node:tls";
import type { FastifyInstance } from "fastify";
import { collectionPrefix, Repository } from "../resources/repository";
import { MemoryStore } from "../store/memory-store";
import type { ListPage, ListPageOptions, ListResult } from "../store/store";
import { createCa, issueKeyPair } from "../pki/ca";
import { buildHttpServer } from "./server";

jest.mock("content-disposition", () => ({ create: (name: string) => `attachment; filename="${name}"` }));

// Building the server (swagger and all) and a CA take seconds on a loaded machine; the time bounds
// that matter are the close()s' own (closeWithin, within), not jest's 5 s.
jest.setTimeout(30_000);

const TOKEN = "close-test-token";

const APPS = collectionPrefix("App");

/** A store whose reads of Apps wait until released: GET /v1/apps is a request that stays in flight. */
class GatedStore extends MemoryStore {
  calls = 0;
  private readonly released: Promise<void>;
  release!: () => void;
  constructor() {
    super();
    this.released = new Promise<void>((r) => (this.release = r));
  }
  override async list<T>(prefix: string): Promise<ListResult<T>> {
    if (prefix.startsWith(APPS)) await this.gate();
    return super.list<T>(prefix);
  }
  override async listPage<T>(prefix: string, opts?: ListPageOptions): Promise<ListPage<T>> {
    if (prefix.startsWith(APPS)) await this.gate();
    return super.listPage<T>(prefix, opts);
  }
  private async gate(): Promise<void> {
    this.calls++;
    await this.released;
  }
}

interface Started {
  server: FastifyInstance;
  port: number;
  store: GatedStore;
}

async function start(opts: { https?: { certPem: string; keyPem: string }; shutdownDrainMs?: number } = {}) {
  const store = new GatedStore();
  const server = await buildHttpServer({ repo: new Repository(store), store, adminToken: TOKEN, ...opts });
  await server.listen({ host: "127.0.0.1", port: 0 });
  const s: Started = { server, port: (server.server.address() as net.AddressInfo).port, store };
  return s;
}

/** Resolves when the socket is closed (by the server: the test ends none itself before). */
const closedOf = (socket: net.Socket) => new Promise<void>((resolve) => socket.once("close", () => resolve()));

async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return socket;
}

async function connectTls(port: number): Promise<tls.TLSSocket> {
  const socket = tls.connect({ port, host: "127.0.0.1", rejectUnauthorized: false });
  socket.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once("secureConnect", resolve);
    socket.once("error", reject);
  });
  return socket;
}

/** p, or a failure naming what did not happen within ms (a close that waits on a client must fail here). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** How long server.close() took; it fails after ms. */
async function closeWithin(server: FastifyInstance, ms: number): Promise<number> {
  const t0 = performance.now();
  await within(server.close(), ms, "server.close()");
  return performance.now() - t0;
}

/** Waits for cond (a state the server reaches on its own), up to 5 s. */
async function waitFor(cond: () => boolean, what: string): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > 5_000) throw new Error(`timed out after 5000 ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("closing the API server", () => {
  const open: net.Socket[] = [];
  let s: Started | undefined;
  afterEach(async () => {
    for (const socket of open.splice(0)) socket.destroy();
    s?.store.release();
    await s?.server.close();
    s = undefined;
  });

  it("does not wait for a connection that sent nothing or half a request", async () => {
    s = await start();
    const silent = await connect(s.port);
    const half = await connect(s.port);
    open.push(silent, half);
    half.write("GET /version HTTP/1.1\r\nHost: x\r\n");
    const closed = [closedOf(silent), closedOf(half)];
    // Well under the drain (10 s): nothing is in flight, so nothing is waited for.
    await closeWithin(s.server, 3_000);
    await within(Promise.all(closed), 1_000, "the server closing both connections");
  });

  it("does not wait for an HTTPS connection that sent nothing, or never finished its handshake", async () => {
    const ca = createCa("close-test-ca");
    const pair = issueKeyPair(ca, {
      commonName: "127.0.0.1",
      sans: ["127.0.0.1"],
      usage: "server",
      validForMs: 3_600_000,
    });
    s = await start({ https: { certPem: pair.certPem, keyPem: pair.keyPem } });
    const silent = await connectTls(s.port);
    const noHandshake = await connect(s.port);
    open.push(silent, noHandshake);
    const closed = [closedOf(silent), closedOf(noHandshake)];
    await closeWithin(s.server, 3_000);
    await within(Promise.all(closed), 1_000, "the server closing both connections");
  });

  it("lets a request in flight finish, then drops the idle connections", async () => {
    s = await start();
    const silent = await connect(s.port);
    open.push(silent);
    let silentGone = false;
    const silentClosed = closedOf(silent).then(() => (silentGone = true));
    const answer = fetch(`http://127.0.0.1:${s.port}/v1/apps`, { headers: { authorization: `Bearer ${TOKEN}` } });
    await waitFor(() => s!.store.calls === 1, "GET /v1/apps to reach the store");
    let closeDone = false;
    const closing = s.server.close().then(() => (closeDone = true));
    // The idle connection stays while the request is in flight; nor has close() finished.
    await new Promise((r) => setTimeout(r, 300));
    expect(silentGone).toBe(false);
    expect(closeDone).toBe(false);
    s.store.release();
    const res = await answer;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { items: unknown[] }).items).toEqual([]);
    await within(silentClosed, 3_000, "the server closing the idle connection");
    await within(closing, 3_000, "server.close()");
  });

  it("drops a request still in flight after the drain time", async () => {
    s = await start({ shutdownDrainMs: 300 });
    const answer = fetch(`http://127.0.0.1:${s.port}/v1/apps`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const outcome = answer.then(
      () => "answered",
      () => "dropped",
    );
    await waitFor(() => s!.store.calls === 1, "GET /v1/apps to reach the store");
    const took = await closeWithin(s.server, 3_000);
    expect(took).toBeGreaterThanOrEqual(250);
    expect(await outcome).toBe("dropped");
  });
});
