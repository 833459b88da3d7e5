/**
 * Calibration math for INT8 static quantization: activation statistics (running min/max and a histogram of |x|),
 * and the three range-selection methods `minmax`, `percentile` and `entropy`.
 *
 * Pure TS (no I/O). The statistics are fed tensor by tensor while the FP32 model runs on calibration images
 * (see `calibrate.ts`); the methods turn them into a clipping range `[rangeMin, rangeMax]` per tensor, from which
 * `quant-params.ts` derives scale and zero point.
 *
 * Sources:
 * - `entropy` follows TensorRT's entropy calibrator (`IInt8EntropyCalibrator2`, "8-bit Inference with TensorRT",
 *   Szymon Migacz, GTC 2017): a 2048-bin histogram of |x|, and for every candidate threshold bin i in
 *   [128, 2048] the KL divergence between the reference distribution P (bins [0, i), the outliers folded into
 *   bin i-1) and its 128-level quantized copy Q (P merged into 128 buckets, then expanded back over the non-empty
 *   bins); the threshold is the upper edge of the bin i with the smallest KL divergence.
 * - `percentile` follows ONNX Runtime's `CalibrationMethod.Percentile` / TensorRT's percentile calibrator: the
 *   threshold is the given percentile (default 99.99) of the |x| histogram.
 * - `minmax` is the observed minimum and maximum (ORT `CalibrationMethod.MinMax`, TensorRT `IInt8MinMaxCalibrator`).
 */

/** Range-selection methods. */
export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy';
export const CALIBRATION_METHODS: readonly CalibrationMethod[] = ['minmax', 'percentile', 'entropy'];

/** Default number of histogram bins (TensorRT uses 2048). */
export const DEFAULT_HISTOGRAM_BINS = 2048;
/** Default percentile for the `percentile` method (ORT's default, 99.999, is looser; 99.99 is ours). */
export const DEFAULT_PERCENTILE = 99.99;
/** Quantized levels on one side of zero for int8 (TensorRT's entropy calibrator uses 128). */
export const ENTROPY_QUANTIZED_BINS = 128;

/**
 * Running statistics of one activation tensor over all calibration images.
 *
 * The histogram counts |x| in `bins` equal bins over `[0, histogramMax]`. When a later batch holds a larger |x|,
 * the histogram is widened: `histogramMax` grows to the new maximum and the old counts are re-binned by their bin
 * centres (ONNX Runtime's `HistogramCollector` merges histograms the same way).
 */
export interface TensorStatistics {
  /** Smallest value seen. */
  min: number;
  /** Largest value seen. */
  max: number;
  /** Upper edge of the histogram (the largest |x| seen when it was last widened). */
  histogramMax: number;
  /** Counts of |x|, `bins` entries; Float64Array so large counts stay exact. */
  histogram: Float64Array;
  /** Number of values seen. */
  count: number;
}

/** New, empty statistics. @param bins histogram bins, default 2048. */
export function createTensorStatistics(bins: number = DEFAULT_HISTOGRAM_BINS): TensorStatistics {
  return { min: Infinity, max: -Infinity, histogramMax: 0, histogram: new Float64Array(bins), count: 0 };
}

/** Re-bins `hist` (over [0, oldMax]) into a new histogram of the same size over [0, newMax] (newMax ≥ oldMax). */
export function rebinHistogram(hist: Float64Array, oldMax: number, newMax: number): Float64Array {
  const bins = hist.length;
  const out = new Float64Array(bins);
  if (oldMax <= 0) {
    // everything so far was exactly zero: it stays in bin 0
    let total = 0;
    for (let i = 0; i < bins; i++) total += hist[i]!;
    out[0] = total;
    return out;
  }
  const oldWidth = oldMax / bins;
  const scale = bins / newMax;
  for (let i = 0; i < bins; i++) {
    const c = hist[i]!;
    if (c === 0) continue;
    const centre = (i + 0.5) * oldWidth;
    const j = Math.min(bins - 1, Math.floor(centre * scale));
    out[j] += c;
  }
  return out;
}

/**
 * Adds the values of one tensor (e.g. one image's activation `[1, C, H, W]`) to the statistics, in place.
 * NaN values are ignored.
 */
export function updateTensorStatistics(stats: TensorStatistics, data: Float32Array): void {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === Infinity) return; // empty or all NaN
  if (lo < stats.min) stats.min = lo;
  if (hi > stats.max) stats.max = hi;
  const absMax = Math.max(Math.abs(lo), Math.abs(hi));
  const bins = stats.histogram.length;
  if (absMax > stats.histogramMax) {
    if (stats.count > 0) stats.histogram = rebinHistogram(stats.histogram, stats.histogramMax, absMax);
    stats.histogramMax = absMax;
  }
  const hist = stats.histogram;
  if (stats.histogramMax === 0) {
    hist[0] += data.length;
  } else {
    const scale = bins / stats.histogramMax;
    const last = bins - 1;
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (v !== v) continue;
      const j = Math.floor((v < 0 ? -v : v) * scale);
      hist[j > last ? last : j] += 1;
    }
  }
  stats.count += data.length;
}

