// Opening the files of an `oci:` image layout without ever following a
// symlink: an openat-style walk from a directory descriptor, one component at
// a time, each opened with O_NOFOLLOW relative to the descriptor of its
// parent (through /proc/self/fd/N, since Node has no openat). A layout whose
// index.json, blob or directory is a symlink (say, to /etc/shadow, planted by
// a container in its own root) is refused instead of read, and O_NONBLOCK
// plus a regular-file check keep a FIFO from hanging the pull.
import * as fs from "node:fs";
import { ImageError } from "./errors";

const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

export type Opened = { kind: "directory"; dir: NoFollowDir } | { kind: "file"; fd: number; size: number };

export class NoFollowDir {
  private closed = false;

  private constructor(
    private readonly fd: number,
    /** The directory's path, for messages. */
    readonly path: string,
  ) {}

  /** Opens a directory the operator configured (its own path may contain symlinks: the operator chose it). */
  static openRoot(dir: string): NoFollowDir {
    let fd: number;
    try {
      fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    } catch (err) {
      throw refused(dir, describe(err));
    }
    return new NoFollowDir(fd, dir);
  }

  /**
   * Opens `rel` (relative, "/"-separated, no "..") beneath this directory:
   * every component must be a real directory, the last one a directory or a
   * regular file. The caller closes what it gets.
   */
  open(rel: string): Opened {
    const parts = rel.split("/").filter((p) => p !== "" && p !== ".");
    if (parts.includes("..")) throw refused(`${this.path}/${rel}`, 'has a ".." component');
    // The descriptor of the directory reached so far; ours to close unless it is this.fd.
    let dirFd = this.fd;
    let shown = this.path;
    const release = () => {
      if (dirFd !== this.fd) fs.closeSync(dirFd);
    };
    try {
      for (let i = 0; i < parts.length; i++) {
        shown = `${shown}/${parts[i]!}`;
        let fd: number;
        try {
          fd = fs.openSync(`/proc/self/fd/${dirFd}/${parts[i]!}`, OPEN_FLAGS);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === "ENOENT") throw new ImageError("NOT_FOUND", `${shown}: does not exist`);
          throw refused(shown, describe(err));
        }
        const st = fs.fstatSync(fd);
        const last = i === parts.length - 1;
        if (st.isDirectory()) {
          release();
          dirFd = fd;
          continue;
        }
        if (last && st.isFile()) {
          release();
          return { kind: "file", fd, size: st.size };
        }
        fs.closeSync(fd);
        throw refused(shown, last ? "is neither a directory nor a regular file" : "is not a directory");
      }
    } catch (err) {
      release();
      throw err;
    }
    // rel named this directory itself: a second descriptor, so that closing it leaves this one open.
    if (dirFd === this.fd)
      dirFd = fs.openSync(`/proc/self/fd/${this.fd}`, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    return { kind: "directory", dir: new NoFollowDir(dirFd, shown) };
  }

  /** Reads a regular file beneath this directory, at most `limit` bytes. */
  readFile(rel: string, limit: number): Buffer {
    const opened = this.open(rel);
    if (opened.kind !== "file") {
      opened.dir.close();
      throw refused(`${this.path}/${rel}`, "is a directory");
    }
    try {
      if (opened.size > limit)
        throw new ImageError("INVALID_IMAGE", `${this.path}/${rel} is larger than ${limit} bytes`);
      return fs.readFileSync(opened.fd);
    } finally {
      fs.closeSync(opened.fd);
    }
  }

  /** Opens a regular file beneath this directory for streaming; the caller closes the descriptor. */
  openFile(rel: string): { fd: number; size: number } {
    const opened = this.open(rel);
    if (opened.kind !== "file") {
      opened.dir.close();
      throw refused(`${this.path}/${rel}`, "is a directory");
    }
    return opened;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }
}

function refused(p: string, why: string): ImageError {
  return new ImageError("OCI_PATH_REFUSED", `${p}: ${why}`);
}

/** An errno in words, without the path Node puts in its messages (a /proc/self/fd path here). */
function describe(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case "ENOENT":
      return "does not exist";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "ENOTDIR":
      return "is not a directory";
    case "ELOOP":
      return "is a symlink";
    default:
      return code ?? "cannot be opened";
  }
}
