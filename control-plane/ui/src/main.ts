// The operator dashboard (served at /ui by grove-server): sign in with a token,
// then the cluster overview, the Apps and one instance's page, all kept live
// through the watch API. Hash routes: #/ (overview), #/apps, #/instance/NS/NAME.
import {
  ApiError,
  LiveCollection,
  call,
  getJson,
  readLines,
  setOnUnauthorized,
  signIn,
  signOut,
  token,
  type Obj,
} from "./api.js";
import { bar, cpu, h, mib, table } from "./dom.js";

interface Res {
  cpuMillis: number;
  memoryBytes: number;
  pids: number;
}
interface NodeObj extends Obj {
  status?: { conditions?: { type: string; status: string }[]; allocatable?: Res };
  spec?: { unschedulable?: boolean };
}
interface AppObj extends Obj {
  spec: { instances: number };
  status?: { running?: number; ready?: number; pending?: number };
}
interface InstanceObj extends Obj {
  spec: { app: string; index?: number; restarts: number; nodeName?: string; resources: Res; task?: string };
  status?: {
    state: string;
    reason?: string;
    message?: string;
    nodeName?: string;
    ip?: string;
    explain?: {
      nodesConsidered: number;
      rejected: Record<string, number>;
      scores?: Record<string, number>;
      chosen?: string;
    };
  };
}
interface EventObj extends Obj {
  reason: string;
  message: string;
  type?: string;
  count: number;
  lastTimestamp: string;
}
interface Capacity {
  nodes: { name: string; schedulable: boolean; allocatable: Res; allocated: Res; free: Res }[];
  cluster: { allocatable: Res; allocated: Res; free: Res };
  fits?: number;
  fitsIfPooled?: number;
}
interface Endpoints {
  endpoints: { instance: string; ip?: string; ports?: { hostIP?: string; hostPort: number }[] }[];
}

/** Shapes the overview counts free and stranded room for. */
const SHAPES = ["cpu=250m,memory=256Mi", "cpu=500m,memory=1Gi", "cpu=2,memory=4Gi"];

const main = document.getElementById("main")!;
const status = document.getElementById("status")!;
const cleanup: (() => void)[] = [];

function stopView(): void {
  for (const f of cleanup.splice(0)) f();
}

function live<T extends Obj>(path: string, render: () => void): LiveCollection<T> {
  const c = new LiveCollection<T>(path, render, (m) => (status.textContent = `watch ${path}: ${m}`));
  cleanup.push(() => c.stop());
  return c;
}

/**
 * Whether the view that called this is still shown. Its plain GETs (capacity,
 * endpoints) can answer after the user moved to another view, and must not
 * draw over it (seen: the Apps page redrawn over an instance page).
 */
function viewOpen(): () => boolean {
  let open = true;
  cleanup.push(() => (open = false));
  return () => open;
}

/** Runs f at most once per interval (capacity and endpoints are plain GETs refreshed on change); the view's end cancels it. */
function throttle(f: () => void, ms: number): () => void {
  let timer: number | undefined;
  cleanup.push(() => window.clearTimeout(timer));
  return () => {
    if (timer !== undefined) return;
    timer = window.setTimeout(() => {
      timer = undefined;
      f();
    }, ms);
  };
}

function signInView(message?: string): void {
  stopView();
  document.getElementById("whoami")!.replaceChildren();
  const input = h("input", { type: "password", id: "token", autocomplete: "off", placeholder: "API token" });
  const form = h("form", { id: "signin" }, h("h2", {}, "Sign in"), input, h("button", { type: "submit" }, "Sign in"));
  if (message) form.append(h("p", { class: "error" }, message));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const t = (input as HTMLInputElement).value.trim();
    if (!t) return;
    signIn(t);
    void route();
  });
  main.replaceChildren(form);
}

