/**
 * Per-arm routing metrics and swap/rollback counters (prom-client, Prometheus base units).
 *
 * | metric | type | labels |
 * |---|---|---|
 * | `osprey_route_requests_total` | counter | alias, arm, role (`primary`\|`shadow`), outcome (`success`\|`failure`) |
 * | `osprey_route_request_duration_seconds` | histogram | alias, arm, role |
 * | `osprey_route_detections_per_image` | histogram | alias, arm, role |
 * | `osprey_route_shadow_matched_boxes_total` | counter | alias, arm (the shadow), primary_arm |
 * | `osprey_route_shadow_compared_boxes_total` | counter | alias, arm, primary_arm (|P| + |S| − matched) |
 * | `osprey_route_shadow_agreement_ratio` | gauge | alias, arm — matched / compared since start |
 * | `osprey_model_swaps_total` | counter | model, outcome (`switched`\|`failed`\|`confirmed`\|`rolled_back`) |
 * | `osprey_model_rollbacks_total` | counter | model, reason (`error_rate`\|`latency`) |
 *
 * Agreement in PromQL: `rate(osprey_route_shadow_matched_boxes_total[5m]) / rate(osprey_route_shadow_compared_boxes_total[5m])`.
 * The same numbers are kept in memory for the stats endpoints ({@link RoutingMetrics.snapshot}).
 */
import { Counter, Gauge, Histogram, register as globalRegistry, type Registry } from 'prom-client';

import { DETECTIONS_PER_IMAGE_BUCKETS, LATENCY_BUCKETS_SECONDS, ROUTING_METRIC } from '../metrics/names.js';

export type ArmRole = 'primary' | 'shadow';

/** In-memory per-arm numbers (what the stats endpoints report). */
export interface ArmStats {
  alias: string;
  arm: string;
  role: ArmRole;
  model: string;
  version: string;
  /** Requests answered without error. */
  success: { count: number; ns: number };
  /** Requests that failed (for a shadow: failures no client saw). */
  fail: { count: number; ns: number };
  /** Images whose detections were counted, and the detections. */
  images: number;
  detections: number;
  /** Mean detections per image (0 before the first). */
  detectionsPerImage: number;
  /** Shadow only: matched boxes, compared boxes, agreement (matched / compared; null before the first comparison). */
  matchedBoxes?: number;
  comparedBoxes?: number;
  agreement?: number | null;
}

/** Metrics of every alias and swap; one per server. */
export class RoutingMetrics {
  private readonly requests: Counter<'alias' | 'arm' | 'role' | 'outcome'>;
  private readonly duration: Histogram<'alias' | 'arm' | 'role'>;
  private readonly detectionsHist: Histogram<'alias' | 'arm' | 'role'>;
  private readonly matched: Counter<'alias' | 'arm' | 'primary_arm'>;
  private readonly compared: Counter<'alias' | 'arm' | 'primary_arm'>;
  private readonly agreementGauge: Gauge<'alias' | 'arm'>;
  readonly swaps: Counter<'model' | 'outcome'>;
  readonly rollbacks: Counter<'model' | 'reason'>;
  private readonly arms = new Map<string, ArmStats>();

