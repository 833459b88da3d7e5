/**
 * Greedy non-maximum suppression on typed arrays.
 *
 * Same decisions as `torchvision.ops.nms` as Ultralytics uses it: candidates in descending score order (ties in
 * input order), a box is suppressed when its IoU with an already kept box is strictly greater than the threshold;
 * class-aware NMS compares boxes of the same class only (Ultralytics' per-class coordinate offset does the same),
 * class-agnostic NMS compares all. Stops as soon as `maxDetections` boxes are kept, so the cost is
 * O(kept × candidates) rather than O(candidates²).
 */
import { orderByScore, type Candidates } from './decode.js';

/**
 * Intersection over union of boxes `i` and `j` of an xyxy `[n × 4]` array. The intersection is clamped at zero, so
 * disjoint and touching boxes give 0 and the result is never negative; two empty boxes give 0.
 */
export function boxIoU(boxes: Float32Array, i: number, j: number): number {
  const a = i * 4;
  const b = j * 4;
  return iouXYXY(boxes[a]!, boxes[a + 1]!, boxes[a + 2]!, boxes[a + 3]!, boxes[b]!, boxes[b + 1]!, boxes[b + 2]!, boxes[b + 3]!);
}

/** IoU of two xyxy boxes given by their coordinates (intersection clamped at zero). */
export function iouXYXY(ax1: number, ay1: number, ax2: number, ay2: number, bx1: number, by1: number, bx2: number, by2: number): number {
  const iw = Math.min(ax2, bx2) - Math.max(ax1, bx1);
  const ih = Math.min(ay2, by2) - Math.max(ay1, by1);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const areaA = Math.max(0, ax2 - ax1) * Math.max(0, ay2 - ay1);
  const areaB = Math.max(0, bx2 - bx1) * Math.max(0, by2 - by1);
  const union = areaA + areaB - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * IoU of two boxes given as `[x1, y1, x2, y2]` (any pixel space, the same for both); 0 when they do not overlap.
 * @example iouOfBoxes([0, 0, 10, 10], [5, 0, 15, 10]) // → 1/3
 */
export function iouOfBoxes(a: readonly number[], b: readonly number[]): number {
  return iouXYXY(a[0]!, a[1]!, a[2]!, a[3]!, b[0]!, b[1]!, b[2]!, b[3]!);
}

export interface NmsOptions {
  /** Suppress a box whose IoU with a kept box is > this. */
  iouThreshold: number;
  /** Stop after this many kept boxes. */
  maxDetections: number;
  /** Compare boxes across classes. */
  agnostic: boolean;
}

/**
 * Greedy NMS.
 * @returns indices into `c` of the kept candidates, highest score first, at most `maxDetections`.
 */
export function nonMaxSuppression(c: Candidates, options: NmsOptions): Int32Array {
  const n = c.count;
  if (n === 0 || options.maxDetections <= 0) return new Int32Array(0);
  const order = orderByScore(c);
  const boxes = c.boxes;
  const cls = c.classIds;
  const area = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * 4;
    area[i] = Math.max(0, boxes[o + 2]! - boxes[o]!) * Math.max(0, boxes[o + 3]! - boxes[o + 1]!);
  }
  const suppressed = new Uint8Array(n);
  const kept = new Int32Array(Math.min(n, options.maxDetections));
  let k = 0;
  const thr = options.iouThreshold;
  for (let oi = 0; oi < n && k < kept.length; oi++) {
    const i = order[oi]!;
    if (suppressed[i]) continue;
    kept[k++] = i;
    const a = i * 4;
    const ax1 = boxes[a]!, ay1 = boxes[a + 1]!, ax2 = boxes[a + 2]!, ay2 = boxes[a + 3]!;
    const areaA = area[i]!;
    for (let oj = oi + 1; oj < n; oj++) {
      const j = order[oj]!;
      if (suppressed[j] || (!options.agnostic && cls[j] !== cls[i])) continue;
      const b = j * 4;
      const iw = Math.min(ax2, boxes[b + 2]!) - Math.max(ax1, boxes[b]!);
      if (iw <= 0) continue;
      const ih = Math.min(ay2, boxes[b + 3]!) - Math.max(ay1, boxes[b + 1]!);
      if (ih <= 0) continue;
      const inter = iw * ih;
      const union = areaA + area[j]! - inter;
      if (union > 0 && inter / union > thr) suppressed[j] = 1;
    }
  }
  return kept.subarray(0, k);
}
