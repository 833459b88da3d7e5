/**
 * COCO bounding-box evaluation (mAP50-95, mAP50, mAP75, APs/APm/APl, AR1/AR10/AR100, ARs/ARm/ARl, AP per class)
 * with the exact semantics of COCOeval.
 *
 * Sources:
 * - T.-Y. Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014 (arXiv:1405.0312), and the
 *   COCO detection evaluation page (cocodataset.org/#detection-eval).
 * - The reference implementation, pycocotools `cocoeval.py` (`COCOeval.evaluateImg`, `accumulate`,
 *   `summarize`) and `maskApi.c` (`bbIou`), which this file re-implements (not a copy) with typed arrays.
 *
 * Semantics kept from the reference implementation:
 * - IoU thresholds 0.50:0.05:0.95 (10), recall thresholds 0:0.01:1 (101), computed like `np.linspace`
 *   (`start + i * step`, last value set to the stop) so that `searchsorted` sees the same floats.
 * - Per image × category: detections sorted by score descending with a stable sort (numpy `mergesort`), the top
 *   `maxDets[last]` kept; ground truth sorted "not ignored first" (stable); greedy matching in score order, each
 *   detection takes the unmatched ground truth with the highest IoU ≥ threshold (ties: the later one), a crowd
 *   ground truth (`iscrowd=1`) may be matched many times and its IoU is intersection / area(detection); once a
 *   detection has matched a regular ground truth it never moves to an ignored one.
 * - Ground truth is ignored when it is a crowd or its `area` field is outside the area range (an annotation's own
 *   `ignore` field is overwritten by `iscrowd` in pycocotools, so it has no effect); a detection matched to an
 *   ignored ground truth is ignored, and an unmatched detection whose area (w·h of its box) is outside the area
 *   range is ignored — neither counts as a false positive.
 * - IoU uses the boxes' own areas (w·h), area ranges use the annotation's `area` field (segment area in COCO).
 * - Area ranges (inclusive bounds): all [0, 1e10], small [0, 32²], medium [32², 96²], large [96², 1e10].
 * - maxDets 1 / 10 / 100; images are matched once with the largest and truncated per maxDet when accumulating
 *   (equivalent, since matching is sequential in score order).
 * - Precision per recall threshold: cumulative TP/FP over all images' detections sorted by score (stable),
 *   precision `tp / (tp + fp + eps)`, made monotone (non-increasing) from the right, sampled at the recall
 *   thresholds with `searchsorted(rc, recThrs, side='left')`; thresholds beyond the reached recall give 0.
 * - A category without (non-ignored) ground truth in the evaluated images gives -1 and is left out of every mean;
 *   here -1 is reported as `null`.
 *
 * One deliberate difference: pycocotools marks "matched" by storing the ground-truth id (so an annotation with
 * id 0 would look unmatched); here a separate flag is kept.
 *
 * Pure TS, no I/O.
 */

/** A ground-truth annotation (COCO `instances_*.json` fields). */
export interface CocoGroundTruth {
  /** Annotation id (used for reporting only). */
  id: number;
  imageId: number;
  categoryId: number;
  /** [x, y, width, height] in source-image pixels (COCO convention: top-left corner and size). */
  bbox: readonly [number, number, number, number] | readonly number[];
  /** Annotation area in source pixels² (COCO: the segment area); used for the area ranges. Defaults to w·h. */
  area?: number;
  /** 1 for a crowd region: matched many times, never a miss, detections on it ignored. */
  iscrowd?: number | boolean;
  /**
   * Accepted and not used: pycocotools' `_prepare` overwrites `ignore` with `iscrowd` for bbox evaluation, so an
   * annotation's own `ignore` field has no effect there either.
   */
  ignore?: number | boolean;
}

