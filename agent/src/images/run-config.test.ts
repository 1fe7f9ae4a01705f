import { DEFAULT_PATH, mergeRunConfig } from "./run-config";

const none = { entrypoint: [], command: [], env: {}, workingDir: "" };

describe("mergeRunConfig (docker run semantics)", () => {
  const image = {
    Entrypoint: ["/entry.sh"],
    Cmd: ["serve", "--port", "80"],
    Env: ["PATH=/opt/bin:/bin", "MODE=image", "EMPTY="],
    WorkingDir: "/srv",
  };

  it("uses the image's Entrypoint, Cmd, Env and WorkingDir when the App gives none", () => {
    expect(mergeRunConfig(image, none, "img")).toEqual({
      command: ["/entry.sh", "serve", "--port", "80"],
      env: { PATH: "/opt/bin:/bin", MODE: "image", EMPTY: "" },
      workingDir: "/srv",
    });
  });

  it("the App's command replaces Cmd and keeps Entrypoint; its env wins key by key", () => {
    const merged = mergeRunConfig(image, { ...none, command: ["migrate"], env: { MODE: "app", EXTRA: "1" } }, "img");
    expect(merged.command).toEqual(["/entry.sh", "migrate"]);
    expect(merged.env).toEqual({ PATH: "/opt/bin:/bin", MODE: "app", EMPTY: "", EXTRA: "1" });
  });

  it("the App's entrypoint replaces Entrypoint and drops the image's Cmd", () => {
    expect(mergeRunConfig(image, { ...none, entrypoint: ["/bin/sh"] }, "img").command).toEqual(["/bin/sh"]);
    expect(mergeRunConfig(image, { ...none, entrypoint: ["/bin/sh"], command: ["-c", "x"] }, "img").command).toEqual([
      "/bin/sh",
      "-c",
      "x",
    ]);
  });

  it("defaults PATH and the working directory", () => {
    expect(mergeRunConfig({ Cmd: ["/bin/true"] }, none, "img")).toEqual({
      command: ["/bin/true"],
      env: { PATH: DEFAULT_PATH },
      workingDir: "/",
    });
    expect(
      mergeRunConfig({ Cmd: ["/bin/true"], WorkingDir: "/srv" }, { ...none, workingDir: "/tmp" }, "img").workingDir,
    ).toBe("/tmp");
  });

  it("refuses an image with nothing to run and passes the image User on", () => {
    expect(() => mergeRunConfig({}, none, "img")).toThrow(/img has no Entrypoint or Cmd, and the App gives no command/);
    expect(mergeRunConfig({ Cmd: ["x"], User: "nobody" }, none, "img").user).toBe("nobody");
    expect(mergeRunConfig({ Cmd: ["x"], User: " 1000:100 " }, none, "img").user).toBe("1000:100");
    expect(mergeRunConfig({ Cmd: ["x"] }, none, "img").user).toBeUndefined();
  });
});
