/**
 * Osprey's dynamic batcher: Triton's `dynamic_batching` semantics in front of `instanceGroup.count` engine
 * instances (each an {@link Engine}, i.e. one worker_thread owning one ONNX Runtime session).
 *
 * Semantics (Triton `docs/user_guide/batcher.md`, `model_configuration.md` → "Dynamic Batcher"):
 * - Requests wait in one queue per priority level (1 = highest). Batches are formed in priority order, then arrival
 *   order; a request at a higher level overtakes every queued request at lower levels.
 * - A batch holds at most `maxBatchSize` batch elements (a request with input shape `[n, ...]` counts `n`); requests
 *   whose non-batch dims differ are never mixed (letterboxed images all share the model input size, so they mix).
 * - When an instance is free: a batch of `maxBatchSize` elements, or of the largest `preferredBatchSize` that can be
 *   formed now, is dispatched at once; otherwise the batcher waits until the oldest queued request has waited
 *   `maxQueueDelayMicroseconds`, then dispatches what it has.
 * - Queue policy per level: `maxQueueSize` (0 = unlimited) → `OSPREY_ERR_QUEUE_FULL` (HTTP 429);
 *   `defaultTimeoutMicroseconds` (0 = none; a request's `timeout` may lower it when `allowTimeoutOverride`) →
 *   `timeoutAction` `REJECT` (`OSPREY_ERR_TIMEOUT`, HTTP 504) or `DELAY` (the request moves behind every
 *   non-delayed request of its level).
 * - Without dynamic batching (`dynamicBatching: null`) each request runs alone, first come first served.
 * - `maxBatchSize: 0` means the model has no batch axis the batcher may use: requests still queue, by priority,
 *   but each runs alone with the shape it has.
 *
 * The main thread only routes: concatenating inputs is a typed-array `set` per request, splitting outputs is a
 * `subarray` per request; `engine.run()` happens in the engine's worker.
 *
 * This module only forms and dispatches batches (Triton's `dynamic_batch_scheduler`). The queues and their policies
 * are {@link PriorityQueues} (priority-queues.ts), batch tensors {@link BatchAssembler} (batch-assembly.ts), which
 * instance runs next {@link InstancePool} (src/engine/instance-pool.ts), statistics {@link BatcherStatistics}.
 */
import { OspreyError, toOspreyError } from '../core/errors.js';
import type { Tensor } from '../core/types.js';
import type { Engine } from '../engine/engine.js';
import { InstancePool } from '../engine/instance-pool.js';
import type { DynamicBatchingConfig } from '../repository/config.js';
import { BatchAssembler } from './batch-assembly.js';
import { BatcherStatistics, type BatcherStats } from './batcher-stats.js';
import { PriorityQueues, type QueuedRequest } from './priority-queues.js';

export { ASSEMBLE_YIELD_BYTES } from './batch-assembly.js';
export type { BatcherStats, BatchSizeStat, DurationStat, InstanceStat } from './batcher-stats.js';

/** Per-request options (Triton's schedule-policy request parameters). */
export interface SubmitOptions {
  /** Priority level, 1 = highest; 0 or undefined = the model's `defaultPriorityLevel`. */
  priority?: number;
  /** Queue timeout in µs; honoured only when the level's policy has `allowTimeoutOverride`, and only to lower it. */
  timeoutMicroseconds?: number;
  /** Caller's id, for logs. */
  requestId?: string;
}

/** What a request gets back. */
export interface SubmitResult {
  /** Output name → this request's slice of the batch output (first axis = the request's own `n`). */
  outputs: Record<string, Tensor>;
  /** Time spent queued, µs. */
  queueMicroseconds: number;
  /** Time of the batch's execution (input assembly + inference + output split), µs. */
  computeMicroseconds: number;
  /** Number of batch elements in the batch this request ran in. */
  batchSize: number;
}

/** Events for metrics (kept out of the batcher so it has no prom-client dependency). */
export interface BatcherObserver {
  /** A batch finished (successfully or not). Durations in seconds. */
  onBatch?(e: { batchSize: number; requests: number; instance: number; ok: boolean; computeInputSeconds: number; computeInferSeconds: number; computeOutputSeconds: number }): void;
  /** A request left the batcher. `code` is set on failure. Durations in seconds. */
  onRequest?(e: { ok: boolean; code?: string; queueSeconds: number; computeSeconds: number; batchElements: number }): void;
}

