/**
 * Latency statistics for `osprey bench`. Pure TS, no I/O.
 *
 * Percentile definition (one, used everywhere in Osprey's bench output): **linear interpolation between closest
 * ranks**, the same as numpy's default `numpy.percentile(a, q)` (method `"linear"`, Hyndman & Fan type 7):
 *
 *   sort the n samples ascending into x[0..n-1];  h = (n − 1) · q / 100;
 *   p_q = x[⌊h⌋] + (h − ⌊h⌋) · (x[⌊h⌋ + 1] − x[⌊h⌋])
 *
 * so p0 is the minimum, p100 the maximum and p50 the median (the mean of the two middle samples for even n).
 * Example: percentile([1, 2, 3, 4], 90) = 3.7; percentile([15, 20, 35, 40, 50], 40) = 29.
 * trtexec and perf_analyzer report nearest-rank percentiles instead; on the sample counts a bench collects
 * (hundreds to thousands) the two differ by less than one inter-sample gap.
 */

/** Latency summary in milliseconds (the JSON key `latencyMs`). */
export interface LatencySummaryMs {
  min: number;
  mean: number;
  median: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
  /** Population standard deviation. */
  std: number;
  /** Number of samples summarised. */
  count: number;
}

function assertQ(q: number): void {
  if (!Number.isFinite(q) || q < 0 || q > 100) throw new RangeError(`percentile q must be within [0, 100], got ${q}`);
}

/**
 * The q-th percentile of an ascending-sorted sample, by linear interpolation (numpy's default; see the module doc).
 * @param sorted samples sorted ascending (not checked); must not be empty.
 * @param q percentile in [0, 100].
 * @throws RangeError when `sorted` is empty or q is outside [0, 100].
 */
export function percentileSorted(sorted: ArrayLike<number>, q: number): number {
  assertQ(q);
  const n = sorted.length;
  if (n === 0) throw new RangeError('percentile of an empty sample');
  const h = ((n - 1) * q) / 100;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, n - 1);
  const frac = h - lo;
  return sorted[lo]! + frac * (sorted[hi]! - sorted[lo]!);
}

/** Sorts a copy ascending into a Float64Array. */
export function sortedCopy(samples: ArrayLike<number>): Float64Array {
  const out = Float64Array.from(samples as ArrayLike<number>);
  out.sort();
  return out;
}

/**
 * The q-th percentile of an unsorted sample (linear interpolation, numpy's default).
 * @example percentile([1, 2, 3, 4], 90) // 3.7
 * @throws RangeError when `samples` is empty or q is outside [0, 100].
 */
export function percentile(samples: ArrayLike<number>, q: number): number {
  return percentileSorted(sortedCopy(samples), q);
}

/**
 * min, mean, median, p90, p95, p99, max and std of latency samples (milliseconds in, milliseconds out).
 * @throws RangeError when `samplesMs` is empty.
 */
export function summarizeLatencies(samplesMs: ArrayLike<number>): LatencySummaryMs {
  const s = sortedCopy(samplesMs);
  const n = s.length;
  if (n === 0) throw new RangeError('no latency samples to summarise');
  let sum = 0;
  for (let i = 0; i < n; i++) sum += s[i]!;
  const mean = sum / n;
  let sq = 0;
  for (let i = 0; i < n; i++) sq += (s[i]! - mean) ** 2;
  return {
    min: s[0]!,
    mean,
    median: percentileSorted(s, 50),
    p90: percentileSorted(s, 90),
    p95: percentileSorted(s, 95),
    p99: percentileSorted(s, 99),
    max: s[n - 1]!,
    std: Math.sqrt(sq / n),
    count: n,
  };
}

/** Mean of a sample (0 for an empty one). */
export function mean(samples: ArrayLike<number>): number {
  if (samples.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i]!;
  return sum / samples.length;
}

/**
 * A growable Float64Array for latency samples on hot loops (no arrays of boxed numbers).
 */
export class SampleBuffer {
  private data: Float64Array;
  private n = 0;
  constructor(initialCapacity = 1024) {
    this.data = new Float64Array(Math.max(16, initialCapacity));
  }
  push(v: number): void {
    if (this.n === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.n++] = v;
  }
  get length(): number {
    return this.n;
  }
  /** A view of the samples pushed so far. */
  values(): Float64Array {
    return this.data.subarray(0, this.n);
  }
  clear(): void {
    this.n = 0;
  }
}

/** Rounds to `digits` decimals for JSON output (keeps files small and readable). */
export function round(v: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
