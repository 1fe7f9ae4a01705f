export * from "./store/store";
export { EtcdStore, createStore } from "./store/etcd-store";
export { MemoryStore } from "./store/memory-store";
export { EmbeddedEtcd } from "./etcd/embedded-etcd";
export { Repository } from "./resources/repository";
export * as scheduler from "./scheduler";
export { startControlPlane, type ControlPlane, type ControlPlaneOptions } from "./server";
export { SchedulerController } from "./controllers/scheduler-controller";
export { Informer } from "./controllers/informer";