/** A detection in COCO results format (the `--save-json` entry shape, with camelCase ids). */
export interface CocoDetectionResult {
  imageId: number;
  categoryId: number;
  /** [x, y, width, height] in source-image pixels. */
  bbox: readonly [number, number, number, number] | readonly number[];
  score: number;
}

/** An area range with its label. Bounds are inclusive, in pixels². */
export interface AreaRange {
  label: string;
  min: number;
  max: number;
}

/** COCO's default area ranges: all [0, 1e10], small [0, 32²], medium [32², 96²], large [96², 1e10]. */
export const COCO_AREA_RANGES: readonly AreaRange[] = Object.freeze([
  { label: 'all', min: 0 ** 2, max: 1e5 ** 2 },
  { label: 'small', min: 0 ** 2, max: 32 ** 2 },
  { label: 'medium', min: 32 ** 2, max: 96 ** 2 },
  { label: 'large', min: 96 ** 2, max: 1e5 ** 2 },
]);

/** COCO's default maxDets. */
export const COCO_MAX_DETS: readonly number[] = Object.freeze([1, 10, 100]);

/** `np.linspace(start, stop, num)` with numpy's arithmetic (`i * step + start`, last element = stop). */
export function linspace(start: number, stop: number, num: number): Float64Array {
  const out = new Float64Array(num);
  const step = num > 1 ? (stop - start) / (num - 1) : 0;
  for (let i = 0; i < num; i++) out[i] = i * step + start;
  if (num > 1) out[num - 1] = stop;
  return out;
}

/** IoU thresholds 0.50:0.05:0.95 (`np.linspace(.5, 0.95, 10)`). */
export const COCO_IOU_THRESHOLDS: Float64Array = linspace(0.5, 0.95, Math.round((0.95 - 0.5) / 0.05) + 1);
/** Recall thresholds 0:0.01:1 (`np.linspace(.0, 1.00, 101)`). */
export const COCO_RECALL_THRESHOLDS: Float64Array = linspace(0, 1, Math.round((1 - 0) / 0.01) + 1);

/** Evaluation parameters (pycocotools `Params`, iouType 'bbox', useCats 1). */
export interface CocoEvalParams {
  /** Images evaluated; ground truth and detections of other images are left out. */
  imageIds: readonly number[];
  /** Categories evaluated (usually every category of the annotation file, sorted). */
  categoryIds: readonly number[];
  /** Default {@link COCO_IOU_THRESHOLDS}. */
  iouThresholds?: ArrayLike<number>;
  /** Default {@link COCO_RECALL_THRESHOLDS}. */
  recallThresholds?: ArrayLike<number>;
  /** Ascending; default [1, 10, 100]. */
  maxDets?: readonly number[];
  /** Default {@link COCO_AREA_RANGES}; the first must be "all" for the per-class figures. */
  areaRanges?: readonly AreaRange[];
}

/** The 12 summary numbers of `COCOeval.summarize()`, `null` where pycocotools prints -1. */
export interface CocoSummary {
  /** AP @ IoU 0.50:0.95, area all, maxDets 100. */
  map50_95: number | null;
  /** AP @ IoU 0.50. */
  map50: number | null;
  /** AP @ IoU 0.75. */
  map75: number | null;
  /** AP small / medium / large (IoU 0.50:0.95, maxDets 100). */
  mapSmall: number | null;
  mapMedium: number | null;
  mapLarge: number | null;
  /** AR @ maxDets 1 / 10 / 100 (IoU 0.50:0.95, area all). */
  ar1: number | null;
  ar10: number | null;
  ar100: number | null;
  /** AR small / medium / large (maxDets 100). */
  arSmall: number | null;
  arMedium: number | null;
  arLarge: number | null;
}

/** AP of one category (area all, maxDets = the largest). `null` where the category has no ground truth. */
export interface CocoClassResult {
  categoryId: number;
  /** Ground-truth annotations of this category in the evaluated images that are not crowd/ignored. */
  numGroundTruth: number;
  /** Detections of this category (before the maxDets cap). */
  numDetections: number;
  ap50_95: number | null;
  ap50: number | null;
  ap75: number | null;
  /** Recall at the largest maxDets averaged over IoU thresholds. */
  ar: number | null;
}

