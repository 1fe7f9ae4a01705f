import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CLUSTER_STATE_FILE, DesiredStateGuard, judge } from "./desired-state-guard";

describe("judge", () => {
  const known = { clusterId: "c-1", revision: "100" };

  it("accepts anything on a node that never applied a set", () => {
    expect(judge(undefined, { clusterId: "c-1", revision: "5" })).toEqual({ accept: true });
    expect(judge(undefined, { clusterId: "", revision: "0" })).toEqual({ accept: true });
  });

  it("accepts the same cluster at the same or a newer revision", () => {
    expect(judge(known, { clusterId: "c-1", revision: "100" })).toEqual({ accept: true });
    expect(judge(known, { clusterId: "c-1", revision: "101" })).toEqual({ accept: true });
    // Revisions are 64-bit: compared as integers, not strings or doubles.
    expect(judge({ clusterId: "c-1", revision: "9" }, { clusterId: "c-1", revision: "10" })).toEqual({ accept: true });
    const big = { clusterId: "c-1", revision: "9007199254740993" };
    expect(judge(big, { clusterId: "c-1", revision: "9007199254740992" })).toMatchObject({ accept: false });
  });

  it("refuses another cluster, naming both ids and the way out", () => {
    const v = judge(known, { clusterId: "c-2", revision: "3" });
    expect(v).toMatchObject({ accept: false, reason: "OtherCluster" });
    expect(!v.accept && v.message).toMatch(/cluster c-2 .*belongs to cluster c-1.*--join-new-cluster/);
  });

  it("refuses an older revision of the same cluster", () => {
    const v = judge(known, { clusterId: "c-1", revision: "99" });
    expect(v).toMatchObject({ accept: false, reason: "StaleRevision" });
    expect(!v.accept && v.message).toMatch(/revision 99: this node applied revision 100/);
  });

  it("refuses a set without a cluster id once the node belongs to one", () => {
    expect(judge(known, { clusterId: "", revision: "500" })).toMatchObject({ accept: false, reason: "NoClusterId" });
  });

  it("with joinNewCluster accepts another cluster, but never an older revision of its own", () => {
    expect(judge(known, { clusterId: "c-2", revision: "1" }, true)).toEqual({ accept: true });
    expect(judge(known, { clusterId: "c-1", revision: "1" }, true)).toMatchObject({ reason: "StaleRevision" });
  });
});

describe("judge: leader epochs", () => {
  const known = { clusterId: "c-1", revision: "100", epoch: "40" };

  it("refuses a set of an older leader epoch, naming both epochs", () => {
    const v = judge(known, { clusterId: "c-1", revision: "120", leaderEpoch: "39" });
    expect(v).toMatchObject({ accept: false, reason: "StaleEpoch" });
    expect(!v.accept && v.message).toMatch(/leader epoch 39: this node has seen epoch 40/);
  });

  it("accepts the same or a newer epoch, and a replica that knows no leader yet (0)", () => {
    expect(judge(known, { clusterId: "c-1", revision: "100", leaderEpoch: "40" })).toEqual({ accept: true });
    expect(judge(known, { clusterId: "c-1", revision: "101", leaderEpoch: 41 })).toEqual({ accept: true });
    expect(judge(known, { clusterId: "c-1", revision: "101", leaderEpoch: 0 })).toEqual({ accept: true });
  });
});

