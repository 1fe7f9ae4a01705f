// The first CNI ADDs on a fresh node, at once, through the agent's CniCaller with the real
// plugins (Debian containernetworking-plugins) and its default network list: bridge with
// host-local IPAM, firewall, portmap. Each round is a fresh node: a network namespace of its
// own (no bridge, no GROVE-ADMIN chain yet) and two container namespaces; a process inside the
// node's namespace starts both ADDs together (test/src/harness/cni-adds.ts). The firewall
// plugin checks for its chains, then creates them: two first ADDs at once failed with
// `iptables -N GROVE-ADMIN: File exists` (2 of 13 quickstarts; here, with CniCaller's
// serialization taken out (added = true in the compiled cni.js), this test failed in each of 4
// runs: 6 of 16 held rounds, below). Traffic: none; namespaces are this test's own.
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { RUN_TAG, tempDir } from "./harness/run-id";

const REPO = path.resolve(__dirname, "../..");
const SCRIPT = path.join(REPO, "test/dist/src/harness/cni-adds.js");
const ROUNDS = 8;
const ADDS = 2;

let tmp: string;
const made: string[] = [];

function netns(name: string): string {
  execFileSync("ip", ["netns", "add", name]);
  made.push(name);
  return `/run/netns/${name}`;
}

/**
 * A PATH whose `iptables` holds a chain's creation (`-N CHAIN`) for up to 300 ms until a
 * second creation of the same chain on the same node arrives, then lets both go on at once
 * (a FIFO: within a millisecond);
 * everything else is the real iptables, found through PATH as the plugins find it. The race
 * is two `iptables -N` of one chain inside the same few milliseconds (iptables-nft: both
 * read the ruleset without it, the second commit fails with File exists, exit status 4,
 * which the firewall plugin does not take for "exists"). The ADDs of a round reach the
 * firewall plugin some 80 ms apart (the bridge and IPAM steps), so without the hold the
 * real iptables raced in about one round of 40.
 */
let holdPath: string;

beforeAll(() => {
  tmp = tempDir("grove-cni-first");
  const real = execFileSync("sh", ["-c", "command -v iptables"], { encoding: "utf8" }).trim();
  const bin = path.join(tmp, "hold-bin");
  fs.mkdirSync(bin);
  fs.writeFileSync(
    path.join(bin, "iptables"),
    [
      "#!/bin/sh",
      'chain=""; prev=""',
      'for a in "$@"; do [ "$prev" = "-N" ] && chain=$a; prev=$a; done',
      'if [ -n "$chain" ] && [ -n "$GROVE_TEST_IPT_HOLD" ]; then',
      '  f="$GROVE_TEST_IPT_HOLD/$chain"',
      // The first creation makes a FIFO and waits on it; a second opens it and both go on.
      '  if mkfifo "$f" 2>/dev/null; then timeout 0.3 sh -c \'read x < "$1"\' _ "$f"',
      '  else timeout 0.3 sh -c \'echo go > "$1"\' _ "$f"; fi',
      "fi",
      `exec ${real} "$@"`,
      "",
    ].join("\n"),
    { mode: 0o755 },
  );
  holdPath = `${bin}:${process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin"}`;
});

afterAll(() => {
  for (const n of made.reverse()) spawnSync("ip", ["netns", "del", n]);
  for (const n of made) expect(fs.existsSync(`/run/netns/${n}`)).toBe(false);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

it(`${ADDS} first ADDs at once on a fresh node all succeed (${ROUNDS} fresh nodes)`, () => {
  const failures: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const node = `gcni-${RUN_TAG}-n${round}`;
    netns(node);
    const containers = Array.from({ length: ADDS }, (_, i) => netns(`gcni-${RUN_TAG}-n${round}c${i}`));
    const dir = path.join(tmp, `n${round}`);
    // Odd rounds: creations held until a second one arrives (above).
    const hold = round % 2 === 1 ? path.join(tmp, `hold-n${round}`) : undefined;
    if (hold !== undefined) fs.mkdirSync(hold);
    const r = spawnSync(
      "ip",
      [
        "netns",
        "exec",
        node,
        process.execPath,
        SCRIPT,
        "10.231.0.0/24",
        path.join(dir, "ipam"),
        path.join(dir, "cache"),
        ...containers,
      ],
      {
        encoding: "utf8",
        timeout: 60_000,
        env: hold ? { ...process.env, PATH: holdPath, GROVE_TEST_IPT_HOLD: hold } : process.env,
      },
    );
    expect({ round, status: r.status, stderr: r.stderr }).toEqual({ round, status: 0, stderr: "" });
    const results = JSON.parse(r.stdout) as { ok: boolean; ip?: string; error?: string }[];
    for (const x of results) if (!x.ok) failures.push(`round ${round}${hold ? " (held)" : ""}: ${x.error}`);
    if (results.every((x) => x.ok)) {
      // An address of the subnet each, all different.
      expect(new Set(results.map((x) => x.ip)).size).toBe(ADDS);
      for (const x of results) expect(x.ip).toMatch(/^10\.231\.0\.\d+\/24$/);
    }
    // The chain the race was about exists on the node, once.
    const chains = execFileSync("ip", ["netns", "exec", node, "iptables", "-w", "-S"], { encoding: "utf8" });
    expect(chains.split("\n").filter((l) => l === "-N GROVE-ADMIN")).toHaveLength(1);
  }
  expect(failures).toEqual([]);
}, 180_000);
