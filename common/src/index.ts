// @grove/common: mechanisms shared by the agent, the control plane, the
// simulator and the CLI. It imports no other Grove package, so any of them
// may import it without a cycle.
export * from "./backoff";
export * from "./rate-limiter";
export * from "./resources";
export * from "./work-queue";
export * from "./tracing";
export * from "./trace-links";
export * from "./capabilities";
