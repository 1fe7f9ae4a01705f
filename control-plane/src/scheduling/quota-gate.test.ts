import { REPLACES_LABEL, ROLLOUT_LABEL, type Instance } from "@grove/api";
import { QuotaGate, type QuotaOf } from "./quota-gate";

function inst(name: string, opts: { node?: string; labels?: Record<string, string>; ns?: string } = {}): Instance {
  return {
    apiVersion: "grove/v1",
    kind: "Instance",
    metadata: {
      name,
      namespace: opts.ns ?? "team",
      uid: `uid-${name}`,
      ...(opts.labels ? { labels: opts.labels } : {}),
    },
    spec: {
      app: "web",
      index: 0,
      restarts: 0,
      resources: { cpuMillis: 500, memoryBytes: 2 ** 20, pids: 16 },
      ...(opts.node ? { nodeName: opts.node } : {}),
    },
    status: { state: opts.node ? "Running" : "Pending" },
  } as unknown as Instance;
}

const quotas = new Map<string, QuotaOf>([["team", { hard: { cpuMillis: 1000, instances: 2 } }]]);

describe("QuotaGate", () => {
  it("admits pending instances in order while they fit beside the bound ones, naming the quota after", () => {
    const running = inst("web-0", { node: "n1" });
    const gate = new QuotaGate([running], quotas);
    expect(gate.admit(inst("web-1"))).toBeUndefined();
    expect(gate.admit(inst("web-2"))).toBe(
      "web-2 would exceed the quota of namespace team: quota cpu exceeded: requested 500m, used 1000m by the rest of the namespace, limit 1000m; " +
        "quota instances exceeded: requested 1, used 2 by the rest of the namespace, limit 2",
    );
  });

  it("counts a rolling update's surge in full", () => {
    const old = inst("web-0", { node: "n1" });
    const other = inst("api-0", { node: "n1" });
    const surge = inst("web-0-r1", { labels: { [ROLLOUT_LABEL]: "2", [REPLACES_LABEL]: "uid-web-0" } });
    expect(new QuotaGate([old, other], quotas).admit(surge)).toMatch(/quota instances exceeded/);
  });

  it("lets a replacement for a lost or draining node take over its original's share", () => {
    const old = inst("web-0", { node: "n1" });
    const other = inst("api-0", { node: "n1" });
    const gate = new QuotaGate([old, other], quotas);
    expect(gate.admit(inst("web-0-x", { labels: { [REPLACES_LABEL]: "uid-web-0" } }))).toBeUndefined();
    // The share moved: a second instance still has no room.
    expect(gate.admit(inst("web-1"))).toMatch(/quota instances exceeded: requested 1, used 2/);
  });

  it("leaves namespaces without a quota and finished instances alone", () => {
    const done = { ...inst("web-0", { node: "n1" }), status: { state: "Exited" } } as Instance;
    const gate = new QuotaGate([done, inst("a", { node: "n1" }), inst("b", { node: "n1" })], quotas);
    expect(gate.admit(inst("free", { ns: "other" }))).toBeUndefined();
    expect(gate.admit(inst("c"))).toMatch(/used 2/);
  });
});
