/**
 * Zero-downtime model swaps with a probation window and automatic rollback, on top of {@link ModelRepository}.
 *
 * A swap is a re-load of a model whose served version changes (e.g. version 2 appears next to version 1):
 * 1. the repository loads the new version in fresh engine workers and warms them up (ORT warmup run, plus the
 *    config's `modelWarmup`) while the old version keeps serving;
 * 2. it switches new requests to the new version; requests in flight finish on the old one, which is then drained
 *    and its sessions and workers freed (`ModelRepository.load`);
 * 3. this controller then watches the new version for a probation window (`swap_probation_seconds`): if, after at
 *    least `swap_min_requests` requests, its error rate exceeds `swap_max_error_rate` or its p95 latency exceeds
 *    `swap_max_latency_ms`, traffic rolls back: new requests to the model wait while the previous version is
 *    re-loaded from the repository (fresh workers again), then run on it; the broken version is drained and freed.
 *    The rollback is logged (warn, with the numbers) and counted (`osprey_model_rollbacks_total{model, reason}`,
 *    `osprey_model_swaps_total{model, outcome="rolled_back"}`). The model stays pinned to the previous version
 *    (`versionPolicy: specific`) until the next explicit load.
 *
 * Thresholds come from the model config's Triton `parameters` (strings), falling back to the server defaults:
 *
 *     parameters:
 *       swap_probation_seconds: "120"   # window after a swap; 0 disables probation
 *       swap_max_error_rate: "0.05"     # failed / total requests of the new version
 *       swap_max_latency_ms: "500"      # p95 latency of the new version's successful requests; 0 = no latency check
 *       swap_min_requests: "20"         # no decision before this many requests
 *
 * A rollback needs the previous version's folder in the repository; a version pushed with a load request
 * (`file:<v>/<name>`) replaces the pushed folder, so its predecessor cannot be rolled back to (logged as such).
 */
import { OspreyError, toOspreyError } from '../core/errors.js';
import type { RoutingMetrics } from './metrics.js';
import type { LoadRequest, ModelRepository } from '../repository/repository.js';

/** Probation thresholds (see the module doc for the config keys). */
export interface SwapPolicy {
  /** Probation window after a swap, ms; 0 = no probation. Default 120000. */
  probationMs: number;
  /** Error rate (failed / all requests of the new version) that triggers a rollback. Default 0.05. */
  maxErrorRate: number;
  /** p95 latency of the new version's successful requests, ms, that triggers a rollback; 0 = not checked. Default 0. */
  maxLatencyMs: number;
  /** Requests needed before any decision. Default 20. */
  minRequests: number;
}

export const DEFAULT_SWAP_POLICY: Readonly<SwapPolicy> = Object.freeze({ probationMs: 120_000, maxErrorRate: 0.05, maxLatencyMs: 0, minRequests: 20 });

/** Config `parameters` keys of the policy. */
export const SWAP_PARAMETERS = {
  probationSeconds: 'swap_probation_seconds',
  maxErrorRate: 'swap_max_error_rate',
  maxLatencyMs: 'swap_max_latency_ms',
  minRequests: 'swap_min_requests',
} as const;

export type SwapState = 'probation' | 'rolling_back' | 'rolled_back' | 'confirmed' | 'rollback_failed';

/** What happened to the last swap of a model. */
export interface SwapStatus {
  model: string;
  state: SwapState;
  fromVersion: number;
  toVersion: number;
  /** Unix ms. */
  startedAtMs: number;
  requests: number;
  errors: number;
  /** p95 latency of successful requests of the new version, ms (null before the first). */
  p95LatencyMs: number | null;
  policy: SwapPolicy;
  /** Why it rolled back (or failed to). */
  reason?: string;
}

interface Probation {
  status: SwapStatus;
  latenciesMs: number[];
  timer: NodeJS.Timeout | undefined;
  /** Requests wait on this while a rollback runs. */
  hold: Promise<void> | undefined;
}

export interface SwapControllerOptions {
  /** Server-wide defaults (a model's config parameters override them). */
  defaults?: Partial<SwapPolicy>;
  metrics: RoutingMetrics;
  log?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void; error(obj: object, msg?: string): void };
}

