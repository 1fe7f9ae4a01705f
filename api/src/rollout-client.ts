// The client side of an App's revisions and rollout actions
// (control-plane/src/http/rollout-routes.ts), over GroveClient.call.
import type { GroveClient } from "./client";
import type { AppRevisionList } from "./revisions";
import type { App } from "./schemas";

export type RolloutAction = "pause" | "resume" | "promote";
type Caller = Pick<GroveClient, "call" | "objectPath">;

/** The App's kept revisions, oldest first, and the current one. */
export function appRevisions(client: Caller, app: string, namespace?: string): Promise<AppRevisionList> {
  return client.call<AppRevisionList>("GET", `${client.objectPath("App", app, namespace)}/revisions`);
}

/** Returns the App to an earlier revision (default: the one before the current); answers the App. */
export function undoRollout(client: Caller, app: string, namespace?: string, toRevision?: number): Promise<App> {
  return client.call<App>(
    "POST",
    `${client.objectPath("App", app, namespace)}/rollout/undo`,
    toRevision !== undefined ? { toRevision } : {},
  );
}

/** Pauses, resumes or promotes the App's rolling update; answers the App. */
export function rolloutAction(client: Caller, app: string, action: RolloutAction, namespace?: string): Promise<App> {
  return client.call<App>("POST", `${client.objectPath("App", app, namespace)}/rollout/${action}`, {});
}
