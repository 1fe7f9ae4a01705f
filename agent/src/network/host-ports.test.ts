import { agentHostPortPolicy, DEFAULT_HOST_PORT_POLICY, hostPortProblem, parsePortRanges } from "./host-ports";
import { NODE_RAW_RULES, nodeInputRules } from "./node-guard";

describe("the agent's host port policy", () => {
  it("refuses reserved ports (with the control plane's), privileged ones and what is outside the allowed ranges", () => {
    const policy = agentHostPortPolicy({
      allowed: parsePortRanges("10000-32767", "x"),
      allowPrivileged: false,
      reserved: [18443],
      controlPlanePort: 17481,
    });
    expect(hostPortProblem(7480, "tcp", policy)).toBe(
      "hostPort 7480/tcp is reserved on this node: it is grove-server's HTTP API",
    );
    expect(hostPortProblem(17481, "tcp", policy)).toMatch(/reserved on this node: it is the control plane port/);
    expect(hostPortProblem(18443, "udp", policy)).toMatch(/^hostPort 18443\/udp is reserved .*by the operator/);
    expect(hostPortProblem(2479, "tcp", policy)).toMatch(/etcd/);
    expect(hostPortProblem(22, "tcp", { ...policy, allowPrivileged: true })).toMatch(/it is sshd/);
    expect(hostPortProblem(80, "tcp", policy)).toMatch(/privileged port .*--allow-privileged-host-ports/);
    expect(hostPortProblem(80, "tcp", { ...policy, allowPrivileged: true })).toBeUndefined();
    expect(hostPortProblem(35000, "tcp", policy)).toBe(
      "hostPort 35000/tcp is outside this node's allowed host ports 10000-32767 (grove-agent --allowed-host-ports)",
    );
    expect(hostPortProblem(18080, "tcp", policy)).toBeUndefined();
    expect(hostPortProblem(20000, "tcp", DEFAULT_HOST_PORT_POLICY)).toBeUndefined();
  });
});

describe("the node guard's rules", () => {
  it("lets replies and the allowed node ports through and rejects the rest; drops loopback from outside lo", () => {
    expect(
      nodeInputRules([
        { protocol: "udp", first: 53, last: 53 },
        { protocol: "tcp", first: 8000, last: 8100 },
      ]),
    ).toEqual([
      ["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "RETURN"],
      ["-p", "udp", "-m", "udp", "--dport", "53", "-j", "RETURN"],
      ["-p", "tcp", "-m", "tcp", "--dport", "8000:8100", "-j", "RETURN"],
      ["-j", "REJECT", "--reject-with", "icmp-port-unreachable"],
    ]);
    expect(NODE_RAW_RULES).toEqual([["-d", "127.0.0.0/8", "!", "-i", "lo", "-j", "DROP"]]);
  });
});