/** The clipping threshold on |x| at the given percentile of the |x| histogram (upper edge of the bin reached). */
export function percentileThreshold(stats: TensorStatistics, percentile: number = DEFAULT_PERCENTILE): number {
  if (!(percentile > 0 && percentile <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${percentile}`);
  const hist = stats.histogram;
  let total = 0;
  for (let i = 0; i < hist.length; i++) total += hist[i]!;
  if (total === 0 || stats.histogramMax === 0) return stats.histogramMax;
  const target = (total * percentile) / 100;
  const width = stats.histogramMax / hist.length;
  let cumulative = 0;
  for (let i = 0; i < hist.length; i++) {
    cumulative += hist[i]!;
    if (cumulative >= target) return Math.min(stats.histogramMax, (i + 1) * width);
  }
  return stats.histogramMax;
}

/**
 * KL(P || Q) of two non-negative vectors (normalized inside), with TensorRT's conventions: terms where P is 0
 * contribute nothing; a term where P > 0 and Q is 0 makes the divergence infinite (cannot happen with the
 * expansion used in {@link entropyThreshold}, which gives every non-empty P bin a share of its bucket).
 */
export function klDivergence(p: Float64Array, q: Float64Array): number {
  let sp = 0;
  let sq = 0;
  for (let i = 0; i < p.length; i++) {
    sp += p[i]!;
    sq += q[i]!;
  }
  if (sp === 0 || sq === 0) return Infinity;
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    const pi = p[i]! / sp;
    if (pi === 0) continue;
    const qi = q[i]! / sq;
    if (qi === 0) return Infinity;
    kl += pi * Math.log(pi / qi);
  }
  return kl;
}

/**
 * TensorRT's entropy calibration (IInt8EntropyCalibrator2) on a |x| histogram: returns the clipping threshold on
 * |x| that minimizes KL(P‖Q) between the clipped reference distribution and its quantized copy.
 *
 * @param stats statistics with the |x| histogram (2048 bins in TensorRT)
 * @param quantizedBins levels of the quantized copy, default 128 (int8: 127 levels a side + zero)
 * @returns threshold on |x| in the tensor's units: the upper edge `i*·binWidth` of the chosen reference range
 */
export function entropyThreshold(stats: TensorStatistics, quantizedBins: number = ENTROPY_QUANTIZED_BINS): number {
  // The spike of exact zeros (post-activation tensors, padding) would dominate P and pull the threshold down;
  // like pytorch-quantization's TensorRT-style entropy calibration, bin 0 takes bin 1's count.
  const hist = Float64Array.from(stats.histogram);
  const bins = hist.length;
  if (stats.histogramMax === 0) return 0;
  if (bins > 1) hist[0] = hist[1]!;
  if (bins <= quantizedBins) return stats.histogramMax;
  const width = stats.histogramMax / bins;
  // suffix sums for the outlier fold
  const tail = new Float64Array(bins + 1);
  for (let i = bins - 1; i >= 0; i--) tail[i] = tail[i + 1]! + hist[i]!;
  let bestKl = Infinity;
  let bestI = bins;
  const p = new Float64Array(bins);
  const q = new Float64Array(bins);
  for (let i = quantizedBins; i <= bins; i++) {
    // reference P: bins [0, i), everything beyond folded into bin i-1
    for (let k = 0; k < i; k++) p[k] = hist[k]!;
    p[i - 1] = p[i - 1]! + tail[i]!;
    // quantized Q: the unclipped bins [0, i) merged into quantizedBins buckets, each bucket's mass spread
    // evenly over its non-empty source bins (empty source bins stay empty)
    const merge = i / quantizedBins;
    for (let k = 0; k < i; k++) q[k] = 0;
    for (let b = 0; b < quantizedBins; b++) {
      const start = Math.floor(b * merge);
      const end = b === quantizedBins - 1 ? i : Math.floor((b + 1) * merge);
      let sum = 0;
      let nonEmpty = 0;
      for (let k = start; k < end; k++) {
        sum += hist[k]!;
        if (hist[k]! !== 0) nonEmpty++;
      }
      if (nonEmpty === 0) continue;
      const share = sum / nonEmpty;
      for (let k = start; k < end; k++) if (hist[k]! !== 0) q[k] = share;
    }
    // TensorRT's Q has the folded outliers' bin non-empty when P's is: keep Q defined where P is
    if (p[i - 1]! > 0 && q[i - 1] === 0) q[i - 1] = Math.max(p[i - 1]! * 1e-6, 1e-12);
    const kl = klDivergence(p.subarray(0, i), q.subarray(0, i));
    if (kl < bestKl) {
      bestKl = kl;
      bestI = i;
    }
  }
  return Math.min(stats.histogramMax, bestI * width);
}

/** A calibrated clipping range of one tensor, in the tensor's units. */
export interface TensorRange {
  /** Lower clip (≤ 0 after {@link computeTensorRange}: quantization must represent zero exactly). */
  rangeMin: number;
  /** Upper clip (≥ 0). */
  rangeMax: number;
}

/** Options of {@link computeTensorRange}. */
export interface RangeOptions {
  method: CalibrationMethod;
  /** For `percentile`; default 99.99. */
  percentile?: number;
}

/**
 * The clipping range of one tensor for the given method. `minmax` returns the observed range; `percentile`
 * and `entropy` clip |x| at their threshold t: `[max(min, -t), min(max, t)]`. The range always contains 0.
 */
export function computeTensorRange(stats: TensorStatistics, options: RangeOptions): TensorRange {
  if (stats.count === 0) return { rangeMin: 0, rangeMax: 0 };
  let lo = stats.min;
  let hi = stats.max;
  if (options.method !== 'minmax') {
    // one-sided tensors (min ≥ 0) get twice the levels on |x| (pytorch-quantization's `unsigned` case)
    const t =
      options.method === 'percentile'
        ? percentileThreshold(stats, options.percentile ?? DEFAULT_PERCENTILE)
        : entropyThreshold(stats, stats.min >= 0 ? 2 * ENTROPY_QUANTIZED_BINS : ENTROPY_QUANTIZED_BINS);
    lo = Math.max(lo, -t);
    hi = Math.min(hi, t);
  }
  return { rangeMin: Math.min(lo, 0), rangeMax: Math.max(hi, 0) };
}
