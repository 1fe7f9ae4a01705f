// Merges an image config's Entrypoint, Cmd, Env, WorkingDir and User with
// what the App says, the way `docker run` does: the App's entrypoint
// replaces the image's Entrypoint (and then the image's Cmd is dropped);
// the App's command replaces the image's Cmd; argv = entrypoint + cmd. Env
// is the image's, overridden key by key by the App's. The working directory
// is the App's, else the image's, else "/". The image's User is the user
// to run as unless the App names one (`security.user`), like `docker run --user`.
import { ImageError } from "./errors";
import type { ImageRunConfig } from "./types";

export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface AppRunSettings {
  entrypoint: readonly string[];
  command: readonly string[];
  env: Readonly<Record<string, string>>;
  workingDir: string;
}

export interface MergedRunConfig {
  command: string[];
  env: Record<string, string>;
  workingDir: string;
  /** The image's User ("name", "uid", optionally ":group"), when it names one. */
  user?: string;
}

export function mergeRunConfig(image: ImageRunConfig, app: AppRunSettings, reference: string): MergedRunConfig {
  const entrypoint = app.entrypoint.length > 0 ? [...app.entrypoint] : [...(image.Entrypoint ?? [])];
  const cmd = app.command.length > 0 ? [...app.command] : app.entrypoint.length > 0 ? [] : [...(image.Cmd ?? [])];
  const command = [...entrypoint, ...cmd];
  if (command.length === 0) {
    throw new ImageError("INVALID_IMAGE", `${reference} has no Entrypoint or Cmd, and the App gives no command`);
  }
  const env: Record<string, string> = {};
  for (const kv of image.Env ?? []) {
    const eq = kv.indexOf("=");
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  Object.assign(env, app.env);
  env.PATH ??= DEFAULT_PATH;
  const user = (image.User ?? "").trim();
  const merged: MergedRunConfig = { command, env, workingDir: app.workingDir || image.WorkingDir || "/" };
  if (user !== "") merged.user = user;
  return merged;
}
