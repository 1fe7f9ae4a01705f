// Moved to @grove/common (one WorkQueue for the agent and the controllers); kept so importers need no edit.
export { WorkQueue, type WorkQueueOptions, type SyncFn } from "@grove/common";
