// Worker thread entry: unpacks the layer in workerData and posts an UnpackReply.
import { parentPort, workerData } from "node:worker_threads";
import { isImageError } from "./errors";
import { unpackBlobHere, type UnpackJob, type UnpackReply } from "./layer-unpack";

unpackBlobHere(workerData as UnpackJob).then(
  (diffId) => parentPort?.postMessage({ ok: true, diffId } satisfies UnpackReply),
  (err: unknown) =>
    parentPort?.postMessage({
      ok: false,
      ...(isImageError(err) ? { code: err.code } : {}),
      message: err instanceof Error ? err.message : String(err),
    } satisfies UnpackReply),
);