export interface DynamicBatcherOptions {
  /** For messages, e.g. `yolov8n:1`. */
  name: string;
  /** Engine instances (instanceGroup.count), or the pool that owns them; each runs one batch at a time. */
  engines: readonly Engine[] | InstancePool;
  /** Max batch elements per batch; 0 = no batch axis (each request runs alone with its own shape). */
  maxBatchSize: number;
  /** Triton dynamic batching; null = none (FIFO, one request per execution). */
  dynamicBatching: DynamicBatchingConfig | null;
  /** The model's batch axis when it is fixed (e.g. 1, or 8 for a static-batch engine): batches are zero-padded to it. */
  fixedBatchSize?: number | null;
  /**
   * Batch sizes a dynamic-batch engine is run at: a batch of `total` requests is zero-padded to the smallest bucket
   * ≥ total (e.g. [1, 2, 4, 8, 16, 32]). On GPU execution providers every new input shape costs a cuDNN algorithm
   * search and new allocations (seen on an H200 with yolov8s: seconds per new batch size), so a few fixed sizes
   * keep the engine on shapes it has already tuned; the padded rows cost at most 2× compute. Default: none (run at
   * the exact size, right for the CPU EP). See {@link defaultBatchBuckets}.
   */
  batchBuckets?: readonly number[];
  observer?: BatcherObserver;
}

/**
 * Powers of two up to `maxBatchSize`, plus `maxBatchSize` itself: the default {@link DynamicBatcherOptions.batchBuckets}
 * for device execution providers.
 * @example defaultBatchBuckets(24) // → [1, 2, 4, 8, 16, 24]
 */
export function defaultBatchBuckets(maxBatchSize: number): number[] {
  const out: number[] = [];
  for (let b = 1; b < maxBatchSize; b *= 2) out.push(b);
  if (maxBatchSize > 0) out.push(maxBatchSize);
  return out;
}

/** The bucket a batch of `total` runs at: the smallest bucket ≥ total, else `total` itself. */
export function bucketFor(total: number, buckets: readonly number[] | undefined): number {
  if (!buckets || buckets.length === 0) return total;
  let best = Infinity;
  for (const b of buckets) if (b >= total && b < best) best = b;
  return best === Infinity ? total : best;
}

/** The promise side of a queued request. */
interface Handle {
  resolve: (r: SubmitResult) => void;
  reject: (e: OspreyError) => void;
}
type Queued = QueuedRequest<Handle>;

const NS_PER_MS = 1e6;

/**
 * The dynamic batcher. One per loaded model version.
 *
 * @example
 *   const batcher = new DynamicBatcher({ name: 'yolov8n:1', engines, maxBatchSize: 8,
 *     dynamicBatching: config.dynamicBatching });
 *   const { outputs } = await batcher.submit({ images: { type: 'float32', dims: [1, 3, 640, 640], data } }, { priority: 1 });
 *   // outputs.output0.dims = [1, 84, 8400]
 */
export class DynamicBatcher {
  readonly name: string;
  readonly maxBatchSize: number;
  private readonly instances: InstancePool;
  private readonly db: DynamicBatchingConfig | null;
  private readonly fixedBatchSize: number | null;
  /** Sizes a dynamic-batch engine is run at (zero-padded up to the next one); undefined = exact sizes. */
  readonly batchBuckets: readonly number[] | undefined;
  private readonly observer: BatcherObserver | undefined;
  private readonly queues: PriorityQueues<Handle>;
  private readonly assembler: BatchAssembler;
  private readonly statistics = new BatcherStatistics();
  private inflight = 0;
  private closing = false;
  private drainWaiters: Array<() => void> = [];
  private delayTimer: NodeJS.Timeout | undefined;

