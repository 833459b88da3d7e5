/**
 * The routing layer: an {@link InferenceService} that also resolves model aliases (weighted A/B arms, sticky keys,
 * a shadow target) and runs zero-downtime swaps with probation and rollback ({@link SwapController}). HTTP and gRPC
 * both sit on it, so an alias works on every protocol and route (infer and detect).
 *
 * For a request to an alias:
 * 1. The arm: if the alias is sticky and the request carries the key parameter (default `routing_key`), the arm is
 *    the one the key hashes to ({@link stickyUnit}: the same key, the same arm); otherwise a weighted random draw.
 * 2. With a shadow configured (and the request drawn into its `fraction`), the inputs are copied before the primary
 *    call (the engine takes ownership of the primary's buffers). The copy goes to the shadow *after* the primary
 *    has answered, so the shadow never delays the client nor competes with its request. The shadow's detections
 *    are matched with the primary's ({@link matchDetections}, IoU ≥ 0.5, same class) and counted; its answer is
 *    never returned, and its failure is counted and logged, never seen by the client.
 * 3. The client gets the primary's answer with `model_name` = the alias and `model_version` = the version that
 *    answered; gRPC/HTTP responses carry the parameter `routing_arm` naming the arm.
 *
 * Per-arm metrics: {@link RoutingMetrics} (Prometheus, on the server's registry) and the stats endpoint
 * (`GET /v2/models/<alias>/stats`, gRPC `ModelStatistics` with `name: <alias>`): one entry per arm and shadow, with
 * `version` = the arm name.
 */
import { Registry } from 'prom-client';
import { ERROR_CATALOGUE, OspreyError, toOspreyError } from '../core/errors.js';
import { detectOutputLayout } from '../core/decode.js';
import type { LetterboxGeometry } from '../core/letterbox.js';
import { postprocessImage } from '../core/postprocess.js';
import { DEFAULT_DETECT_OPTIONS, type Detection, type ImageResult, type Tensor } from '../core/types.js';
import type { IndexEntry, LoadRequest, ModelVersion } from '../repository/repository.js';
import { SwapController, type SwapPolicy } from './swap.js';
import {
  InferenceService,
  type DetectRequest,
  type DetectResponse,
  type InferRequest,
  type InferResponse,
  type ServiceOptions,
} from '../server/service.js';
import { matchDetections } from './agreement.js';
import { loadAliasFile, type AliasArm, type AliasConfig, type RouteTarget } from './alias.js';
import { RoutingMetrics } from './metrics.js';
import { pickByUnit, stickyUnit } from './select.js';
import type { ModelMetadataJson, ModelStatisticsJson } from '../server/kserve-types.js';

/** Request parameters carried to the routing layer (KServe `parameters`; the sticky key is one of them). */
export type RequestParameters = Readonly<Record<string, string | number | boolean>>;

/** Response parameter naming the arm that answered. */
export const ROUTING_ARM_PARAMETER = 'routing_arm';

export interface RoutingLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface RoutedServiceOptions extends ServiceOptions {
  /** Aliases; default: `<repository>/aliases.(yaml|yml|json)`, re-read by every repository index request. */
  aliases?: ReadonlyMap<string, AliasConfig>;
  /** Swap probation defaults (a model's config `parameters` override them); `false` = plain re-loads, no probation. */
  swap?: Partial<SwapPolicy> | false;
  /** Random source in [0, 1) for non-sticky draws and shadow sampling. Default Math.random. */
  random?: () => number;
  log?: RoutingLogger;
}

/** A detect answer with the arm that answered. */

function copyInferRequest(r: InferRequest): InferRequest {
  return { ...r, inputs: r.inputs.map((i) => ({ ...i, shape: [...i.shape], data: i.data.slice() as typeof i.data })) };
}

const IDENTITY_SIZE = 1e9; // boxes stay in model-input pixels, unclipped

/**
 * Detections per image of a detection model's raw outputs (model-input pixels), or null when no output has a
 * detection layout. Default post-processing (conf 0.25, NMS IoU 0.7, class-aware).
 */
