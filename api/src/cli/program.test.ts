import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { GroveError } from "../errors";
import type { App, Instance, Node, WatchEvent } from "../schemas";
import type { Kind } from "../resource-kinds";
import { run } from "./main";
import type { CliClient, CliDeps } from "./program";
import { app, FIXED_NOW, instance } from "./render/testing";

type AnyObject = App | Instance | Node;

/** An in-memory control plane that records what the CLI asked of it. */
class FakeClient {
  readonly objects = new Map<string, AnyObject>();
  readonly calls: string[] = [];
  watchEvents: WatchEvent<AnyObject>[] = [];
  /** Keep a watch open after its events until close(), as a server does. */
  holdWatchOpen = false;
  openWatches = 0;
  private uid = 0;

  private key(kind: Kind, name: string, namespace?: string): string {
    return kind === "Node" ? `Node//${name}` : `${kind}/${namespace ?? "default"}/${name}`;
  }

  put(object: AnyObject): void {
    this.objects.set(this.key(object.kind as Kind, object.metadata.name, object.metadata.namespace), object);
  }

  async list(kind: Kind, options: { namespace?: string; allNamespaces?: boolean } = {}) {
    this.calls.push(`list ${kind} ${options.allNamespaces || kind === "Node" ? "*" : options.namespace}`);
    const items = [...this.objects.values()].filter(
      (o) =>
        o.kind === kind && (kind === "Node" || options.allNamespaces || o.metadata.namespace === options.namespace),
    );
    return { apiVersion: "grove/v1", kind: `${kind}List`, metadata: { resourceVersion: "41" }, items };
  }

  async get(kind: Kind, name: string, namespace?: string) {
    this.calls.push(`get ${kind} ${namespace ?? "-"} ${name}`);
    const found = this.objects.get(this.key(kind, name, namespace));
    if (!found) throw new GroveError("NotFound", `${kind} "${name}" not found`);
    return found;
  }

  async apply(object: App | Node) {
    this.calls.push(`apply ${object.kind} ${object.metadata.namespace ?? "-"} ${object.metadata.name}`);
    const key = this.key(object.kind as Kind, object.metadata.name, object.metadata.namespace);
    const existing = this.objects.get(key);
    const stored = { ...object, metadata: { ...object.metadata, uid: existing?.metadata.uid ?? `uid-${++this.uid}` } };
    this.objects.set(key, stored as AnyObject);
    return { object: stored, created: !existing };
  }

  async delete(kind: Kind, name: string, namespace?: string) {
    this.calls.push(`delete ${kind} ${namespace ?? "-"} ${name}`);
    const key = this.key(kind, name, namespace);
    const found = this.objects.get(key);
    if (!found) throw new GroveError("NotFound", `${kind} "${name}" not found`);
    this.objects.delete(key);
    return found;
  }

  async watch(kind: Kind, options: { resourceVersion?: string }) {
    this.calls.push(`watch ${kind} from ${options.resourceVersion}`);
    const events = this.watchEvents;
    const hold = this.holdWatchOpen;
    let closed = () => undefined as void;
    const closing = new Promise<void>((resolve) => (closed = resolve));
    this.openWatches++;
    const onClose = () => this.openWatches--;
    return {
      closed: false,
      close() {
        if (!this.closed) onClose();
        this.closed = true;
        closed();
      },
      async *[Symbol.asyncIterator]() {
        yield* events;
        if (hold) await closing;
      },
    };
  }
}

const HELLO = `apiVersion: grove/v1
kind: App
metadata:
  name: hello
spec:
  rootfs: busybox
  command: ["sleep", "1000"]
  instances: 2
`;

