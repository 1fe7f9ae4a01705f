// Encryption at rest for Secrets, envelope style: every write gets a fresh
// 256-bit data key that encrypts the values (AES-256-GCM); the data key is
// itself encrypted ("wrapped") under a key-encryption key that lives only in
// a file on the control plane host (never in etcd). Each key-encryption key
// has an id; the stored envelope names it, so a rotation adds a key, makes it
// the primary one, and old envelopes still open until they are re-encrypted.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

export const ENCRYPTION_KEYS_FILE = "encryption-keys.json";
const ALG = "AES-256-GCM";

interface KeyFile {
  /** The id new envelopes are written under. */
  primary: string;
  /** id -> base64 of 32 random bytes. */
  keys: Record<string, string>;
}

/** What etcd holds for a Secret's values. */
export interface Envelope {
  alg: typeof ALG;
  /** The key-encryption key the data key is wrapped under. */
  keyId: string;
  /** The data key, AES-256-GCM under the key-encryption key: nonce(12) | tag(16) | ciphertext(32), base64. */
  wrappedKey: string;
  /** The values (JSON), AES-256-GCM under the data key: nonce(12) | tag(16) | ciphertext, base64. */
  ciphertext: string;
}

function seal(key: Buffer, plain: Buffer, aad: string): string {
  const nonce = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", key, nonce);
  c.setAAD(Buffer.from(aad));
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([nonce, c.getAuthTag(), body]).toString("base64");
}

function open(key: Buffer, sealed: string, aad: string): Buffer {
  const raw = Buffer.from(sealed, "base64");
  if (raw.length < 28) throw new Error("sealed value too short");
  const d = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12));
  d.setAAD(Buffer.from(aad));
  d.setAuthTag(raw.subarray(12, 28));
  return Buffer.concat([d.update(raw.subarray(28)), d.final()]);
}

function newKeyId(): string {
  return `k${new Date().toISOString().slice(0, 10).replace(/-/g, "")}-${randomBytes(4).toString("hex")}`;
}

function writeKeyFile(file: string, kf: KeyFile): void {
  // Written beside it and renamed: a crash never leaves a half-written key file.
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(kf, null, 2) + "\n", { mode: 0o600 });
  fs.renameSync(tmp, file);
}

function readKeyFile(file: string): KeyFile {
  const kf = JSON.parse(fs.readFileSync(file, "utf8")) as KeyFile;
  if (typeof kf.primary !== "string" || typeof kf.keys !== "object" || !kf.keys[kf.primary]) {
    throw new Error(`${file}: needs "primary" naming one of "keys"`);
  }
  for (const [id, k] of Object.entries(kf.keys)) {
    if (Buffer.from(k, "base64").length !== 32) throw new Error(`${file}: key ${id} is not 32 bytes of base64`);
  }
  return kf;
}

/**
 * The key-encryption keys, read from their file. The file is read again when
 * an envelope names a key this process does not know and before each write
 * when it changed, so a rotation done by `grove-server rotate-encryption-key`
 * reaches a running server without a restart.
 */
export class KeyRing {
  private kf: KeyFile;
  private mtimeMs: number;

  private constructor(readonly file: string) {
    this.kf = readKeyFile(file);
    this.mtimeMs = fs.statSync(file).mtimeMs;
  }

  /** Opens the key file, creating it (mode 0600, one new key) when it does not exist. */
  static openOrCreate(file: string): KeyRing {
    if (!fs.existsSync(file)) {
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      const id = newKeyId();
      writeKeyFile(file, { primary: id, keys: { [id]: randomBytes(32).toString("base64") } });
    }
    return new KeyRing(file);
  }

  get primaryId(): string {
    this.refresh();
    return this.kf.primary;
  }

  /** Adds a new key and makes it the primary one; answers its id. */
  rotate(): string {
    this.kf = readKeyFile(this.file);
    const id = newKeyId();
    writeKeyFile(this.file, { primary: id, keys: { ...this.kf.keys, [id]: randomBytes(32).toString("base64") } });
    this.refresh(true);
    return id;
  }

  /** Encrypts under the primary key; aad binds the envelope to one Secret (its key in the store). */
  encrypt(plain: Buffer, aad: string): Envelope {
    this.refresh();
    const keyId = this.kf.primary;
    const dek = randomBytes(32);
    return {
      alg: ALG,
      keyId,
      wrappedKey: seal(this.kek(keyId), dek, `${aad}#${keyId}`),
      ciphertext: seal(dek, plain, aad),
    };
  }

  decrypt(env: Envelope, aad: string): Buffer {
    if (env.alg !== ALG) throw new Error(`unknown encryption ${String(env.alg)}`);
    if (!this.kf.keys[env.keyId]) this.refresh(true);
    const dek = open(this.kek(env.keyId), env.wrappedKey, `${aad}#${env.keyId}`);
    return open(dek, env.ciphertext, aad);
  }

  private kek(id: string): Buffer {
    const k = this.kf.keys[id];
    if (!k) throw new Error(`encryption key ${id} is not in ${this.file}`);
    return Buffer.from(k, "base64");
  }

  private refresh(force = false): void {
    try {
      const m = fs.statSync(this.file).mtimeMs;
      if (!force && m === this.mtimeMs) return;
      this.kf = readKeyFile(this.file);
      this.mtimeMs = m;
    } catch (err) {
      if (force) throw err;
      // Keep the keys in memory when the file is briefly unreadable.
    }
  }
}