export function detectionsOfOutputs(outputs: ReadonlyArray<{ shape: readonly number[]; data: Tensor['data'] }>): Detection[][] | null {
  for (const t of outputs) {
    if (!(t.data instanceof Float32Array) || t.shape.length !== 3) continue;
    let info;
    try {
      info = detectOutputLayout(t.shape);
    } catch {
      continue;
    }
    const g: LetterboxGeometry = {
      srcWidth: IDENTITY_SIZE,
      srcHeight: IDENTITY_SIZE,
      dstWidth: IDENTITY_SIZE,
      dstHeight: IDENTITY_SIZE,
      ratio: 1,
      resizedWidth: IDENTITY_SIZE,
      resizedHeight: IDENTITY_SIZE,
      padLeft: 0,
      padTop: 0,
      padRight: 0,
      padBottom: 0,
    };
    const out = { dims: t.shape, data: t.data };
    const images: Detection[][] = [];
    for (let b = 0; b < (t.shape[0] ?? 1); b++) images.push(postprocessImage(out, info, b, g, [], DEFAULT_DETECT_OPTIONS));
    return images;
  }
  return null;
}

/**
 * Whether a failure counts against a model version on probation: server-side errors (HTTP 5xx in the catalogue:
 * inference failed, engine closed, internal, not ready, timeout) and a full queue; not the client's bad input.
 */
export function isServerSideFailure(code: string): boolean {
  const spec = (ERROR_CATALOGUE as Record<string, { http: number }>)[code];
  return spec === undefined || spec.http >= 500 || code === 'OSPREY_ERR_QUEUE_FULL';
}

function detectionsOfResults(results: readonly ImageResult[]): Detection[][] {
  return results.map((r) => ('detections' in r ? r.detections : []));
}

/**
 * @example
 *   const service = new RoutedInferenceService({ repository, metrics, swap: { probationMs: 120_000, maxErrorRate: 0.05 } });
 *   // <repo>/aliases.yaml: detector: { arms: [{model: yolov8n, version: 1, weight: 90}, {model: yolov8n, version: 2, weight: 10}] }
 *   const res = await service.infer('detector', undefined, { inputs, parameters: { routing_key: 'cam-17' } });
 *   res.parameters?.routing_arm; // 'yolov8n:1' — and always the same arm for 'cam-17'
 */
export class RoutedInferenceService extends InferenceService {
  readonly routingMetrics: RoutingMetrics;
  /** Null when swaps run without probation (`swap: false`). */
  readonly swaps: SwapController | null;
  private aliasTable: ReadonlyMap<string, AliasConfig>;
  private readonly aliasesFromFile: boolean;
  private readonly random: () => number;
  private readonly log: RoutingLogger | undefined;
  private readonly shadowsInFlight = new Set<Promise<void>>();

  /**
   * A bad aliases file does not stop the server (as a bad model config refuses only that model): it is logged with
   * its key path (`OSPREY_ERR_CONFIG`), kept in {@link aliasError}, and the server starts without aliases.
   */
  constructor(options: RoutedServiceOptions) {
    super(options);
    this.routingMetrics = new RoutingMetrics(options.metrics?.registry ?? new Registry());
    this.aliasesFromFile = options.aliases === undefined;
    this.random = options.random ?? Math.random;
    this.log = options.log;
    this.aliasTable = options.aliases ?? new Map();
    try {
      this.reloadAliases();
    } catch (err) {
      this.aliasError = toOspreyError(err, 'OSPREY_ERR_CONFIG');
      this.log?.error({ code: this.aliasError.code, keyPath: this.aliasError.details.keyPath, err: this.aliasError.message }, 'aliases file rejected: serving without aliases');
    }
    this.swaps = options.swap === false ? null : new SwapController(options.repository, { metrics: this.routingMetrics, defaults: options.swap ?? {}, ...(options.log ? { log: options.log } : {}) });
  }

  /** The current aliases. */
  get aliases(): ReadonlyMap<string, AliasConfig> {
    return this.aliasTable;
  }

  /** The last aliases-file error (null when the file is valid or absent). */
  aliasError: OspreyError | null = null;

  /**
   * Re-reads `<repo>/aliases.*`.
   * @throws OspreyError `OSPREY_ERR_CONFIG` naming the key path; the previous table stays in force.
   */
  reloadAliases(): void {
    if (!this.aliasesFromFile || !this.repository.root) return;
    this.aliasTable = loadAliasFile(this.repository.root);
    this.aliasError = null;
  }

