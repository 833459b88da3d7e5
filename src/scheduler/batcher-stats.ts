/**
 * Statistics of one dynamic batcher, in Triton's shapes (`inference_stats`, `batch_stats`: cumulative `{count, ns}`
 * durations, `docs/protocol/extension_statistics.md`), plus queue and rejection counts.
 */
import type { InstanceStat } from '../engine/instance-pool.js';

export type { InstanceStat };

/** Cumulative duration counter (Triton's `{count, ns}` statistic). */
export interface DurationStat {
  count: number;
  ns: number;
}

export interface BatchSizeStat {
  batchSize: number;
  computeInput: DurationStat;
  computeInfer: DurationStat;
  computeOutput: DurationStat;
}

/** Batcher statistics (Triton's `inference_stats` / `batch_stats` plus queue and instance state). */
export interface BatcherStats {
  /** Requests waiting in the queues. */
  pendingRequests: number;
  /** Requests dispatched and not yet answered. */
  inflightRequests: number;
  /** Batch elements executed (Triton `inference_count`). */
  inferenceCount: number;
  /** Batches executed (Triton `execution_count`). */
  executionCount: number;
  /** Unix ms of the last batch's end, 0 before the first. */
  lastInferenceMs: number;
  success: DurationStat;
  fail: DurationStat;
  queue: DurationStat;
  computeInput: DurationStat;
  computeInfer: DurationStat;
  computeOutput: DurationStat;
  /** Requests refused at submit or dropped from the queue, by error code. */
  rejected: Record<string, number>;
  batchStats: BatchSizeStat[];
  instances: InstanceStat[];
}

const zero = (): DurationStat => ({ count: 0, ns: 0 });
const add = (d: DurationStat, ns: number): void => {
  d.count++;
  d.ns += ns;
};
const copy = (d: DurationStat): DurationStat => ({ count: d.count, ns: Math.round(d.ns) });

/** The accumulator a batcher writes into. */
export class BatcherStatistics {
  private inferenceCount = 0;
  private executionCount = 0;
  private lastInferenceMs = 0;
  private readonly success = zero();
  private readonly fail = zero();
  private readonly queue = zero();
  private readonly computeInput = zero();
  private readonly computeInfer = zero();
  private readonly computeOutput = zero();
  private readonly rejected: Record<string, number> = {};
  private readonly batch = new Map<number, BatchSizeStat>();

  /** A request refused at submit or dropped from its queue. */
  rejectedWith(code: string): void {
    this.rejected[code] = (this.rejected[code] ?? 0) + 1;
  }

  /** A batch of `batchSize` elements executed successfully; durations in ns. */
  batchDone(batchSize: number, inputNs: number, inferNs: number, outputNs: number): void {
    this.executionCount++;
    this.inferenceCount += batchSize;
    this.lastInferenceMs = Date.now();
    add(this.computeInput, inputNs);
    add(this.computeInfer, inferNs);
    add(this.computeOutput, outputNs);
    let bs = this.batch.get(batchSize);
    if (!bs) {
      bs = { batchSize, computeInput: zero(), computeInfer: zero(), computeOutput: zero() };
      this.batch.set(batchSize, bs);
    }
    add(bs.computeInput, inputNs);
    add(bs.computeInfer, inferNs);
    add(bs.computeOutput, outputNs);
  }

  /** One request of an executed batch: its queue time and its whole time in the batcher, ns. */
  requestDone(ok: boolean, queueNs: number, requestNs: number): void {
    add(this.queue, queueNs);
    add(ok ? this.success : this.fail, requestNs);
  }

  /** A snapshot (copies; safe to keep). */
  snapshot(state: { pendingRequests: number; inflightRequests: number; instances: InstanceStat[] }): BatcherStats {
    return {
      ...state,
      inferenceCount: this.inferenceCount,
      executionCount: this.executionCount,
      lastInferenceMs: this.lastInferenceMs,
      success: copy(this.success),
      fail: copy(this.fail),
      queue: copy(this.queue),
      computeInput: copy(this.computeInput),
      computeInfer: copy(this.computeInfer),
      computeOutput: copy(this.computeOutput),
      rejected: { ...this.rejected },
      batchStats: [...this.batch.values()]
        .sort((a, b) => a.batchSize - b.batchSize)
        .map((b) => ({ batchSize: b.batchSize, computeInput: copy(b.computeInput), computeInfer: copy(b.computeInfer), computeOutput: copy(b.computeOutput) })),
    };
  }
}
