/**
 * The protocol-independent inference service behind `osprey serve`: server and model metadata, readiness, infer on
 * decoded tensors, detect on encoded images, statistics, the model configuration, and the repository extension
 * (index, load, unload). The HTTP routes (src/server/http.ts) and the gRPC service decode their wire formats into
 * these calls and encode the answers; nothing here knows about fastify or protobuf.
 */
import { OspreyError, toOspreyError } from '../core/errors.js';
import type { Detection, DetectOptions, ImageResult, Tensor, TensorDataType, TensorStorage } from '../core/types.js';
import { resolveDetectOptions } from '../engine/detector.js';
import { readImageHeader } from '../image/decode.js';
import { batchDims } from '../image/letterbox.js';
import { checkRequestPixels, DEFAULT_MAX_REQUEST_PIXELS, PixelBudget } from '../image/pixel-budget.js';
import type { ServerMetrics } from '../metrics/server-metrics.js';
import { toTritonConfigJson } from '../repository/config.js';
import { toKserveDatatype, type KserveDatatype } from '../repository/datatypes.js';
import type { IndexEntry, LoadRequest, ModelRepository, ModelVersion } from '../repository/repository.js';
import { OSPREY_VERSION } from '../version.js';
import type { ModelMetadataJson, ModelStatisticsJson } from './kserve-types.js';

/** KServe v2 extensions this server implements (advertised by `GET /v2`). */
export const SERVER_EXTENSIONS = ['binary_tensor_data', 'model_configuration', 'model_repository', 'schedule_policy', 'statistics', 'osprey_detect'] as const;

/** A decoded input tensor of an inference request. */
export interface InferInputTensor {
  name: string;
  /** KServe datatype, e.g. `FP32`. */
  datatype: string;
  /** Shape including the batch axis when the model batches, e.g. `[1, 3, 640, 640]`. */
  shape: number[];
  /** Row-major data, already converted to the datatype's typed array. */
  data: TensorStorage;
  type: TensorDataType;
}

/** A requested output (`binary` is carried through for the protocol layer). */
export interface InferRequestedOutput {
  name: string;
  binary?: boolean;
}

export interface InferRequest {
  id?: string;
  inputs: InferInputTensor[];
  /** Outputs to return; all when omitted. */
  outputs?: InferRequestedOutput[];
  /** Schedule-policy `priority` (1 = highest, 0 = default). */
  priority?: number;
  /** Schedule-policy `timeout`, µs. */
  timeoutMicroseconds?: number;
  /** Request parameters as sent (scalars); the routing layer reads its sticky key here (e.g. `routing_key`). */
  parameters?: Record<string, string | number | boolean>;
}

export interface InferOutputTensor {
  name: string;
  datatype: KserveDatatype;
  shape: number[];
  data: TensorStorage;
  /** Echo of the requested output's `binary`. */
  binary?: boolean;
}

export interface InferResponse {
  modelName: string;
  modelVersion: string;
  id?: string;
  outputs: InferOutputTensor[];
  /** Scheduler facts (queue time, batch size), for logs and headers. */
  timing: { queueMicroseconds: number; computeMicroseconds: number; batchSize: number };
  /** Response parameters (the routing layer sets `routing_arm`). */
  parameters?: Record<string, string | number | boolean>;
}

/** Encoded images for the detect route. */
export interface DetectImage {
  /** Name used in results and messages (file name or "body"). */
  name: string;
  bytes: Uint8Array;
}

export interface DetectRequest {
  images: DetectImage[];
  options?: Partial<DetectOptions>;
  priority?: number;
  timeoutMicroseconds?: number;
  /** Request parameters (query string); the routing layer reads its sticky key here (e.g. `routing_key`). */
  parameters?: Record<string, string | number | boolean>;
}

export interface DetectResponse {
  modelName: string;
  modelVersion: string;
  /** One per image, in request order (`osprey detect --json` entries: detections in source pixels, or an error). */
  results: ImageResult[];
  /** The alias arm that answered (the routing layer sets it). */
  routingArm?: string;
}

/** Triton's `{count, ns}` statistic. */
type StatDuration = { count: number; ns: number };