  /**
   * The arm for a request.
   * @param key the sticky key (request parameter), if any
   */
  chooseArm(alias: AliasConfig, key: string | undefined): AliasArm {
    const u = key !== undefined && alias.stickyParameter !== null ? stickyUnit(alias.name, key) : this.random();
    return alias.arms[pickByUnit(alias.arms.map((a) => a.weight), u)]!;
  }

  private armFor(alias: AliasConfig, parameters: RequestParameters | undefined, version: string | undefined): AliasArm {
    if (version !== undefined && version !== '') {
      throw new OspreyError('OSPREY_ERR_MODEL_NOT_FOUND', `'${alias.name}' is an alias: call it without a version (its arms pick the versions)`, { model: alias.name });
    }
    const raw = alias.stickyParameter !== null ? parameters?.[alias.stickyParameter] : undefined;
    return this.chooseArm(alias, raw === undefined ? undefined : String(raw));
  }

  /** The heaviest arm: it answers metadata, config and readiness for the alias. */
  private primaryTarget(alias: AliasConfig): AliasArm {
    return alias.arms.reduce((best, a) => (a.weight > best.weight ? a : best));
  }

  override resolve(model: string, version?: string): ModelVersion {
    const alias = this.aliasTable.get(model);
    if (!alias) return super.resolve(model, version);
    const t = this.primaryTarget(alias);
    return super.resolve(t.model, t.version || undefined);
  }

  /**
   * Ready: not shutting down and at least one model version is READY. Unlike the plain service, a load in progress
   * does not make the server unready while versions are serving: a swap must not take the pod out of a load
   * balancer (Kubernetes readiness / gRPC health probes) — that is what makes it zero-downtime from outside.
   */
  override isReady(): boolean {
    return !this.isDraining && this.repository.allVersions().some((v) => v.state === 'READY');
  }

  /** An alias is ready when every arm with a positive weight is (the shadow does not count). */
  override modelReady(model: string, version?: string): boolean {
    const alias = this.aliasTable.get(model);
    if (!alias) return super.modelReady(model, version);
    return alias.arms.filter((a) => a.weight > 0).every((a) => {
      try {
        return super.modelReady(a.model, a.version || undefined);
      } catch {
        return false;
      }
    });
  }

  override modelMetadata(model: string, version?: string): ModelMetadataJson {
    const alias = this.aliasTable.get(model);
    if (!alias) return super.modelMetadata(model, version);
    const t = this.primaryTarget(alias);
    return { ...super.modelMetadata(t.model, t.version || undefined), name: model };
  }

  override modelConfig(model: string, version?: string): Record<string, unknown> {
    const alias = this.aliasTable.get(model);
    if (!alias) return super.modelConfig(model, version);
    const t = this.primaryTarget(alias);
    return { ...super.modelConfig(t.model, t.version || undefined), name: model };
  }

  /** A request to a plain model, watched by the swap controller (client errors are not held against a version). */
  private async plainInfer(model: string, version: string | undefined, request: InferRequest): Promise<InferResponse> {
    const hold = this.swaps?.beforeCall(model);
    if (hold) await hold;
    const t0 = performance.now();
    try {
      const r = await super.infer(model, version, request);
      this.swaps?.onCall(model, r.modelVersion, true, (performance.now() - t0) / 1000);
      return r;
    } catch (err) {
      if (isServerSideFailure(toOspreyError(err).code)) this.swaps?.onCall(model, version ?? '', false, (performance.now() - t0) / 1000);
      throw err;
    }
  }

  /** Detect on a plain model, watched by the swap controller like {@link plainInfer}. */
  private async plainDetect(model: string, version: string | undefined, request: DetectRequest): Promise<DetectResponse> {
    const hold = this.swaps?.beforeCall(model);
    if (hold) await hold;
    const t0 = performance.now();
    try {
      const r = await super.detect(model, version, request);
      const failed = r.results.some((x) => 'error' in x && isServerSideFailure(x.error.code));
      this.swaps?.onCall(model, r.modelVersion, !failed, (performance.now() - t0) / 1000);
      return r;
    } catch (err) {
      if (isServerSideFailure(toOspreyError(err).code)) this.swaps?.onCall(model, version ?? '', false, (performance.now() - t0) / 1000);
      throw err;
    }
  }