function overview(): void {
  const open = viewOpen();
  const nodes = live<NodeObj>("/v1/nodes", () => draw());
  const instances = live<InstanceObj>("/v1/instances", () => refresh());
  let capacity: Capacity | undefined;
  const shapes = new Map<string, Capacity>();
  const refresh = throttle(() => {
    void (async () => {
      capacity = await getJson<Capacity>("/v1/capacity");
      for (const s of SHAPES) shapes.set(s, await getJson<Capacity>(`/v1/capacity?shape=${encodeURIComponent(s)}`));
      draw();
    })().catch((e: Error) => (status.textContent = e.message));
  }, 500);
  const draw = () => {
    if (!open()) return;
    const byNode = new Map(capacity?.nodes.map((n) => [n.name, n]) ?? []);
    const rows = [...nodes.items.values()].map((n) => {
      const c = byNode.get(n.metadata.name);
      const ready = n.status?.conditions?.find((x) => x.type === "Ready")?.status === "True";
      const count = [...instances.items.values()].filter(
        (i) => (i.status?.nodeName ?? i.spec.nodeName) === n.metadata.name && i.status?.state === "Running",
      ).length;
      return [
        n.metadata.name,
        h("span", { class: ready ? "ok" : "bad" }, ready ? "Ready" : "NotReady"),
        n.spec?.unschedulable ? "cordoned" : "",
        c
          ? bar(
              c.allocated.cpuMillis,
              c.allocatable.cpuMillis,
              `${cpu(c.allocated.cpuMillis)} / ${cpu(c.allocatable.cpuMillis)}`,
            )
          : "",
        c
          ? bar(
              c.allocated.memoryBytes,
              c.allocatable.memoryBytes,
              `${mib(c.allocated.memoryBytes)} / ${mib(c.allocatable.memoryBytes)}`,
            )
          : "",
        count,
      ];
    });
    const shapeRows = SHAPES.map((s) => {
      const r = shapes.get(s);
      const stranded = r && r.fitsIfPooled !== undefined && r.fits !== undefined ? r.fitsIfPooled - r.fits : undefined;
      return [s, r?.fits ?? "", stranded ?? ""];
    });
    const cl = capacity?.cluster;
    main.replaceChildren(
      h("h2", {}, "Nodes"),
      table(["node", "condition", "", "cpu allocated", "memory allocated", "running"], rows, { id: "nodes" }),
      h("h2", {}, "Capacity"),
      cl
        ? h(
            "p",
            {},
            `free: ${cpu(cl.free.cpuMillis)} cpu, ${mib(cl.free.memoryBytes)} memory across ${capacity!.nodes.length} nodes`,
          )
        : "",
      table(["shape", "more that fit now", "stranded (fit if pooled, not on any one node)"], shapeRows, {
        id: "shapes",
      }),
    );
  };
  refresh();
  draw();
}

function apps(): void {
  const open = viewOpen();
  const appList = live<AppObj>("/v1/apps", () => draw());
  const instances = live<InstanceObj>("/v1/instances", () => {
    draw();
    refreshEndpoints();
  });
  const endpoints = new Map<string, Endpoints>();
  const refreshEndpoints = throttle(() => {
    void Promise.all(
      [...appList.items.values()].map(async (a) => {
        const key = `${a.metadata.namespace}/${a.metadata.name}`;
        try {
          endpoints.set(
            key,
            await getJson<Endpoints>(`/v1/namespaces/${a.metadata.namespace}/apps/${a.metadata.name}/endpoints`),
          );
        } catch {
          endpoints.delete(key);
        }
      }),
    ).then(draw);
  }, 1000);
  const draw = () => {
    if (!open()) return;
    const sections = [...appList.items.values()].map((a) => {
      const key = `${a.metadata.namespace}/${a.metadata.name}`;
      const mine = [...instances.items.values()]
        .filter((i) => i.metadata.namespace === a.metadata.namespace && i.spec.app === a.metadata.name && !i.spec.task)
        .sort((x, y) => x.metadata.name.localeCompare(y.metadata.name));
      const eps = endpoints.get(key)?.endpoints ?? [];
      return h(
        "section",
        { class: "app", "data-app": key },
        h("h3", {}, key, " ", h("span", { class: "muted" }, `${a.status?.running ?? 0}/${a.spec.instances} running`)),
        table(
          ["instance", "state", "restarts", "node", "ip"],
          mine.map((i) => [
            h("a", { href: `#/instance/${i.metadata.namespace}/${i.metadata.name}` }, i.metadata.name),
            h("span", { class: `state state-${i.status?.state ?? "Pending"}` }, i.status?.state ?? "Pending"),
            i.spec.restarts,
            i.status?.nodeName ?? i.spec.nodeName ?? "",
            i.status?.ip ?? "",
          ]),
        ),
        h(
          "p",
          { class: "endpoints" },
          "endpoints: ",
          eps.length === 0
            ? "none"
            : eps
                .map(
                  (e) => (e.ports ?? []).map((p) => `${p.hostIP ?? ""}:${p.hostPort}`).join(" ") || e.ip || e.instance,
                )
                .join(", "),
        ),
      );
    });
    main.replaceChildren(
      h("h2", {}, "Apps"),
      sections.length ? h("div", { id: "apps" }, ...sections) : h("p", {}, "No Apps."),
    );
  };
  draw();
}

