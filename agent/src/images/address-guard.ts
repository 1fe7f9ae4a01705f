// Where an image pull may connect. A registry the App author names can send
// the agent elsewhere with a redirect or a token realm; without a check that
// is a request from the node's own network position (the node's loopback
// services, a cloud metadata endpoint on 169.254.169.254). Unless the
// registry is configured as local, every host the pull connects to is
// resolved and refused when any of its addresses is loopback, link-local or
// unspecified (loopback stays allowed for the registry host a reference
// names itself: a node's own registry lives there). The check runs inside the socket's own DNS lookup, so the
// address that was checked is the address connected to (no second lookup a
// rebinding DNS server could answer differently).
import * as dns from "node:dns";
import * as net from "node:net";
import { ImageError } from "./errors";

const RANGES: [kind: string, net: string, prefix: number, family: "ipv4" | "ipv6"][] = [
  ["loopback", "127.0.0.0", 8, "ipv4"],
  ["loopback", "::1", 128, "ipv6"],
  ["loopback", "::ffff:127.0.0.0", 104, "ipv6"],
  ["link-local", "169.254.0.0", 16, "ipv4"],
  ["link-local", "::ffff:169.254.0.0", 112, "ipv6"],
  ["link-local", "fe80::", 10, "ipv6"],
  ["unspecified", "0.0.0.0", 8, "ipv4"],
  ["unspecified", "::ffff:0.0.0.0", 104, "ipv6"],
  ["unspecified", "::", 128, "ipv6"],
];

const LISTS = RANGES.map(([kind, base, prefix, family]) => {
  const list = new net.BlockList();
  list.addSubnet(base, prefix, family);
  return { kind, list };
});

/** "loopback", "link-local" or "unspecified" when a pull must not connect to `ip`; undefined otherwise. */
export function forbiddenKind(ip: string): string | undefined {
  const family = net.isIP(ip);
  if (family === 0) return undefined;
  const type = family === 4 ? "ipv4" : "ipv6";
  return LISTS.find(({ list }) => list.check(ip, type))?.kind;
}

function refusal(host: string, ip: string, kind: string, why: string): ImageError {
  const shown = host === ip ? ip : `${host} (${ip})`;
  return new ImageError("FORBIDDEN_ADDRESS", `${why}: ${shown} is a ${kind} address${refusalHint}`);
}

const refusalHint = ' and the registry is not configured as local ("local": true in the image config)';

/** Throws FORBIDDEN_ADDRESS for an IP-literal host in a forbidden range (no lookup happens for those). */
export function checkLiteralHost(hostname: string, why: string, allowLoopback = false): void {
  const ip = hostname.startsWith("[") ? hostname.slice(1, -1) : hostname;
  const kind = forbiddenKind(ip);
  if (kind && !(allowLoopback && kind === "loopback")) throw refusal(hostname, ip, kind, why);
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | dns.LookupAddress[],
  family?: number,
) => void;

/**
 * A `lookup` for http.request that resolves every address of the host and
 * fails with FORBIDDEN_ADDRESS when any is forbidden. `why` says what the
 * connection is for (e.g. "redirect to http://…").
 */
export function guardedLookup(why: string, allowLoopback = false) {
  return (hostname: string, options: dns.LookupOptions, callback: LookupCallback): void => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      for (const a of addresses) {
        const kind = forbiddenKind(a.address);
        if (kind && !(allowLoopback && kind === "loopback"))
          return callback(refusal(hostname, a.address, kind, why) as NodeJS.ErrnoException, []);
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`${hostname}: no addresses`), { code: "ENOTFOUND" }), []);
      callback(null, first.address, first.family);
    });
  };
}
