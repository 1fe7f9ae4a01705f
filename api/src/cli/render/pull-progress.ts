// A text progress bar for an image pull (Instance status.pull).
import { formatBytes } from "../../quantity";
import type { ImagePullProgress } from "../../schemas";

export function pullProgressBar(p: ImagePullProgress, width = 20): string {
  const fraction =
    p.bytesTotal > 0 ? Math.min(1, p.bytesDone / p.bytesTotal) : p.layersDone / Math.max(1, p.layersTotal);
  const filled = Math.round(fraction * width);
  const bar = "#".repeat(filled) + ".".repeat(width - filled);
  return `[${bar}] ${Math.floor(fraction * 100)}% ${formatBytes(p.bytesDone)}/${formatBytes(p.bytesTotal)}, ${p.layersDone}/${p.layersTotal} layers`;
}
