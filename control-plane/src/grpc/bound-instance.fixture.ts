// A test fixture: an Instance of App "web", bound to a node as the scheduler leaves it
// (desired-coalesce.test.ts, status-batch.test.ts, agent-gateway.test.ts), or not bound
// (instances-by-node.test.ts).
import type { Instance } from "@grove/api";

export interface InstanceFixture {
  /** spec.nodeName; unbound when absent. */
  node?: string;
  /** metadata.uid; `uid-<name>` when absent, none when null (the Repository gives one). */
  uid?: string | null;
  resources?: Instance["spec"]["resources"];
  status?: Instance["status"];
}

export function instanceFixture(name: string, o: InstanceFixture = {}): Instance {
  const uid = o.uid === undefined ? `uid-${name}` : o.uid;
  return {
    apiVersion: "grove/v1",
    kind: "Instance",
    metadata: { name, namespace: "default", ...(uid !== null ? { uid } : {}) },
    spec: {
      app: "web",
      appUid: "a1",
      index: 0,
      rootfs: "busybox",
      command: ["sleep", "1000"],
      resources: o.resources ?? { cpuMillis: 100, memoryBytes: 2 ** 20, pids: 1 },
      restartPolicy: "Always",
      stopGracePeriodSeconds: 1,
      restarts: 0,
      ...(o.node !== undefined ? { nodeName: o.node } : {}),
    },
    ...(o.status ? { status: o.status } : {}),
  } as Instance;
}

export function boundInstance(name: string, node: string, scheduled = false): Instance {
  return instanceFixture(name, {
    node,
    ...(scheduled ? { status: { state: "Pending", reason: "Scheduled", nodeName: node } } : {}),
  });
}