/**
 * Triton's `--model-control-mode`: `none` loads every model at start and refuses load/unload requests; `poll` also
 * re-reads the repository every `repositoryPollSeconds` and applies what changed, still refusing the API; `explicit`
 * accepts load/unload requests (put credentials on the `model-repository` API group, src/server/auth.ts).
 */
export type ModelControlMode = 'none' | 'poll' | 'explicit';
export const MODEL_CONTROL_MODES: readonly ModelControlMode[] = ['none', 'poll', 'explicit'];

export interface ServiceOptions {
  repository: ModelRepository;
  metrics?: ServerMetrics;
  /** Server name in `GET /v2`. Default `osprey`. */
  name?: string;
  /**
   * Whether load/unload API requests are accepted. Default `explicit` for the library (the embedding program is
   * the operator); `osprey serve` defaults to `none`, as Triton does.
   */
  modelControlMode?: ModelControlMode;
  /** Pixels (width × height, from the headers) one detect request's images may decode to. Default 8192². */
  maxRequestPixels?: number;
  /** Pixels the process decodes at once over all detect requests (429 past it). Default 4 × 8192². */
  maxDecodePixels?: number;
}

interface VersionCounters {
  /** Failures before the scheduler (validation), counted into Triton's `fail`. */
  validationFail: StatDuration;
}

/**
 * @example
 *   const service = new InferenceService({ repository });
 *   const res = await service.infer('yolov8n', undefined, { inputs: [{ name: 'images', datatype: 'FP32', type: 'float32', shape: [1, 3, 640, 640], data }] });
 *   res.outputs[0].shape // [1, 84, 8400]
 */
export class InferenceService {
  readonly repository: ModelRepository;
  readonly metrics: ServerMetrics | undefined;
  readonly name: string;
  private draining = false;
  private readonly counters = new Map<string, VersionCounters>();
  /** See {@link ModelControlMode}. */
  readonly modelControlMode: ModelControlMode;
  /** Per-request pixel budget of detect. */
  readonly maxRequestPixels: number;
  /** Pixels in decode now, over all detect requests. */
  readonly decodeBudget: PixelBudget;
  /** Requests between accept and answer (drain waits for them). */
  private inFlight = 0;
  private inFlightWaiters: Array<() => void> = [];
  private pollTimer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;

  constructor(options: ServiceOptions) {
    this.repository = options.repository;
    this.modelControlMode = options.modelControlMode ?? 'explicit';
    this.maxRequestPixels = options.maxRequestPixels ?? DEFAULT_MAX_REQUEST_PIXELS;
    this.decodeBudget = new PixelBudget(options.maxDecodePixels);
    this.metrics = options.metrics;
    this.name = options.name ?? 'osprey';
    this.metrics?.attach({
      versions: () =>
        this.repository.allVersions().map((v) => {
          const s = v.batcher.stats();
          return { model: v.model, version: v.version, state: v.state, pendingRequests: s.pendingRequests, instances: s.instances };
        }),
      models: async () => {
        const byModel = new Map<string, boolean>();
        for (const row of await this.repository.index()) byModel.set(row.name, (byModel.get(row.name) ?? false) || row.state === 'READY');
        return [...byModel].map(([model, ready]) => ({ model, ready }));
      },
      ready: () => this.isReady(),
      inFlightRequests: () => this.inFlightRequests,
    });
  }

  /** `GET /v2`: `{name, version, extensions}`. */
  serverMetadata(): { name: string; version: string; extensions: string[] } {
    return { name: this.name, version: OSPREY_VERSION, extensions: [...SERVER_EXTENSIONS] };
  }

  /** Live until the process exits. */
  isLive(): boolean {
    return true;
  }

  /** Ready: not shutting down, no model loading, and every known model has a READY version. */
  isReady(): boolean {
    if (this.draining || this.repository.loading) return false;
    return this.repository.allVersions().some((v) => v.state === 'READY');
  }

