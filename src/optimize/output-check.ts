/**
 * Pure checks on detection outputs: the quantization error of an output against the FP32 reference (used by
 * the sensitivity analysis) and the broken-model check (constant / zero / non-finite class scores).
 */
import type { LayoutInfo } from '../core/decode.js';

/** Error of one output against the FP32 reference. */
export interface OutputError {
  /** Relative L1 error of class scores where either score ≥ `scoreFloor` (0 = identical). */
  scoreError: number;
  /** Mean over confident reference anchors of the largest box-coordinate error divided by the box's larger side. */
  boxError: number;
  /** `scoreError + boxError`: the figure the sensitivity ranking uses. */
  error: number;
}

/** Options of {@link outputError}. */
export interface OutputErrorOptions {
  /** Scores below this in both outputs are ignored (they never become detections). Default 0.01. */
  scoreFloor?: number;
  /** Anchors whose reference best score is ≥ this are used for the box error. Default 0.25. */
  confidentScore?: number;
}

/**
 * Error of a quantized output against the FP32 reference output of the same image.
 *
 * Layouts (batch 1, float32):
 * - `yolov8` `[1, 4 + nc, N]` (e.g. `[1, 84, 8400]`): rows cx, cy, w, h, then class scores;
 * - `yolov5` `[1, N, 5 + nc]`: objectness × class score as the score;
 * - `end2end` `[1, K, 6]`: relative L2 of the whole tensor as `scoreError` (the rows are already selected).
 */
export function outputError(ref: Float32Array, q: Float32Array, info: LayoutInfo, options: OutputErrorOptions = {}): OutputError {
  const floor = options.scoreFloor ?? 0.01;
  const confident = options.confidentScore ?? 0.25;
  if (info.layout === 'end2end') {
    let num = 0;
    let den = 0;
    for (let i = 0; i < ref.length; i++) {
      const d = ref[i]! - q[i]!;
      num += d * d;
      den += ref[i]! * ref[i]!;
    }
    const e = den > 0 ? Math.sqrt(num / den) : Math.sqrt(num);
    return { scoreError: e, boxError: 0, error: e };
  }
  const n = info.numBoxes;
  const nc = info.numClasses;
  const v8 = info.layout === 'yolov8';
  // accessors for box coordinate k (0..3) and class c of anchor j
  const box = (a: Float32Array, j: number, k: number) => (v8 ? a[k * n + j]! : a[j * (5 + nc) + k]!);
  const score = (a: Float32Array, j: number, c: number) => (v8 ? a[(4 + c) * n + j]! : a[j * (5 + nc) + 4]! * a[j * (5 + nc) + 5 + c]!);
  let sNum = 0;
  let sDen = 0;
  let bSum = 0;
  let bCount = 0;
  for (let j = 0; j < n; j++) {
    let best = 0;
    for (let c = 0; c < nc; c++) {
      const r = score(ref, j, c);
      const s = score(q, j, c);
      if (r > best) best = r;
      if (r < floor && s < floor) continue;
      sNum += Math.abs(r - s);
      sDen += Math.abs(r);
    }
    if (best >= confident) {
      const w = Math.abs(box(ref, j, 2));
      const h = Math.abs(box(ref, j, 3));
      const side = Math.max(w, h, 1);
      let worst = 0;
      for (let k = 0; k < 4; k++) worst = Math.max(worst, Math.abs(box(ref, j, k) - box(q, j, k)));
      bSum += worst / side;
      bCount++;
    }
  }
  const scoreError = sDen > 0 ? sNum / sDen : sNum > 0 ? 1 : 0;
  const boxError = bCount > 0 ? bSum / bCount : 0;
  return { scoreError, boxError, error: scoreError + boxError };
}

/** Statistics of class scores over some images, from {@link scoreStatistics}. */
export interface ScoreStatistics {
  min: number;
  max: number;
  /** Count of NaN/±Inf values anywhere in the outputs. */
  nonFinite: number;
  /** Values seen. */
  count: number;
  /** Box-coordinate range (yolov8/yolov5 only; end2end: the box columns). */
  boxMin: number;
  boxMax: number;
}

