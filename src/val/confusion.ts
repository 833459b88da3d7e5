/**
 * Detection confusion matrix, with Ultralytics' semantics (`ultralytics/utils/metrics.py`, `ConfusionMatrix.process_batch`):
 * detections with score > `conf` (default 0.25), ground truth matched class-agnostically at IoU > `iou`
 * (default 0.45), each pair used once (highest IoU first); rows are predicted classes, columns true classes, with
 * one extra "background" row (missed ground truth) and column (detections matching no ground truth).
 * Crowd (`iscrowd`) ground truth is left out, as Ultralytics' YOLO labels have none.
 *
 * Pure TS, no I/O.
 */
import type { CocoDetectionResult, CocoGroundTruth } from '../core/cocoeval.js';

export interface ConfusionMatrix {
  /** Class labels of rows/columns 0..n-1; index n is "background". */
  labels: string[];
  /** `[(n+1) × (n+1)]` row-major counts: `matrix[pred * (n+1) + true]`. */
  matrix: Int32Array;
  conf: number;
  iou: number;
}

function iouXYWH(a: readonly number[], b: readonly number[]): number {
  const w = Math.min(a[0]! + a[2]!, b[0]! + b[2]!) - Math.max(a[0]!, b[0]!);
  const h = Math.min(a[1]! + a[3]!, b[1]! + b[3]!) - Math.max(a[1]!, b[1]!);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / (a[2]! * a[3]! + b[2]! * b[3]! - inter);
}

/**
 * Builds the confusion matrix over the given images.
 * @param categoryIds dataset category ids in label order (row/column index = position in this list)
 */
export function confusionMatrix(
  groundTruth: readonly CocoGroundTruth[],
  detections: readonly CocoDetectionResult[],
  imageIds: readonly number[],
  categoryIds: readonly number[],
  labels: readonly string[],
  options: { conf?: number; iou?: number } = {},
): ConfusionMatrix {
  const conf = options.conf ?? 0.25, iouThr = options.iou ?? 0.45;
  const n = categoryIds.length, N = n + 1;
  const matrix = new Int32Array(N * N);
  const catIdx = new Map(categoryIds.map((c, i) => [c, i] as const));
  const images = new Set(imageIds);
  const gtBy = new Map<number, CocoGroundTruth[]>();
  const dtBy = new Map<number, CocoDetectionResult[]>();
  for (const g of groundTruth) {
    if (!images.has(g.imageId) || g.iscrowd || !catIdx.has(g.categoryId)) continue;
    (gtBy.get(g.imageId) ?? gtBy.set(g.imageId, []).get(g.imageId)!).push(g);
  }
  for (const d of detections) {
    if (!images.has(d.imageId) || d.score <= conf || !catIdx.has(d.categoryId)) continue;
    (dtBy.get(d.imageId) ?? dtBy.set(d.imageId, []).get(d.imageId)!).push(d);
  }
  for (const img of images) {
    const gts = gtBy.get(img) ?? [];
    const dts = dtBy.get(img) ?? [];
    const pairs: Array<{ g: number; d: number; iou: number }> = [];
    for (let g = 0; g < gts.length; g++) {
      for (let d = 0; d < dts.length; d++) {
        const v = iouXYWH(gts[g]!.bbox, dts[d]!.bbox);
        if (v > iouThr) pairs.push({ g, d, iou: v });
      }
    }
    pairs.sort((a, b) => b.iou - a.iou);
    const gUsed = new Int32Array(gts.length).fill(-1), dUsed = new Uint8Array(dts.length);
    for (const p of pairs) {
      if (gUsed[p.g] !== -1 || dUsed[p.d]) continue;
      gUsed[p.g] = p.d;
      dUsed[p.d] = 1;
    }
    for (let g = 0; g < gts.length; g++) {
      const t = catIdx.get(gts[g]!.categoryId)!;
      const d = gUsed[g]!;
      const p = d >= 0 ? catIdx.get(dts[d]!.categoryId)! : n;
      matrix[p * N + t]!++;
    }
    for (let d = 0; d < dts.length; d++) if (!dUsed[d]) matrix[catIdx.get(dts[d]!.categoryId)! * N + n]!++;
  }
  return { labels: [...labels], matrix, conf, iou: iouThr };
}
