// The agent's CNI network list: a default one (loopback, bridge with
// host-local IPAM on the node's subnet, firewall, portmap: the Debian
// containernetworking-plugins in /usr/lib/cni), or an operator's own file.
// In an operator's file the string "{{subnet}}" stands for the node's subnet.
import * as fs from "node:fs";
import { CNI_VERSION, type CniNetworkList, type CniPluginConf } from "./cni";

export const DEFAULT_NETWORK_NAME = "grove";
export const DEFAULT_BRIDGE = "grove0";
export const DEFAULT_PLUGIN_DIRS = ["/usr/lib/cni", "/opt/cni/bin"];
/** The firewall plugin's admin chain: consulted first in its FORWARD chain, never touched by it. */
export const ADMIN_CHAIN = "GROVE-ADMIN";

export function defaultNetworkList(subnet: string, ipamDataDir: string): CniNetworkList {
  return {
    cniVersion: CNI_VERSION,
    name: DEFAULT_NETWORK_NAME,
    plugins: [
      { type: "loopback" },
      {
        type: "bridge",
        bridge: DEFAULT_BRIDGE,
        isGateway: true,
        ipMasq: true,
        // An instance can reach its own published port through the node address.
        hairpinMode: true,
        ipam: {
          type: "host-local",
          ranges: [[{ subnet }]],
          routes: [{ dst: "0.0.0.0/0" }],
          dataDir: ipamDataDir,
        },
      },
      { type: "firewall", backend: "iptables", iptablesAdminChainName: ADMIN_CHAIN },
      { type: "portmap", capabilities: { portMappings: true }, snat: true },
    ],
  };
}

/** Parses and checks a conflist; errors name the file and the field. */
export function parseNetworkList(text: string, file: string, subnet: string): CniNetworkList {
  let raw: unknown;
  try {
    raw = JSON.parse(text.split("{{subnet}}").join(subnet));
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const pos = /position (\d+)/.exec(msg);
    const offset = pos ? Number(pos[1]) : jsonErrorOffset(text);
    const where = offset !== undefined ? `:${lineOf(text, offset)}` : "";
    throw new Error(`${file}${where}: not valid JSON: ${msg}`);
  }
  const fail = (field: string, what: string): never => {
    throw new Error(`${file}: ${field}: ${what}`);
  };
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return fail("(top level)", "must be an object");
  const obj = raw as Record<string, unknown>;
  if (obj.cniVersion !== CNI_VERSION)
    fail("cniVersion", `must be "${CNI_VERSION}" (got ${JSON.stringify(obj.cniVersion)})`);
  if (typeof obj.name !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(obj.name))
    fail("name", "must be a network name of [A-Za-z0-9_.-]");
  if (!Array.isArray(obj.plugins) || obj.plugins.length === 0) fail("plugins", "must be a non-empty array");
  const plugins = obj.plugins as unknown[];
  plugins.forEach((p, i) => {
    if (typeof p !== "object" || p === null) fail(`plugins[${i}]`, "must be an object");
    const type = (p as Record<string, unknown>).type;
    if (typeof type !== "string" || !/^[A-Za-z0-9_.-]+$/.test(type))
      fail(`plugins[${i}].type`, "must be a plugin name");
  });
  return {
    cniVersion: CNI_VERSION,
    name: obj.name as string,
    disableCheck: obj.disableCheck === true,
    plugins: plugins as CniPluginConf[],
  };
}

export function loadNetworkList(file: string, subnet: string): CniNetworkList {
  return parseNetworkList(fs.readFileSync(file, "utf8"), file, subnet);
}

function lineOf(text: string, offset: number): number {
  return text.slice(0, offset).split("\n").length;
}

/** Where a JSON text stops being valid (Node's messages do not always say). */
export function jsonErrorOffset(text: string): number | undefined {
  let i = 0;
  const ws = () => {
    while (i < text.length && " \t\r\n".includes(text[i]!)) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const lit = (word: string) => {
    if (text.startsWith(word, i)) i += word.length;
    else fail();
  };
  const str = () => {
    if (text[i] !== '"') fail();
    i++;
    while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    if (i >= text.length) fail();
    i++;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      ws();
      if (text[i] === "}") return void i++;
      for (;;) {
        ws();
        str();
        ws();
        lit(":");
        value();
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "}") return void i++;
        else fail();
      }
    } else if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "]") return void i++;
        else fail();
      }
    } else if (c === '"') str();
    else if (c === "t") lit("true");
    else if (c === "f") lit("false");
    else if (c === "n") lit("null");
    else {
      const m = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
      if (!m) fail();
      i += m![0].length;
    }
  };
  try {
    value();
    ws();
    return i < text.length ? i : undefined;
  } catch (at) {
    return typeof at === "number" ? at : undefined;
  }
}
