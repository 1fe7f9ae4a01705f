import { policyProblems } from "./namespace-schema";

describe("policyProblems", () => {
  const risky = {
    image: "oci:/srv/layout:1",
    ports: [
      { name: "a", containerPort: 80, hostPort: 30000 },
      { name: "b", containerPort: 81 },
    ],
    security: { capabilities: { add: ["NET_BIND_SERVICE", "NET_RAW", "SYS_ADMIN"] }, seccomp: "unconfined" },
  };

  it("restricted names every refused field", () => {
    expect(policyProblems(risky, "restricted").map((p) => p.pointer)).toEqual([
      "/spec/security/capabilities/add/1",
      "/spec/security/capabilities/add/2",
      "/spec/security/seccomp",
      "/spec/security/userNamespace",
      "/spec/image",
      "/spec/ports/0/hostPort",
    ]);
  });

  it("baseline allows Docker's default capabilities and no user namespace, privileged allows all", () => {
    expect(policyProblems(risky, "baseline", { first: 30000, last: 30000 }).map((p) => p.pointer)).toEqual([
      "/spec/security/capabilities/add/2",
      "/spec/security/seccomp",
      "/spec/image",
    ]);
    expect(policyProblems(risky, "privileged")).toEqual([]);
  });

  it("an explicit host uid is refused below privileged; CAP_ prefixes are understood", () => {
    const spec = {
      security: { userNamespace: { hostUid: 1, hostGid: 1 }, capabilities: { add: ["CAP_NET_BIND_SERVICE"] } },
    };
    expect(policyProblems(spec, "restricted")).toEqual([
      { pointer: "/spec/security/userNamespace", message: expect.stringMatching(/explicit host uid/) },
    ]);
  });
});
