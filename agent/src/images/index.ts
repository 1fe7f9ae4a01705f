export { ImageError, isImageError, type ImageErrorCode } from "./errors";
export { parseReference, formatReference, type ImageReference } from "./reference";
export { ImageService, type ImageServiceOptions, type PullOptions } from "./service";
export { loadImageConfig, parseImageConfig, ImageConfigError, type ImageConfigFile } from "./config";
export { mergeRunConfig } from "./run-config";
export { InvalidTemplateError, TemplateRoots, type TemplateRootsOptions } from "./template-roots";
export type { ImageRecord, PullProgress } from "./types";
