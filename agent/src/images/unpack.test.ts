// A layer must not change anything outside its snapshot, including a host
// file's times: directory times are restored after the last entry, when an
// entry may have replaced that directory (or a parent) with a symlink.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import * as tar from "tar-stream";
import { unpackLayer } from "./unpack";

const uid = process.getuid?.() ?? 0;
const gid = process.getgid?.() ?? 0;
const OLD = new Date("2001-01-01T00:00:00Z");

async function layer(entries: { name: string; type: "directory" | "symlink"; linkname?: string }[]): Promise<Readable> {
  const pack = tar.pack();
  for (const e of entries) {
    pack.entry({
      name: e.name,
      type: e.type,
      mode: 0o755,
      uid,
      gid,
      mtime: OLD,
      ...(e.linkname ? { linkname: e.linkname } : {}),
    });
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Readable.from([Buffer.concat(chunks)]);
}

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "grove-unpack-"));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe("unpackLayer leaves what is outside the snapshot alone", () => {
  it("does not set the times of a symlink's target that replaced a directory (or its parent)", async () => {
    const outside = path.join(tmp, "outside");
    fs.mkdirSync(path.join(outside, "sub"), { recursive: true });
    fs.writeFileSync(path.join(outside, "file"), "host");
    const before = [fs.statSync(path.join(outside, "file")).mtimeMs, fs.statSync(path.join(outside, "sub")).mtimeMs];
    const root = path.join(tmp, "root");
    fs.mkdirSync(root);
    await unpackLayer(
      await layer([
        { name: "d/", type: "directory" },
        { name: "d", type: "symlink", linkname: path.join(outside, "file") },
        { name: "a/", type: "directory" },
        { name: "a/sub/", type: "directory" },
        { name: "a", type: "symlink", linkname: outside },
        { name: "kept/", type: "directory" },
      ]),
      root,
      "sha256:test",
    );
    expect(fs.readlinkSync(path.join(root, "d"))).toBe(path.join(outside, "file"));
    expect([fs.statSync(path.join(outside, "file")).mtimeMs, fs.statSync(path.join(outside, "sub")).mtimeMs]).toEqual(
      before,
    );
    // Directories that are still there get their times.
    expect(fs.statSync(path.join(root, "kept")).mtime).toEqual(OLD);
  });
});
