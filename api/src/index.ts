export * from "./schemas";
export * from "./errors";
export * from "./quantity";
export * from "./defaults";
export * from "./manifest";
export * from "./client";
export * from "./config";