  constructor(options: DynamicBatcherOptions) {
    const pool = options.engines instanceof InstancePool ? options.engines : options.engines.length > 0 ? new InstancePool(options.engines) : null;
    if (!pool) throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `${options.name}: the batcher needs at least one engine instance`);
    this.name = options.name;
    this.instances = pool;
    this.maxBatchSize = options.maxBatchSize;
    this.db = options.dynamicBatching;
    this.fixedBatchSize = options.fixedBatchSize ?? null;
    this.batchBuckets = this.fixedBatchSize === null && options.batchBuckets ? [...options.batchBuckets].sort((a, b) => a - b) : undefined;
    this.observer = options.observer;
    this.queues = new PriorityQueues<Handle>(this.name, this.db, (r, us) => this.onExpired(r, us));
    this.assembler = new BatchAssembler(this.name, pool.size * 2);
  }

  /**
   * Queues one request and resolves with its outputs once its batch has run.
   *
   * @param inputs input name → tensor. With `maxBatchSize > 0` the first axis is the request's batch `n`
   *   (usually 1) and every input must share it, e.g. `images: uint8 [1, 640, 640, 3]`. The batcher may hand the
   *   tensors' buffers to the engine worker (transfer): do not reuse them after submitting.
   * @throws OspreyError (as a rejected promise) `OSPREY_ERR_INVALID_ARGUMENT` (priority outside 1..priorityLevels),
   *   `OSPREY_ERR_INVALID_TENSOR` (no inputs, inconsistent batch axis, `n` over maxBatchSize),
   *   `OSPREY_ERR_QUEUE_FULL` (the level's `maxQueueSize` reached), `OSPREY_ERR_TIMEOUT` (queue timeout with
   *   `REJECT`), `OSPREY_ERR_MODEL_NOT_READY` (the batcher is closing), and engine errors
   *   (`OSPREY_ERR_INFERENCE_FAILED`, `OSPREY_ERR_ENGINE_CLOSED`).
   */
  submit(inputs: Record<string, Tensor>, options: SubmitOptions = {}): Promise<SubmitResult> {
    try {
      return this.enqueue(inputs, options);
    } catch (err) {
      const e = toOspreyError(err);
      this.statistics.rejectedWith(e.code);
      return Promise.reject(e);
    }
  }

  private enqueue(inputs: Record<string, Tensor>, options: SubmitOptions): Promise<SubmitResult> {
    if (this.closing) throw new OspreyError('OSPREY_ERR_MODEL_NOT_READY', `${this.name}: the model version is unloading`);
    const names = Object.keys(inputs);
    if (names.length === 0) throw new OspreyError('OSPREY_ERR_INVALID_TENSOR', `${this.name}: the request has no input tensors`);
    let n = 1;
    let shapeKey = '';
    if (this.maxBatchSize > 0) {
      n = -1;
      for (const name of names) {
        const t = inputs[name]!;
        const first = t.dims[0];
        if (t.dims.length === 0 || first === undefined || first < 1) {
          throw new OspreyError('OSPREY_ERR_INVALID_TENSOR', `${this.name}: input '${name}' has shape [${t.dims.join(', ')}]; its first axis must be the batch size (≥ 1)`, { input: name });
        }
        if (n === -1) n = first;
        else if (first !== n) {
          throw new OspreyError('OSPREY_ERR_INVALID_TENSOR', `${this.name}: inputs disagree on the batch size (${n} vs ${first} for '${name}')`, { input: name });
        }
      }
      if (n > this.maxBatchSize) {
        throw new OspreyError('OSPREY_ERR_INVALID_TENSOR', `${this.name}: the request's batch size ${n} is over maxBatchSize ${this.maxBatchSize}`, { batchSize: n, maxBatchSize: this.maxBatchSize });
      }
    }
    for (const name of names.sort()) {
      const t = inputs[name]!;
      shapeKey += `${name}:${t.type}:${(this.maxBatchSize > 0 ? t.dims.slice(1) : t.dims).join('x')};`;
    }
    const level = this.queues.levelOf(options.priority);
    let handle!: Handle;
    const answer = new Promise<SubmitResult>((resolve, reject) => (handle = { resolve, reject }));
    const r: Queued = { inputs, n, shapeKey, level, enqueuedAt: performance.now(), state: 'queued', delayed: false, timer: undefined, handle };
    this.queues.add(r, options.timeoutMicroseconds); // OSPREY_ERR_QUEUE_FULL is thrown here, counted by submit()
    this.pump();
    return answer;
  }

  /** A `REJECT` queue timeout fired (the queues already dropped the request). */
  private onExpired(r: Queued, timeoutUs: number): void {
    const waitedS = (performance.now() - r.enqueuedAt) / 1000;
    this.statistics.rejectedWith('OSPREY_ERR_TIMEOUT');
    this.observer?.onRequest?.({ ok: false, code: 'OSPREY_ERR_TIMEOUT', queueSeconds: waitedS, computeSeconds: 0, batchElements: r.n });
    r.handle.reject(new OspreyError('OSPREY_ERR_TIMEOUT', `${this.name}: the request waited over its queue timeout of ${timeoutUs} µs`, { timeoutMicroseconds: timeoutUs }));
    this.checkDrained();
    // The queue head may have changed: the delay timer may now be due for another request.
    this.pump();
  }

  /** Dispatches batches while instances are idle and the batching rules allow. */
  private pump(): void {
    if (this.delayTimer) {
      clearTimeout(this.delayTimer);
      this.delayTimer = undefined;
    }
    const maxItems = this.maxBatchSize > 0 && this.db ? this.maxBatchSize : 1;
    while (this.instances.hasIdle && this.queues.size > 0) {
      const { batch, total, blocked, oldest, preferredCut } = this.queues.next(maxItems, this.db?.preferredBatchSize ?? []);
      if (batch.length === 0) return;
      let take = batch.length;
      if (this.db && this.maxBatchSize > 0 && !this.closing && total < this.maxBatchSize && !blocked) {
        if (preferredCut > 0) take = preferredCut;
        else {
          const delayMs = this.db.maxQueueDelayMicroseconds / 1000;
          if (performance.now() - oldest < delayMs) {
            this.delayTimer = setTimeout(() => {
              this.delayTimer = undefined;
              this.pump();
            }, Math.max(0, oldest + delayMs - performance.now()));
            return;
          }
        }
      }
      const chosen = take === batch.length ? batch : batch.slice(0, take);
      const instance = this.instances.takeIdle()!;
      this.queues.take(chosen);
      this.inflight += chosen.length;
      void this.execute(instance, chosen, performance.now());
    }
  }

  private async execute(instance: number, batch: Queued[], dispatchedAt: number): Promise<void> {
    const engine = this.instances.engine(instance);
    const total = batch.reduce((a, r) => a + r.n, 0);
    const padded = this.maxBatchSize <= 0 ? total : this.fixedBatchSize !== null ? Math.max(total, this.fixedBatchSize) : bucketFor(total, this.batchBuckets);
    const t0 = performance.now();
    let t1 = t0;
    let t2 = t0;
    let results: Record<string, Tensor>[] | undefined;
    let error: OspreyError | undefined;
    try {
      const feeds = await this.assembler.assemble(
        batch.map((r) => r.inputs),
        total,
        padded,
      );
      t1 = performance.now();
      const outputs = this.assembler.owns(feeds) ? await engine.run(feeds, { onInputsReleased: (back) => this.assembler.recycle(back) }) : await engine.run(feeds);
      t2 = performance.now();
      results = this.assembler.split(
        outputs,
        batch.map((r) => r.n),
        total,
        this.maxBatchSize > 0,
      );
    } catch (err) {
      error = toOspreyError(err, 'OSPREY_ERR_INFERENCE_FAILED');
      if (t1 === t0) t1 = performance.now();
      if (t2 === t0) t2 = performance.now();
    }
    const t3 = performance.now();
    this.instances.release(instance, (t3 - t0) * NS_PER_MS);

    // Statistics (Triton counts compute per execution and per batch size).
    const inNs = (t1 - t0) * NS_PER_MS;
    const inferNs = (t2 - t1) * NS_PER_MS;
    const outNs = (t3 - t2) * NS_PER_MS;
    if (!error) this.statistics.batchDone(total, inNs, inferNs, outNs);
    this.observer?.onBatch?.({
      batchSize: total,
      requests: batch.length,
      instance,
      ok: !error,
      computeInputSeconds: inNs / 1e9,
      computeInferSeconds: inferNs / 1e9,
      computeOutputSeconds: outNs / 1e9,
    });
    const computeUs = (t3 - t0) * 1000;
    batch.forEach((r, i) => {
      r.state = 'done';
      this.inflight--;
      const queueUs = (dispatchedAt - r.enqueuedAt) * 1000;
      this.statistics.requestDone(!error, queueUs * 1000, (t3 - r.enqueuedAt) * NS_PER_MS);
      if (error) {
        this.observer?.onRequest?.({ ok: false, code: error.code, queueSeconds: queueUs / 1e6, computeSeconds: computeUs / 1e6, batchElements: r.n });
        r.handle.reject(error);
      } else {
        this.observer?.onRequest?.({ ok: true, queueSeconds: queueUs / 1e6, computeSeconds: computeUs / 1e6, batchElements: r.n });
        r.handle.resolve({ outputs: results![i]!, queueMicroseconds: queueUs, computeMicroseconds: computeUs, batchSize: total });
      }
    });
    this.checkDrained();
    this.pump();
  }

  private checkDrained(): void {
    if (this.queues.size === 0 && this.inflight === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Number of requests queued or executing. */
  get outstanding(): number {
    return this.queues.size + this.inflight;
  }

  /** A snapshot of the statistics (copies; safe to keep). */
  stats(): BatcherStats {
    return this.statistics.snapshot({ pendingRequests: this.queues.size, inflightRequests: this.inflight, instances: this.instances.snapshot() });
  }

  /**
   * Stops accepting requests (new ones get `OSPREY_ERR_MODEL_NOT_READY`), runs every queued request without waiting
   * for the max queue delay, and resolves once nothing is queued or executing. Does not close the engines (their
   * owner does). Idempotent.
   */
  close(): Promise<void> {
    this.closing = true;
    if (this.delayTimer) clearTimeout(this.delayTimer);
    this.delayTimer = undefined;
    this.pump();
    if (this.queues.size === 0 && this.inflight === 0) {
      this.assembler.close();
      return Promise.resolve();
    }
    return new Promise((resolve) =>
      this.drainWaiters.push(() => {
        this.assembler.close();
        resolve();
      }),
    );
  }
}