  /** From now on, new requests get `OSPREY_ERR_SHUTTING_DOWN` and readiness is false. */
  startDraining(): void {
    this.draining = true;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  private checkAccepting(): void {
    if (this.draining) throw new OspreyError('OSPREY_ERR_SHUTTING_DOWN', 'the server is shutting down');
  }

  /**
   * The served version.
   * @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND` (404), `OSPREY_ERR_MODEL_NOT_READY` (503).
   */
  resolve(model: string, version?: string): ModelVersion {
    return this.repository.get(model, version);
  }

  /** Model ready: true when the (given or latest) version is READY; false when known and not ready.
   * @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND` for an unknown model or version. */
  modelReady(model: string, version?: string): boolean {
    try {
      this.repository.get(model, version);
      return true;
    } catch (err) {
      if (err instanceof OspreyError && err.code === 'OSPREY_ERR_MODEL_NOT_READY') return false;
      throw err;
    }
  }

  /** `GET /v2/models/{m}[/versions/{v}]`: KServe model metadata (−1 marks a variable dimension). */
  modelMetadata(model: string, version?: string): ModelMetadataJson {
    const mv = this.resolve(model, version);
    const c = mv.config;
    const shape = (dims: number[]) => (c.maxBatchSize > 0 ? [-1, ...dims] : dims);
    return {
      name: model,
      versions: this.repository.versionsOf(model).filter((v) => v.state === 'READY').map((v) => String(v.version)).reverse(),
      platform: c.platform,
      inputs: c.input.map((t) => ({ name: t.name, datatype: toKserveDatatype(t.dataType), shape: shape(t.dims) })),
      outputs: c.output.map((t) => ({ name: t.name, datatype: toKserveDatatype(t.dataType), shape: shape(t.dims) })),
    };
  }

  /**
   * `GET .../config`: Triton's model config JSON, with `parameters.metadata.string_value` set to the Python-literal
   * dict Ultralytics' Triton client `eval()`s (`names`, `stride`, `imgsz`, `task`) for detection models.
   */
  modelConfig(model: string, version?: string): Record<string, unknown> {
    const mv = this.resolve(model, version);
    const extra: Record<string, string> = {};
    const spec = mv.detectionSpec;
    if (spec) {
      extra.metadata = pythonLiteral({
        names: new Map(spec.names.map((n, i) => [i, n])),
        stride: spec.stride,
        imgsz: [spec.inputHeight, spec.inputWidth],
        task: mv.info.metadata.task ?? 'detect',
        batch: mv.config.maxBatchSize > 0 ? mv.config.maxBatchSize : (spec.batchSize ?? 1),
      });
    }
    return toTritonConfigJson(mv.config, extra);
  }

  private countersOf(mv: ModelVersion): VersionCounters {
    const key = `${mv.model}\u0000${mv.version}`;
    let c = this.counters.get(key);
    if (!c) {
      c = { validationFail: { count: 0, ns: 0 } };
      this.counters.set(key, c);
    }
    return c;
  }

  /**
   * Runs one inference request through the model's dynamic batcher.
   * @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND`, `OSPREY_ERR_MODEL_NOT_READY`, `OSPREY_ERR_INVALID_TENSOR`
   *   (unknown/missing input, wrong datatype or shape — the message names the tensor and what was expected; unknown
   *   output), `OSPREY_ERR_INVALID_ARGUMENT` (priority/timeout), `OSPREY_ERR_QUEUE_FULL`, `OSPREY_ERR_TIMEOUT`,
   *   `OSPREY_ERR_INFERENCE_FAILED`, `OSPREY_ERR_SHUTTING_DOWN`.
   */
  async infer(model: string, version: string | undefined, request: InferRequest): Promise<InferResponse> {
    const t0 = performance.now();
    this.checkAccepting();
    const mv = this.resolve(model, version);
    const label = String(mv.version);
    let feeds: Record<string, Tensor>;
    let wanted: InferRequestedOutput[];
    try {
      feeds = validateInputs(mv, request.inputs);
      wanted = request.outputs && request.outputs.length > 0 ? request.outputs : mv.config.output.map((o) => ({ name: o.name }));
      for (const o of wanted) {
        if (!mv.config.output.some((x) => x.name === o.name)) {
          throw new OspreyError('OSPREY_ERR_INVALID_TENSOR', `unexpected output '${o.name}' for model '${model}' (outputs: ${mv.config.output.map((x) => `'${x.name}'`).join(', ')})`, {
            output: o.name,
          });
        }
      }
      checkSchedule(request.priority, request.timeoutMicroseconds);
    } catch (err) {
      const e = toOspreyError(err);
      const c = this.countersOf(mv).validationFail;
      c.count++;
      c.ns += (performance.now() - t0) * 1e6;
      this.metrics?.requestDone(model, label, false, (performance.now() - t0) / 1000, e.code);
      throw e;
    }
    try {
      const r = await mv.batcher.submit(feeds, {
        ...(request.priority !== undefined ? { priority: request.priority } : {}),
        ...(request.timeoutMicroseconds !== undefined ? { timeoutMicroseconds: request.timeoutMicroseconds } : {}),
        ...(request.id !== undefined ? { requestId: request.id } : {}),
      });
      const outputs: InferOutputTensor[] = wanted.map((o) => {
        const t = r.outputs[o.name];
        if (!t) throw new OspreyError('OSPREY_ERR_INFERENCE_FAILED', `the model returned no output '${o.name}'`);
        return { name: o.name, datatype: toKserveDatatype(t.type), shape: [...t.dims], data: t.data, ...(o.binary !== undefined ? { binary: o.binary } : {}) };
      });
      this.metrics?.requestDone(model, label, true, (performance.now() - t0) / 1000);
      return {
        modelName: model,
        modelVersion: label,
        ...(request.id !== undefined ? { id: request.id } : {}),
        outputs,
        timing: { queueMicroseconds: r.queueMicroseconds, computeMicroseconds: r.computeMicroseconds, batchSize: r.batchSize },
      };
    } catch (err) {
      const e = toOspreyError(err);
      this.metrics?.requestDone(model, label, false, (performance.now() - t0) / 1000, e.code);
      throw e;
    }
  }

  /**
   * Detects objects in each image: decode + letterbox (sharp), one submit per image into the model's batcher (so
   * images of different sizes and from different requests batch together), NMS and scaling to source pixels.
   * A failing image becomes an `ImageFailure` with its code; the others are answered. With one image, its failure
   * is the request's error.
   * @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND`, `OSPREY_ERR_MODEL_NOT_READY`, `OSPREY_ERR_UNSUPPORTED_MODEL`
   *   (not a detection model), `OSPREY_ERR_NO_IMAGES` (no image in the request), `OSPREY_ERR_INVALID_ARGUMENT`
   *   (thresholds), and for a single image its own error (`OSPREY_ERR_INVALID_IMAGE`, `OSPREY_ERR_EMPTY_IMAGE`, ...).
   */
  async detect(model: string, version: string | undefined, request: DetectRequest): Promise<DetectResponse> {
    this.checkAccepting();
    const mv = this.resolve(model, version);
    const det = mv.detector;
    if (!det) {
      throw new OspreyError('OSPREY_ERR_UNSUPPORTED_MODEL', `model '${model}' is not a detection model Osprey can read (${mv.detectorError?.message ?? 'unknown layout'}); use /infer`, {
        model,
      });
    }
    if (request.images.length === 0) throw new OspreyError('OSPREY_ERR_NO_IMAGES', 'the request holds no image (send the image as the body, or multipart files)');
    const d = mv.config.detection;
    const opts = resolveDetectOptions({
      confThreshold: d.conf,
      iouThreshold: d.iou,
      maxDetections: d.maxDet,
      agnostic: d.agnostic,
      ...(d.classes ? { classes: d.classes } : {}),
      ...stripUndefined(request.options ?? {}),
    });
    checkSchedule(request.priority, request.timeoutMicroseconds);
    const label = String(mv.version);
    // Pixel budgets from the headers, before any pixel is decoded (a small PNG can declare gigapixels).
    const headers = await Promise.all(
      request.images.map((img) => readImageHeader(img.bytes, img.name, det.maxPixels).then((h) => h.width * h.height, (err: unknown) => toOspreyError(err))),
    );
    const totalPixels = headers.reduce<number>((sum, h) => sum + (typeof h === 'number' ? h : 0), 0);
    checkRequestPixels(totalPixels, request.images.length, this.maxRequestPixels);
    // One reservation per image, taken together (the whole request fits now or gets 429), each released as soon as
    // its image is letterboxed (the decoded RGB buffer is garbage from then on).
    const releases: Array<() => void> = [];
    try {
      for (const h of headers) releases.push(this.decodeBudget.reserve(typeof h === 'number' ? h : 0));
    } catch (err) {
      for (const r of releases) r();
      throw err;
    }
    mv.acquire();
    try {
      const results = await Promise.all(
        request.images.map(async (img, i): Promise<ImageResult> => {
          const t0 = performance.now();
          const header = headers[i]!;
          try {
            if (typeof header !== 'number') throw header;
            const image = await det.decode({ name: img.name, bytes: img.bytes });
            const batch = det.allocateBatch(1);
            const geometry = await det.preprocessInto(image, batch, 0);
            releases[i]!();
            const spec = det.spec;
            const tensor: Tensor = { type: spec.inputType === 'uint8' ? 'uint8' : 'float32', dims: batchDims(batch, batch.batchSize), data: batch.data };
            const r = await mv.batcher.submit(
              { [spec.inputName]: tensor },
              {
                ...(request.priority !== undefined ? { priority: request.priority } : {}),
                ...(request.timeoutMicroseconds !== undefined ? { timeoutMicroseconds: request.timeoutMicroseconds } : {}),
              },
            );
            const out = r.outputs[spec.outputName];
            if (!out || !(out.data instanceof Float32Array)) throw new OspreyError('OSPREY_ERR_INFERENCE_FAILED', `the model returned no float32 output '${spec.outputName}'`);
            const [detections] = det.postprocessBatch({ dims: out.dims, data: out.data }, [geometry], opts) as Detection[][];
            this.metrics?.requestDone(model, label, true, (performance.now() - t0) / 1000);
            this.metrics?.detectDone(model, label, 1, detections!.length);
            return { image: img.name, width: image.width, height: image.height, detections: detections! };
          } catch (err) {
            const e = toOspreyError(err);
            this.metrics?.requestDone(model, label, false, (performance.now() - t0) / 1000, e.code);
            this.metrics?.detectDone(model, label, 1, 0);
            if (request.images.length === 1) throw e;
            return { image: img.name, error: { code: e.code, message: e.message } };
          }
        }),
      );
      return { modelName: model, modelVersion: label, results };
    } finally {
      for (const r of releases) r();
      mv.release();
    }
  }

  /**
   * `GET /v2/models[/{m}[/versions/{v}]]/stats`: Triton's statistics JSON (`model_stats[]` with `inference_stats`
   * and `batch_stats`; durations in ns) plus an `osprey` block (queue, instances, rejections by code).
   * @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND` for an unknown model/version.
   */
  stats(model?: string, version?: string): { model_stats: ModelStatisticsJson[] } {
    let versions: ModelVersion[];
    if (model === undefined) versions = this.repository.allVersions();
    else if (version !== undefined && version !== '') versions = [this.repository.get(model, version)];
    else {
      versions = this.repository.versionsOf(model);
      if (versions.length === 0 && !this.repository.modelNames().includes(model)) {
        throw new OspreyError('OSPREY_ERR_MODEL_NOT_FOUND', `unknown model '${model}'`, { model });
      }
    }
    const d = (s: StatDuration) => ({ count: s.count, ns: s.ns });
    return {
      model_stats: versions
        .sort((a, b) => (a.model === b.model ? a.version - b.version : a.model < b.model ? -1 : 1))
        .map((mv) => {
          const s = mv.batcher.stats();
          const vf = this.countersOf(mv).validationFail;
          return {
            name: mv.model,
            version: String(mv.version),
            last_inference: s.lastInferenceMs,
            inference_count: s.inferenceCount,
            execution_count: s.executionCount,
            inference_stats: {
              success: d(s.success),
              fail: { count: s.fail.count + vf.count + sumValues(s.rejected), ns: Math.round(s.fail.ns + vf.ns) },
              queue: d(s.queue),
              compute_input: d(s.computeInput),
              compute_infer: d(s.computeInfer),
              compute_output: d(s.computeOutput),
              cache_hit: { count: 0, ns: 0 },
              cache_miss: { count: 0, ns: 0 },
            },
            batch_stats: s.batchStats.map((b) => ({
              batch_size: b.batchSize,
              compute_input: d(b.computeInput),
              compute_infer: d(b.computeInfer),
              compute_output: d(b.computeOutput),
            })),
            osprey: {
              pending_requests: s.pendingRequests,
              inflight_requests: s.inflightRequests,
              rejected: s.rejected,
              instances: s.instances.map((i) => ({ busy: i.busy, executions: i.executions, busy_ns: i.busyNs, ...(i.gpu !== null ? { gpu: i.gpu } : {}) })),
              execution_provider: mv.info.executionProvider,
            },
          };
        }),
    };
  }

  /** `POST /v2/repository/index`. */
  repositoryIndex(readyOnly = false): Promise<IndexEntry[]> {
    return this.repository.index(readyOnly);
  }

  /**
   * `POST /v2/repository/models/{m}/load` (see {@link ModelRepository.load}).
   * @throws OspreyError `OSPREY_ERR_MODEL_CONTROL_DISABLED` unless the model control mode is `explicit`, and the
   *   repository's load errors.
   */
  async loadModel(model: string, request: LoadRequest = {}): Promise<void> {
    this.checkAccepting();
    this.checkModelControl('load');
    await this.applyLoad(model, request);
  }

  /**
   * `POST /v2/repository/models/{m}/unload`.
   * @throws OspreyError `OSPREY_ERR_MODEL_CONTROL_DISABLED` unless the model control mode is `explicit`.
   */
  async unloadModel(model: string): Promise<void> {
    this.checkModelControl('unload');
    await this.applyUnload(model);
  }

  /** Loads a model from the repository (no mode check: the API goes through {@link loadModel}). Subclasses add swaps. */
  protected async applyLoad(model: string, request: LoadRequest = {}): Promise<void> {
    await this.repository.load(model, request);
  }

  /** Unloads a model (no mode check). */
  protected async applyUnload(model: string): Promise<void> {
    await this.repository.unload(model);
  }

  private checkModelControl(what: 'load' | 'unload'): void {
    if (this.modelControlMode !== 'explicit') {
      throw new OspreyError(
        'OSPREY_ERR_MODEL_CONTROL_DISABLED',
        `model ${what} requests are not accepted in model control mode '${this.modelControlMode}' (start the server with --model-control-mode explicit)`,
        { mode: this.modelControlMode },
      );
    }
  }

  /**
   * Poll mode: re-reads the repository every `intervalMs` and loads models that are new or whose config, version
   * folders or files changed, and unloads models whose folder is gone (Triton's POLL; like Triton, not meant for
   * production: a poll can see a half-copied model, which then fails to load and is retried when it changes again).
   */
  startPolling(intervalMs: number): void {
    if (this.pollTimer) return;
    const tick = async (): Promise<void> => {
      if (this.draining) return;
      const { changed, removed } = await this.repository.scanChanges();
      for (const name of changed) await this.applyLoad(name).catch(() => undefined); // failures are logged and shown in the index
      for (const name of removed) await this.applyUnload(name).catch(() => undefined);
    };
    this.pollTimer = setInterval(() => {
      if (this.polling) return;
      this.polling = tick().finally(() => (this.polling = undefined));
    }, intervalMs);
    this.pollTimer.unref();
  }

  /** Runs one poll now (tests and `--repository-poll-secs 0`); resolves when its loads are done. */
  async pollNow(): Promise<void> {
    await this.polling;
    const { changed, removed } = await this.repository.scanChanges();
    for (const name of changed) await this.applyLoad(name).catch(() => undefined);
    for (const name of removed) await this.applyUnload(name).catch(() => undefined);
  }

  /**
   * Counts a request from accept to answer so a graceful shutdown can wait for it ({@link drained}); the front
   * ends call it for every inference and repository request they accept.
   * @returns the function to call once, when the request is answered or abandoned (further calls do nothing).
   */
  beginRequest(): () => void {
    this.inFlight++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.inFlight--;
      if (this.inFlight === 0) for (const w of this.inFlightWaiters.splice(0)) w();
    };
  }