export interface CocoEvalResult {
  summary: CocoSummary;
  perClass: CocoClassResult[];
  /**
   * pycocotools' `eval['precision']`: interpolated precision, shape `[T, R, K, A, M]` row-major
   * (IoU thresholds, recall thresholds, categories, area ranges, maxDets), -1 where a category has no ground truth.
   */
  precision: Float64Array;
  /** pycocotools' `eval['recall']`: shape `[T, K, A, M]`, -1 where a category has no ground truth. */
  recall: Float64Array;
  /** Score at each precision sample, shape `[T, R, K, A, M]` (0 where recall was not reached). */
  scores: Float64Array;
  /** The parameters used (defaults filled in). */
  params: {
    imageIds: number[];
    categoryIds: number[];
    iouThresholds: Float64Array;
    recallThresholds: Float64Array;
    maxDets: number[];
    areaRanges: AreaRange[];
  };
}

/** Per image × category × area range: what `evaluateImg` returns (only the parts `accumulate` needs). */
interface ImageEval {
  /** Detection scores, sorted descending, length D (≤ largest maxDet). */
  dtScores: Float64Array;
  /** [T × D] 1 where the detection matched a ground truth at threshold t. */
  dtMatched: Uint8Array;
  /** [T × D] 1 where the detection is ignored at threshold t. */
  dtIgnore: Uint8Array;
  /** Number of ground truths that are not ignored. */
  numGtNotIgnored: number;
}

function boxOf(b: CocoGroundTruth['bbox']): [number, number, number, number] {
  return [Number(b[0]), Number(b[1]), Number(b[2]), Number(b[3])];
}

/**
 * IoU of COCO [x,y,w,h] boxes as pycocotools `bbIou`: the union is area(det) when the ground truth is a crowd.
 * Intersection width/height at or below zero give 0.
 */
export function cocoBoxIoU(
  dx: number, dy: number, dw: number, dh: number,
  gx: number, gy: number, gw: number, gh: number,
  crowd: boolean,
): number {
  const w = Math.min(dx + dw, gx + gw) - Math.max(dx, gx);
  if (w <= 0) return 0;
  const h = Math.min(dy + dh, gy + gh) - Math.max(dy, gy);
  if (h <= 0) return 0;
  const inter = w * h;
  const union = crowd ? dw * dh : dw * dh + gw * gh - inter;
  return inter / union;
}

/**
 * Runs COCOeval (`evaluate()` + `accumulate()` + `summarize()`) on bbox ground truth and detections.
 *
 * Cost: O(images × categories × (D × G × T)) for matching plus a sort per category, area and maxDet; a few
 * hundred images with 300 detections each take well under a second.
 *
 * @example
 *   const r = evaluateCoco(gts, dets, { imageIds: [1, 2], categoryIds: [1, 2, 3] });
 *   r.summary.map50_95; // e.g. 0.372
 */
