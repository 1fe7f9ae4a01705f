import { endpointsOf } from "./endpoints";
import type { Instance } from "./schemas";

function inst(name: string, app: string, state: NonNullable<Instance["status"]>["state"], ip?: string): Instance {
  return {
    apiVersion: "grove/v1",
    kind: "Instance",
    metadata: { name, namespace: "default", uid: `uid-${name}` },
    spec: {
      app,
      appUid: "a",
      index: 0,
      rootfs: "busybox",
      command: ["true"],
      resources: { cpuMillis: 100, memoryBytes: 1, pids: 1 },
      restartPolicy: "Always",
      stopGracePeriodSeconds: 1,
      restarts: 0,
      nodeName: "n1",
    },
    status: {
      state,
      nodeName: "n1",
      ...(ip
        ? { ip, ports: [{ name: "http", protocol: "tcp", containerPort: 80, hostPort: 20001, hostIP: "192.0.2.1" }] }
        : {}),
    },
  };
}

describe("endpointsOf", () => {
  it("lists only the App's Running instances, by name, with dialable addresses", () => {
    const e = endpointsOf(
      "web",
      "default",
      [
        inst("web-1", "web", "Running", "10.244.0.3"),
        inst("web-0", "web", "Running", "10.244.0.2"),
        inst("web-2", "web", "Starting"),
        inst("web-3", "web", "Exited", "10.244.0.9"),
        inst("api-0", "api", "Running", "10.244.0.4"),
      ],
      "7",
    );
    expect(e.metadata).toEqual({ name: "web", namespace: "default", resourceVersion: "7" });
    expect(e.endpoints.map((x) => x.instance)).toEqual(["web-0", "web-1"]);
    expect(e.endpoints[0]).toEqual({
      instance: "web-0",
      uid: "uid-web-0",
      nodeName: "n1",
      ip: "10.244.0.2",
      ports: [
        {
          name: "http",
          protocol: "tcp",
          containerPort: 80,
          hostPort: 20001,
          hostIP: "192.0.2.1",
          address: "192.0.2.1:20001",
        },
      ],
    });
  });

  it("leaves out Running instances their readiness check reports unready, and takes them back when ready", () => {
    const unready = inst("web-1", "web", "Running", "10.244.0.3");
    unready.status!.ready = false;
    const ready = inst("web-0", "web", "Running", "10.244.0.2");
    ready.status!.ready = true;
    expect(endpointsOf("web", "default", [unready, ready]).endpoints.map((x) => x.instance)).toEqual(["web-0"]);
    unready.status!.ready = true;
    expect(endpointsOf("web", "default", [unready, ready]).endpoints.map((x) => x.instance)).toEqual([
      "web-0",
      "web-1",
    ]);
  });
});
