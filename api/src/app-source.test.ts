import { appSourceProblems, imageReferenceProblem } from "./app-source";
import { validateDocument } from "./manifest";

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

describe("security.userNamespace", () => {
  const app = (userNamespace: unknown) => ({
    apiVersion: "grove/v1",
    kind: "App",
    metadata: { name: "web" },
    spec: { rootfs: "busybox", command: ["sh"], instances: 1, security: { userNamespace } },
  });

  it("accepts true, false and an explicit range", () => {
    expect(validateDocument(app(true))).toEqual([]);
    expect(validateDocument(app(false))).toEqual([]);
    expect(validateDocument(app({ hostUid: 200000000, hostGid: 200000000 }))).toEqual([]);
    expect(validateDocument(app({ hostUid: 200000000, hostGid: 300000000, size: 1000 }))).toEqual([]);
    expect(appSourceProblems(app({ hostUid: 200000000, hostGid: 200000000 }).spec)).toEqual([]);
  });

  it("refuses other values, naming the field", () => {
    for (const bad of ["yes", { hostUid: 0, hostGid: 1 }, { hostUid: 5 }, { hostUid: 5, hostGid: 5, extra: 1 }]) {
      const problems = validateDocument(app(bad));
      expect(problems.length).toBeGreaterThan(0);
      expect(problems.every((p) => p.pointer.startsWith("/spec/security/userNamespace"))).toBe(true);
    }
  });

  it("refuses a range running past the last id", () => {
    expect(appSourceProblems(app({ hostUid: 4294967000, hostGid: 1000, size: 65536 }).spec)).toEqual([
      {
        pointer: "/spec/security/userNamespace/hostUid",
        message: "hostUid 4294967000 + size 65536 runs past the last id (4294967295)",
      },
    ]);
  });
});
