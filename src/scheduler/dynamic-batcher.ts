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
 */
import { OspreyError, toOspreyError } from '../core/errors.js';
import type { Tensor, TensorStorage } from '../core/types.js';
import type { Engine, EngineInfo } from '../engine/engine.js';
import { queuePolicyFor, type DynamicBatchingConfig } from '../repository/config.js';
import { allocateStorage } from '../repository/datatypes.js';
import { Deque } from './deque.js';

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

export interface InstanceStat {
  /** Whether the instance is executing a batch now. */
  busy: boolean;
  executions: number;
  /** Total time spent executing batches, ns. */
  busyNs: number;
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
  /** Engine instances (instanceGroup.count); each runs one batch at a time. */
  engines: readonly Engine[];
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

/** Bytes the batcher copies into a batch between two yields of the event loop (≈3–6 ms of memcpy). */
export const ASSEMBLE_YIELD_BYTES = 32 * 1024 * 1024;

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

/**
 * Runs one zero batch of every bucket size on every instance, so each GPU instance has tuned its kernels for the
 * shapes the batcher will send before traffic arrives.
 */
export async function warmupBatchBuckets(info: Pick<EngineInfo, 'inputs'>, instances: readonly Engine[], buckets: readonly number[]): Promise<void> {
  for (const engine of instances) {
    for (const b of buckets) {
      const feeds: Record<string, Tensor> = {};
      for (const spec of info.inputs) {
        const dims = spec.shape.map((d, i) => (i === 0 ? b : typeof d === 'number' && d > 0 ? d : 1));
        feeds[spec.name] = { type: spec.type, dims, data: allocateStorage(spec.type, dims.reduce((a, x) => a * x, 1)) };
      }
      await engine.run(feeds);
    }
  }
}

/** The bucket a batch of `total` runs at: the smallest bucket ≥ total, else `total` itself. */
export function bucketFor(total: number, buckets: readonly number[] | undefined): number {
  if (!buckets || buckets.length === 0) return total;
  let best = Infinity;
  for (const b of buckets) if (b >= total && b < best) best = b;
  return best === Infinity ? total : best;
}

type Level = { ready: Deque<Pending>; delayed: Deque<Pending>; size: number };

interface Pending {
  inputs: Record<string, Tensor>;
  /** Batch elements (first axis), 1 when maxBatchSize is 0. */
  n: number;
  /** Non-batch dims and types of every input; requests only batch with the same key. */
  shapeKey: string;
  level: number;
  enqueuedAt: number;
  state: 'queued' | 'dispatched' | 'done';
  delayed: boolean;
  timer: NodeJS.Timeout | undefined;
  resolve: (r: SubmitResult) => void;
  reject: (e: OspreyError) => void;
}

const zeroStat = (): DurationStat => ({ count: 0, ns: 0 });
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
  private readonly engines: readonly Engine[];
  private readonly db: DynamicBatchingConfig | null;
  private readonly fixedBatchSize: number | null;
  /** Sizes a dynamic-batch engine is run at (zero-padded up to the next one); undefined = exact sizes. */
  readonly batchBuckets: readonly number[] | undefined;
  private readonly observer: BatcherObserver | undefined;
  private readonly levels: Level[];
  private readonly idle: number[];
  private readonly instanceStats: InstanceStat[];
  /**
   * Batch input buffers handed back by the engines after each run (IO buffer reuse), by byte size. Allocating a
   * fresh 39 MB buffer per batch (32 × 640×640×3) costs page faults and GC pressure on every run.
   */
  private readonly bufferPool = new Map<number, ArrayBuffer[]>();
  /** Feeds this batcher assembled (its own buffers, safe to recycle). */
  private readonly assembled = new WeakSet<Record<string, Tensor>>();
  private pending = 0;
  private inflight = 0;
  private closing = false;
  private drainWaiters: Array<() => void> = [];
  private delayTimer: NodeJS.Timeout | undefined;
  private delayTimerAt = Infinity;
  private readonly s = {
    inferenceCount: 0,
    executionCount: 0,
    lastInferenceMs: 0,
    success: zeroStat(),
    fail: zeroStat(),
    queue: zeroStat(),
    computeInput: zeroStat(),
    computeInfer: zeroStat(),
    computeOutput: zeroStat(),
    rejected: {} as Record<string, number>,
    batch: new Map<number, BatchSizeStat>(),
  };

