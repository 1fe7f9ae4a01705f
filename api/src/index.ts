export * from "./schemas";
export * from "./errors";
export * from "./quantity";
export * from "./defaults";
