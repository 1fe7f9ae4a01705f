// fast-check arbitraries for the parts of a manifest whose validity JSON Schema cannot express
// (the semantic checks behind the schemas): used by manifest-arbitraries.ts for valid Apps and Tasks.
import fc from "fast-check";

/**
 * Egress rules that the semantic checks (api/src/network-checks.ts) accept too: the schema's
 * patterns alone allow 966.1.2.3/40, host bits, descending port ranges and ports without tcp/udp.
 */
export const validEgressRule: fc.Arbitrary<Record<string, string>> = fc
  .record({
    addr: fc.nat(2 ** 32 - 1),
    prefix: fc.integer({ min: 0, max: 32 }),
    protocol: fc.option(fc.constantFrom("tcp", "udp", "icmp", "all"), { nil: undefined }),
    ports: fc.option(fc.tuple(fc.integer({ min: 1, max: 65535 }), fc.nat(200)), { nil: undefined }),
  })
  .map(({ addr, prefix, protocol, ports }) => {
    const net = prefix === 0 ? 0 : (addr & (~0 << (32 - prefix))) >>> 0;
    const ip = [24, 16, 8, 0].map((s) => (net >>> s) & 255).join(".");
    const rule: Record<string, string> = { cidr: `${ip}/${prefix}` };
    if (protocol) rule.protocol = protocol;
    if (ports && (protocol === "tcp" || protocol === "udp")) {
      const last = Math.min(65535, ports[0] + ports[1]);
      rule.ports = last === ports[0] ? String(last) : `${ports[0]}-${last}`;
    }
    return rule;
  });

/**
 * Resources that the server's quantity checks accept too: the schema allows "0m", 1e-90 cores
 * and "0Mi", which round to nothing and are refused (control-plane/src/http/apps.ts).
 */
export const validResources: fc.Arbitrary<Record<string, string | number>> = fc.record(
  {
    cpu: fc.oneof(
      fc.integer({ min: 1, max: 64_000 }).map((m) => `${m}m`),
      fc.integer({ min: 1, max: 64_000 }).map((m) => m / 1000),
      fc.integer({ min: 1, max: 64 }).map(String),
    ),
    memory: fc.oneof(
      fc.integer({ min: 1, max: 2 ** 40 }),
      fc.tuple(fc.integer({ min: 1, max: 4096 }), fc.constantFrom("Ki", "Mi", "Gi")).map(([n, u]) => `${n}${u}`),
    ),
    pids: fc.integer({ min: 1, max: 4_194_304 }),
    disk: fc.oneof(
      fc.integer({ min: 1, max: 2 ** 40 }),
      fc.tuple(fc.integer({ min: 1, max: 4096 }), fc.constantFrom("Mi", "Gi")).map(([n, u]) => `${n}${u}`),
    ),
  },
  { requiredKeys: [] },
);
