import { appSourceProblems, imageReferenceProblem } from "./app-source";

describe("appSourceProblems", () => {
  it("accepts a rootfs with a command, and an image with or without one", () => {
    expect(appSourceProblems({ rootfs: "busybox", command: ["sh"] })).toEqual([]);
    expect(appSourceProblems({ image: "127.0.0.1:5000/test/app:1" })).toEqual([]);
    expect(appSourceProblems({ image: "web", entrypoint: ["/bin/sh"], imagePullSecret: "s" })).toEqual([]);
  });

  it("wants exactly one of rootfs and image, and names the field", () => {
    expect(appSourceProblems({ rootfs: "busybox", image: "web", command: ["sh"] })).toEqual([
      { pointer: "/spec/image", message: "give either rootfs or image, not both" },
    ]);
    expect(appSourceProblems({ command: ["sh"] })).toEqual([
      { pointer: "/spec", message: "one of rootfs or image is required" },
    ]);
    expect(appSourceProblems({ rootfs: "busybox" })).toEqual([
      { pointer: "/spec/command", message: "required with a rootfs (only an image can supply its own)" },
    ]);
    expect(appSourceProblems({ rootfs: "b", command: ["sh"], entrypoint: ["x"], imagePullSecret: "s" })).toEqual([
      { pointer: "/spec/entrypoint", message: "only with an image" },
      { pointer: "/spec/imagePullSecret", message: "only with an image" },
    ]);
  });

  it("checks the image reference's syntax", () => {
    expect(appSourceProblems({ image: "Web:1" })[0]?.message).toMatch(/^invalid image reference: the repository/);
    expect(imageReferenceProblem("web@sha256:12")).toMatch(/digest/);
    expect(imageReferenceProblem("oci:rel")).toMatch(/absolute path/);
    expect(imageReferenceProblem(`host:5000/a/b:v1@sha256:${"c".repeat(64)}`)).toBeUndefined();
  });
});
