/**
 * The one owner of a model version's engine instances and of which one runs next (Triton's `rate_limiter` /
 * instance-group role): the dynamic batcher takes an idle instance for each batch it dispatches, and
 * {@link EnginePool} (`osprey detect`, benches) sends each run to the instance with the fewest runs in flight.
 * Both read the same per-instance counters.
 *
 * On a multi-GPU host each instance carries the GPU it is pinned to, and both choices spread work across GPUs by
 * queue depth: among the candidates, the instance whose GPU has the fewest runs in flight (summed over that GPU's
 * instances) goes first, so two batches land on two GPUs before a second instance of one GPU is used — Triton's
 * instance groups across GPUs, with the choice of its rate limiter made by device load.
 */
import { OspreyError } from '../core/errors.js';
import type { Tensor } from '../core/types.js';
import type { Engine, RunOptions } from './engine.js';

/** Counters of one instance. */
export interface InstanceStat {
  /** Whether the instance is executing now. */
  busy: boolean;
  /** Runs finished. */
  executions: number;
  /** Total time spent executing, ns. */
  busyNs: number;
  /** CUDA device ordinal the instance is pinned to; null on the CPU. */
  gpu: number | null;
}

/**
 * @example
 *   const pool = new InstancePool(engines);
 *   const i = pool.takeIdle();            // undefined when every instance is busy
 *   if (i !== undefined) { try { await pool.engine(i).run(feeds); } finally { pool.release(i, ns); } }
 */
export class InstancePool<E = Engine> {
  readonly engines: readonly E[];
  private readonly idle: number[];
  private readonly inFlight: number[];
  private readonly stats: InstanceStat[];
  /** GPU of each instance (null: CPU). */
  readonly devices: readonly (number | null)[];
  /** Runs in flight per GPU (key null: the CPU instances). */
  private readonly deviceDepth = new Map<number | null, number>();
  private cursor = 0;

  /**
   * @param devices the GPU each engine is pinned to (CUDA device ordinal), null for CPU instances; default all null.
   * @throws OspreyError `OSPREY_ERR_INVALID_ARGUMENT` (no engines, or `devices` of another length).
   */
  constructor(engines: readonly E[], devices?: readonly (number | null)[]) {
    if (engines.length === 0) throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', 'an instance pool needs at least one engine instance');
    if (devices && devices.length !== engines.length) {
      throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `an instance pool got ${engines.length} engines but ${devices.length} device labels`);
    }
    this.engines = engines;
    this.devices = devices ? [...devices] : engines.map(() => null);
    this.idle = engines.map((_e, i) => i);
    this.inFlight = engines.map(() => 0);
    this.stats = engines.map((_e, i) => ({ busy: false, executions: 0, busyNs: 0, gpu: this.devices[i]! }));
    for (const d of this.devices) this.deviceDepth.set(d, 0);
  }

  /** Runs in flight on GPU `gpu` (null: on the CPU instances). */
  depthOf(gpu: number | null): number {
    return this.deviceDepth.get(gpu) ?? 0;
  }

  get size(): number {
    return this.engines.length;
  }

  /** True when some instance is idle. */
  get hasIdle(): boolean {
    return this.idle.length > 0;
  }

  engine(i: number): E {
    return this.engines[i]!;
  }

  /** Takes the longest-idle instance (FIFO), or undefined when all are busy. Pair with {@link release}. */
  takeIdle(): number | undefined {
    if (this.idle.length === 0) return undefined;
    // the longest-idle instance of the least loaded GPU (one pass; FIFO among equals)
    let at = 0;
    for (let k = 1; k < this.idle.length; k++) {
      if (this.depthOf(this.devices[this.idle[k]!]!) < this.depthOf(this.devices[this.idle[at]!]!)) at = k;
    }
    const i = this.idle.splice(at, 1)[0]!;
    this.begin(i);
    return i;
  }

  /**
   * Picks the instance with the fewest runs in flight (ties round-robin) among those `alive` accepts, for callers
   * that run without waiting for an idle one. Pair with {@link release}.
   * @returns undefined when `alive` accepts none.
   */
  takeLeastBusy(alive: (e: E) => boolean = () => true): number | undefined {
    const n = this.engines.length;
    let best: number | undefined;
    for (let k = 0; k < n; k++) {
      const i = (this.cursor + k) % n;
      if (!alive(this.engines[i]!)) continue;
      if (
        best === undefined ||
        this.inFlight[i]! < this.inFlight[best]! ||
        (this.inFlight[i] === this.inFlight[best] && this.depthOf(this.devices[i]!) < this.depthOf(this.devices[best]!))
      ) {
        best = i;
      }
    }
    this.cursor = (this.cursor + 1) % n;
    if (best === undefined) return undefined;
    const at = this.idle.indexOf(best);
    if (at >= 0) this.idle.splice(at, 1);
    this.begin(best);
    return best;
  }

  /**
   * Runs `feeds` on the least busy instance that `alive` accepts and releases it with the run's time: what an
   * engine made of several instances (EnginePool, PlacedEngine) does per call.
   * @throws OspreyError `OSPREY_ERR_ENGINE_CLOSED` (rejected) when `alive` accepts no instance.
   */
  runOnLeastBusy<R extends Pick<Engine, 'run'>>(this: InstancePool<R>, feeds: Record<string, Tensor>, options?: RunOptions, alive?: (e: R) => boolean): Promise<Record<string, Tensor>> {
    const i = this.takeLeastBusy(alive);
    if (i === undefined) return Promise.reject(new OspreyError('OSPREY_ERR_ENGINE_CLOSED', 'every engine instance has stopped'));
    const t0 = performance.now();
    return this.engine(i)
      .run(feeds, options)
      .finally(() => this.release(i, (performance.now() - t0) * 1e6));
  }

  private begin(i: number): void {
    this.inFlight[i]!++;
    this.deviceDepth.set(this.devices[i]!, this.depthOf(this.devices[i]!) + 1);
    this.stats[i]!.busy = true;
  }

  /** Marks a run of instance `i` finished after `busyNs`. */
  release(i: number, busyNs: number): void {
    const s = this.stats[i]!;
    s.executions++;
    s.busyNs += busyNs;
    this.inFlight[i]!--;
    this.deviceDepth.set(this.devices[i]!, this.depthOf(this.devices[i]!) - 1);
    if (this.inFlight[i] === 0) {
      s.busy = false;
      this.idle.push(i);
    }
  }

  /** A snapshot of the counters (copies). */
  snapshot(): InstanceStat[] {
    return this.stats.map((s) => ({ busy: s.busy, executions: s.executions, busyNs: Math.round(s.busyNs), gpu: s.gpu }));
  }
}
