// grove-runtime: the OCI runtime command line over Grove's runtime core
// (the same NativeRuntime, grove-shim and addon the agent uses; config.json
// is read by the C grove-runtime's reader, through the addon).
//
//   grove-runtime [--root DIR] create [--bundle B] [--pid-file P] ID
//   grove-runtime [--root DIR] start ID
//   grove-runtime [--root DIR] state ID
//   grove-runtime [--root DIR] kill ID [SIGNAL]
//   grove-runtime [--root DIR] delete [--force] ID
//   grove-runtime [--root DIR] run [--bundle B] [--pid-file P] ID
//
// State lives on disk between invocations: <root>/<id>/ (spec, shim state,
// exit record, the shim's socket); cgroups under <cgroup parent>/<id>.
import * as fs from "node:fs";
import * as path from "node:path";

import { NativeRuntime } from "../runtime/native";
import { loadOciFrontEnd } from "../runtime/native-binding";
import { RuntimeError } from "../runtime/errors";
import { bundleToSpec } from "./config";

export const DEFAULT_ROOT = "/run/grove-runtime";
const BUNDLE_ANNOTATION = "grove.oci.bundle";
const USAGE = `usage: grove-runtime [--root DIR] [--cgroup-parent NAME] COMMAND
  create [--bundle DIR] [--pid-file FILE] ID   set the container up; its process waits for start
  start ID                                     run the process of a created container
  state ID                                     print the OCI state JSON
  kill ID [SIGNAL]                             send a signal (default SIGTERM) to the process
  delete [--force] ID                          remove a stopped (or, with --force, any) container
  run [--bundle DIR] [--pid-file FILE] ID      create, start, wait and delete; exits with its status`;

class UsageError extends Error {}

interface Parsed {
  root: string;
  cgroupParent: string;
  command: string;
  bundle: string;
  pidFile: string | undefined;
  force: boolean;
  positional: string[];
}

function parse(argv: string[]): Parsed {
  const p: Parsed = {
    root: DEFAULT_ROOT,
    cgroupParent: "grove-runtime",
    command: "",
    bundle: process.cwd(),
    pidFile: undefined,
    force: false,
    positional: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const [flag, inline] = a.split(/=(.*)/s, 2);
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    if (a === "--root" || a.startsWith("--root=")) p.root = path.resolve(value());
    else if (a === "--cgroup-parent" || a.startsWith("--cgroup-parent=")) p.cgroupParent = value();
    else if (a === "--bundle" || a === "-b" || a.startsWith("--bundle=")) p.bundle = path.resolve(value());
    else if (a === "--pid-file" || a.startsWith("--pid-file=")) p.pidFile = path.resolve(value());
    else if (a === "--force" || a === "-f") p.force = true;
    else if (a === "--log" || a === "--log-format" || a.startsWith("--log=") || a.startsWith("--log-format=")) {
      if (!a.includes("=")) i++; // accepted for runc compatibility, ignored
    } else if (a === "--help" || a === "-h") throw new UsageError("");
    else if (a.startsWith("-")) throw new UsageError(`unknown option ${a}`);
    else if (p.command === "") p.command = a;
    else p.positional.push(a);
  }
  if (p.command === "") throw new UsageError("a command is required");
  return p;
}

function needId(p: Parsed, max = 1): string {
  const id = p.positional[0];
  if (id === undefined) throw new UsageError(`${p.command}: container ID is required`);
  if (p.positional.length > max) throw new UsageError(`${p.command}: too many arguments`);
  return id;
}

async function create(rt: NativeRuntime, p: Parsed, hold: boolean): Promise<{ id: string; pid: number }> {
  const id = needId(p);
  // config.json through the one OCI front end, the C grove-runtime's (oci_config.c).
  const bundle = loadOciFrontEnd().readOciBundle(p.bundle, id);
  const spec = bundleToSpec(bundle, id, path.join(rt.containerDir(id), "output.log"));
  spec.annotations = { ...spec.annotations, [BUNDLE_ANNOTATION]: p.bundle };
  const h = hold ? await rt.create(spec) : await rt.start(spec);
  if (p.pidFile !== undefined) fs.writeFileSync(p.pidFile, String(h.pid));
  return { id, pid: h.pid };
}

