import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { KeyRing } from "./key-ring";

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-keyring-"))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test("the key file is made at first use, mode 0600, and envelopes name their key", () => {
  const file = path.join(dir, "keys.json");
  const ring = KeyRing.openOrCreate(file);
  expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  const env = ring.encrypt(Buffer.from("hunter2"), "/grove/secrets/a/db");
  expect(env.keyId).toBe(ring.primaryId);
  expect(JSON.stringify(env)).not.toContain("hunter2");
  expect(ring.decrypt(env, "/grove/secrets/a/db").toString()).toBe("hunter2");
});

test("an envelope does not open under another Secret's key (no swapping ciphertexts)", () => {
  const ring = KeyRing.openOrCreate(path.join(dir, "keys.json"));
  const env = ring.encrypt(Buffer.from("x"), "/grove/secrets/a/db");
  expect(() => ring.decrypt(env, "/grove/secrets/b/db")).toThrow();
});

test("after a rotation old envelopes still open and new ones use the new key; another process sees it", () => {
  const file = path.join(dir, "keys.json");
  const ring = KeyRing.openOrCreate(file);
  const other = KeyRing.openOrCreate(file);
  const old = ring.encrypt(Buffer.from("old"), "k");
  const first = ring.primaryId;
  const id = ring.rotate();
  expect(id).not.toBe(first);
  const neu = ring.encrypt(Buffer.from("new"), "k");
  expect(neu.keyId).toBe(id);
  expect(ring.decrypt(old, "k").toString()).toBe("old");
  // `other` loaded the file before the rotation: it reads the new key when it meets it.
  expect(other.decrypt(neu, "k").toString()).toBe("new");
});
