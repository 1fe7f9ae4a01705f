// The audit trail: one JSON line per mutating request, per exec or logs
// session and per refused request (401 and 403). Metadata only: who, verb,
// resource, namespace, name, response code, request id, source address, time;
// never a body, a query string (exec's command), a Secret value or exec input.
// The file is mode 0600 and rotates by size: audit.log -> audit.log.1 -> ...
// (rotating-file-stream, the library for this, ships ESM-first typings that
// this CommonJS build cannot import; the rotation is a few lines).
import * as fs from "node:fs";
import * as path from "node:path";
export interface AuditRecord {
  time: string;
  requestId: string;
  user: string;
  role?: string;
  /** The identity's namespace (namespaced roles). */
  userNamespace?: string;
  verb: string;
  resource: string;
  namespace?: string;
  name?: string;
  code: number;
  source: string;
  /** Why it was refused (401/403). */
  reason?: string;
}

export interface AuditOptions {
  file: string;
  /** Rotate before the file would pass this size (default 10 MiB). */
  maxBytes?: number;
  /** Rotated files kept. */
  maxFiles?: number;
}

export class AuditLog {
  private fd: number;
  private size: number;
  private readonly maxBytes: number;
  private readonly maxFiles: number;

  constructor(private readonly opts: AuditOptions) {
    fs.mkdirSync(path.dirname(opts.file), { recursive: true, mode: 0o700 });
    this.maxBytes = opts.maxBytes ?? 10 * 1024 * 1024;
    this.maxFiles = opts.maxFiles ?? 5;
    this.fd = this.open();
    this.size = fs.fstatSync(this.fd).size;
  }

  /** Appends synchronously: a record is on disk before the answer is (it is small, and order matters). */
  write(r: AuditRecord): void {
    const line = Buffer.from(JSON.stringify(r) + "\n");
    if (this.size > 0 && this.size + line.length > this.maxBytes) this.rotate();
    fs.writeSync(this.fd, line);
    this.size += line.length;
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  private open(): number {
    const fd = fs.openSync(this.opts.file, "a", 0o600);
    // An existing file made by someone else's umask: tighten it.
    fs.fchmodSync(fd, 0o600);
    return fd;
  }

  private rotate(): void {
    fs.closeSync(this.fd);
    const f = this.opts.file;
    fs.rmSync(`${f}.${this.maxFiles}`, { force: true });
    for (let i = this.maxFiles - 1; i >= 1; i--) {
      if (fs.existsSync(`${f}.${i}`)) fs.renameSync(`${f}.${i}`, `${f}.${i + 1}`);
    }
    fs.renameSync(f, `${f}.1`);
    this.fd = this.open();
    this.size = 0;
  }
}
