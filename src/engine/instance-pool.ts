/**
 * The one owner of a model version's engine instances and of which one runs next (Triton's `rate_limiter` /
 * instance-group role): the dynamic batcher takes an idle instance for each batch it dispatches, and
 * {@link EnginePool} (`osprey detect`, benches) sends each run to the instance with the fewest runs in flight.
 * Both read the same per-instance counters.
 */
import { OspreyError } from '../core/errors.js';
import type { Engine } from './engine.js';

/** Counters of one instance. */
export interface InstanceStat {
  /** Whether the instance is executing now. */
  busy: boolean;
  /** Runs finished. */
  executions: number;
  /** Total time spent executing, ns. */
  busyNs: number;
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
  private cursor = 0;

  constructor(engines: readonly E[]) {
    if (engines.length === 0) throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', 'an instance pool needs at least one engine instance');
    this.engines = engines;
    this.idle = engines.map((_e, i) => i);
    this.inFlight = engines.map(() => 0);
    this.stats = engines.map(() => ({ busy: false, executions: 0, busyNs: 0 }));
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
    const i = this.idle.shift();
    if (i === undefined) return undefined;
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
      if (best === undefined || this.inFlight[i]! < this.inFlight[best]!) best = i;
    }
    this.cursor = (this.cursor + 1) % n;
    if (best === undefined) return undefined;
    const at = this.idle.indexOf(best);
    if (at >= 0) this.idle.splice(at, 1);
    this.begin(best);
    return best;
  }

  private begin(i: number): void {
    this.inFlight[i]!++;
    this.stats[i]!.busy = true;
  }

  /** Marks a run of instance `i` finished after `busyNs`. */
  release(i: number, busyNs: number): void {
    const s = this.stats[i]!;
    s.executions++;
    s.busyNs += busyNs;
    this.inFlight[i]!--;
    if (this.inFlight[i] === 0) {
      s.busy = false;
      this.idle.push(i);
    }
  }

  /** A snapshot of the counters (copies). */
  snapshot(): InstanceStat[] {
    return this.stats.map((s) => ({ busy: s.busy, executions: s.executions, busyNs: Math.round(s.busyNs) }));
  }
}