export function evaluateCoco(
  groundTruth: readonly CocoGroundTruth[],
  detections: readonly CocoDetectionResult[],
  params: CocoEvalParams,
): CocoEvalResult {
  const iouThrs = Float64Array.from(params.iouThresholds ?? COCO_IOU_THRESHOLDS);
  const recThrs = Float64Array.from(params.recallThresholds ?? COCO_RECALL_THRESHOLDS);
  const maxDets = [...(params.maxDets ?? COCO_MAX_DETS)];
  const areaRanges = [...(params.areaRanges ?? COCO_AREA_RANGES)];
  const imageIds = [...new Set(params.imageIds)];
  const categoryIds = [...new Set(params.categoryIds)];
  const T = iouThrs.length, R = recThrs.length, K = categoryIds.length, A = areaRanges.length, M = maxDets.length;
  const I = imageIds.length;
  const maxDetLast = maxDets[M - 1] ?? 100;

  const imgIndex = new Map<number, number>();
  imageIds.forEach((id, i) => imgIndex.set(id, i));
  const catIndex = new Map<number, number>();
  categoryIds.forEach((id, k) => catIndex.set(id, k));

  // Group by (category, image) in file order (pycocotools `_prepare`).
  const gtGroups = new Map<number, number[]>();
  const dtGroups = new Map<number, number[]>();
  const numDetsPerCat = new Int32Array(K);
  for (let j = 0; j < groundTruth.length; j++) {
    const g = groundTruth[j]!;
    const i = imgIndex.get(g.imageId), k = catIndex.get(g.categoryId);
    if (i === undefined || k === undefined) continue;
    const key = k * I + i;
    let list = gtGroups.get(key);
    if (!list) gtGroups.set(key, (list = []));
    list.push(j);
  }
  for (let j = 0; j < detections.length; j++) {
    const d = detections[j]!;
    const i = imgIndex.get(d.imageId), k = catIndex.get(d.categoryId);
    if (i === undefined || k === undefined) continue;
    numDetsPerCat[k]!++;
    const key = k * I + i;
    let list = dtGroups.get(key);
    if (!list) dtGroups.set(key, (list = []));
    list.push(j);
  }

  // evaluate(): evalImgs[k][a][i], null where the image has neither gt nor dt of the category.
  const evalImgs: (ImageEval | null)[][][] = [];
  for (let k = 0; k < K; k++) {
    const perArea: (ImageEval | null)[][] = [];
    for (let a = 0; a < A; a++) perArea.push(new Array<ImageEval | null>(I).fill(null));
    evalImgs.push(perArea);
  }
  const keys = new Set<number>([...gtGroups.keys(), ...dtGroups.keys()]);
  for (const key of keys) {
    const k = Math.floor(key / I), i = key - k * I;
    const gtIdx = gtGroups.get(key) ?? [];
    const dtAll = dtGroups.get(key) ?? [];
    // Stable sort by score descending (numpy argsort(-score, kind='mergesort')), keep the top maxDetLast.
    const allScores = new Float64Array(dtAll.length);
    for (let x = 0; x < dtAll.length; x++) allScores[x] = detections[dtAll[x]!]!.score;
    const dtSorted = Array.from(dtAll.keys())
      .sort((p, q) => (allScores[q]! - allScores[p]!) || (p - q))
      .slice(0, maxDetLast)
      .map((x) => dtAll[x]!);
    const G = gtIdx.length, D = dtSorted.length;
    // Boxes as typed arrays.
    const gBox = new Float64Array(G * 4), gArea = new Float64Array(G), gCrowd = new Uint8Array(G), gIgn = new Uint8Array(G);
    for (let g = 0; g < G; g++) {
      const ann = groundTruth[gtIdx[g]!]!;
      const [x, y, w, h] = boxOf(ann.bbox);
      gBox[g * 4] = x; gBox[g * 4 + 1] = y; gBox[g * 4 + 2] = w; gBox[g * 4 + 3] = h;
      gArea[g] = ann.area ?? w * h;
      gCrowd[g] = ann.iscrowd ? 1 : 0;
      gIgn[g] = ann.iscrowd ? 1 : 0; // pycocotools: gt['ignore'] = iscrowd
    }
    const dBox = new Float64Array(D * 4), dArea = new Float64Array(D), dScore = new Float64Array(D);
    for (let d = 0; d < D; d++) {
      const det = detections[dtSorted[d]!]!;
      const [x, y, w, h] = boxOf(det.bbox);
      dBox[d * 4] = x; dBox[d * 4 + 1] = y; dBox[d * 4 + 2] = w; dBox[d * 4 + 3] = h;
      dArea[d] = w * h;
      dScore[d] = det.score;
    }
    // computeIoU: [D × G], gt in original order.
    const ious = new Float64Array(D * G);
    for (let d = 0; d < D; d++) {
      for (let g = 0; g < G; g++) {
        ious[d * G + g] = cocoBoxIoU(
          dBox[d * 4]!, dBox[d * 4 + 1]!, dBox[d * 4 + 2]!, dBox[d * 4 + 3]!,
          gBox[g * 4]!, gBox[g * 4 + 1]!, gBox[g * 4 + 2]!, gBox[g * 4 + 3]!,
          gCrowd[g] === 1,
        );
      }
    }
    // No ground truth: every detection is unmatched (a false positive unless outside the area range).
    const noGtMatched = G === 0 ? new Uint8Array(T * D) : undefined;
    for (let a = 0; a < A; a++) {
      const rng = areaRanges[a]!;
      if (noGtMatched) {
        let anyOut = false;
        for (let d = 0; d < D; d++) if (dArea[d]! < rng.min || dArea[d]! > rng.max) anyOut = true;
        let dtIgnore = noGtMatched; // all zero, never written
        if (anyOut) {
          dtIgnore = new Uint8Array(T * D);
          for (let d = 0; d < D; d++) if (dArea[d]! < rng.min || dArea[d]! > rng.max) for (let t = 0; t < T; t++) dtIgnore[t * D + d] = 1;
        }
        evalImgs[k]![a]![i] = { dtScores: dScore, dtMatched: noGtMatched, dtIgnore, numGtNotIgnored: 0 };
        continue;
      }
      // gt `_ignore` and order: not ignored first (stable).
      const ignore = new Uint8Array(G);
      for (let g = 0; g < G; g++) ignore[g] = gIgn[g] || gArea[g]! < rng.min || gArea[g]! > rng.max ? 1 : 0;
      const order: number[] = [];
      for (let g = 0; g < G; g++) if (!ignore[g]) order.push(g);
      for (let g = 0; g < G; g++) if (ignore[g]) order.push(g);
      let numGtNotIgnored = 0;
      for (let g = 0; g < G; g++) if (!ignore[g]) numGtNotIgnored++;
      const dtMatched = new Uint8Array(T * D), dtIgnore = new Uint8Array(T * D);
      if (G > 0 && D > 0) {
        const gtMatched = new Uint8Array(T * G); // indexed by sorted position
        for (let t = 0; t < T; t++) {
          for (let d = 0; d < D; d++) {
            let best = Math.min(iouThrs[t]!, 1 - 1e-10);
            let m = -1;
            for (let gs = 0; gs < G; gs++) {
              const g = order[gs]!;
              // already matched and not a crowd: skip
              if (gtMatched[t * G + gs] && !gCrowd[g]) continue;
              // matched to a regular gt and reached the ignored ones: stop
              if (m > -1 && !ignore[order[m]!] && ignore[g]) break;
              const iou = ious[d * G + g]!;
              if (iou < best) continue;
              best = iou;
              m = gs;
            }
            if (m === -1) continue;
            dtIgnore[t * D + d] = ignore[order[m]!]!;
            dtMatched[t * D + d] = 1;
            gtMatched[t * G + m] = 1;
          }
        }
      }
      // Unmatched detections outside the area range are ignored.
      for (let d = 0; d < D; d++) {
        if (dArea[d]! < rng.min || dArea[d]! > rng.max) {
          for (let t = 0; t < T; t++) if (!dtMatched[t * D + d]) dtIgnore[t * D + d] = 1;
        }
      }
      evalImgs[k]![a]![i] = { dtScores: dScore, dtMatched, dtIgnore, numGtNotIgnored };
    }
  }

  // accumulate()
  const precision = new Float64Array(T * R * K * A * M).fill(-1);
  const scoresOut = new Float64Array(T * R * K * A * M).fill(-1);
  const recall = new Float64Array(T * K * A * M).fill(-1);
  const pIdx = (t: number, r: number, k: number, a: number, m: number) => (((t * R + r) * K + k) * A + a) * M + m;
  const rIdx = (t: number, k: number, a: number, m: number) => ((t * K + k) * A + a) * M + m;
  for (let k = 0; k < K; k++) {
    for (let a = 0; a < A; a++) {
      const E = evalImgs[k]![a]!.filter((e): e is ImageEval => e !== null);
      if (E.length === 0) continue;
      let npig = 0;
      for (const e of E) npig += e.numGtNotIgnored;
      for (let m = 0; m < M; m++) {
        const maxDet = maxDets[m]!;
        if (npig === 0) continue;
        // Concatenate the first maxDet detections of each image.
        let total = 0;
        for (const e of E) total += Math.min(maxDet, e.dtScores.length);
        const sc = new Float64Array(total), srcE = new Int32Array(total), srcD = new Int32Array(total);
        let n = 0;
        for (let ei = 0; ei < E.length; ei++) {
          const e = E[ei]!;
          const cnt = Math.min(maxDet, e.dtScores.length);
          for (let d = 0; d < cnt; d++) { sc[n] = e.dtScores[d]!; srcE[n] = ei; srcD[n] = d; n++; }
        }
        // Stable argsort of -score (mergesort).
        const inds = Array.from({ length: total }, (_, x) => x).sort((p, q) => (sc[q]! - sc[p]!) || (p - q));
        const tpc = new Float64Array(total), fpc = new Float64Array(total);
        const rc = new Float64Array(total), pr = new Float64Array(total);
        for (let t = 0; t < T; t++) {
          let tp = 0, fp = 0;
          for (let x = 0; x < total; x++) {
            const s = inds[x]!;
            const e = E[srcE[s]!]!;
            const D = e.dtScores.length;
            const off = t * D + srcD[s]!;
            const ign = e.dtIgnore[off]!;
            if (!ign) {
              if (e.dtMatched[off]) tp++;
              else fp++;
            }
            tpc[x] = tp; fpc[x] = fp;
          }
          const nd = total;
          for (let x = 0; x < nd; x++) {
            rc[x] = tpc[x]! / npig;
            pr[x] = tpc[x]! / (fpc[x]! + tpc[x]! + Number.EPSILON);
          }
          recall[rIdx(t, k, a, m)] = nd ? rc[nd - 1]! : 0;
          // Precision envelope: non-increasing from the right.
          for (let x = nd - 1; x > 0; x--) if (pr[x]! > pr[x - 1]!) pr[x - 1] = pr[x]!;
          // searchsorted(rc, recThrs, side='left'): first x with rc[x] >= r.
          let x = 0;
          for (let r = 0; r < R; r++) {
            const thr = recThrs[r]!;
            while (x < nd && rc[x]! < thr) x++;
            const at = pIdx(t, r, k, a, m);
            if (x < nd) {
              precision[at] = pr[x]!;
              scoresOut[at] = sc[inds[x]!]!;
            } else {
              precision[at] = 0;
              scoresOut[at] = 0;
            }
          }
        }
      }
    }
  }

  // summarize()
  const aAll = Math.max(0, areaRanges.findIndex((r) => r.label === 'all'));
  const mLast = M - 1;
  const mOf = (n: number) => maxDets.indexOf(n);
  const aOf = (label: string) => areaRanges.findIndex((r) => r.label === label);
  const tOf = (v: number) => {
    for (let t = 0; t < T; t++) if (Math.abs(iouThrs[t]! - v) < 1e-9) return t;
    return -1;
  };
  const meanPrecision = (ts: number[], ks: number[], a: number, m: number): number | null => {
    if (a < 0 || m < 0 || ts.some((t) => t < 0)) return null;
    let sum = 0, cnt = 0;
    for (const t of ts) for (let r = 0; r < R; r++) for (const k of ks) {
      const v = precision[pIdx(t, r, k, a, m)]!;
      if (v > -1) { sum += v; cnt++; }
    }
    return cnt ? sum / cnt : null;
  };
  const meanRecall = (ts: number[], ks: number[], a: number, m: number): number | null => {
    if (a < 0 || m < 0) return null;
    let sum = 0, cnt = 0;
    for (const t of ts) for (const k of ks) {
      const v = recall[rIdx(t, k, a, m)]!;
      if (v > -1) { sum += v; cnt++; }
    }
    return cnt ? sum / cnt : null;
  };
  const allT = Array.from({ length: T }, (_, t) => t);
  const allK = Array.from({ length: K }, (_, k) => k);
  const m100 = mOf(100) >= 0 ? mOf(100) : mLast;
  const summary: CocoSummary = {
    map50_95: meanPrecision(allT, allK, aAll, m100),
    map50: meanPrecision([tOf(0.5)], allK, aAll, m100),
    map75: meanPrecision([tOf(0.75)], allK, aAll, m100),
    mapSmall: meanPrecision(allT, allK, aOf('small'), m100),
    mapMedium: meanPrecision(allT, allK, aOf('medium'), m100),
    mapLarge: meanPrecision(allT, allK, aOf('large'), m100),
    ar1: meanRecall(allT, allK, aAll, mOf(1)),
    ar10: meanRecall(allT, allK, aAll, mOf(10)),
    ar100: meanRecall(allT, allK, aAll, m100),
    arSmall: meanRecall(allT, allK, aOf('small'), m100),
    arMedium: meanRecall(allT, allK, aOf('medium'), m100),
    arLarge: meanRecall(allT, allK, aOf('large'), m100),
  };
  const perClass: CocoClassResult[] = categoryIds.map((categoryId, k) => {
    let numGroundTruth = 0;
    for (let i = 0; i < I; i++) numGroundTruth += evalImgs[k]![aAll]![i]?.numGtNotIgnored ?? 0;
    return {
      categoryId,
      numGroundTruth,
      numDetections: numDetsPerCat[k]!,
      ap50_95: meanPrecision(allT, [k], aAll, m100),
      ap50: meanPrecision([tOf(0.5)], [k], aAll, m100),
      ap75: meanPrecision([tOf(0.75)], [k], aAll, m100),
      ar: meanRecall(allT, [k], aAll, m100),
    };
  });
  return {
    summary,
    perClass,
    precision,
    recall,
    scores: scoresOut,
    params: { imageIds, categoryIds, iouThresholds: iouThrs, recallThresholds: recThrs, maxDets, areaRanges },
  };
}

/**
 * Mean interpolated precision over categories (those with ground truth) at each recall threshold, for the IoU
 * thresholds given, area "all", the largest maxDets: the points of a precision-recall curve plot.
 * @returns `[R]` precision values (NaN where no category has ground truth).
 */
export function meanPrecisionCurve(result: CocoEvalResult, iouThresholdIndices: readonly number[], categoryIndices?: readonly number[]): Float64Array {
  const { recallThresholds, categoryIds, areaRanges, maxDets } = result.params;
  const R = recallThresholds.length, K = categoryIds.length, A = areaRanges.length, M = maxDets.length;
  const ks = categoryIndices ?? Array.from({ length: K }, (_, k) => k);
  const a = Math.max(0, areaRanges.findIndex((r) => r.label === 'all'));
  const m = M - 1;
  const out = new Float64Array(R);
  for (let r = 0; r < R; r++) {
    let sum = 0, cnt = 0;
    for (const t of iouThresholdIndices) for (const k of ks) {
      const v = result.precision[(((t * R + r) * K + k) * A + a) * M + m]!;
      if (v > -1) { sum += v; cnt++; }
    }
    out[r] = cnt ? sum / cnt : Number.NaN;
  }
  return out;
}