  /** @param registry the server's prom-client registry (default: prom-client's global one). */
  constructor(registry: Registry = globalRegistry) {
    const registers = [registry];
    const existing = <T>(name: string): T | undefined => registry.getSingleMetric(name) as T | undefined;
    this.requests =
      existing('osprey_route_requests_total') ??
      new Counter({ name: ROUTING_METRIC.routeRequests, help: 'Requests routed through an alias, per arm, role and outcome', labelNames: ['alias', 'arm', 'role', 'outcome'], registers });
    this.duration =
      existing('osprey_route_request_duration_seconds') ??
      new Histogram({ name: ROUTING_METRIC.routeRequestDuration, help: 'Latency of routed requests per arm (shadow: its own call)', labelNames: ['alias', 'arm', 'role'], buckets: [...LATENCY_BUCKETS_SECONDS], registers });
    this.detectionsHist =
      existing('osprey_route_detections_per_image') ??
      new Histogram({ name: ROUTING_METRIC.routeDetectionsPerImage, help: 'Detections per image answered by each arm', labelNames: ['alias', 'arm', 'role'], buckets: [...DETECTIONS_PER_IMAGE_BUCKETS], registers });
    this.matched =
      existing('osprey_route_shadow_matched_boxes_total') ??
      new Counter({ name: ROUTING_METRIC.shadowMatchedBoxes, help: 'Shadow boxes matching a primary box (same class, IoU >= threshold)', labelNames: ['alias', 'arm', 'primary_arm'], registers });
    this.compared =
      existing('osprey_route_shadow_compared_boxes_total') ??
      new Counter({ name: ROUTING_METRIC.shadowComparedBoxes, help: 'Distinct boxes of primary and shadow (|P| + |S| - matched)', labelNames: ['alias', 'arm', 'primary_arm'], registers });
    this.agreementGauge =
      existing('osprey_route_shadow_agreement_ratio') ??
      new Gauge({ name: ROUTING_METRIC.shadowAgreement, help: 'Shadow agreement with the primary since start: matched / compared boxes', labelNames: ['alias', 'arm'], registers });
    this.swaps =
      existing('osprey_model_swaps_total') ??
      new Counter({ name: ROUTING_METRIC.modelSwaps, help: 'Model version swaps by outcome (switched, failed, confirmed after probation, rolled_back)', labelNames: ['model', 'outcome'], registers });
    this.rollbacks =
      existing('osprey_model_rollbacks_total') ??
      new Counter({ name: ROUTING_METRIC.modelRollbacks, help: 'Automatic rollbacks of a new model version during its probation window', labelNames: ['model', 'reason'], registers });
  }

  private arm(alias: string, arm: string, role: ArmRole, model: string, version: string): ArmStats {
    const key = `${alias}\u0000${arm}\u0000${role}`;
    let s = this.arms.get(key);
    if (!s) {
      s = { alias, arm, role, model, version, success: { count: 0, ns: 0 }, fail: { count: 0, ns: 0 }, images: 0, detections: 0, detectionsPerImage: 0 };
      if (role === 'shadow') Object.assign(s, { matchedBoxes: 0, comparedBoxes: 0, agreement: null });
      this.arms.set(key, s);
    }
    return s;
  }

  /** Records one routed call. `detectionsPerImage` is omitted for non-detection models. */
  recordCall(e: { alias: string; arm: string; role: ArmRole; model: string; version: string; ok: boolean; seconds: number; detectionsPerImage?: readonly number[] }): void {
    const s = this.arm(e.alias, e.arm, e.role, e.model, e.version);
    const ns = Math.round(e.seconds * 1e9);
    const bucket = e.ok ? s.success : s.fail;
    bucket.count++;
    bucket.ns += ns;
    this.requests.inc({ alias: e.alias, arm: e.arm, role: e.role, outcome: e.ok ? 'success' : 'failure' });
    this.duration.observe({ alias: e.alias, arm: e.arm, role: e.role }, e.seconds);
    for (const n of e.detectionsPerImage ?? []) {
      s.images++;
      s.detections += n;
      this.detectionsHist.observe({ alias: e.alias, arm: e.arm, role: e.role }, n);
    }
    s.detectionsPerImage = s.images > 0 ? s.detections / s.images : 0;
  }

  /** Records a shadow-vs-primary comparison. */
  recordAgreement(e: { alias: string; arm: string; primaryArm: string; model: string; version: string; matched: number; total: number }): void {
    const s = this.arm(e.alias, e.arm, 'shadow', e.model, e.version);
    s.matchedBoxes = (s.matchedBoxes ?? 0) + e.matched;
    s.comparedBoxes = (s.comparedBoxes ?? 0) + e.total;
    s.agreement = s.comparedBoxes > 0 ? s.matchedBoxes / s.comparedBoxes : 1;
    this.matched.inc({ alias: e.alias, arm: e.arm, primary_arm: e.primaryArm }, e.matched);
    this.compared.inc({ alias: e.alias, arm: e.arm, primary_arm: e.primaryArm }, e.total);
    this.agreementGauge.set({ alias: e.alias, arm: e.arm }, s.agreement);
  }

  /** Per-arm numbers, optionally of one alias. */
  snapshot(alias?: string): ArmStats[] {
    return [...this.arms.values()].filter((s) => alias === undefined || s.alias === alias).map((s) => structuredClone(s));
  }
}
