import {
  DEFAULT_ALLOWED_HOST_PORTS,
  WELL_KNOWN_RESERVED_PORTS,
  hostPortProblem,
  parseHostPortRanges,
  parsePortList,
  type HostPortPolicy,
} from "./host-ports";
import { appNetworkProblems } from "./network-checks";

const policy = (over: Partial<HostPortPolicy> = {}): HostPortPolicy => ({
  allowed: parseHostPortRanges(DEFAULT_ALLOWED_HOST_PORTS),
  reserved: new Map(WELL_KNOWN_RESERVED_PORTS),
  allowPrivileged: false,
  source: "grove-server",
  ...over,
});

describe("host port policy", () => {
  it("parses ranges and port lists, naming what is wrong", () => {
    expect(parseHostPortRanges("10000-32767, 40000")).toEqual([
      { first: 10000, last: 32767 },
      { first: 40000, last: 40000 },
    ]);
    expect(() => parseHostPortRanges("9-3", "--allowed-host-ports")).toThrow(/--allowed-host-ports: "9-3" is not/);
    expect(() => parseHostPortRanges("")).toThrow(/empty/);
    expect(() => parseHostPortRanges("1-70000")).toThrow(/within 1-65535/);
    expect(parsePortList("22, 8443")).toEqual([22, 8443]);
    expect(parsePortList("")).toEqual([]);
    expect(() => parsePortList("22,x", "--reserved-host-ports")).toThrow(/--reserved-host-ports: "x"/);
  });

  it("refuses reserved ports first, then privileged ones, then what is outside the allowed ranges", () => {
    expect(hostPortProblem(7480, "tcp", policy())).toBe(
      "hostPort 7480/tcp is reserved: it is grove-server's HTTP API on a node",
    );
    expect(hostPortProblem(7481, "tcp", policy())).toMatch(/reserved: it is grove-server's agent gRPC endpoint/);
    expect(hostPortProblem(2479, "udp", policy())).toMatch(/^hostPort 2479\/udp is reserved: .*etcd/);
    expect(hostPortProblem(22, "tcp", policy({ allowPrivileged: true }))).toMatch(/reserved: it is sshd/);
    expect(hostPortProblem(80, "tcp", policy())).toBe(
      "hostPort 80/tcp is a privileged port (below 1024), not allowed without grove-server --allow-privileged-host-ports",
    );
    expect(hostPortProblem(80, "tcp", policy({ allowPrivileged: true }))).toBeUndefined();
    expect(hostPortProblem(5432, "tcp", policy())).toBe(
      "hostPort 5432/tcp is outside the allowed host ports 10000-32767 (grove-server --allowed-host-ports)",
    );
    expect(hostPortProblem(40000, "tcp", policy())).toMatch(/outside/);
    for (const ok of [10000, 18080, 20000, 32767]) expect(hostPortProblem(ok, "tcp", policy())).toBeUndefined();
  });

  it("names each refused hostPort's field in an App", () => {
    const spec = {
      ports: [
        { name: "ok", containerPort: 80, hostPort: 18080 },
        { name: "api", containerPort: 81, hostPort: 7480 },
        { name: "ssh", containerPort: 82, hostPort: 22 },
        { name: "dyn", containerPort: 83 },
      ],
    };
    expect(appNetworkProblems(spec, policy())).toEqual([
      { pointer: "/spec/ports/1/hostPort", message: expect.stringMatching(/7480\/tcp is reserved/) },
      { pointer: "/spec/ports/2/hostPort", message: expect.stringMatching(/22\/tcp is reserved/) },
    ]);
    // Without a policy (the CLI's local checks) only the structural checks run.
    expect(appNetworkProblems(spec)).toEqual([]);
  });
});
