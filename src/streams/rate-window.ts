/**
 * A sliding time window over real events (frames processed, frames decoded), for rates and means that drop to 0 when
 * nothing arrives — unlike an exponentially weighted average of instantaneous rates, which keeps showing the last value
 * of a camera that stopped and over-weights bursts (the mean of 1/Δt is not 1/mean(Δt)).
 *
 * rate(now) = (events with time in (now − windowMs, now]) / span, span = min(windowMs, now − since) but at least
 * {@link MIN_SPAN_MS}, where `since` is when the window was (re)started; so a camera running for 1.5 s with 7 frames
 * shows 4.67 fps, one running for a minute shows the count of the last `windowMs` over `windowMs`.
 * mean(now) = mean of the values of the events in the window, or null when there is none.
 *
 * Pure: times are passed in (milliseconds on one monotonic clock, e.g. `performance.now()`); no timers.
 */

/** Shortest span a rate is computed over, so the first frames after a start do not read as a burst. */
export const MIN_SPAN_MS = 1000;

/**
 * Window length for a camera of target `fps`: 5 s, or 5 frame periods when that is longer (a 0.5 fps camera gets 10 s),
 * so a rate always rests on several frames.
 */
export function rateWindowMsFor(fps: number): number {
  return Math.max(5000, Math.ceil((5 * 1000) / Math.max(fps, 1e-3)));
}

export class SlidingWindow {
  private times: number[] = [];
  private values: number[] = [];
  private head = 0;
  private sum = 0;
  private since: number;

  /**
   * @param windowMs window length in milliseconds (> 0).
   * @param nowMs start time of the window (same clock as the events).
   */
  constructor(
    readonly windowMs: number,
    nowMs: number,
  ) {
    if (!(windowMs > 0)) throw new RangeError(`windowMs must be > 0, got ${windowMs}`);
    this.since = nowMs;
  }

  /** Forgets every event and starts the window again at `nowMs`. */
  reset(nowMs: number): void {
    this.times = [];
    this.values = [];
    this.head = 0;
    this.sum = 0;
    this.since = nowMs;
  }

  /** Records one event at `tMs` (non-decreasing) with an optional value (e.g. a latency in ms). */
  add(tMs: number, value = 0): void {
    this.times.push(tMs);
    this.values.push(value);
    this.sum += value;
    this.evict(tMs);
  }

  /** Events in the window ending at `nowMs`. */
  count(nowMs: number): number {
    this.evict(nowMs);
    return this.times.length - this.head;
  }

  /** Events per second over the window ending at `nowMs` (0 when none). */
  rate(nowMs: number): number {
    const n = this.count(nowMs);
    if (n === 0) return 0;
    const span = Math.max(MIN_SPAN_MS, Math.min(this.windowMs, nowMs - this.since));
    return (n * 1000) / span;
  }

  /** Mean value of the events in the window ending at `nowMs`, or null when there is none. */
  mean(nowMs: number): number | null {
    const n = this.count(nowMs);
    return n === 0 ? null : this.sum / n;
  }

  private evict(nowMs: number): void {
    const cutoff = nowMs - this.windowMs;
    while (this.head < this.times.length && this.times[this.head]! <= cutoff) {
      this.sum -= this.values[this.head]!;
      this.head++;
    }
    if (this.head === this.times.length) {
      if (this.head > 0) {
        this.times = [];
        this.values = [];
        this.head = 0;
      }
      this.sum = 0;
    } else if (this.head > 256 && this.head * 2 > this.times.length) {
      // Compact, and recompute the sum so float rounding never accumulates.
      this.times = this.times.slice(this.head);
      this.values = this.values.slice(this.head);
      this.head = 0;
      this.sum = this.values.reduce((a, b) => a + b, 0);
    }
  }
}
