export * from "./cni";
export * from "./conflist";
export * from "./egress";
export * from "./etc-files";
export * from "./manager";
export * from "./netns";
