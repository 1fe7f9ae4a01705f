import { appNetworkProblems, cidrProblem } from "./network-checks";

describe("App network checks", () => {
  it("accepts networks and rejects addresses with host bits, bad octets and prefixes", () => {
    expect(cidrProblem("10.0.0.0/8")).toBeUndefined();
    expect(cidrProblem("0.0.0.0/0")).toBeUndefined();
    expect(cidrProblem("192.0.2.7/32")).toBeUndefined();
    expect(cidrProblem("10.0.0.1/8")).toMatch(/host bits set \(did you mean 10.0.0.0\/8\?\)/);
    expect(cidrProblem("10.0.300.0/24")).toMatch(/not an IPv4 address/);
    expect(cidrProblem("10.0.0.0/40")).toMatch(/longer than 32/);
    expect(cidrProblem("10.0.0.0")).toMatch(/not an IPv4 CIDR/);
  });

  it("names the field of duplicate port names, container ports and host ports", () => {
    const problems = appNetworkProblems({
      ports: [
        { name: "http", containerPort: 8080, hostPort: 18080 },
        { name: "http", containerPort: 8080, hostPort: 18080 },
        { name: "dns", containerPort: 8080, protocol: "udp" },
      ],
    });
    expect(problems).toEqual([
      { pointer: "/spec/ports/1/name", message: 'port name "http" is already used by /spec/ports/0' },
      { pointer: "/spec/ports/1/containerPort", message: "containerPort 8080/tcp is already used by /spec/ports/0" },
      { pointer: "/spec/ports/1/hostPort", message: "hostPort 18080/tcp is already used by /spec/ports/0" },
    ]);
  });

  it("checks egress port ranges and their protocol", () => {
    expect(appNetworkProblems({ egress: [{ cidr: "10.0.0.0/8", protocol: "tcp", ports: "8000-8999" }] })).toEqual([]);
    expect(appNetworkProblems({ egress: [{ cidr: "10.0.0.0/8", protocol: "tcp", ports: "9000-80" }] })).toEqual([
      { pointer: "/spec/egress/0/ports", message: '"9000-80" is not a port or an ascending range within 1-65535' },
    ]);
    expect(appNetworkProblems({ egress: [{ cidr: "10.0.0.0/8", ports: "53" }] })).toEqual([
      { pointer: "/spec/egress/0/ports", message: "ports need protocol tcp or udp (got all)" },
    ]);
  });
});
