import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { etcdArgs, tailFile, waitForHealthy } from "./etcd-process";

test("etcdArgs: a one-member cluster on loopback with separate client and peer ports", () => {
  const args = etcdArgs({ name: "grove", dataDir: "/d/etcd", clientPort: 12379, peerPort: 12380 });
  expect(args).toEqual(
    expect.arrayContaining([
      "--name=grove",
      "--data-dir=/d/etcd",
      "--listen-client-urls=http://127.0.0.1:12379",
      "--advertise-client-urls=http://127.0.0.1:12379",
      "--listen-peer-urls=http://127.0.0.1:12380",
      "--initial-advertise-peer-urls=http://127.0.0.1:12380",
      "--initial-cluster=grove=http://127.0.0.1:12380",
      "--initial-cluster-state=new",
    ]),
  );
  expect(args.some((a) => a.startsWith("--quota-backend-bytes"))).toBe(false);
  expect(args).toEqual(expect.arrayContaining(["--auto-compaction-mode=periodic", "--auto-compaction-retention=1h"]));
  expect(etcdArgs({ name: "g", dataDir: "/d", clientPort: 1, peerPort: 2, quotaBackendBytes: 1024 })).toContain(
    "--quota-backend-bytes=1024",
  );
});

test("etcdArgs: auto-compaction retention can be changed or turned off, and a bad one is refused", () => {
  const base = { name: "g", dataDir: "/d", clientPort: 1, peerPort: 2 };
  expect(etcdArgs({ ...base, autoCompactionRetention: "30m" })).toContain("--auto-compaction-retention=30m");
  expect(etcdArgs({ ...base, autoCompactionRetention: "0" }).some((a) => a.startsWith("--auto-compaction"))).toBe(
    false,
  );
  expect(() => etcdArgs({ ...base, autoCompactionRetention: "soon" })).toThrow(/auto-compaction retention "soon"/);
});

test("tailFile returns the end of a file, or empty when it is missing", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-process-test-"));
  try {
    const file = path.join(dir, "log");
    fs.writeFileSync(file, "a".repeat(100) + "THE END");
    expect(tailFile(file, 7)).toBe("THE END");
    expect(tailFile(file)).toHaveLength(107);
    expect(tailFile(path.join(dir, "missing"))).toBe("");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("waitForHealthy stops as soon as the caller gives up", async () => {
  await expect(waitForHealthy("http://127.0.0.1:1", 10_000, () => "etcd exited (code 1)")).rejects.toThrow(
    "etcd exited (code 1)",
  );
});

test("waitForHealthy polls until its time budget is spent, then says how long it waited", async () => {
  const start = performance.now();
  await expect(waitForHealthy("http://127.0.0.1:1", 400)).rejects.toThrow(
    "etcd at http://127.0.0.1:1 not healthy after 400 ms",
  );
  const took = performance.now() - start;
  expect(took).toBeGreaterThanOrEqual(250); // kept polling (every 100 ms), did not give up at the first refusal
  expect(took).toBeLessThan(5_000);
});