function parsePolicy(params: Readonly<Record<string, string>>, defaults: SwapPolicy): SwapPolicy {
  const num = (key: string, dflt: number, check: (n: number) => boolean): number => {
    const raw = params[key];
    if (raw === undefined || raw === '') return dflt;
    const n = Number(raw);
    if (!Number.isFinite(n) || !check(n)) throw new OspreyError('OSPREY_ERR_CONFIG', `parameters.${key}: '${raw}' is out of range`, { keyPath: `parameters.${key}` });
    return n;
  };
  return {
    probationMs: num(SWAP_PARAMETERS.probationSeconds, defaults.probationMs / 1000, (n) => n >= 0) * 1000,
    maxErrorRate: num(SWAP_PARAMETERS.maxErrorRate, defaults.maxErrorRate, (n) => n >= 0 && n <= 1),
    maxLatencyMs: num(SWAP_PARAMETERS.maxLatencyMs, defaults.maxLatencyMs, (n) => n >= 0),
    minRequests: num(SWAP_PARAMETERS.minRequests, defaults.minRequests, (n) => Number.isInteger(n) && n >= 1),
  };
}

/** p95 of a list (nearest rank). */
function p95(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)]!;
}

/**
 * Swaps, probation and rollback for the models of one repository. Plug it into the routing layer as its `loader`
 * (loads and unloads) and `observer` (every request's outcome and latency).
 */
export class SwapController {
  private readonly repo: ModelRepository;
  private readonly defaults: SwapPolicy;
  private readonly opts: SwapControllerOptions;
  private readonly probations = new Map<string, Probation>();
  private closed = false;

  constructor(repo: ModelRepository, options: SwapControllerOptions) {
    this.repo = repo;
    this.opts = options;
    this.defaults = { ...DEFAULT_SWAP_POLICY, ...options.defaults };
  }

  private servedVersion(name: string): number | null {
    try {
      return this.repo.get(name).version;
    } catch {
      return null;
    }
  }

  /**
   * Loads (or re-loads) a model through the repository; when the served version changes, starts its probation.
   * @throws OspreyError as `ModelRepository.load` (the previous version keeps serving), `OSPREY_ERR_CONFIG` for a bad
   *   swap parameter.
   */
  async loadModel(name: string, request: LoadRequest = {}): Promise<void> {
    // The policy is read (and a bad swap_* parameter refused, naming it) before anything loads.
    const policy = parsePolicy(await this.parametersFor(name, request), this.defaults);
    const before = this.servedVersion(name);
    try {
      await this.repo.load(name, request);
    } catch (err) {
      if (before !== null) this.opts.metrics.swaps.inc({ model: name, outcome: 'failed' });
      throw err;
    }
    const after = this.servedVersion(name);
    if (before === null || after === null || after === before) return;
    this.endProbation(name);
    this.opts.metrics.swaps.inc({ model: name, outcome: 'switched' });
    this.opts.log?.info({ model: name, fromVersion: before, toVersion: after, probationMs: policy.probationMs }, 'model swapped to a new version');
    if (policy.probationMs <= 0) return;
    const p: Probation = {
      status: { model: name, state: 'probation', fromVersion: before, toVersion: after, startedAtMs: Date.now(), requests: 0, errors: 0, p95LatencyMs: null, policy },
      latenciesMs: [],
      timer: undefined,
      hold: undefined,
    };
    p.timer = setTimeout(() => this.confirm(name, p), policy.probationMs);
    p.timer.unref();
    this.probations.set(name, p);
  }

  /** The config `parameters` a load will use (resolved by the repository, as the load itself resolves them). */
  private async parametersFor(name: string, request: LoadRequest): Promise<Readonly<Record<string, string>>> {
    try {
      return (await this.repo.previewConfig(name, request)).parameters;
    } catch (err) {
      if (err instanceof OspreyError && err.code === 'OSPREY_ERR_CONFIG' && String(err.details.keyPath ?? '').startsWith('parameters.')) throw err;
      return {}; // the load itself reports a bad or missing config, with its context
    }
  }

  /** Unloads a model (ends its probation). */
  async unloadModel(name: string): Promise<void> {
    this.endProbation(name);
    await this.repo.unload(name);
  }