async function state(rt: NativeRuntime, id: string): Promise<Record<string, unknown>> {
  const loaded = await rt.load(id);
  if (loaded === undefined) throw new RuntimeError("CONTAINER_NOT_FOUND", `container ${id} does not exist`);
  const live = await rt.shimState(id);
  const { [BUNDLE_ANNOTATION]: bundle, "grove.oci.annotations": raw, ...rest } = loaded.annotations;
  void rest;
  return {
    ociVersion: "1.0.2",
    id,
    status: live?.status ?? "stopped",
    pid: live !== undefined && live.status !== "stopped" ? live.pid : 0,
    bundle: bundle ?? "",
    annotations: raw !== undefined ? (JSON.parse(raw) as Record<string, string>) : {},
  };
}

export async function main(argv: string[]): Promise<number> {
  let p: Parsed;
  try {
    p = parse(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(err.message ? `grove-runtime: ${err.message}\n${USAGE}\n` : `${USAGE}\n`);
      return err.message ? 2 : 0;
    }
    throw err;
  }
  try {
    const rt = new NativeRuntime({ stateDir: p.root, cgroupParent: p.cgroupParent });
    switch (p.command) {
      case "create":
        await create(rt, p, true);
        return 0;
      case "start": {
        await rt.startCreated(needId(p));
        return 0;
      }
      case "state": {
        process.stdout.write(JSON.stringify(await state(rt, needId(p)), null, 2) + "\n");
        return 0;
      }
      case "kill": {
        const id = needId(p, 2);
        const raw = p.positional[1] ?? "SIGTERM";
        const sig = /^\d+$/.test(raw) ? Number(raw) : ((raw.startsWith("SIG") ? raw : `SIG${raw}`) as NodeJS.Signals);
        if ((await rt.load(id)) === undefined)
          throw new RuntimeError("CONTAINER_NOT_FOUND", `container ${id} does not exist`);
        const live = await rt.shimState(id);
        if (live === undefined || live.status === "stopped") {
          throw new RuntimeError("CONTAINER_NOT_FOUND", `container ${id} is not running`);
        }
        await rt.kill(id, sig);
        return 0;
      }
      case "delete": {
        const id = needId(p);
        const loaded = await rt.load(id);
        if (loaded === undefined) {
          // Nothing loadable: remove whatever is left of it.
          await rt.cleanupStale();
          fs.rmSync(rt.containerDir(id), { recursive: true, force: true });
          if (!p.force) throw new RuntimeError("CONTAINER_NOT_FOUND", `container ${id} does not exist`);
          return 0;
        }
        const live = await rt.shimState(id);
        if (live !== undefined && live.status !== "stopped") {
          if (!p.force) {
            throw new RuntimeError("CONTAINER_RUNNING", `container ${id} is ${live.status}; stop it or use --force`);
          }
          await rt.stop(id, 0);
        } else {
          await loaded.handle.exited.catch(() => undefined);
        }
        await rt.remove(id);
        await rt.removeParentCgroup().catch(() => undefined);
        return 0;
      }
      case "run": {
        const { id } = await create(rt, p, false);
        const exit = await rt.list().find((h) => h.id === id)!.exited;
        process.stdout.write(fs.readFileSync(path.join(rt.containerDir(id), "output.log")));
        await rt.remove(id);
        await rt.removeParentCgroup().catch(() => undefined);
        return exit.exitCode;
      }
      default:
        throw new UsageError(`unknown command ${p.command}`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`grove-runtime: ${err.message}\n${USAGE}\n`);
      return 2;
    }
    process.stderr.write(`grove-runtime: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