describe("grove CLI", () => {
  let dir: string;
  let client: FakeClient;
  let out: string[];
  let err: string[];
  let now: number;
  let onSleep: () => void;
  /** A sleep of exactly this long (a --wait deadline) lasts until it is aborted. */
  let endlessSleepMs: number | undefined;
  let env: NodeJS.ProcessEnv;

  const deps = (): CliDeps => ({
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env,
    home: dir,
    makeClient: () => client as unknown as CliClient,
    now: () => now,
    sleep: async (ms, signal) => {
      if (ms === endlessSleepMs)
        return new Promise<void>((resolve) => signal?.addEventListener("abort", () => resolve()));
      now += ms;
      onSleep();
    },
  });
  const grove = (...args: string[]) => run(args, deps());
  const write = (name: string, text: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-cli-"));
    client = new FakeClient();
    out = [];
    err = [];
    now = FIXED_NOW;
    onSleep = () => undefined;
    endlessSleepMs = undefined;
    env = { GROVE_SERVER: "http://127.0.0.1:7443", GROVE_TOKEN: "t" };
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe("drain and uncordon", () => {
    const n1: Node = { apiVersion: "grove/v1", kind: "Node", metadata: { name: "n1" }, spec: { taints: [] } };
    it("cordons the node with spec.drain, prints progress until nothing is left on it, and uncordons", async () => {
      client.put(n1);
      const a = instance("hello-0", { nodeName: "n1" }, { state: "Running" });
      a.metadata.uid = "a";
      const b = instance("hello-1", { nodeName: "n1", index: 1 }, { state: "Running" });
      b.metadata.uid = "b";
      client.put(a);
      client.put(b);
      let step = 0;
      onSleep = () => {
        step++;
        if (step === 1) {
          // The controller placed a replacement for hello-0 ...
          const r = instance("hello-0-1a2b3", { nodeName: "n2" }, { state: "Running" });
          r.metadata.labels = { "grove.io/replaces": "a" };
          client.put(r);
        } else if (step === 2) {
          client.put({ ...a, status: { state: "Exited", reason: "Drained" } });
          client.put({ ...b, status: { state: "Exited", reason: "DrainTimeout" } });
        }
      };
      expect(await grove("drain", "n1", "--timeout", "90s")).toBe(0);
      expect((client.objects.get("Node//n1") as Node).spec).toEqual({
        taints: [],
        unschedulable: true,
        drain: { timeout: "90s" },
      });
      expect(out).toEqual([
        "node/n1 cordoned; draining (each instance waits up to 90s for its replacement)",
        "2 instance(s) left on n1, 0 moving: hello-0, hello-1",
        "2 instance(s) left on n1, 1 moving: hello-0, hello-1",
        "node/n1 drained",
      ]);
      expect(await grove("uncordon", "n1")).toBe(0);
      expect((client.objects.get("Node//n1") as Node).spec).toEqual({ taints: [] });
    });

    it("rejects a timeout that is not whole seconds, and changes nothing", async () => {
      client.put(n1);
      expect(await grove("drain", "n1", "--timeout", "1500ms")).toBe(1);
      expect(err.join("\n")).toContain("--timeout: give whole seconds");
      expect(client.calls).toEqual([]);
    });
  });

  describe("scale", () => {
    it("sets spec.instances and keeps the rest of the spec", async () => {
      const a = app("hello", 2);
      client.put(a);
      expect(await grove("scale", "hello", "5")).toBe(0);
      expect((client.objects.get("App/default/hello") as App).spec).toEqual({ ...a.spec, instances: 5 });
      expect(out).toEqual(["app/hello scaled from 2 to 5"]);
    });

    it("refuses a count that is not a whole number, and changes nothing", async () => {
      client.put(app("hello", 2));
      expect(await grove("scale", "hello", "-1")).toBe(1);
      expect(await grove("scale", "hello", "2.5")).toBe(1);
      expect(err.join("\n")).toContain("<count>: give a whole number from 0 to 10000");
      expect(client.calls).toEqual([]);
    });
  });

  describe("argument parsing", () => {
    it("rejects a missing kind with commander's message and exit code 1", async () => {
      expect(await grove("get")).toBe(1);
      expect(err.join("\n")).toMatch(/error: missing required argument 'kind'/);
      expect(client.calls).toEqual([]);
    });

    it("rejects an unknown output format", async () => {
      expect(await grove("get", "apps", "-o", "xml")).toBe(1);
      expect(err.join("\n")).toMatch(/argument 'xml' is invalid\. Allowed choices are table, wide, yaml, json/);
    });

    it("rejects an unknown kind, naming the known ones", async () => {
      expect(await grove("get", "pods")).toBe(1);
      expect(err).toEqual([
        'error: unknown kind "pods" (known kinds: App, Instance, Node, Task; also written app(s), instance(s)/inst, node(s), task(s))',
      ]);
    });

    it("requires -f for apply", async () => {
      expect(await grove("apply")).toBe(1);
      expect(err.join("\n")).toMatch(/required option '-f, --filename <path\.\.\.>' not specified/);
    });

    it("prints help and exits 0", async () => {
      expect(await grove("--help")).toBe(0);
      expect(out.join("\n")).toMatch(/Usage: grove \[options\] \[command\]/);
    });

    it("reads connection flags before or after the command and says when nothing is configured", async () => {
      env = {};
      expect(await grove("get", "apps")).toBe(1);
      expect(err).toEqual([
        "error: no control plane configured: run deploy/quickstart.sh or set GROVE_SERVER and GROVE_TOKEN",
      ]);
      err = [];
      expect(await grove("--server", "http://x:1", "get", "apps", "--token", "t", "-n", "team-a")).toBe(0);
      expect(client.calls).toEqual(["list App team-a"]);
    });
  });

  describe("apply", () => {
    it("reports created, unchanged and configured", async () => {
      const file = write("hello.yaml", HELLO);
      expect(await grove("apply", "-f", file)).toBe(0);
      expect(await grove("apply", "-f", file)).toBe(0);
      write("hello.yaml", HELLO.replace("instances: 2", "instances: 3"));
      expect(await grove("apply", "-f", file)).toBe(0);
      expect(out).toEqual(["app/hello created", "app/hello unchanged", "app/hello configured"]);
      expect(client.calls.filter((c) => c.startsWith("apply"))).toEqual([
        "apply App default hello",
        "apply App default hello",
      ]);
    });

    it("puts apps without a namespace into -n's namespace and never sends status", async () => {
      const file = write("hello.yaml", HELLO + "status:\n  running: 9\n");
      expect(await grove("apply", "-f", file, "-n", "team-a")).toBe(0);
      const stored = client.objects.get("App/team-a/hello") as App;
      expect(stored.metadata.namespace).toBe("team-a");
      expect(stored.status).toBeUndefined();
    });

    it("prints every manifest problem and sends nothing", async () => {
      write("a.yaml", HELLO.replace("instances: 2", "instances: two"));
      write(
        "b.yaml",
        `${HELLO.replace("name: hello", "name: ok")}---\n${HELLO.replace("kind: App", "kind: Instance")}`,
      );
      expect(await grove("apply", "-f", dir)).toBe(1);
      expect(client.calls).toEqual([]);
      expect(err[0]).toMatch(/^error: 2 problems in manifests:/);
      const text = err.join("\n");
      expect(text).toContain(`${path.join(dir, "a.yaml")}:8:14: spec.instances: Expected integer`);
      expect(text).toContain(`${path.join(dir, "b.yaml")}:11:7: kind: kind Instance cannot be submitted`);
    });

    it("--wait follows the instances' watch from the list's revision, printing progress until every instance runs", async () => {
      const file = write("hello.yaml", HELLO);
      endlessSleepMs = 60_000; // the default --timeout: only the watch can end this wait
      client.holdWatchOpen = true;
      // The fake gives the App uid-1; its instances arrive as watch events.
      client.watchEvents = [
        { type: "ADDED", object: instance("hello-0", { appUid: "uid-1" }, { state: "Running" }) },
        { type: "ADDED", object: instance("hello-1", { appUid: "uid-1", index: 1 }, { state: "Starting" }) },
        { type: "MODIFIED", object: instance("hello-1", { appUid: "uid-1", index: 1 }, { state: "Running" }) },
      ];
      expect(await grove("apply", "-f", file, "--wait")).toBe(0);
      expect(out).toEqual([
        "app/hello created",
        "app/hello: 0/2 running",
        "app/hello: 1/2 running",
        "app/hello: 1/2 running (hello-1 Starting)",
        "app/hello: 2/2 running",
      ]);
      expect(client.calls.slice(-2)).toEqual(["list Instance default", "watch Instance from 41"]);
      expect(client.openWatches).toBe(0);
    });

    it("--wait lists again when the watch ends, and ignores bookmark lines", async () => {
      const file = write("hello.yaml", HELLO.replace("instances: 2", "instances: 1"));
      endlessSleepMs = 60_000;
      client.watchEvents = [{ type: "BOOKMARK", object: {} } as unknown as WatchEvent<AnyObject>];
      onSleep = () => client.put(instance("hello-0", { appUid: "uid-1" }, { state: "Running" }));
      expect(await grove("apply", "-f", file, "--wait")).toBe(0);
      expect(out).toEqual(["app/hello created", "app/hello: 0/1 running", "app/hello: 1/1 running"]);
      expect(client.calls.filter((c) => c.includes("Instance"))).toEqual([
        "list Instance default",
        "watch Instance from 41",
        "list Instance default",
      ]);
    });

    it("--wait times out naming what blocks the app", async () => {
      const file = write("hello.yaml", HELLO);
      onSleep = () => {
        const uid = (client.objects.get("App/default/hello") as App).metadata.uid as string;
        client.put(
          instance(
            "hello-0",
            { appUid: uid },
            { state: "Pending", explain: { nodesConsidered: 1, rejected: { memory: 1 } } },
          ),
        );
      };
      expect(await grove("apply", "-f", file, "--wait", "--timeout", "3s")).toBe(1);
      expect(err).toEqual([
        "error: timed out after 3s waiting for app/hello: hello-0 Pending: memory: insufficient on 1 of 1 nodes",
      ]);
      expect(now - FIXED_NOW).toBe(3000);
    });

    it("rejects a bad --timeout before sending anything", async () => {
      expect(await grove("apply", "-f", write("hello.yaml", HELLO), "--wait", "--timeout", "soon")).toBe(1);
      expect(err).toEqual(['error: invalid duration "soon": use e.g. 30s, 2m, 1h or 500ms']);
      expect(client.calls).toEqual([]);
    });
  });

  describe("get", () => {
    beforeEach(() => {
      client.put({ ...app("hello", 2), status: { running: 1 } });
      client.put(app("other", 1, { namespace: "team-a" }));
    });

    it("prints a table for the namespace", async () => {
      expect(await grove("get", "apps")).toBe(0);
      expect(out).toEqual(["NAME    INSTANCES   RUNNING   AGE", "hello   2           1         30s"]);
    });

    it("adds a NAMESPACE column with -A", async () => {
      expect(await grove("get", "app", "-A")).toBe(0);
      expect(out[0]).toMatch(/^NAMESPACE +NAME +INSTANCES/);
      expect(out.slice(1).map((l) => l.split(/ +/).slice(0, 2).join(" "))).toEqual(["default hello", "team-a other"]);
    });

    it("prints exactly {items} for -o json of a list", async () => {
      expect(await grove("get", "apps", "-o", "json")).toBe(0);
      expect(out).toHaveLength(1);
      expect(out[0]).toBe(JSON.stringify({ items: [client.objects.get("App/default/hello")] }, null, 2));
    });

    it("prints the object itself for one name, also as KIND/NAME", async () => {
      expect(await grove("get", "app/hello", "-o", "json")).toBe(0);
      expect(JSON.parse(out[0] as string)).toEqual(client.objects.get("App/default/hello"));
      out = [];
      expect(await grove("get", "app", "hello", "-o", "yaml")).toBe(0);
      expect(out[0]).toMatch(/^apiVersion: grove\/v1\nkind: App\nmetadata:\n {2}name: hello/);
    });

    it("fails with the server's NotFound message for a missing name", async () => {
      expect(await grove("get", "app", "nope")).toBe(1);
      expect(err).toEqual(['error: App "nope" not found']);
    });

    it("says when there is nothing to list", async () => {
      expect(await grove("get", "inst")).toBe(0);
      expect(out).toEqual([]);
      expect(err).toEqual(["No instances found in namespace default."]);
    });

    it("-w prints the table, then a row per change, from the list's revision", async () => {
      client.watchEvents = [
        { type: "MODIFIED", object: { ...app("hello", 3), status: { running: 2 } } },
        { type: "BOOKMARK", object: { metadata: { resourceVersion: "50" } } } as unknown as WatchEvent<AnyObject>,
        { type: "DELETED", object: { ...app("hello", 3), status: { running: 3 } } },
      ];
      expect(await grove("get", "apps", "-w")).toBe(0);
      expect(out).toEqual([
        "NAME    INSTANCES   RUNNING   AGE",
        "hello   2           1         30s",
        "hello   3           2         30s",
        "hello   3           3         30s",
      ]);
      expect(client.calls).toEqual(["list App default", "watch App from 41"]);
    });

    it("-w -o json prints one event per line", async () => {
      const event: WatchEvent<AnyObject> = { type: "ADDED", object: app("new", 1) };
      client.watchEvents = [event];
      expect(await grove("get", "apps", "-w", "-o", "json")).toBe(0);
      expect(out[out.length - 1]).toBe(JSON.stringify(event));
    });

    it("-w stops with an error on an ERROR event", async () => {
      client.watchEvents = [
        { type: "ERROR", object: { code: "Gone", message: "revision compacted" } as unknown as App },
      ];
      expect(await grove("get", "apps", "-w")).toBe(1);
      expect(err).toEqual(["error: watch ended by the server: revision compacted"]);
    });
  });

  describe("describe", () => {
    it("shows an app with its instances and the placement of pending ones", async () => {
      client.put({ ...app("hello", 1), metadata: { ...app("hello", 1).metadata, uid: "u-1" } });
      client.put(
        instance("hello-0", {}, { state: "Pending", explain: { nodesConsidered: 1, rejected: { memory: 1 } } }),
      );
      client.put(instance("other-0", { app: "other" }, { state: "Running" }));
      expect(await grove("describe", "app", "hello")).toBe(0);
      const text = out.join("\n");
      expect(text).toMatch(/^Name: +hello$/m);
      expect(text).toContain("hello-0: Pending: memory: insufficient on 1 of 1 nodes");
      expect(text).not.toContain("other-0");
    });

    it("needs a name", async () => {
      expect(await grove("describe", "node")).toBe(1);
      expect(err).toEqual(["error: describe needs a name: grove describe node NAME"]);
    });
  });

  describe("delete", () => {
    it("deletes by kind and name", async () => {
      client.put(app("hello", 1));
      expect(await grove("delete", "app", "hello")).toBe(0);
      expect(out).toEqual(["app/hello deleted"]);
      expect(client.objects.size).toBe(0);
    });

    it("fails on a missing object unless --ignore-not-found", async () => {
      expect(await grove("delete", "app", "nope")).toBe(1);
      expect(err).toEqual(["error: app/nope not found in namespace default"]);
      err = [];
      expect(await grove("delete", "node/n9", "--ignore-not-found")).toBe(0);
      expect(err).toEqual([]);
      expect(out).toEqual([]);
    });

    it("deletes what manifests describe, continuing past missing ones", async () => {
      const file = write("two.yaml", `${HELLO}---\n${HELLO.replace("name: hello", "name: gone")}`);
      client.put(app("hello", 1));
      expect(await grove("delete", "-f", file)).toBe(1);
      expect(out).toEqual(["app/hello deleted"]);
      expect(err).toEqual(["error: app/gone not found in namespace default"]);
      expect(await grove("delete", "-f", file, "--ignore-not-found")).toBe(0);
    });

    it("refuses both -f and a kind", async () => {
      expect(await grove("delete", "app", "x", "-f", write("h.yaml", HELLO))).toBe(1);
      expect(err).toEqual(["error: give either -f FILE or KIND NAME, not both"]);
    });
  });
});
