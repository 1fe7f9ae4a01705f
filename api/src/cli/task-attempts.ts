// A Task's attempts as the CLI reads them (grove run, describe task, logs task/NAME).
import type { Instance } from "../schemas";
import { attemptOf } from "../task-rules";
import type { CliClient } from "./deps";

/** The attempts of a Task, first to last. */
export async function taskAttempts(client: CliClient, task: string, namespace: string): Promise<Instance[]> {
  const list = await client.list("Instance", { namespace });
  return list.items.filter((i) => i.spec.task === task).sort((a, b) => attemptOf(a) - attemptOf(b));
}
