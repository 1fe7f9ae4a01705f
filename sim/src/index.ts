// grove-sim: the control plane's placement library on workloads over time.
export * from "./cluster";
export * from "./workload";
export * from "./trace";
export * from "./engine";
export * from "./compaction";
export * from "./compare";
export * from "./mixes";
export * from "./heldout";
export * from "./sweep";
export * from "./k8s-binpack";
