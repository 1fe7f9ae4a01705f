export * from "./cni";
export * from "./conflist";
export * from "./egress";
export * from "./manager";
export * from "./netns";
