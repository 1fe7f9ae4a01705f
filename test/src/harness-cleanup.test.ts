// The harness's tear-downs report what they could not remove instead of
// swallowing it: every step runs, then one AggregateError names each failure.
// Removing what is already gone is not a failure. And waitFor() stops at once
// when its condition says the awaited state can no longer come.

import * as fs from "node:fs";
import * as path from "node:path";
import { Cleanup, linkGone } from "./harness/cleanup";
import { HostCluster } from "./harness/hosts";
import { GiveUp, tempDir, waitFor } from "./harness/processes";
import { RUN_TAG } from "./harness/run-id";

let dir = "";
afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test("Cleanup runs every step, then throws one AggregateError naming each failure", async () => {
  dir = tempDir(`grove-cleanup-${RUN_TAG}`);
  fs.writeFileSync(path.join(dir, "left"), "");
  const c = new Cleanup("a test fixture");
  const ran: string[] = [];
  await c.step("first", () => {
    ran.push("first");
    throw new Error("the first step broke");
  });
  // Deleting a link that is not there, and saying so: not a failure.
  await c.command("ip", ["link", "del", `gvc${RUN_TAG}`.slice(0, 15)], () => linkGone(`gvc${RUN_TAG}`));
  // Failing to delete something that is still there: a failure, with the command's message.
  await c.command("rmdir", [dir], () => !fs.existsSync(dir));
  await c.step("last", () => void ran.push("last"));
  expect(ran).toEqual(["first", "last"]);
  expect(c.failed).toBe(2);
  let thrown: unknown;
  try {
    c.finish();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(AggregateError);
  const agg = thrown as AggregateError;
  expect(agg.message).toMatch(/^a test fixture: 2 clean-up step\(s\) failed/);
  expect(agg.errors.map((e: Error) => e.message)).toEqual([
    "first: the first step broke",
    expect.stringMatching(/^rmdir \/.*: rmdir: failed to remove .*Directory not empty$/),
  ]);
  expect(new Cleanup("nothing failed").finish()).toBeUndefined();
});

test("HostCluster.destroy() reports a failed step and still removes everything else", async () => {
  const cluster = await HostCluster.start({ hosts: 1, id: `${RUN_TAG}c` });
  const host = cluster.hosts[0]!;
  const agent = host.agent!;
  // The agent's stop fails (after really stopping it, so nothing is left running).
  agent.stop = async () => {
    await agent.kill9();
    throw new Error("could not stop the agent");
  };
  await expect(cluster.destroy()).rejects.toThrow(
    new RegExp(
      `^HostCluster ${RUN_TAG}c: 1 clean-up step\\(s\\) failed:\n {2}stop the agent of h1: could not stop the agent$`,
    ),
  );
  expect(linkGone(cluster.bridge)).toBe(true);
  expect(linkGone(host.veth)).toBe(true);
  // A second destroy finds everything gone and reports nothing.
  agent.stop = () => Promise.resolve();
  await cluster.destroy();
});

test("waitFor retries ordinary errors until its deadline, but ends at once on GiveUp, naming both", async () => {
  let calls = 0;
  await expect(
    waitFor(
      "a flaky condition",
      () => {
        calls++;
        throw new Error("not yet");
      },
      300,
    ),
  ).rejects.toThrow("timed out waiting for a flaky condition: Error: not yet");
  expect(calls).toBeGreaterThan(1);

  calls = 0;
  const t0 = performance.now();
  await expect(
    waitFor(
      "x to be Running",
      () => {
        calls++;
        throw new GiveUp("x ended Failed: ImagePullFailed no such image");
      },
      60_000,
    ),
  ).rejects.toThrow("gave up waiting for x to be Running: x ended Failed: ImagePullFailed no such image");
  expect(calls).toBe(1);
  expect(performance.now() - t0).toBeLessThan(5000);
});
