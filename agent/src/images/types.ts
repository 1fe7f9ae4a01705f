// OCI image-spec shapes (and their Docker schema-2 twins) as this agent reads them.

export const MediaType = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
} as const;

export const MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.ociManifest,
  MediaType.dockerManifestList,
  MediaType.dockerManifest,
].join(", ");

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Manifest {
  schemaVersion: number;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface Index {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
}

/** The parts of an image config's "config" that decide how a container runs. */
export interface ImageRunConfig {
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Env?: string[] | null;
  WorkingDir?: string;
  User?: string;
}

export interface ImageConfig {
  architecture?: string;
  os?: string;
  config?: ImageRunConfig;
  rootfs?: { type: string; diff_ids: string[] };
}

export type Compression = "none" | "gzip" | "zstd";

export interface LayerRecord {
  digest: string;
  diffId: string;
  mediaType: string;
  size: number;
}

/** What the store keeps for a pulled image (images/<sha256 of reference>.json). */
export interface ImageRecord {
  reference: string;
  manifestDigest: string;
  configDigest: string;
  layers: LayerRecord[];
  config: ImageRunConfig;
  /** Sum of the layers' compressed sizes. */
  size: number;
  pulledAt: string;
  /** Who may start it from the cache (pull-auth.ts); absent on older records: every start re-checks once. */
  pullAuth?: PullAuth;
}

/** Credential identities (hashes, pull-auth.ts) that pulled or re-checked an image; anyone: pulled without any. */
export interface PullAuth {
  anyone?: boolean;
  identities: string[];
}

export interface PullProgress {
  image: string;
  layersDone: number;
  layersTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

export function compressionOf(mediaType: string): Compression | undefined {
  switch (mediaType) {
    case MediaType.ociLayer:
    case "application/vnd.docker.image.rootfs.diff.tar":
      return "none";
    case MediaType.ociLayerGzip:
    case MediaType.dockerLayerGzip:
      return "gzip";
    case MediaType.ociLayerZstd:
      return "zstd";
    default:
      return undefined;
  }
}

export function isIndex(mediaType: string | undefined): boolean {
  return mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList;
}

export function isManifest(mediaType: string | undefined): boolean {
  return mediaType === MediaType.ociManifest || mediaType === MediaType.dockerManifest;
}

export const DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$/;

/** This node's platform in OCI terms. */
export function hostPlatform(): Platform {
  const arch: Record<string, string> = {
    x64: "amd64",
    arm64: "arm64",
    arm: "arm",
    ia32: "386",
    ppc64: "ppc64le",
    s390x: "s390x",
    riscv64: "riscv64",
  };
  const p: Platform = { os: "linux", architecture: arch[process.arch] ?? process.arch };
  if (process.arch === "arm64") p.variant = "v8";
  if (process.arch === "arm") {
    const v = (process.config.variables as { arm_version?: string }).arm_version;
    if (v) p.variant = `v${v}`;
  }
  return p;
}