  /** Requests accepted and not yet answered. */
  get inFlightRequests(): number {
    return this.inFlight;
  }

  /** Resolves when no tracked request is in flight, or after `timeoutMs` (then false). */
  drained(timeoutMs: number): Promise<boolean> {
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      t.unref();
      this.inFlightWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  /** Stops accepting, lets queued and in-flight requests finish, releases every session. */
  async shutdown(): Promise<void> {
    this.startDraining();
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
    await this.polling;
    await this.repository.close();
  }
}

function sumValues(o: Record<string, number>): number {
  let n = 0;
  for (const v of Object.values(o)) n += v;
  return n;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * The one check of Triton's schedule-policy request parameters, for every protocol (HTTP JSON parameters, HTTP query,
 * gRPC `int64_param`): the decoders pass the values as sent. The priority's range is the batcher's to check (it
 * depends on the model's `priorityLevels`).
 * @throws OspreyError `OSPREY_ERR_INVALID_ARGUMENT` naming the parameter and the value.
 */
export function checkSchedule(priority: unknown, timeout: unknown): void {
  if (priority !== undefined && (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0)) {
    throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `parameter 'priority' must be a non-negative integer (1 = highest, 0 = default), got ${JSON.stringify(priority)}`);
  }
  if (timeout !== undefined && (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 0)) {
    throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `parameter 'timeout' must be a non-negative integer of microseconds, got ${JSON.stringify(timeout)}`);
  }
}

