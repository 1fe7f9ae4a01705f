import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { isImageError } from "./errors";
import { NoFollowDir } from "./safe-open";

describe("NoFollowDir", () => {
  let dir: string;
  let root: NoFollowDir;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-safe-open-"));
    fs.mkdirSync(path.join(dir, "layout", "blobs"), { recursive: true });
    fs.writeFileSync(path.join(dir, "layout", "index.json"), '{"manifests":[]}');
    fs.writeFileSync(path.join(dir, "outside.txt"), "host file");
    fs.symlinkSync(path.join(dir, "outside.txt"), path.join(dir, "layout", "link.json"));
    fs.symlinkSync(path.join(dir, "layout"), path.join(dir, "layout-link"));
    execFileSync("mkfifo", [path.join(dir, "layout", "fifo")]);
    root = NoFollowDir.openRoot(dir);
  });

  afterAll(() => {
    root?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function refusal(fn: () => unknown): { code: string; message: string } {
    try {
      fn();
    } catch (err) {
      if (isImageError(err)) return { code: err.code, message: err.message };
      throw err;
    }
    throw new Error("not refused");
  }

  it("reads a regular file beneath it", () => {
    expect(root.readFile("layout/index.json", 1024).toString()).toBe('{"manifests":[]}');
    const opened = root.open("layout");
    expect(opened.kind).toBe("directory");
    if (opened.kind === "directory") opened.dir.close();
  });

  it("refuses a symlink as the last component and on the way", () => {
    expect(refusal(() => root.readFile("layout/link.json", 1024))).toEqual({
      code: "OCI_PATH_REFUSED",
      message: `${dir}/layout/link.json: is a symlink`,
    });
    expect(refusal(() => root.readFile("layout-link/index.json", 1024))).toEqual({
      code: "OCI_PATH_REFUSED",
      message: `${dir}/layout-link: is a symlink`,
    });
  });

  it("refuses a FIFO without blocking, a missing file, '..' and an oversized file", () => {
    expect(refusal(() => root.readFile("layout/fifo", 1024)).message).toBe(
      `${dir}/layout/fifo: is neither a directory nor a regular file`,
    );
    expect(refusal(() => root.readFile("layout/nope", 1024))).toEqual({
      code: "NOT_FOUND",
      message: `${dir}/layout/nope: does not exist`,
    });
    expect(refusal(() => root.open("layout/../outside.txt")).message).toMatch(/has a "\.\." component/);
    expect(refusal(() => root.readFile("layout/index.json", 4)).message).toBe(
      `${dir}/layout/index.json is larger than 4 bytes`,
    );
  });

  it("leaves no descriptor open behind a refusal", () => {
    const count = () => fs.readdirSync("/proc/self/fd").length;
    const before = count();
    for (let i = 0; i < 20; i++) refusal(() => root.readFile("layout-link/index.json", 1024));
    for (let i = 0; i < 20; i++) refusal(() => root.readFile("layout/fifo", 1024));
    expect(count()).toBe(before);
  });
});
