// A leader-election probe run as its own process, so tests can SIGSTOP it or
// cut it from etcd: it campaigns with the control plane's LeaderElection and,
// while it leads, writes through two fenced views of the real EtcdStore on
// request. Usage: node fence-probe.js ENDPOINTS NAME TTL_SECONDS. Every event
// is one JSON line on stdout with the time on the monotonic clock (ms):
//   {"event":"elected","epoch":"…"}, {"event":"lost"},
//   {"event":"write","key":…,"view":"fenced"|"etcd-only","ok":true|false,"where":…,"code":…}
// Stdin lines "write KEY" write KEY through both views: "fenced" is the view
// the controllers get (local deadline check, then the etcd compare),
// "etcd-only" the same compare without the local check, to prove etcd itself
// rejects a former leader's write.
import * as readline from "node:readline";
import { FencedStore, LeaderElection, createStore, isFencedOut, type LeaderFence } from "@grove/control-plane";

const [endpointList, name, ttl] = process.argv.slice(2);
const endpoints = endpointList!.split(",");
const out = (o: object) => process.stdout.write(`${JSON.stringify({ t: performance.now(), ...o })}\n`);
const store = createStore(endpoints, { callTimeoutMs: 2000 });
let fence: LeaderFence | undefined;
const election = new LeaderElection(
  { endpoints, name: name!, ttlSeconds: Number(ttl) },
  {
    onElected: (f) => {
      fence = f;
      out({ event: "elected", epoch: f.epoch, key: f.key });
    },
    onLost: () => out({ event: "lost" }),
  },
);

async function write(key: string, view: "fenced" | "etcd-only", f: LeaderFence): Promise<void> {
  const s = new FencedStore(store, view === "fenced" ? f : { key: f.key, epoch: f.epoch, holds: () => true });
  try {
    await s.txn([], [{ type: "put", key, value: { by: process.pid, view } }]);
    out({ event: "write", key, view, ok: true });
  } catch (err) {
    const e = err as { code?: string; where?: string; message: string };
    out({
      event: "write",
      key,
      view,
      ok: false,
      fenced: isFencedOut(err),
      where: e.where,
      code: e.code,
      err: e.message,
    });
  }
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const [cmd, key] = line.trim().split(/\s+/);
  if (cmd === "write" && key && fence) {
    const f = fence;
    void write(`${key}-fenced`, "fenced", f).then(() => write(`${key}-etcd-only`, "etcd-only", f));
  } else if (cmd === "write") out({ event: "write", key, ok: false, err: "never elected" });
  else if (cmd === "exit") void election.close().then(() => store.close().then(() => process.exit(0)));
});
void election.start();
out({ event: "started", pid: process.pid });
