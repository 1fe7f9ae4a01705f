export * from "./store/store";
export { EtcdStore, createStore } from "./store/etcd-store";
export { MemoryStore } from "./store/memory-store";
export { EmbeddedEtcd } from "./etcd/embedded-etcd";
export { Repository } from "./resources/repository";
export {
  claimSubnet,
  listClaims,
  nodeClaimKey,
  subnetClaimKey,
  subnetOfKey,
  NODE_CLAIMS,
  SUBNET_CLAIMS,
  SubnetClaimCache,
  type ClaimsSource,
  type ClaimsView,
} from "./network/subnet-claims";
export { parseCidr } from "./network/subnets";
export * as scheduler from "./scheduler";
export { startControlPlane, type ControlPlane, type ControlPlaneOptions } from "./server";
export { SchedulerController } from "./controllers/scheduler-controller";
export { Informer } from "./controllers/informer";
export { LeaderElection, currentLeader, observeLeader, DEFAULT_LEADER_LEASE_TTL_SECONDS } from "./leader/election";
export { NODE_GRACE_MS, PRESENCE_REFRESH_MS, HEARTBEAT_INTERVAL_MS } from "./controllers/node-lifecycle";
export { FencedStore, fencedStoreFor, fenceCounters, isFencedOut, type LeaderFence } from "./store/fenced-store";
export { createCa, caHash, issueKeyPair, NODE_ORGANIZATION, type KeyPair } from "./pki/ca";
export { ensureClusterPki } from "./pki/cluster-pki";
