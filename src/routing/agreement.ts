/**
 * Agreement between two detectors' answers on the same image: how many boxes match.
 *
 * Matching follows the rule of COCO evaluation at IoU 0.5 (greedy, highest score first): each primary box, in
 * descending score order, takes the unmatched shadow box of the same class with the highest IoU, if that IoU is
 * ≥ `iouThreshold`. A pair counts once.
 *
 *   agreement = matched / (|primary| + |shadow| − matched)
 *
 * i.e. matched pairs over every distinct box either side produced (the union of the two sets, a matched pair counted
 * once). 1 = identical answers, 0 = nothing in common; both sides empty counts as full agreement (1). Missing boxes
 * and extra boxes both lower it. Aggregate over many images by summing `matched` and `total` (not by averaging
 * per-image ratios) so images with many objects weigh more.
 */
import { iouOfBoxes } from '../core/nms.js';
import type { Detection } from '../core/types.js';

/** Default IoU threshold for a match. */
export const DEFAULT_AGREEMENT_IOU = 0.5;

export interface AgreementResult {
  /** Matched pairs (same class, IoU ≥ threshold). */
  matched: number;
  /** |primary| + |shadow| − matched. */
  total: number;
  /** matched / total; 1 when both sides are empty. */
  agreement: number;
}

/** A detection reduced to what matching needs (box xyxy in any one coordinate space shared by both sides). */
export type MatchBox = Pick<Detection, 'classId' | 'score' | 'box'>;

/**
 * Matches `shadow` boxes to `primary` boxes (same class, IoU ≥ `iouThreshold`, greedy by primary score).
 * Both lists must use the same coordinate space (e.g. source pixels).
 *
 * @example
 *   matchDetections([{ classId: 0, score: 0.9, box: [0, 0, 10, 10] }], [{ classId: 0, score: 0.8, box: [1, 0, 10, 10] }]);
 *   // → { matched: 1, total: 1, agreement: 1 }
 */
export function matchDetections(primary: readonly MatchBox[], shadow: readonly MatchBox[], iouThreshold = DEFAULT_AGREEMENT_IOU): AgreementResult {
  const order = primary.map((_, i) => i).sort((a, b) => primary[b]!.score - primary[a]!.score);
  const taken = new Uint8Array(shadow.length);
  let matched = 0;
  for (const pi of order) {
    const p = primary[pi]!;
    let best = -1;
    let bestIoU = iouThreshold;
    for (let si = 0; si < shadow.length; si++) {
      if (taken[si]) continue;
      const s = shadow[si]!;
      if (s.classId !== p.classId) continue;
      const iou = iouOfBoxes(p.box, s.box);
      if (iou >= bestIoU) {
        bestIoU = iou;
        best = si;
      }
    }
    if (best >= 0) {
      taken[best] = 1;
      matched++;
    }
  }
  const total = primary.length + shadow.length - matched;
  return { matched, total, agreement: total === 0 ? 1 : matched / total };
}
