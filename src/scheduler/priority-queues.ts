/**
 * The request queues of one model version (Triton's `scheduler_utils` `PriorityQueue`): one queue per priority
 * level (1 = highest), each with its queue policy — `maxQueueSize`, `defaultTimeoutMicroseconds` (lowered by a
 * request's `timeout` when `allowTimeoutOverride`), `timeoutAction` `REJECT` or `DELAY` — and the walk that forms
 * the next batch in priority, then arrival order. No engines, no tensors: the dynamic batcher asks this module
 * what to run and tells it what it took.
 */
import { OspreyError } from '../core/errors.js';
import type { Tensor } from '../core/types.js';
import { queuePolicyFor, type DynamicBatchingConfig } from '../repository/config.js';
import { Deque } from './deque.js';

/** One queued request. */
export interface QueuedRequest<R> {
  inputs: Record<string, Tensor>;
  /** Batch elements (first axis), 1 when the model has no batch axis. */
  n: number;
  /** Non-batch dims and types of every input: requests batch only with the same key. */
  shapeKey: string;
  /** 0-based level index. */
  level: number;
  /** performance.now() at enqueue, ms. */
  enqueuedAt: number;
  state: 'queued' | 'dispatched' | 'done';
  delayed: boolean;
  timer: NodeJS.Timeout | undefined;
  /** The caller's handle (promise callbacks). */
  handle: R;
}

type Level<R> = { ready: Deque<QueuedRequest<R>>; delayed: Deque<QueuedRequest<R>>; size: number };

/** The next batch: a prefix of the live queue entries in priority, then arrival, order. */
export interface BatchCandidate<R> {
  batch: QueuedRequest<R>[];
  /** Batch elements in `batch`. */
  total: number;
  /** The walk stopped at a request that does not fit (other shape, or over the size): no point waiting. */
  blocked: boolean;
  /** enqueuedAt of the oldest request in `batch`, ms. */
  oldest: number;
  /** Requests up to the largest preferred batch size reached (0 = none). */
  preferredCut: number;
}

/**
 * @example
 *   const q = new PriorityQueues<Handle>('yolov8n:1', config.dynamicBatching, (r, why) => reject(r, why));
 *   q.add(request, { priority: 1 });
 *   const { batch } = q.next(8);
 *   q.take(batch);
 */
export class PriorityQueues<R> {
  private readonly levels: Level<R>[];
  private count = 0;

  /**
   * @param name for messages, e.g. `yolov8n:1`.
   * @param db the model's dynamic batching (null = one FIFO level, no policy).
   * @param onExpired a `REJECT` timeout fired for a queued request (already removed from the queues).
   */
  constructor(
    private readonly name: string,
    private readonly db: DynamicBatchingConfig | null,
    private readonly onExpired: (r: QueuedRequest<R>, timeoutMicroseconds: number) => void,
  ) {
    const levelCount = Math.max(1, db?.priorityLevels ?? 0);
    this.levels = Array.from({ length: levelCount }, () => ({ ready: new Deque<QueuedRequest<R>>(), delayed: new Deque<QueuedRequest<R>>(), size: 0 }));
  }

  /** Requests queued (all levels). */
  get size(): number {
    return this.count;
  }