/**
 * Checks request inputs against the model config: names, datatypes, shapes (batch axis 1..maxBatchSize when the
 * model batches; −1 dims accept any size).
 * @throws OspreyError `OSPREY_ERR_INVALID_TENSOR` naming the tensor, what was sent and what is expected.
 */
export function validateInputs(mv: ModelVersion, inputs: InferInputTensor[]): Record<string, Tensor> {
  const c = mv.config;
  const feeds: Record<string, Tensor> = {};
  const expectedNames = c.input.map((t) => `'${t.name}'`).join(', ');
  for (const t of inputs) {
    const spec = c.input.find((x) => x.name === t.name);
    if (!spec) throw new OspreyError('OSPREY_ERR_INVALID_TENSOR', `unexpected input '${t.name}' for model '${mv.model}' (inputs: ${expectedNames})`, { input: t.name });
    if (feeds[t.name]) throw new OspreyError('OSPREY_ERR_INVALID_TENSOR', `input '${t.name}' is given twice`, { input: t.name });
    if (t.type !== spec.dataType) {
      throw new OspreyError('OSPREY_ERR_INVALID_TENSOR', `input '${t.name}': datatype ${t.datatype} but the model expects ${toKserveDatatype(spec.dataType)}`, {
        input: t.name,
        datatype: t.datatype,
        expected: toKserveDatatype(spec.dataType),
      });
    }
    const expected = c.maxBatchSize > 0 ? [-1, ...spec.dims] : spec.dims;
    const shapeOk =
      t.shape.length === expected.length &&
      t.shape.every((d, i) => Number.isInteger(d) && d >= 0 && (expected[i] === -1 || d === expected[i])) &&
      (c.maxBatchSize === 0 || (t.shape[0]! >= 1 && t.shape[0]! <= c.maxBatchSize));
    if (!shapeOk) {
      const batchNote = c.maxBatchSize > 0 ? ` (first axis = batch, 1..${c.maxBatchSize})` : '';
      throw new OspreyError('OSPREY_ERR_INVALID_TENSOR', `input '${t.name}': shape [${t.shape.join(', ')}] does not match the model's [${expected.join(', ')}]${batchNote}`, {
        input: t.name,
        shape: t.shape,
        expected,
      });
    }
    feeds[t.name] = { type: t.type, dims: t.shape, data: t.data };
  }
  for (const spec of c.input) {
    if (!feeds[spec.name]) throw new OspreyError('OSPREY_ERR_INVALID_TENSOR', `missing input '${spec.name}' for model '${mv.model}'`, { input: spec.name });
  }
  return feeds;
}

/** Python literal (what Ultralytics' Triton client `eval()`s): dicts with int keys, lists, str, int, float, bool. */
export function pythonLiteral(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'None';
  if (typeof v === 'string') return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`;
  if (Array.isArray(v)) return `[${v.map(pythonLiteral).join(', ')}]`;
  if (v instanceof Map) return `{${[...v.entries()].map(([k, x]) => `${pythonLiteral(k)}: ${pythonLiteral(x)}`).join(', ')}}`;
  if (typeof v === 'object') return `{${Object.entries(v as Record<string, unknown>).map(([k, x]) => `${pythonLiteral(k)}: ${pythonLiteral(x)}`).join(', ')}}`;
  return 'None';
}
