// The placement library: pure, shared by the control plane and sim/.
export * from "./types";
export * from "./rng";
export * from "./filters";
export * from "./scorers";
export * from "./scorers-density";
export * from "./profiles";
export * from "./place";
export * from "./working-set";
export * from "./batch";
export * from "./preempt";
export * from "./resources";
export * from "./ports";
export * from "./capacity";
