// Which finished instances a node keeps the logs of: a Task's ended attempts
// on that node, while they exist; never an App's ended instances.
import { newInstance, taskAttempt, type App, type Instance, type Task } from "@grove/api";
import { desiredFor, keepLogsFor } from "./agent-messages";

const task: Task = {
  apiVersion: "grove/v1",
  kind: "Task",
  metadata: { name: "job", namespace: "default", uid: "t-uid" },
  spec: { rootfs: "busybox", command: ["true"] },
};
const app: App = {
  apiVersion: "grove/v1",
  kind: "App",
  metadata: { name: "web", namespace: "default", uid: "a-uid" },
  spec: { rootfs: "busybox", command: ["sleep", "1"], instances: 1 },
};

function on(node: string, inst: Instance, status: Instance["status"]): Instance {
  return { ...inst, spec: { ...inst.spec, nodeName: node }, status: { nodeName: node, ...status! } };
}

describe("keepLogsFor", () => {
  it("names the finished attempts of Tasks on the node, and leaves them out of the desired set", () => {
    const ended = on("n1", taskAttempt(task, undefined, 1, 0), { state: "Failed", exitCode: 1 });
    const running = on("n1", taskAttempt(task, undefined, 2, 0), { state: "Running" });
    const elsewhere = on("n2", taskAttempt(task, undefined, 3, 0), { state: "Exited", exitCode: 0 });
    const appEnded = on("n1", newInstance(app, 0, 0, 0), { state: "Exited", exitCode: 0 });
    const all = [ended, running, elsewhere, appEnded];
    expect(keepLogsFor("n1", all)).toEqual([ended.metadata.uid]);
    expect(keepLogsFor("n2", all)).toEqual([elsewhere.metadata.uid]);
    expect(desiredFor("n1", all).map((s) => s.uid)).toEqual([running.metadata.uid]);
  });
});
