import { parseHostPortRanges } from "@grove/api";
import { ControlPlaneHostPorts } from "./host-port-policy";

describe("grove-server's host port policy", () => {
  const policy = (allowed = "10000-32767", allowPrivileged = false) =>
    new ControlPlaneHostPorts({ allowed: parseHostPortRanges(allowed), allowPrivileged, reserved: [18443] });

  it("reserves the well-known ports, the operator's, its own listeners and its etcd endpoints' ports", () => {
    const p = policy();
    p.addReserved(17480, "grove-server's HTTP API");
    p.addEtcdEndpoints(["http://10.0.0.5:12379", "https://etcd.example", "not a url"]);
    const reserved = p.policy.reserved;
    expect(reserved.get(7480)).toBe("grove-server's HTTP API");
    expect(reserved.get(2479)).toMatch(/etcd/);
    expect(reserved.get(22)).toBe("sshd");
    expect(reserved.get(18443)).toBe("reserved by the operator");
    expect(reserved.get(17480)).toBe("grove-server's HTTP API");
    expect(reserved.get(12379)).toBe("an etcd client port of this cluster");
    expect(reserved.get(443)).toBe("an etcd client port of this cluster");
    p.addReserved(0, "a port picked later");
    expect(reserved.has(0)).toBe(false);
  });

  it("refuses a dynamic range outside the allowed ports, with privileged or reserved ports in it", () => {
    expect(policy().dynamicRangeProblem({ first: 20000, last: 29999 })).toBeUndefined();
    expect(policy().dynamicRangeProblem({ first: 30000, last: 40000 })).toBe(
      "--host-port-range 30000-40000 is not inside --allowed-host-ports 10000-32767",
    );
    expect(policy("1-65535").dynamicRangeProblem({ first: 500, last: 2000 })).toMatch(/privileged ports/);
    expect(policy("1-65535", true).dynamicRangeProblem({ first: 1, last: 2000 })).toMatch(
      /holds port 22, which is reserved \(sshd\)/,
    );
    expect(policy().dynamicRangeProblem({ first: 18000, last: 19000 })).toMatch(/holds port 18443/);
  });
});