  override async infer(model: string, version: string | undefined, request: InferRequest): Promise<InferResponse> {
    const alias = this.aliasTable.get(model);
    if (!alias) return this.plainInfer(model, version, request);
    const arm = this.armFor(alias, request.parameters, version);
    const shadow = this.drawShadow(alias);
    const shadowRequest = shadow ? copyInferRequest(request) : null;
    const t0 = performance.now();
    let res: InferResponse;
    try {
      res = await this.plainInfer(arm.model, arm.version || undefined, request);
    } catch (err) {
      this.routingMetrics.recordCall({ alias: model, arm: arm.name, role: 'primary', model: arm.model, version: arm.version, ok: false, seconds: (performance.now() - t0) / 1000 });
      if (shadow && shadowRequest) this.startShadow(alias, arm, shadow, () => super.infer(shadow.model, shadow.version || undefined, shadowRequest), (r) => detectionsOfOutputs(r.outputs), null);
      throw err;
    }
    const dets = detectionsOfOutputs(res.outputs);
    this.routingMetrics.recordCall({
      alias: model,
      arm: arm.name,
      role: 'primary',
      model: arm.model,
      version: res.modelVersion,
      ok: true,
      seconds: (performance.now() - t0) / 1000,
      ...(dets ? { detectionsPerImage: dets.map((d) => d.length) } : {}),
    });
    if (shadow && shadowRequest) this.startShadow(alias, arm, shadow, () => super.infer(shadow.model, shadow.version || undefined, shadowRequest), (r) => detectionsOfOutputs(r.outputs), dets);
    return { ...res, modelName: model, parameters: { ...res.parameters, [ROUTING_ARM_PARAMETER]: arm.name } };
  }

  override async detect(model: string, version: string | undefined, request: DetectRequest): Promise<DetectResponse> {
    const alias = this.aliasTable.get(model);
    if (!alias) return this.plainDetect(model, version, request);
    const arm = this.armFor(alias, request.parameters, version);
    const shadow = this.drawShadow(alias);
    const t0 = performance.now();
    let res: DetectResponse;
    try {
      res = await this.plainDetect(arm.model, arm.version || undefined, request);
    } catch (err) {
      this.routingMetrics.recordCall({ alias: model, arm: arm.name, role: 'primary', model: arm.model, version: arm.version, ok: false, seconds: (performance.now() - t0) / 1000 });
      throw err;
    }
    const dets = detectionsOfResults(res.results);
    this.routingMetrics.recordCall({ alias: model, arm: arm.name, role: 'primary', model: arm.model, version: res.modelVersion, ok: true, seconds: (performance.now() - t0) / 1000, detectionsPerImage: dets.map((d) => d.length) });
    // Encoded images are not consumed by the primary, so the shadow can reuse them.
    if (shadow) this.startShadow(alias, arm, shadow, () => super.detect(shadow.model, shadow.version || undefined, request), (r) => detectionsOfResults(r.results), dets);
    return { ...res, modelName: model, routingArm: arm.name };
  }

  private drawShadow(alias: AliasConfig): (RouteTarget & { fraction: number }) | null {
    const s = alias.shadow;
    return s && (s.fraction >= 1 || this.random() < s.fraction) ? s : null;
  }

  /** Runs the shadow call; never throws, never delays the client. */
  private startShadow<R extends { modelVersion: string }>(
    alias: AliasConfig,
    primaryArm: AliasArm,
    shadow: RouteTarget,
    run: () => Promise<R>,
    detectionsOf: (r: R) => Detection[][] | null,
    primaryDetections: Detection[][] | null,
  ): void {
    const p = (async () => {
      const t0 = performance.now();
      try {
        const r = await run();
        const seconds = (performance.now() - t0) / 1000;
        const version = r.modelVersion || shadow.version;
        const dets = detectionsOf(r);
        this.routingMetrics.recordCall({ alias: alias.name, arm: shadow.name, role: 'shadow', model: shadow.model, version, ok: true, seconds, ...(dets ? { detectionsPerImage: dets.map((d) => d.length) } : {}) });
        if (dets && primaryDetections && dets.length === primaryDetections.length) {
          let matched = 0;
          let total = 0;
          dets.forEach((d, i) => {
            const m = matchDetections(primaryDetections[i]!, d, alias.agreementIouThreshold);
            matched += m.matched;
            total += m.total;
          });
          this.routingMetrics.recordAgreement({ alias: alias.name, arm: shadow.name, primaryArm: primaryArm.name, model: shadow.model, version, matched, total });
        }
      } catch (err) {
        const e = toOspreyError(err);
        this.routingMetrics.recordCall({ alias: alias.name, arm: shadow.name, role: 'shadow', model: shadow.model, version: shadow.version, ok: false, seconds: (performance.now() - t0) / 1000 });
        this.log?.warn({ alias: alias.name, shadow: shadow.name, code: e.code, err: e.message }, 'shadow request failed (not seen by the client)');
      }
    })();
    this.shadowsInFlight.add(p);
    void p.finally(() => this.shadowsInFlight.delete(p));
  }

