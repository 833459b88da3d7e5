/**
 * Host post-processing of one image: decode → NMS → scale to source pixels → {@link Detection}s.
 */
import { decodeDetections, orderByScore, selectCandidates, type FloatOutput, type LayoutInfo } from './decode.js';
import { scaleBoxesToSource, type LetterboxGeometry } from './letterbox.js';
import { nonMaxSuppression } from './nms.js';
import type { Detection, DetectOptions } from './types.js';

/**
 * Turns one image of a batch output into detections in source pixels, sorted by descending score.
 *
 * @param output model output, float32 row-major, e.g. `[batch, 84, 8400]`.
 * @param batchIndex the image's index in the batch.
 * @param geometry the letterbox used for this image (model pixels → source pixels).
 * @param names class names indexed by class id (an id beyond the list is named by its number).
 * @param nmsInGraph true when the graph already ran NMS (its rows are final); then only the confidence and class
 *   filters and `maxDetections` apply.
 */
export function postprocessImage(
  output: FloatOutput,
  info: LayoutInfo,
  batchIndex: number,
  geometry: LetterboxGeometry,
  names: readonly string[],
  options: DetectOptions,
  nmsInGraph = false,
): Detection[] {
  const cand = decodeDetections(output, info, batchIndex, options);
  const keep = nmsInGraph
    ? orderByScore(cand).subarray(0, Math.min(cand.count, options.maxDetections))
    : nonMaxSuppression(cand, { iouThreshold: options.iouThreshold, maxDetections: options.maxDetections, agnostic: options.agnostic });
  const kept = selectCandidates(cand, keep);
  scaleBoxesToSource(kept.boxes, kept.count, geometry);
  const out: Detection[] = new Array(kept.count);
  for (let i = 0; i < kept.count; i++) {
    const classId = kept.classIds[i]!;
    out[i] = {
      classId,
      className: names[classId] ?? String(classId),
      score: kept.scores[i]!,
      box: [kept.boxes[i * 4]!, kept.boxes[i * 4 + 1]!, kept.boxes[i * 4 + 2]!, kept.boxes[i * 4 + 3]!],
    };
  }
  return out;
}
