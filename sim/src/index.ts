export * from "./simulate";
