/**
 * A one-machine cluster for a test: a temporary directory that holds a busybox
 * rootfs template (dir/rootfs/busybox), grove-server's data (dir/server) and the
 * state of the agents started through it (dir/agent unless a test names
 * another). The test owns the agents it starts; stop() ends the server and
 * removes the directory.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { GroveClient } from "@grove/api";
import {
  REPO_ROOT,
  startAgent,
  startServer,
  tempDir,
  type AgentOptions,
  type ServerOptions,
  type ServerProcess,
  type Started,
} from "./processes";

/** startAgent()'s options on a TestMachine: its server and rootfs dir; state in dir/agent by default. */
export type MachineAgentOptions = Omit<AgentOptions, "server" | "stateDir" | "rootfsDir"> & { stateDir?: string };

export interface TestMachine {
  dir: string;
  server: ServerProcess;
  /** An admin client of the server. */
  client: GroveClient;
  /** The CLI's environment: this server and its admin token, HOME in dir, no config file. */
  env: NodeJS.ProcessEnv;
  startAgent(o: MachineAgentOptions): Promise<Started>;
  /** Stops the server and removes the directory (the test stops its agents first). */
  stop(): Promise<void>;
}

/** Makes the directory (tempDir(prefix)) and its rootfs template, and starts grove-server. */
export async function startMachine(prefix: string, server: Omit<ServerOptions, "dataDir"> = {}): Promise<TestMachine> {
  const dir = tempDir(prefix);
  let s: ServerProcess;
  try {
    execFileSync(path.join(REPO_ROOT, "deploy", "make-rootfs.sh"), [path.join(dir, "rootfs", "busybox")]);
    s = await startServer({ ...server, dataDir: path.join(dir, "server") });
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    dir,
    server: s,
    client: new GroveClient({ server: s.url, token: s.adminToken }),
    env: { GROVE_SERVER: s.url, GROVE_TOKEN: s.adminToken, HOME: dir, GROVE_CONFIG: "" },
    startAgent: (o) =>
      startAgent({
        ...o,
        server: s,
        stateDir: o.stateDir ?? path.join(dir, "agent"),
        rootfsDir: path.join(dir, "rootfs"),
      }),
    stop: async () => {
      await s.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
