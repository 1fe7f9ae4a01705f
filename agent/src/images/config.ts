// The agent's image config (--image-config FILE, JSON):
//
//   {
//     "registries": {
//       "registry.example.com": { "mirrors": ["mirror.local:5000"], "auth": { "username": "u", "password": "p" } },
//       "10.0.0.5:5000": { "insecure": true }
//     },
//     "pullSecrets": {
//       "team-a": { "registry.example.com": { "username": "u", "password": "p" } }
//     }
//   }
//
// "insecure" allows plain HTTP; loopback registries (127.0.0.0/8, ::1,
// localhost) get it by default. "local" lets a registry's redirects and
// token realms point at loopback, link-local and unspecified addresses;
// loopback registries are local by default, any other is not. An App's imagePullSecret names an entry of
// "pullSecrets", so credentials stay on the nodes and out of etcd.
import * as fs from "node:fs";
import type { Credentials, RegistryHostConfig } from "./registry";

export interface ImageConfigFile {
  registries: Record<string, RegistryHostConfig>;
  pullSecrets: Record<string, Record<string, Credentials>>;
}

export class ImageConfigError extends Error {
  override readonly name = "ImageConfigError";
}

export function loadImageConfig(file: string): ImageConfigFile {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new ImageConfigError(`${file}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ImageConfigError(`${file}: not JSON: ${(err as Error).message}`);
  }
  return parseImageConfig(raw, file);
}

export function parseImageConfig(raw: unknown, file = "image config"): ImageConfigFile {
  const fail = (field: string, why: string): never => {
    throw new ImageConfigError(`${file}: ${field}: ${why}`);
  };
  if (!isObject(raw)) fail("(top level)", "must be an object");
  const top = raw as Record<string, unknown>;
  for (const k of Object.keys(top)) if (k !== "registries" && k !== "pullSecrets") fail(k, "unknown field");
  const out: ImageConfigFile = { registries: {}, pullSecrets: {} };
  const creds = (v: unknown, field: string): Credentials => {
    if (!isObject(v)) return fail(field, "must be an object with username and password");
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) if (k !== "username" && k !== "password") fail(`${field}.${k}`, "unknown field");
    if (typeof o.username !== "string" || o.username === "") fail(`${field}.username`, "must be a non-empty string");
    if (typeof o.password !== "string") fail(`${field}.password`, "must be a string");
    return { username: o.username as string, password: o.password as string };
  };
  if (top.registries !== undefined) {
    if (!isObject(top.registries)) fail("registries", "must be an object keyed by host[:port]");
    for (const [host, v] of Object.entries(top.registries as Record<string, unknown>)) {
      const field = `registries.${host}`;
      if (!isObject(v)) fail(field, "must be an object");
      const o = v as Record<string, unknown>;
      const cfg: RegistryHostConfig = {};
      for (const [k, val] of Object.entries(o)) {
        if (k === "insecure") {
          if (typeof val !== "boolean") fail(`${field}.insecure`, "must be true or false");
          cfg.insecure = val as boolean;
        } else if (k === "mirrors") {
          if (!Array.isArray(val) || val.some((m) => typeof m !== "string" || m === "")) {
            fail(`${field}.mirrors`, "must be a list of host[:port]");
          }
          cfg.mirrors = val as string[];
        } else if (k === "auth") {
          cfg.auth = creds(val, `${field}.auth`);
        } else if (k === "local") {
          if (typeof val !== "boolean") fail(`${field}.local`, "must be true or false");
          cfg.local = val as boolean;
        } else {
          fail(`${field}.${k}`, "unknown field (insecure, local, mirrors, auth)");
        }
      }
      out.registries[host] = cfg;
    }
  }
  if (top.pullSecrets !== undefined) {
    if (!isObject(top.pullSecrets)) fail("pullSecrets", "must be an object keyed by secret name");
    for (const [name, v] of Object.entries(top.pullSecrets as Record<string, unknown>)) {
      if (!isObject(v)) fail(`pullSecrets.${name}`, "must be an object keyed by registry host[:port]");
      out.pullSecrets[name] = {};
      for (const [host, c] of Object.entries(v as Record<string, unknown>)) {
        out.pullSecrets[name]![host] = creds(c, `pullSecrets.${name}.${host}`);
      }
    }
  }
  return out;
}

function isObject(v: unknown): boolean {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