  /**
   * The 0-based level of a request's priority (1 = highest; 0 or undefined = the default level).
   * @throws OspreyError `OSPREY_ERR_INVALID_ARGUMENT` outside 0..priorityLevels.
   */
  levelOf(priority: number | undefined): number {
    if (!this.db || this.db.priorityLevels <= 0) return 0;
    const p = priority ?? 0;
    if (!Number.isInteger(p) || p < 0 || p > this.db.priorityLevels) {
      throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `${this.name}: priority ${p} is outside 1..${this.db.priorityLevels} (0 = default level ${this.db.defaultPriorityLevel})`, { priority: p });
    }
    return (p === 0 ? this.db.defaultPriorityLevel : p) - 1;
  }

  /**
   * Queues a request under its level's policy.
   * @throws OspreyError `OSPREY_ERR_QUEUE_FULL` (the level's `maxQueueSize` reached).
   */
  add(r: QueuedRequest<R>, timeoutMicroseconds: number | undefined): void {
    const lv = this.levels[r.level]!;
    let timeoutUs = 0;
    let action: 'REJECT' | 'DELAY' = 'REJECT';
    if (this.db) {
      const policy = queuePolicyFor(this.db, r.level + 1);
      if (policy.maxQueueSize > 0 && lv.size >= policy.maxQueueSize) {
        throw new OspreyError('OSPREY_ERR_QUEUE_FULL', `${this.name}: the queue of priority level ${r.level + 1} is full (maxQueueSize ${policy.maxQueueSize})`, {
          priorityLevel: r.level + 1,
          maxQueueSize: policy.maxQueueSize,
        });
      }
      timeoutUs = policy.defaultTimeoutMicroseconds;
      const asked = timeoutMicroseconds ?? 0;
      if (policy.allowTimeoutOverride && asked > 0) timeoutUs = timeoutUs > 0 ? Math.min(timeoutUs, asked) : asked;
      action = policy.timeoutAction;
    }
    if (timeoutUs > 0) r.timer = setTimeout(() => this.expire(r, action, timeoutUs), Math.max(1, timeoutUs / 1000));
    lv.ready.push(r);
    lv.size++;
    this.count++;
  }

  private expire(r: QueuedRequest<R>, action: 'REJECT' | 'DELAY', timeoutUs: number): void {
    r.timer = undefined;
    if (r.state !== 'queued') return;
    if (action === 'DELAY') {
      if (!r.delayed) {
        r.delayed = true;
        this.levels[r.level]!.delayed.push(r);
      }
      return;
    }
    r.state = 'done';
    this.levels[r.level]!.size--;
    this.count--;
    this.onExpired(r, timeoutUs);
  }

  /** Stale entries: already taken or expired, or (in `ready`) moved to `delayed`. */
  private static staleReady = (r: QueuedRequest<unknown>) => r.state !== 'queued' || r.delayed;
  private static staleDelayed = (r: QueuedRequest<unknown>) => r.state !== 'queued';

  /**
   * The next batch of at most `maxItems` batch elements, all with the first request's shape key.
   * @param preferred Triton's `preferredBatchSize` list.
   */
  next(maxItems: number, preferred: readonly number[] = []): BatchCandidate<R> {
    const batch: QueuedRequest<R>[] = [];
    let total = 0;
    let blocked = false;
    let oldest = Infinity;
    let preferredCut = 0;
    outer: for (const lv of this.levels) {
      for (const [dq, stale] of [
        [lv.ready, PriorityQueues.staleReady],
        [lv.delayed, PriorityQueues.staleDelayed],
      ] as const) {
        for (const r of dq) {
          if (stale(r)) continue;
          if (batch.length > 0 && (r.shapeKey !== batch[0]!.shapeKey || total + r.n > maxItems)) {
            blocked = true;
            break outer;
          }
          batch.push(r);
          total += r.n;
          if (r.enqueuedAt < oldest) oldest = r.enqueuedAt;
          if (preferred.includes(total)) preferredCut = batch.length;
          if (total >= maxItems) break outer;
        }
      }
    }
    return { batch, total, blocked, oldest, preferredCut };
  }

  /** Removes the requests of a dispatched batch from the queues (their timers stop). */
  take(batch: readonly QueuedRequest<R>[]): void {
    for (const r of batch) {
      r.state = 'dispatched';
      if (r.timer) clearTimeout(r.timer);
      r.timer = undefined;
      this.levels[r.level]!.size--;
      this.count--;
    }
    for (const lv of this.levels) {
      lv.ready.dropWhile(PriorityQueues.staleReady);
      lv.delayed.dropWhile(PriorityQueues.staleDelayed);
    }
  }
}
