export * from "./types";
export { RuntimeError, type RuntimeErrorCode } from "./errors";
export { validateSpec, validateId, signalNumber, CONTAINER_ID_PATTERN } from "./validate";
export { NativeRuntime, shimRequest, type NativeRuntimeOptions } from "./native";
export {
  CAPABILITIES,
  DEFAULT_CAPABILITIES,
  RLIMITS,
  capabilitySet,
  capabilityMask,
  resolveUser,
  readFileInRoot,
  type ResolvedUser,
  type Rlimit,
} from "./security";
export {
  loadNativeBinding,
  NATIVE_ADDON_PATH,
  SHIM_PATH,
  type NativeBinding,
  type NativeResources,
} from "./native-binding";
export {
  WIRE_KEYS,
  encodeExecConfig,
  encodeShimConfig,
  shimCall,
  type ExecConfig,
  type ProcessConfig,
  type ShimConfig,
  type ShimRequest,
  type ShimAnswers,
  type StateRecord,
  type ExitRecord,
  type SpecRecord,
} from "./shim-protocol";
export { FakeRuntime, type FakeCall, type FakeContainer, type FakeRuntimeOptions } from "./fake";
export {
  CRUN_HYBRID_PATH,
  CRUN_PATH,
  defaultRuntimeHandlers,
  parseRuntimeHandler,
  GROVE_RUNTIME_PATH,
  RUNTIME_CLASS_PATTERN,
  type RuntimeHandlers,
} from "./runtime-handlers";
export { ociConfig, writeBundle } from "./oci-bundle";
