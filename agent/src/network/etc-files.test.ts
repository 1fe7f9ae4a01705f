import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { hostsFile, resolvConfFor, writeEtcFiles } from "./etc-files";

describe("instance /etc files", () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-etc-"))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("names the instance in /etc/hosts and drops loopback nameservers", () => {
    expect(hostsFile("web-0", "10.244.0.2")).toContain("10.244.0.2\tweb-0\n");
    expect(resolvConfFor("search example.org\nnameserver 127.0.0.53\nnameserver 192.0.2.53\n")).toBe(
      "search example.org\nnameserver 192.0.2.53\n",
    );
  });

  it("writes both files, replacing a symlink instead of writing through it", async () => {
    const root = path.join(dir, "root");
    fs.mkdirSync(path.join(root, "etc"), { recursive: true });
    const outside = path.join(dir, "outside");
    fs.writeFileSync(outside, "precious\n");
    fs.symlinkSync(outside, path.join(root, "etc", "hosts"));
    await writeEtcFiles(root, { hosts: "h\n", resolvConf: "r\n" });
    expect(fs.readFileSync(outside, "utf8")).toBe("precious\n");
    expect(fs.lstatSync(path.join(root, "etc", "hosts")).isSymbolicLink()).toBe(false);
    expect(fs.readFileSync(path.join(root, "etc", "hosts"), "utf8")).toBe("h\n");
    expect(fs.readFileSync(path.join(root, "etc", "resolv.conf"), "utf8")).toBe("r\n");
  });

  it("refuses an /etc that is a symlink", async () => {
    const root = path.join(dir, "root");
    fs.mkdirSync(root);
    fs.symlinkSync(dir, path.join(root, "etc"));
    await expect(writeEtcFiles(root, { hosts: "", resolvConf: "" })).rejects.toThrow(/is not a directory/);
    expect(fs.existsSync(path.join(dir, "hosts"))).toBe(false);
  });
});
