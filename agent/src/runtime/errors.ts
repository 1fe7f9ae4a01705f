// The runtime's error catalogue: stable codes that callers (the reconciler,
// tests) match on instead of message text.

export type RuntimeErrorCode =
  | "INVALID_SPEC" // the spec failed validation before anything was created
  | "CONTAINER_EXISTS" // start() with an id this runtime already has
  | "CONTAINER_NOT_FOUND" // kill/stop of an id this runtime does not know
  | "CONTAINER_RUNNING" // remove() of a container that has not exited
  | "CONTAINER_NOT_RUNNING" // exec in a container that has exited (or is frozen)
  | "NATIVE_NOT_BUILT" // the addon's .node file is missing
  | "START_FAILED" // the kernel or the exec refused (message says why)
  | "CGROUP_FAILED" // creating, signalling or removing cgroups failed
  | "UNKNOWN_RUNTIME_CLASS"; // spec.runtimeClass names no handler of this runtime

export class RuntimeError extends Error {
  override readonly name = "RuntimeError";
  constructor(
    readonly code: RuntimeErrorCode,
    message: string,
    /** errno name from the native core (ENOENT, EACCES...), when there is one. */
    readonly errno?: string,
  ) {
    super(message);
  }
}