  private endProbation(name: string): void {
    const p = this.probations.get(name);
    if (p?.timer) clearTimeout(p.timer);
    this.probations.delete(name);
  }

  private confirm(name: string, p: Probation): void {
    if (this.probations.get(name) !== p || p.status.state !== 'probation') return;
    p.status.state = 'confirmed';
    p.timer = undefined;
    this.opts.metrics.swaps.inc({ model: name, outcome: 'confirmed' });
    this.opts.log?.info({ model: name, version: p.status.toVersion, requests: p.status.requests, errors: p.status.errors, p95LatencyMs: p.status.p95LatencyMs }, 'new model version passed its probation');
  }

  /** Requests to a model wait for a rollback in progress (then run on the restored version). */
  beforeCall(model: string): Promise<void> | undefined {
    return this.probations.get(model)?.hold;
  }

  /** Records one request's outcome (the routing layer calls it for every plain-model request). */
  onCall(model: string, version: string, ok: boolean, seconds: number): void {
    const p = this.probations.get(model);
    if (!p || p.status.state !== 'probation') return;
    // Failures may not know the version (unversioned request): they count against the version being served.
    if (version !== '' && version !== String(p.status.toVersion)) return;
    const s = p.status;
    s.requests++;
    if (!ok) s.errors++;
    else p.latenciesMs.push(seconds * 1000);
    s.p95LatencyMs = p95(p.latenciesMs);
    if (s.requests < s.policy.minRequests) return;
    const errorRate = s.errors / s.requests;
    if (errorRate > s.policy.maxErrorRate) {
      this.rollback(model, p, 'error_rate', `error rate ${(errorRate * 100).toFixed(1)}% over ${s.requests} requests > ${(s.policy.maxErrorRate * 100).toFixed(1)}%`);
    } else if (s.policy.maxLatencyMs > 0 && s.p95LatencyMs !== null && s.p95LatencyMs > s.policy.maxLatencyMs) {
      this.rollback(model, p, 'latency', `p95 latency ${s.p95LatencyMs.toFixed(1)} ms > ${s.policy.maxLatencyMs} ms`);
    }
  }

  private rollback(model: string, p: Probation, reason: 'error_rate' | 'latency', why: string): void {
    const s = p.status;
    s.state = 'rolling_back';
    s.reason = why;
    if (p.timer) clearTimeout(p.timer);
    p.timer = undefined;
    this.opts.log?.warn({ model, fromVersion: s.toVersion, toVersion: s.fromVersion, reason, why, requests: s.requests, errors: s.errors }, 'rolling back a new model version');
    p.hold = (async () => {
      try {
        if (this.closed) throw new OspreyError('OSPREY_ERR_SHUTTING_DOWN', 'the server is shutting down');
        await this.repo.load(model, { versionPolicy: { kind: 'specific', versions: [s.fromVersion] } });
        s.state = 'rolled_back';
        this.opts.metrics.rollbacks.inc({ model, reason });
        this.opts.metrics.swaps.inc({ model, outcome: 'rolled_back' });
        this.opts.log?.warn({ model, version: s.fromVersion, reason, why }, 'rolled back to the previous model version');
      } catch (err) {
        const e = toOspreyError(err);
        s.state = 'rollback_failed';
        s.reason = `${why}; rollback failed: ${e.code}: ${e.message}`;
        this.opts.metrics.swaps.inc({ model, outcome: 'rollback_failed' });
        this.opts.log?.error({ model, code: e.code, err: e.message }, 'rollback failed: the new version keeps serving');
      } finally {
        p.hold = undefined;
      }
    })();
  }

  /** Status of the last swap of each model (or of one). */
  status(model?: string): SwapStatus[] {
    return [...this.probations.values()].filter((p) => model === undefined || p.status.model === model).map((p) => structuredClone(p.status));
  }

  /** Waits for rollbacks in progress. */
  async settle(): Promise<void> {
    await Promise.all([...this.probations.values()].map((p) => p.hold));
  }

  /** Stops the probation timers. */
  close(): void {
    this.closed = true;
    for (const p of this.probations.values()) if (p.timer) clearTimeout(p.timer);
  }
}
