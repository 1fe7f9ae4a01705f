export * from "./cni";
export * from "./conflist";
export * from "./egress";
export * from "./etc-files";
export * from "./manager";
export * from "./netns";
export * from "./host-ports";
export * from "./node-guard";
