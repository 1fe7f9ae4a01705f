export * from "./types";
export { RuntimeError, type RuntimeErrorCode } from "./errors";
export { validateSpec, validateId, signalNumber, CONTAINER_ID_PATTERN } from "./validate";
export { NativeRuntime, type NativeRuntimeOptions } from "./native";
export {
  loadNativeBinding,
  NATIVE_ADDON_PATH,
  type NativeBinding,
  type NativeExit,
  type NativeResources,
  type NativeStartOptions,
  type NativeStarted,
} from "./native-binding";
export { FakeRuntime, type FakeCall, type FakeContainer, type FakeRuntimeOptions } from "./fake";
