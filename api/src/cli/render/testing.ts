// Fixtures shared by the renderer and CLI tests.
import type { App, Instance } from "../../schemas";

export const FIXED_NOW = Date.parse("2025-01-01T12:00:00Z");

/** An instance of app "hello" created 90 s before FIXED_NOW. */
export function instance(
  name: string,
  overrides: Partial<Instance["spec"]> = {},
  status?: Instance["status"],
): Instance {
  return {
    apiVersion: "grove/v1",
    kind: "Instance",
    metadata: { name, namespace: "default", creationTimestamp: new Date(FIXED_NOW - 90_000).toISOString() },
    spec: {
      app: "hello",
      appUid: "u-1",
      index: 0,
      rootfs: "busybox",
      command: ["sleep", "1000"],
      resources: { cpuMillis: 250, memoryBytes: 64 * 2 ** 20, pids: 100 },
      restartPolicy: "Always",
      stopGracePeriodSeconds: 10,
      restarts: 0,
      ...overrides,
    },
    ...(status ? { status } : {}),
  };
}

export function app(name: string, instances: number, overrides: Partial<App["metadata"]> = {}): App {
  return {
    apiVersion: "grove/v1",
    kind: "App",
    metadata: {
      name,
      namespace: "default",
      creationTimestamp: new Date(FIXED_NOW - 30_000).toISOString(),
      ...overrides,
    },
    spec: { rootfs: "busybox", command: ["sh", "-c", "sleep 1000"], instances },
  };
}