  /** Resolves when every shadow call started so far has finished. */
  async drainShadows(): Promise<void> {
    while (this.shadowsInFlight.size > 0) await Promise.all([...this.shadowsInFlight]);
  }

  /** Per-arm statistics of an alias in Triton's shape: `name` = the alias, `version` = the arm name. */
  private aliasStats(alias: string, arm?: string): ModelStatisticsJson[] {
    const zero = { count: 0, ns: 0 };
    return this.routingMetrics
      .snapshot(alias)
      .filter((s) => !arm || s.arm === arm)
      .map((s) => ({
        name: alias,
        version: s.arm,
        last_inference: 0,
        inference_count: s.success.count,
        execution_count: s.success.count,
        inference_stats: { success: s.success, fail: s.fail, queue: zero, compute_input: zero, compute_infer: zero, compute_output: zero },
        batch_stats: [],
        osprey: {
          routing: {
            role: s.role,
            model: s.model,
            model_version: s.version,
            images: s.images,
            detections_per_image: s.detectionsPerImage,
            ...(s.role === 'shadow' ? { matched_boxes: s.matchedBoxes, compared_boxes: s.comparedBoxes, agreement: s.agreement } : {}),
          },
        },
      }));
  }

  override stats(model?: string, version?: string): { model_stats: ModelStatisticsJson[] } {
    if (model !== undefined && this.aliasTable.has(model)) return { model_stats: this.aliasStats(model, version) };
    const base = super.stats(model, version);
    if (model === undefined) for (const name of this.aliasTable.keys()) base.model_stats.push(...this.aliasStats(name));
    return base;
  }

  override async repositoryIndex(readyOnly = false): Promise<IndexEntry[]> {
    try {
      this.reloadAliases();
    } catch (err) {
      this.aliasError = toOspreyError(err, 'OSPREY_ERR_CONFIG');
      this.log?.error({ code: this.aliasError.code, keyPath: this.aliasError.details.keyPath, err: this.aliasError.message }, 'aliases file rejected; the previous aliases stay in force');
    }
    const rows = await super.repositoryIndex(readyOnly);
    for (const a of this.aliasTable.values()) {
      const ready = this.modelReady(a.name);
      if (readyOnly && !ready) continue;
      const split = a.arms.map((arm) => `${arm.name} ${(arm.weight * 100).toFixed(1)}%`).join(', ');
      rows.push({ name: a.name, version: '', state: ready ? 'READY' : 'UNAVAILABLE', reason: `alias: ${split}${a.shadow ? `; shadow ${a.shadow.name}` : ''}` });
    }
    return rows;
  }

  /** Loads through the swap controller (probation + rollback) unless swaps are off. */
  protected override async applyLoad(model: string, request: LoadRequest = {}): Promise<void> {
    if (this.aliasTable.has(model)) {
      throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `'${model}' is an alias; load its arms' models (${this.aliasTable.get(model)!.arms.map((a) => a.model).join(', ')})`);
    }
    if (!this.swaps) return super.applyLoad(model, request);
    if (this.isDraining) throw new OspreyError('OSPREY_ERR_SHUTTING_DOWN', 'the server is shutting down');
    await this.swaps.loadModel(model, request);
  }

  protected override async applyUnload(model: string): Promise<void> {
    if (this.aliasTable.has(model)) throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `'${model}' is an alias; unload its arms' models`);
    if (!this.swaps) return super.applyUnload(model);
    await this.swaps.unloadModel(model);
  }

  override async shutdown(): Promise<void> {
    this.swaps?.close();
    await this.drainShadows();
    await super.shutdown();
  }
}