export function emptyScoreStatistics(): ScoreStatistics {
  return { min: Infinity, max: -Infinity, nonFinite: 0, count: 0, boxMin: Infinity, boxMax: -Infinity };
}

/** Accumulates the score (and box) range of one batch-1 output into `acc`. */
export function scoreStatistics(out: Float32Array, info: LayoutInfo, acc: ScoreStatistics = emptyScoreStatistics()): ScoreStatistics {
  const n = info.numBoxes;
  const nc = info.numClasses;
  const take = (v: number, isScore: boolean) => {
    if (!Number.isFinite(v)) {
      acc.nonFinite++;
      return;
    }
    if (isScore) {
      if (v < acc.min) acc.min = v;
      if (v > acc.max) acc.max = v;
      acc.count++;
    } else {
      if (v < acc.boxMin) acc.boxMin = v;
      if (v > acc.boxMax) acc.boxMax = v;
    }
  };
  if (info.layout === 'yolov8') {
    for (let i = 0; i < 4 * n; i++) take(out[i]!, false);
    for (let i = 4 * n; i < (4 + nc) * n; i++) take(out[i]!, true);
  } else if (info.layout === 'yolov5') {
    const row = 5 + nc;
    for (let j = 0; j < n; j++) {
      for (let k = 0; k < 4; k++) take(out[j * row + k]!, false);
      const obj = out[j * row + 4]!;
      for (let c = 0; c < nc; c++) take(obj * out[j * row + 5 + c]!, true);
    }
  } else {
    for (let j = 0; j < n; j++) {
      for (let k = 0; k < 4; k++) take(out[j * 6 + k]!, false);
      take(out[j * 6 + 4]!, true);
    }
  }
  return acc;
}

/** Verdict of the broken-model check. */
export interface BrokenVerdict {
  broken: boolean;
  /** Why, in words (empty when not broken). */
  reasons: string[];
}

/** Scores with a spread below this over several real images are "constant" (float32 noise is far larger). */
export const CONSTANT_SCORE_EPSILON = 1e-6;

/**
 * The broken-model rule: over a few real images the class scores must be finite and must vary; scores that are
 * all zero or all equal (e.g. `yolov8n_int8_static_qoperator_broken.onnx`, where every score is 0) mean the model
 * cannot detect anything, whatever its boxes look like.
 */
export function judgeScores(s: ScoreStatistics): BrokenVerdict {
  const reasons: string[] = [];
  if (s.nonFinite > 0) reasons.push(`${s.nonFinite} output value(s) are NaN or infinite`);
  if (s.count === 0) reasons.push('no finite class scores');
  else if (s.max - s.min < CONSTANT_SCORE_EPSILON) {
    reasons.push(s.max === 0 ? `all ${s.count} class scores are exactly 0` : `all ${s.count} class scores are constant (${s.max})`);
  }
  if (s.boxMax !== -Infinity && s.boxMax - s.boxMin < CONSTANT_SCORE_EPSILON) reasons.push(`all box coordinates are constant (${s.boxMax})`);
  return { broken: reasons.length > 0, reasons };
}

/** Confidence a working detector reaches on some object in a handful of real images (Ultralytics' default `conf`). */
export const MIN_PEAK_SCORE_ON_REAL_IMAGES = 0.25;

/**
 * The second rule, for real images only: scores that vary but never reach {@link MIN_PEAK_SCORE_ON_REAL_IMAGES} on
 * any of several real images mean the engine detects nothing where the source model finds objects (seen here: an
 * INT8 build whose scores peaked at 0.105 while FP32 scored 0.93 on the same images).
 * @param candidatesPerImage candidates with a score ≥ 0.25 (before NMS), one count per real image
 * @param maxScore highest class score seen over those images
 */
export function judgeDetections(candidatesPerImage: readonly number[], maxScore: number): BrokenVerdict {
  if (candidatesPerImage.length === 0 || candidatesPerImage.some((c) => c > 0)) return { broken: false, reasons: [] };
  return {
    broken: true,
    reasons: [
      `no class score reaches ${MIN_PEAK_SCORE_ON_REAL_IMAGES} on any of the ${candidatesPerImage.length} real image(s) (highest ${maxScore.toFixed(3)}): it detects nothing`,
    ],
  };
}
