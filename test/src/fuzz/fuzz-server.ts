// The manifest fuzz's conversation with its grove-server (test/src/manifest-fuzz.test.ts):
// requests, etcd's revision and keys behind the server's back, what the CLI makes of the
// same bytes, and the shape of a refusal. Split from the test file for its size.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { loadManifests, ManifestError, type ManifestKind } from "@grove/api";
import { etcdctlTlsArgs, type ServerProcess } from "../harness/processes";
import type { Body } from "./manifest-arbitraries";

/** One refused request may take this long at most (a loaded 2-core machine; a hang is minutes). */
export const REQUEST_LIMIT_MS = 10_000;
/** /healthz right after a refusal answers within this. */
const HEALTH_LIMIT_MS = 5_000;

export interface FuzzTarget {
  server: ServerProcess;
  etcdEndpoint: string;
  dir: string;
}

export interface Answer {
  status: number;
  body: { code?: string; message?: string; details?: Array<{ path: string; line?: number; message: string }> };
  ms: number;
}

/** The helpers, reading the server (started in beforeAll) through `get` when called. */
export function fuzzHarness(get: () => FuzzTarget) {
  async function send(method: string, url: string, body?: Body): Promise<Answer> {
    const t0 = performance.now();
    const res = await fetch(get().server.url + url, {
      method,
      headers: {
        authorization: `Bearer ${get().server.adminToken}`,
        ...(body ? { "content-type": body.contentType } : {}),
      },
      body: body?.bytes,
      signal: AbortSignal.timeout(REQUEST_LIMIT_MS),
    });
    const text = await res.text();
    let parsed: Answer["body"] = {};
    try {
      parsed = JSON.parse(text) as Answer["body"];
    } catch {
      parsed = { message: `not JSON: ${text.slice(0, 200)}` };
    }
    return { status: res.status, body: parsed, ms: performance.now() - t0 };
  }

  /**
   * What the server writes by itself whatever the requests: the replica's beat (every few
   * seconds) and, on a loaded machine whose pauses outlast the leader's session, a re-election.
   */
  const OWN_KEYS = ["/grove/replica-presence/", "/grove/leader@", "election/grove-controllers/"];

  /** The keys etcd holds that were written after `revision` (for failure messages). */
  function keysWrittenAfter(revision: string): string[] {
    const out = execFileSync(
      "etcdctl",
      [...etcdctlTlsArgs(get().server), "--endpoints", get().etcdEndpoint, "get", "", "--from-key", "--write-out=json"],
      { env: { ...process.env, ETCDCTL_API: "3" }, maxBuffer: 64 * 1024 * 1024 },
    ).toString();
    const kvs = (JSON.parse(out) as { kvs?: Array<{ key: string; mod_revision: number }> }).kvs ?? [];
    return kvs
      .filter((kv) => kv.mod_revision > Number(revision))
      .map((kv) => `${Buffer.from(kv.key, "base64").toString()}@${kv.mod_revision}`);
  }

  /** etcd's current revision, as a list answers it. */
  async function revision(): Promise<string> {
    const a = await send("GET", "/v1/nodes?limit=1");
    return (a.body as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
  }

  async function healthyQuickly(): Promise<number> {
    const t0 = performance.now();
    const res = await fetch(get().server.url + "/healthz", { signal: AbortSignal.timeout(HEALTH_LIMIT_MS) });
    expect(res.status).toBe(200);
    return performance.now() - t0;
  }

  /** What `grove apply -f FILE` makes of the bytes: the objects, or the problems it prints. */
  function cliReads(
    body: Body,
    acceptKinds?: ManifestKind[],
  ): { ok: true; objects: unknown[] } | { ok: false; problems: string[] } {
    const file = path.join(get().dir, `cli-input${body.contentType === "application/json" ? ".json" : ".yaml"}`);
    fs.writeFileSync(file, body.bytes);
    try {
      return { ok: true, objects: loadManifests(file, acceptKinds ? { acceptKinds } : {}).map((o) => o.object) };
    } catch (err) {
      if (!(err instanceof ManifestError)) throw err; // anything else is a CLI crash
      return { ok: false, problems: err.lines() };
    }
  }

  /** A refusal the way docs/api.md promises it: a catalogued code, and the field or the line. */
  function expectStructuredRefusal(what: string, a: Answer): void {
    const where = (a.body.details ?? []).filter((d) => d.path !== "" || d.line !== undefined);
    const ok =
      a.status >= 400 &&
      a.status < 500 &&
      typeof a.body.code === "string" &&
      typeof a.body.message === "string" &&
      // 413: the body is over the limit as a whole; there is no field to name.
      (a.status === 413 || where.length > 0);
    expect({ what, ok, status: a.status, body: a.body }).toEqual({ what, ok: true, status: a.status, body: a.body });
  }

  async function expectRefusedWithoutWrite(body: Body, url = "/v1/namespaces/fuzz-bad/apps"): Promise<Answer> {
    const before = await revision();
    const a = await send("POST", url, body);
    expectStructuredRefusal(body.what, a);
    expect(a.ms).toBeLessThan(REQUEST_LIMIT_MS);
    await healthyQuickly();
    // The revision moves only by the server's own keys (OWN_KEYS).
    const after = await revision();
    const written =
      after === before ? [] : keysWrittenAfter(before).filter((k) => !OWN_KEYS.some((own) => k.startsWith(own)));
    expect({ what: body.what, written }).toEqual({ what: body.what, written: [] });
    return a;
  }

  /** Every value etcd holds, as text (a Secret's plaintext must be in none). */
  function etcdValues(): string {
    return execFileSync(
      "etcdctl",
      [
        ...etcdctlTlsArgs(get().server),
        "--endpoints",
        get().etcdEndpoint,
        "get",
        "",
        "--from-key",
        "--print-value-only",
      ],
      { env: { ...process.env, ETCDCTL_API: "3" }, maxBuffer: 64 * 1024 * 1024 },
    ).toString("latin1");
  }

  return {
    send,
    keysWrittenAfter,
    revision,
    healthyQuickly,
    cliReads,
    expectStructuredRefusal,
    expectRefusedWithoutWrite,
    etcdValues,
  };
}
