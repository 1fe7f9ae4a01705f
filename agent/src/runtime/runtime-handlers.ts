// Runtime handlers: names an App's runtimeClass may use, each mapped to an
// OCI runtime's executable (runc, crun, grove-runtime, runsc, ...). A handler
// instance is started by grove-shim through that runtime's command line from a
// bundle the agent writes (oci-bundle.ts); the native path stays the default.
import * as fs from "node:fs";
import * as path from "node:path";

import { RuntimeError } from "./errors";
import type { CgroupRef, ShimHandler } from "./shim-protocol";
import type { ContainerSpec } from "./types";

/** runtimeClass name -> absolute path of the OCI runtime's executable. */
export type RuntimeHandlers = Readonly<Record<string, string>>;

/** What a runtimeClass may be called: a DNS label, as Kubernetes' RuntimeClass handler. */
export const RUNTIME_CLASS_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** The built grove-runtime (agent/native). */
export const GROVE_RUNTIME_PATH = path.resolve(__dirname, "../../native/build/Release/grove-runtime");

/** Debian's crun. */
export const CRUN_PATH = "/usr/bin/crun";

/**
 * agent/bin/crun-hybrid: crun run in a mount namespace of its own without
 * the unified (v2) hierarchy of a cgroup v1 host, since crun 1.8.1 refuses a
 * host whose unified hierarchy holds controllers ("cgroups in hybrid mode not
 * supported, drop all controllers from cgroupv2").
 */
export const CRUN_HYBRID_PATH = path.resolve(__dirname, "../../bin/crun-hybrid");

/**
 * The handlers an agent has without configuration: `runc` (Debian's
 * /usr/sbin/runc), `crun` where /usr/bin/crun exists (itself on a pure
 * cgroup v2 host, else through crun-hybrid, which shows it the v1
 * hierarchies only), and `grove-runtime` (ours), each only when its
 * executable is there.
 */
export function defaultRuntimeHandlers(cgroupRoot = "/sys/fs/cgroup"): Record<string, string> {
  const pureV2 = fs.existsSync(path.join(cgroupRoot, "cgroup.controllers"));
  const candidates: [string, string, boolean][] = [
    ["runc", "/usr/sbin/runc", true],
    ["crun", pureV2 ? CRUN_PATH : CRUN_HYBRID_PATH, isExecutable(CRUN_PATH)],
    ["grove-runtime", GROVE_RUNTIME_PATH, true],
  ];
  return Object.fromEntries(
    candidates.filter(([, file, fits]) => fits && isExecutable(file)).map(([name, file]) => [name, file]),
  );
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** "NAME=/path/to/runtime" (--runtime-handler); throws naming the flag and the problem. */
export function parseRuntimeHandler(value: string, flag = "--runtime-handler"): [string, string] {
  const eq = value.indexOf("=");
  const name = eq > 0 ? value.slice(0, eq) : "";
  const file = eq > 0 ? value.slice(eq + 1) : "";
  if (!RUNTIME_CLASS_PATTERN.test(name)) {
    throw new Error(
      `${flag} ${JSON.stringify(value)}: expected NAME=PATH with NAME a DNS label (e.g. runc=/usr/sbin/runc)`,
    );
  }
  if (name === "native") throw new Error(`${flag} ${name}: "native" is the built-in path and cannot be remapped`);
  if (!path.isAbsolute(file)) throw new Error(`${flag} ${name}: ${JSON.stringify(file)} is not an absolute path`);
  if (!isExecutable(file)) throw new Error(`${flag} ${name}: ${file} is not an executable file`);
  return [name, file];
}

/**
 * grove-shim's handler settings for a spec, or null for the native path
 * (no runtimeClass, or "native"). The bundle and the runtime's --root live in
 * the container's state directory, so they go with it.
 */
export function shimHandler(
  handlers: RuntimeHandlers,
  spec: ContainerSpec,
  containerDir: string,
  hold: boolean,
): ShimHandler | null {
  const name = spec.runtimeClass;
  if (name === undefined || name === "native") return null;
  const runtime = Object.hasOwn(handlers, name) ? handlers[name] : undefined;
  if (runtime === undefined) {
    const known = ["native", ...Object.keys(handlers)].join(", ");
    throw new RuntimeError("UNKNOWN_RUNTIME_CLASS", `runtimeClass ${name} has no handler here (known: ${known})`);
  }
  if (hold) throw new RuntimeError("INVALID_SPEC", `runtimeClass ${name}: create/start is not offered for handlers`);
  if (spec.userNamespace !== undefined) {
    // An idmapped or shifted rootfs is the native path's; the bundle would need its own.
    throw new RuntimeError("INVALID_SPEC", `runtimeClass ${name}: userNamespace is only supported on the native path`);
  }
  return { runtime, bundle: path.join(containerDir, "bundle"), root: path.join(containerDir, "runtime") };
}

/**
 * On cgroup v1 a handler's runtime makes the container's cgroup (and the
 * parent) in every mounted hierarchy (blkio, cpuset, the named systemd one,
 * ...), the native path only in its own: removes the (empty) container
 * cgroup, or the parent without id, from all of them. Its runtime's delete
 * does that for a container that exits under its shim; this is for the
 * parent and for a container whose shim was killed. Non-empty or missing
 * ones are left.
 */
export async function removeHandlerCgroups(cgroup: CgroupRef, id?: string): Promise<void> {
  if (cgroup.mode !== "v1") return;
  let hierarchies: string[];
  try {
    hierarchies = await fs.promises.readdir(cgroup.root);
  } catch {
    return;
  }
  for (const h of hierarchies) {
    await fs.promises.rmdir(path.join(cgroup.root, h, cgroup.parent, id ?? "")).catch(() => undefined);
  }
}