  constructor(options: DynamicBatcherOptions) {
    if (options.engines.length === 0) throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `${options.name}: the batcher needs at least one engine instance`);
    this.name = options.name;
    this.engines = options.engines;
    this.maxBatchSize = options.maxBatchSize;
    this.db = options.dynamicBatching;
    this.fixedBatchSize = options.fixedBatchSize ?? null;
    this.batchBuckets = this.fixedBatchSize === null && options.batchBuckets ? [...options.batchBuckets].sort((a, b) => a - b) : undefined;
    this.observer = options.observer;
    const levelCount = Math.max(1, this.db?.priorityLevels ?? 0);
    this.levels = Array.from({ length: levelCount }, () => ({ ready: new Deque<Pending>(), delayed: new Deque<Pending>(), size: 0 }));
    this.idle = this.engines.map((_e, i) => i);
    this.instanceStats = this.engines.map(() => ({ busy: false, executions: 0, busyNs: 0 }));
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
      this.countRejected(e.code);
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

    // Priority level (index into this.levels).
    let level = 0;
    if (this.db && this.db.priorityLevels > 0) {
      const p = options.priority ?? 0;
      if (!Number.isInteger(p) || p < 0 || p > this.db.priorityLevels) {
        throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `${this.name}: priority ${p} is outside 1..${this.db.priorityLevels} (0 = default level ${this.db.defaultPriorityLevel})`, { priority: p });
      }
      level = (p === 0 ? this.db.defaultPriorityLevel : p) - 1;
    }
    const lv = this.levels[level]!;
    let timeoutUs = 0;
    let action: 'REJECT' | 'DELAY' = 'REJECT';
    if (this.db) {
      const policy = queuePolicyFor(this.db, level + 1);
      if (policy.maxQueueSize > 0 && lv.size >= policy.maxQueueSize) {
        throw new OspreyError('OSPREY_ERR_QUEUE_FULL', `${this.name}: the queue of priority level ${level + 1} is full (maxQueueSize ${policy.maxQueueSize})`, {
          priorityLevel: level + 1,
          maxQueueSize: policy.maxQueueSize,
        });
      }
      timeoutUs = policy.defaultTimeoutMicroseconds;
      const asked = options.timeoutMicroseconds ?? 0;
      if (policy.allowTimeoutOverride && asked > 0) timeoutUs = timeoutUs > 0 ? Math.min(timeoutUs, asked) : asked;
      action = policy.timeoutAction;
    }

    return new Promise<SubmitResult>((resolve, reject) => {
      const p: Pending = { inputs, n, shapeKey, level, enqueuedAt: performance.now(), state: 'queued', delayed: false, timer: undefined, resolve, reject };
      if (timeoutUs > 0) {
        p.timer = setTimeout(() => this.onTimeout(p, action, timeoutUs), Math.max(1, timeoutUs / 1000));
      }
      lv.ready.push(p);
      lv.size++;
      this.pending++;
      this.pump();
    });
  }

  private onTimeout(p: Pending, action: 'REJECT' | 'DELAY', timeoutUs: number): void {
    p.timer = undefined;
    if (p.state !== 'queued') return;
    if (action === 'DELAY') {
      if (!p.delayed) {
        p.delayed = true;
        this.levels[p.level]!.delayed.push(p);
      }
      return;
    }
    p.state = 'done';
    this.levels[p.level]!.size--;
    this.pending--;
    const waitedS = (performance.now() - p.enqueuedAt) / 1000;
    this.countRejected('OSPREY_ERR_TIMEOUT');
    this.observer?.onRequest?.({ ok: false, code: 'OSPREY_ERR_TIMEOUT', queueSeconds: waitedS, computeSeconds: 0, batchElements: p.n });
    p.reject(
      new OspreyError('OSPREY_ERR_TIMEOUT', `${this.name}: the request waited over its queue timeout of ${timeoutUs} µs`, { timeoutMicroseconds: timeoutUs }),
    );
    this.checkDrained();
    // The queue head may have changed: the delay timer may now be due for another request.
    this.pump();
  }

  private countRejected(code: string): void {
    this.s.rejected[code] = (this.s.rejected[code] ?? 0) + 1;
  }

  /** Stale entries: already dispatched/rejected, or (in `ready`) moved to `delayed`. */
  private static staleReady = (p: Pending) => p.state !== 'queued' || p.delayed;
  private static staleDelayed = (p: Pending) => p.state !== 'queued';

  /** The next batch in priority order: a prefix of the live queue entries. */
  private formBatch(): { batch: Pending[]; total: number; blocked: boolean; oldest: number; preferredCut: number } {
    const maxItems = this.maxBatchSize > 0 && this.db ? this.maxBatchSize : 1;
    const batch: Pending[] = [];
    let total = 0;
    let blocked = false;
    let oldest = Infinity;
    let preferredCut = 0;
    const preferred = this.db?.preferredBatchSize ?? [];
    outer: for (const lv of this.levels) {
      for (const [dq, stale] of [
        [lv.ready, DynamicBatcher.staleReady],
        [lv.delayed, DynamicBatcher.staleDelayed],
      ] as const) {
        for (const p of dq) {
          if (stale(p)) continue;
          if (batch.length > 0 && (p.shapeKey !== batch[0]!.shapeKey || total + p.n > maxItems)) {
            blocked = true;
            break outer;
          }
          batch.push(p);
          total += p.n;
          if (p.enqueuedAt < oldest) oldest = p.enqueuedAt;
          if (preferred.includes(total)) preferredCut = batch.length;
          if (total >= maxItems) break outer;
        }
      }
    }
    return { batch, total, blocked, oldest, preferredCut };
  }

  /** Dispatches batches while instances are idle and the batching rules allow. */
  private pump(): void {
    if (this.delayTimer) {
      clearTimeout(this.delayTimer);
      this.delayTimer = undefined;
      this.delayTimerAt = Infinity;
    }
    while (this.idle.length > 0 && this.pending > 0) {
      const { batch, total, blocked, oldest, preferredCut } = this.formBatch();
      if (batch.length === 0) return;
      let take = batch.length;
      if (this.db && this.maxBatchSize > 0 && !this.closing) {
        const maxItems = this.maxBatchSize;
        if (total >= maxItems || blocked) take = batch.length;
        else if (preferredCut > 0) take = preferredCut;
        else {
          const delayMs = this.db.maxQueueDelayMicroseconds / 1000;
          const waited = performance.now() - oldest;
          if (waited < delayMs) {
            this.armDelayTimer(oldest + delayMs);
            return;
          }
        }
      }
      const chosen = take === batch.length ? batch : batch.slice(0, take);
      this.dispatch(chosen);
    }
  }

  private armDelayTimer(at: number): void {
    this.delayTimerAt = at;
    this.delayTimer = setTimeout(() => {
      this.delayTimer = undefined;
      this.delayTimerAt = Infinity;
      this.pump();
    }, Math.max(0, at - performance.now()));
  }

  private dispatch(batch: Pending[]): void {
    const instance = this.idle.shift()!;
    const now = performance.now();
    for (const p of batch) {
      p.state = 'dispatched';
      if (p.timer) clearTimeout(p.timer);
      p.timer = undefined;
      this.levels[p.level]!.size--;
      this.pending--;
      this.inflight++;
    }
    for (const lv of this.levels) {
      lv.ready.dropWhile(DynamicBatcher.staleReady);
      lv.delayed.dropWhile(DynamicBatcher.staleDelayed);
    }
    void this.execute(instance, batch, now);
  }

  private async execute(instance: number, batch: Pending[], dispatchedAt: number): Promise<void> {
    const engine = this.engines[instance]!;
    const stat = this.instanceStats[instance]!;
    stat.busy = true;
    const total = batch.reduce((a, p) => a + p.n, 0);
    const t0 = performance.now();
    let t1 = t0;
    let t2 = t0;
    let results: Record<string, Tensor>[] | undefined;
    let error: OspreyError | undefined;
    try {
      const feeds = await this.assemble(batch, total);
      t1 = performance.now();
      const outputs = this.assembled.has(feeds)
        ? await engine.run(feeds, { onInputsReleased: (back) => this.recycle(back) })
        : await engine.run(feeds);
      t2 = performance.now();
      results = this.split(outputs, batch, total);
    } catch (err) {
      error = toOspreyError(err, 'OSPREY_ERR_INFERENCE_FAILED');
      if (t1 === t0) t1 = performance.now();
      if (t2 === t0) t2 = performance.now();
    }
    const t3 = performance.now();
    stat.busy = false;
    stat.executions++;
    stat.busyNs += (t3 - t0) * NS_PER_MS;
    this.idle.push(instance);

    // Statistics (Triton counts compute per execution and per batch size).
    const inNs = (t1 - t0) * NS_PER_MS;
    const inferNs = (t2 - t1) * NS_PER_MS;
    const outNs = (t3 - t2) * NS_PER_MS;
    if (!error) {
      this.s.executionCount++;
      this.s.inferenceCount += total;
      this.s.lastInferenceMs = Date.now();
      add(this.s.computeInput, inNs);
      add(this.s.computeInfer, inferNs);
      add(this.s.computeOutput, outNs);
      let bs = this.s.batch.get(total);
      if (!bs) {
        bs = { batchSize: total, computeInput: zeroStat(), computeInfer: zeroStat(), computeOutput: zeroStat() };
        this.s.batch.set(total, bs);
      }
      add(bs.computeInput, inNs);
      add(bs.computeInfer, inferNs);
      add(bs.computeOutput, outNs);
    }
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
    batch.forEach((p, i) => {
      p.state = 'done';
      this.inflight--;
      const queueUs = (dispatchedAt - p.enqueuedAt) * 1000;
      const requestNs = (t3 - p.enqueuedAt) * NS_PER_MS;
      add(this.s.queue, queueUs * 1000);
      if (error) {
        add(this.s.fail, requestNs);
        this.observer?.onRequest?.({ ok: false, code: error.code, queueSeconds: queueUs / 1e6, computeSeconds: computeUs / 1e6, batchElements: p.n });
        p.reject(error);
      } else {
        add(this.s.success, requestNs);
        this.observer?.onRequest?.({ ok: true, queueSeconds: queueUs / 1e6, computeSeconds: computeUs / 1e6, batchElements: p.n });
        p.resolve({ outputs: results![i]!, queueMicroseconds: queueUs, computeMicroseconds: computeUs, batchSize: total });
      }
    });
    this.checkDrained();
    this.pump();
  }

  /**
   * Concatenates the requests' inputs along the batch axis (zero-padded to a fixed model batch). Copies are byte
   * copies (`Uint8Array.set`, i.e. memcpy), and the event loop is yielded after every {@link ASSEMBLE_YIELD_BYTES}
   * copied, so a large batch (e.g. 8 × 4.9 MB FP32 images) never blocks it in one piece, while a batch of small
   * frames (32 × 1.2 MB uint8) is not stretched by a yield per frame: on a busy event loop each yield waits behind
   * every other callback, and the instance sits idle meanwhile.
   */
  private async assemble(batch: Pending[], total: number): Promise<Record<string, Tensor>> {
    const first = batch[0]!;
    const padded =
      this.maxBatchSize <= 0 ? total : this.fixedBatchSize !== null ? Math.max(total, this.fixedBatchSize) : bucketFor(total, this.batchBuckets);
    if (batch.length === 1 && padded === total) {
      // One request: hand its tensors over as they are when they own their whole buffer; copy otherwise
      // (a view into an HTTP body must not be transferred to the worker).
      const feeds: Record<string, Tensor> = {};
      for (const [name, t] of Object.entries(first.inputs)) {
        const owns = t.data.byteOffset === 0 && t.data.byteLength === t.data.buffer.byteLength && t.data.buffer instanceof ArrayBuffer;
        feeds[name] = owns ? t : { type: t.type, dims: t.dims, data: copyStorage(t.data) };
      }
      return feeds;
    }
    const feeds: Record<string, Tensor> = {};
    for (const [name, t0] of Object.entries(first.inputs)) {
      const perItem = t0.data.length / t0.dims[0]!;
      const data = this.takeStorage(t0.type, padded * perItem);
      let offset = 0;
      const dst = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      let sinceYield = 0;
      for (let i = 0; i < batch.length; i++) {
        const t = batch[i]!.inputs[name];
        if (!t) throw new OspreyError('OSPREY_ERR_INVALID_TENSOR', `${this.name}: a batched request lacks input '${name}'`, { input: name });
        dst.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), offset);
        offset += t.data.byteLength;
        sinceYield += t.data.byteLength;
        if (i + 1 < batch.length && sinceYield >= ASSEMBLE_YIELD_BYTES) {
          sinceYield = 0;
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      }
      if (offset < dst.byteLength) dst.fill(0, offset); // padding rows (a recycled buffer holds old frames)
      feeds[name] = { type: t0.type, dims: [padded, ...t0.dims.slice(1)], data };
    }
    this.assembled.add(feeds);
    return feeds;
  }

  /** A typed array of `count` elements, on a recycled buffer of the same size when one is free. */
  private takeStorage(type: Tensor['type'], count: number): TensorStorage {
    const fresh = allocateStorage(type, 0);
    const bytes = count * fresh.BYTES_PER_ELEMENT;
    const buf = this.bufferPool.get(bytes)?.pop();
    if (!buf) return allocateStorage(type, count);
    return new (fresh.constructor as new (b: ArrayBuffer) => TensorStorage)(buf);
  }

  /** Keeps the buffers an engine handed back, a few per size (enough for every instance to have one queued). */
  private recycle(feeds: Record<string, Tensor>): void {
    if (this.closing) return;
    for (const t of Object.values(feeds)) {
      const buf = t.data.buffer;
      if (!(buf instanceof ArrayBuffer) || buf.byteLength === 0 || t.data.byteOffset !== 0 || t.data.byteLength !== buf.byteLength) continue;
      const list = this.bufferPool.get(buf.byteLength) ?? [];
      if (list.length < this.engines.length * 2) list.push(buf);
      this.bufferPool.set(buf.byteLength, list);
    }
  }

  /** Splits batch outputs back per request (views, no copy). */
  private split(outputs: Record<string, Tensor>, batch: Pending[], total: number): Record<string, Tensor>[] {
    if (batch.length === 1 && (this.maxBatchSize === 0 || Object.values(outputs).every((t) => t.dims[0] === total))) return [outputs];
    const results: Record<string, Tensor>[] = batch.map(() => ({}));
    for (const [name, t] of Object.entries(outputs)) {
      const rows = t.dims[0] ?? 0;
      if (rows < total) {
        throw new OspreyError('OSPREY_ERR_INFERENCE_FAILED', `${this.name}: output '${name}' has ${rows} rows on its first axis for a batch of ${total}`, { output: name });
      }
      const perItem = t.data.length / rows;
      let row = 0;
      batch.forEach((p, i) => {
        const data = (t.data as Float32Array).subarray(row * perItem, (row + p.n) * perItem) as TensorStorage;
        results[i]![name] = { type: t.type, dims: [p.n, ...t.dims.slice(1)], data };
        row += p.n;
      });
    }
    return results;
  }

  private checkDrained(): void {
    if (this.pending === 0 && this.inflight === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Number of requests queued or executing. */
  get outstanding(): number {
    return this.pending + this.inflight;
  }

  /** A snapshot of the statistics (copies; safe to keep). */
  stats(): BatcherStats {
    const c = (d: DurationStat): DurationStat => ({ count: d.count, ns: Math.round(d.ns) });
    return {
      pendingRequests: this.pending,
      inflightRequests: this.inflight,
      inferenceCount: this.s.inferenceCount,
      executionCount: this.s.executionCount,
      lastInferenceMs: this.s.lastInferenceMs,
      success: c(this.s.success),
      fail: c(this.s.fail),
      queue: c(this.s.queue),
      computeInput: c(this.s.computeInput),
      computeInfer: c(this.s.computeInfer),
      computeOutput: c(this.s.computeOutput),
      rejected: { ...this.s.rejected },
      batchStats: [...this.s.batch.values()]
        .sort((a, b) => a.batchSize - b.batchSize)
        .map((b) => ({ batchSize: b.batchSize, computeInput: c(b.computeInput), computeInfer: c(b.computeInfer), computeOutput: c(b.computeOutput) })),
      instances: this.instanceStats.map((i) => ({ ...i, busyNs: Math.round(i.busyNs) })),
    };
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
    this.delayTimerAt = Infinity;
    this.pump();
    if (this.pending === 0 && this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }
}

function add(d: DurationStat, ns: number): void {
  d.count++;
  d.ns += ns;
}

function copyStorage(s: TensorStorage): TensorStorage {
  return s.slice() as TensorStorage;
}