function instancePage(ns: string, name: string): void {
  const base = `/v1/namespaces/${encodeURIComponent(ns)}/instances/${encodeURIComponent(name)}`;
  const head = h("div", { id: "instance-head" });
  const explain = h("div", { id: "explain" });
  const events = h("div", { id: "events" });
  const log = h("pre", { id: "log" });
  main.replaceChildren(
    h("h2", {}, `${ns}/${name}`),
    head,
    h("h3", {}, "Placement"),
    explain,
    h("h3", {}, "Events"),
    events,
    h("h3", {}, "Log"),
    log,
  );
  const one = live<InstanceObj>(`/v1/namespaces/${encodeURIComponent(ns)}/instances`, () => drawHead());
  const evs = live<EventObj>(
    `/v1/namespaces/${encodeURIComponent(ns)}/events?instance=${encodeURIComponent(name)}`,
    () => drawEvents(),
  );
  let logStarted = false;
  const drawHead = () => {
    const i = one.items.get(`${ns}/${name}`);
    if (!i) return;
    const s = i.status;
    head.replaceChildren(
      table(
        ["state", "reason", "node", "ip", "restarts", "app"],
        [
          [
            h("span", { class: `state state-${s?.state ?? "Pending"}` }, s?.state ?? "Pending"),
            s?.reason ?? "",
            s?.nodeName ?? "",
            s?.ip ?? "",
            i.spec.restarts,
            i.spec.app,
          ],
        ],
      ),
      s?.message ? h("p", {}, s.message) : "",
    );
    const e = s?.explain;
    explain.replaceChildren(
      e
        ? h(
            "div",
            {},
            h("p", {}, `${e.nodesConsidered} nodes considered; chosen: ${e.chosen ?? "none"}`),
            Object.keys(e.rejected).length === 0
              ? h("p", {}, "no filter rejected a node")
              : table(
                  ["filter", "nodes rejected"],
                  Object.entries(e.rejected).map(([f, n]) => [f, n]),
                ),
            e.scores
              ? table(
                  ["scorer", "score"],
                  Object.entries(e.scores).map(([k, v]) => [k, v.toFixed(3)]),
                )
              : null,
          )
        : h("p", { class: "muted" }, "no placement record"),
    );
    if (!logStarted && s?.state === "Running") {
      logStarted = true;
      followLog();
    }
  };
  const drawEvents = () => {
    const rows = [...evs.items.values()]
      .sort((a, b) => a.lastTimestamp.localeCompare(b.lastTimestamp))
      .map((e) => [e.lastTimestamp, e.type ?? "", e.reason, e.message, e.count]);
    events.replaceChildren(table(["last", "type", "reason", "message", "count"], rows));
  };
  const followLog = () => {
    const abort = new AbortController();
    cleanup.push(() => abort.abort());
    void (async () => {
      const res = await call(`${base}/logs?follow=1&tail=200`, { signal: abort.signal });
      await readLines(res, (line) => {
        log.append(line + "\n");
        // Keep the tail in view and the page light: at most 1000 lines.
        while (log.childNodes.length > 1000) log.firstChild?.remove();
        log.scrollTop = log.scrollHeight;
      });
    })().catch((e: Error) => {
      if (!abort.signal.aborted) log.append(`[log stream ended: ${e.message}]\n`);
    });
  };
}

async function route(): Promise<void> {
  stopView();
  status.textContent = "";
  if (!token()) return signInView();
  try {
    // Checks the token once before the views open their watches.
    await call("/v1/nodes?limit=1");
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      signOut();
      return signInView("That token was refused.");
    }
    status.textContent = e instanceof Error ? e.message : String(e);
  }
  const out = h("button", { id: "signout", type: "button" }, "Sign out");
  out.addEventListener("click", () => {
    signOut();
    void route();
  });
  document.getElementById("whoami")!.replaceChildren(out);
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "apps") apps();
  else if (parts[0] === "instance" && parts[1] && parts[2]) instancePage(parts[1], parts[2]);
  else overview();
}

setOnUnauthorized(() => {
  signOut();
  signInView("The server refused the token (expired or revoked?).");
});
window.addEventListener("hashchange", () => void route());
void route();
