import { ImageError } from "./errors";
import { formatReference, isLoopbackHost, parseReference } from "./reference";

describe("parseReference", () => {
  it.each([
    ["busybox", "docker.io/library/busybox:latest"],
    ["library/busybox:1.36", "docker.io/library/busybox:1.36"],
    ["team/web", "docker.io/team/web:latest"],
    ["index.docker.io/team/web:2", "docker.io/team/web:2"],
    ["localhost/web", "localhost/web:latest"],
    ["127.0.0.1:5000/test/app:1", "127.0.0.1:5000/test/app:1"],
    ["registry.example.com/a/b/c:v1.2-rc_3", "registry.example.com/a/b/c:v1.2-rc_3"],
    [`web@sha256:${"a".repeat(64)}`, `docker.io/library/web@sha256:${"a".repeat(64)}`],
    [`host:5000/web:1@sha256:${"b".repeat(64)}`, `host:5000/web:1@sha256:${"b".repeat(64)}`],
    ["oci:/srv/layout:app", "oci:/srv/layout:app"],
    ["oci:/srv/archive.tar", "oci:/srv/archive.tar"],
  ])("%s -> %s", (input, canonical) => {
    expect(formatReference(parseReference(input))).toBe(canonical);
  });

  it("splits registry, repository, tag and digest", () => {
    expect(parseReference("127.0.0.1:5000/test/app:1")).toEqual({
      kind: "registry",
      registry: "127.0.0.1:5000",
      repository: "test/app",
      tag: "1",
    });
  });

  it.each([
    ["", /must be 1\.\.1024 characters/],
    ["Web", /must be lower-case/],
    ["web:", /tag "" is not valid/],
    ["web@sha256:abc", /digest "sha256:abc"/],
    ["a//b", /repository name is empty/],
    ["web app", /white space/],
    ["oci:relative/path", /absolute path/],
    ["oci:/a/../b", /must not contain \.\./],
  ])("refuses %j", (input, why) => {
    expect(() => parseReference(input)).toThrow(ImageError);
    expect(() => parseReference(input)).toThrow(why);
  });
});

describe("isLoopbackHost", () => {
  it.each([
    ["127.0.0.1:5000", true],
    ["127.1.2.3", true],
    ["localhost:80", true],
    ["[::1]:5000", true],
    ["10.0.0.1:5000", false],
    ["registry.example.com", false],
  ])("%s -> %s", (host, expected) => expect(isLoopbackHost(host)).toBe(expected));
});