describe("DesiredStateGuard", () => {
  it("remembers the newest leader epoch across restarts and refuses older ones", () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), "grove-guard-epoch-"));
    try {
      const g = new DesiredStateGuard({ stateDir: d });
      expect(g.admit({ clusterId: "c-1", revision: "10", leaderEpoch: "7" })).toEqual({ accept: true });
      // A newer epoch alone (same revision) is recorded too.
      expect(g.admit({ clusterId: "c-1", revision: "10", leaderEpoch: "9" })).toEqual({ accept: true });
      expect(JSON.parse(fs.readFileSync(path.join(d, CLUSTER_STATE_FILE), "utf8"))).toEqual({
        clusterId: "c-1",
        revision: "10",
        epoch: "9",
      });
      const restarted = new DesiredStateGuard({ stateDir: d });
      expect(restarted.admit({ clusterId: "c-1", revision: "11", leaderEpoch: "7" })).toMatchObject({
        accept: false,
        reason: "StaleEpoch",
      });
      expect(restarted.condition()).toMatchObject({ status: "True", reason: "StaleEpoch" });
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });

  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-guard-"))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("remembers the cluster and the highest revision applied across restarts", () => {
    const g = new DesiredStateGuard({ stateDir: dir });
    expect(g.admit({ clusterId: "c-1", revision: "10" })).toEqual({ accept: true });
    expect(g.admit({ clusterId: "c-1", revision: "12" })).toEqual({ accept: true });
    expect(JSON.parse(fs.readFileSync(path.join(dir, CLUSTER_STATE_FILE), "utf8"))).toEqual({
      clusterId: "c-1",
      revision: "12",
    });

    const restarted = new DesiredStateGuard({ stateDir: dir });
    expect(restarted.state).toEqual({ clusterId: "c-1", revision: "12" });
    expect(restarted.admit({ clusterId: "c-1", revision: "11" })).toMatchObject({ accept: false });
    expect(restarted.admit({ clusterId: "c-9", revision: "50" })).toMatchObject({ accept: false });
    // Refusals change nothing on disk.
    expect(new DesiredStateGuard({ stateDir: dir }).state).toEqual({ clusterId: "c-1", revision: "12" });
  });

  it("reports DesiredStateRefused True while refusing and False once a set is applied", () => {
    const g = new DesiredStateGuard({ stateDir: dir });
    expect(g.condition()).toMatchObject({ type: "DesiredStateRefused", status: "False" });
    g.admit({ clusterId: "c-1", revision: "10" });
    g.admit({ clusterId: "c-2", revision: "1" });
    expect(g.condition()).toMatchObject({ type: "DesiredStateRefused", status: "True", reason: "OtherCluster" });
    g.admit({ clusterId: "c-1", revision: "10" });
    expect(g.condition()).toMatchObject({ status: "False" });
  });

  it("--join-new-cluster moves the node once, then guards the new cluster", () => {
    new DesiredStateGuard({ stateDir: dir }).admit({ clusterId: "old", revision: "500" });
    const g = new DesiredStateGuard({ stateDir: dir, joinNewCluster: true });
    expect(g.admit({ clusterId: "new", revision: "3" })).toEqual({ accept: true });
    expect(g.state).toEqual({ clusterId: "new", revision: "3" });
    // The flag is spent: back to the old cluster is refused.
    expect(g.admit({ clusterId: "old", revision: "900" })).toMatchObject({ accept: false, reason: "OtherCluster" });
  });

  it("a node without a state file accepts the next cluster (the documented way to move it)", () => {
    new DesiredStateGuard({ stateDir: dir }).admit({ clusterId: "old", revision: "500" });
    fs.rmSync(path.join(dir, CLUSTER_STATE_FILE));
    expect(new DesiredStateGuard({ stateDir: dir }).admit({ clusterId: "new", revision: "1" })).toEqual({
      accept: true,
    });
  });

  it("refuses to start on a corrupt state file, naming it", () => {
    fs.writeFileSync(path.join(dir, CLUSTER_STATE_FILE), "{not json");
    expect(() => new DesiredStateGuard({ stateDir: dir })).toThrow(new RegExp(`${CLUSTER_STATE_FILE}: not JSON`));
    fs.writeFileSync(path.join(dir, CLUSTER_STATE_FILE), JSON.stringify({ clusterId: "x", revision: 5 }));
    expect(() => new DesiredStateGuard({ stateDir: dir })).toThrow(/expected \{"clusterId"/);
  });
});
