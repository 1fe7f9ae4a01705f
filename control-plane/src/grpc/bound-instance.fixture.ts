// A test fixture: an Instance of App "web" bound to `node`, as the scheduler leaves it
// (desired-coalesce.test.ts, status-batch.test.ts).
import type { Instance } from "@grove/api";

export function boundInstance(name: string, node: string, scheduled = false): Instance {
  return {
    apiVersion: "grove/v1",
    kind: "Instance",
    metadata: { name, namespace: "default", uid: `uid-${name}` },
    spec: {
      app: "web",
      appUid: "a1",
      index: 0,
      rootfs: "busybox",
      command: ["sleep", "1000"],
      resources: { cpuMillis: 100, memoryBytes: 2 ** 20, pids: 1 },
      restartPolicy: "Always",
      stopGracePeriodSeconds: 1,
      restarts: 0,
      nodeName: node,
    },
    ...(scheduled ? { status: { state: "Pending", reason: "Scheduled", nodeName: node } } : {}),
  } as Instance;
}
