/**
 * The detector pipeline: decode (sharp) → letterbox into a batch buffer → engine run (worker thread) →
 * decode + NMS + scale to source pixels (core `postprocessImage`).
 *
 * The pieces are public because the server's dynamic batcher and the streams pipeline compose them themselves:
 * {@link Detector.allocateBatch}, {@link Detector.preprocessInto}, {@link Detector.runBatch},
 * {@link Detector.postprocessBatch}. {@link Detector.detectFiles} strings them together for `osprey detect`.
 */
import { readFile } from 'node:fs/promises';
import { isOspreyError, OspreyError, toOspreyError } from '../core/errors.js';
import type { FloatOutput } from '../core/decode.js';
import type { LetterboxGeometry } from '../core/letterbox.js';
import { resolveDetectionModelSpec, type DetectionModelSpec } from '../core/model-spec.js';
import { postprocessImage } from '../core/postprocess.js';
import { DEFAULT_DETECT_OPTIONS, type Detection, type DetectOptions, type ImageResult, type Tensor } from '../core/types.js';
import { decodeImage, DEFAULT_MAX_PIXELS, type DecodedImage } from '../image/decode.js';
import { allocateBatch, batchDims, letterboxImageInto, type BatchBuffer } from '../image/letterbox.js';
import { modelInputs } from '../onnx/graph.js';
import { encodeOnnxModel, readOnnxModel } from '../onnx/model.js';
import { uint8Input } from '../onnx/passes/pre-post.js';
import { DataType, type OnnxModel } from '../onnx/proto-types.js';
import type { Engine } from './engine.js';
import { checkPipelineDepth, DEFAULT_PIPELINE_DEPTH, runPipeline } from './pipeline.js';
import { createOrtEngine, type OrtEngineInfo, type OrtEngineOptions } from './ort-engine.js';
import { createPlacedEngine, isGpuEnginePath } from './placed-engine.js';

/** Largest batch the detector forms for a model with a dynamic batch axis, unless told otherwise. */
export const DEFAULT_MAX_BATCH_SIZE = 8;

/** Options of {@link Detector.create}. */
export interface DetectorOptions extends OrtEngineOptions {
  /** Input size for models with dynamic height/width (`640` or `[height, width]`); must match a fixed model size. */
  imgsz?: number | [number, number];
  /** Labels file (one class name per line), used when the model metadata has no `names`. */
  labelsPath?: string;
  /** Labels text (same format), instead of a file. */
  labelsText?: string;
  /** Largest batch to form for a dynamic batch axis. Default {@link DEFAULT_MAX_BATCH_SIZE}; a fixed batch axis wins. */
  maxBatchSize?: number;
  /** Pixel limit for decoding (header checked before decoding). Default {@link DEFAULT_MAX_PIXELS}. */
  maxPixels?: number;
  /**
   * For a plain float32 `[B, 3, H, W]` model: prepend, in memory, the graph prefix that takes uint8 `[B, H, W, 3]`
   * frames and does the layout change and 1/255 itself (src/onnx `uint8Input`, values bit-exact), so the host
   * letterboxes to uint8 and moves 4× fewer bytes to the worker. The file is not changed. Parsing and re-encoding
   * the model blocks the calling thread (~0.1–0.3 s for YOLOv8n): meant for the CLI and batch jobs; servers load
   * engines built with `osprey build`. Default false. Models it cannot be applied to load as they are.
   */
  fuseUint8Input?: boolean;
  /**
   * `--gpus`: CUDA device ordinals; `instances` instances go on each (src/engine/placed-engine.ts). Also used, with
   * GPU 0 by default, for an engine built by `osprey build --engine cuda` (`*.engine` or a folder of them).
   */
  gpuIds?: readonly number[];
}

/** An input of {@link Detector.detectFiles}: a file path, or named encoded bytes (e.g. an HTTP upload). */
export type DetectInput = string | { name: string; bytes: Uint8Array };

/** A decoded, letterboxed image in a batch slot. */
export interface PreparedImage {
  index: number;
  source: string;
  geometry: LetterboxGeometry;
}

/** Hooks and scheduling of {@link Detector.detectFiles}. */
export interface DetectFilesHooks {
  /** Called once per input as soon as its result is known (in completion order). */
  onResult?: (index: number, result: ImageResult) => void;
  /**
   * Batches in flight per engine instance (src/engine/pipeline.ts): 2 (default) decodes + letterboxes batch N+1
   * while N runs in the engine and post-processes N while N+1 runs; 1 = serial (decode + letterbox → run → NMS,
   * then the next batch). Results are the same at every depth.
   */
  pipelineDepth?: number;
}

/**
 * A loaded detection model: the engine plus its resolved {@link DetectionModelSpec}.
 *
 * @example
 *   const det = await Detector.create({ modelPath: '../shared/data/models/yolov8n.onnx', executionProviders: ['cpu'] });
 *   const [bus] = await det.detectFiles(['../shared/data/images/bus.jpg']);
 *   // bus.detections → [{ classId: 5, className: 'bus', score: 0.87, box: [x1, y1, x2, y2] /* source px *\/ }, ...]
 *   await det.close();
 */
export class Detector {
  readonly engine: Engine;
  readonly spec: DetectionModelSpec;
  /** Images per engine run: the model's fixed batch size, or the configured maximum for a dynamic batch axis. */
  readonly maxBatchSize: number;
  readonly maxPixels: number;
  private readonly ownsEngine: boolean;

  private constructor(engine: Engine, spec: DetectionModelSpec, maxBatchSize: number, maxPixels: number, ownsEngine: boolean) {
    this.engine = engine;
    this.spec = spec;
    this.maxBatchSize = maxBatchSize;
    this.maxPixels = maxPixels;
    this.ownsEngine = ownsEngine;
  }

  /**
   * Loads the model (see {@link createOrtEngine}) and resolves its spec.
   * @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND_FILE`, `OSPREY_ERR_INVALID_MODEL`, `OSPREY_ERR_UNSUPPORTED_LAYOUT`
   *   (output shape none of the three layouts; the message names the shape), `OSPREY_ERR_UNSUPPORTED_MODEL`,
   *   `OSPREY_ERR_LABELS`, `OSPREY_ERR_EP_UNAVAILABLE`.
   */
  static async create(options: DetectorOptions): Promise<Detector> {
    const labelsText = options.labelsText ?? (options.labelsPath !== undefined ? await readLabels(options.labelsPath) : undefined);
    const modelBytes = options.fuseUint8Input && !options.modelBytes ? withUint8Input(options.modelPath) : undefined;
    const placed = options.gpuIds !== undefined || (await isGpuEnginePath(options.modelPath));
    const engine = placed
      ? await createPlacedEngine({
          modelPath: options.modelPath,
          ...(options.executionProviders ? { executionProviders: options.executionProviders } : {}),
          ...(options.instances !== undefined ? { instances: options.instances } : {}),
          ...(options.intraOpNumThreads !== undefined ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
          ...(options.gpuIds ? { gpuIds: options.gpuIds } : {}),
          ...(options.warmupBatchSize !== undefined ? { warmupBatchSize: options.warmupBatchSize } : {}),
          ...(options.intraOpSpinning !== undefined ? { intraOpSpinning: options.intraOpSpinning } : {}),
          warmup: options.warmup === undefined ? 1 : typeof options.warmup === 'boolean' ? (options.warmup ? 1 : 0) : options.warmup,
        })
      : await createOrtEngine(modelBytes ? { ...options, modelBytes } : options);
    try {
      return Detector.fromEngine(engine, { ...options, labelsText }, true);
    } catch (err) {
      await engine.close();
      if (err instanceof OspreyError) {
        throw new OspreyError(err.code, `${options.modelPath}: ${err.message}`, { ...err.details, modelPath: options.modelPath }, { cause: err });
      }
      throw err;
    }
  }

  /**
   * Wraps an existing engine (e.g. one the server's repository loaded).
   * @param ownsEngine whether {@link Detector.close} closes the engine. Default false.
   * @throws OspreyError as {@link resolveDetectionModelSpec}.
   */
  static fromEngine(
    engine: Engine,
    options: Pick<DetectorOptions, 'imgsz' | 'labelsText' | 'maxBatchSize' | 'maxPixels'> = {},
    ownsEngine = false,
  ): Detector {
    const spec = resolveDetectionModelSpec(engine.info.inputs, engine.info.outputs, engine.info.metadata, {
      ...(options.imgsz !== undefined ? { imgsz: options.imgsz } : {}),
      ...(options.labelsText !== undefined ? { labelsText: options.labelsText } : {}),
    });
    if (spec.inputType === 'float16') {
      throw new OspreyError('OSPREY_ERR_UNSUPPORTED_MODEL', `input '${spec.inputName}' is float16; the detector feeds float32 or uint8 (build the engine with float32 or uint8 I/O)`);
    }
    const output = engine.info.outputs.find((o) => o.name === spec.outputName);
    if (output && output.type !== 'float32') {
      throw new OspreyError('OSPREY_ERR_UNSUPPORTED_MODEL', `output '${output.name}' is ${output.type}; the detector reads float32 outputs`);
    }
    const requested = options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE;
    if (!Number.isInteger(requested) || requested < 1) {
      throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `maxBatchSize must be a positive integer, got ${requested}`);
    }
    const maxBatchSize = spec.batchSize ?? requested;
    return new Detector(engine, spec, maxBatchSize, options.maxPixels ?? DEFAULT_MAX_PIXELS, ownsEngine);
  }

  /** Live engine instances (an {@link EnginePool}'s `info.instanceCount`; 1 for other engines). */
  get instanceCount(): number {
    const n = (this.engine.info as Partial<OrtEngineInfo>).instanceCount;
    return typeof n === 'number' && n > 0 ? n : 1;
  }

  /**
   * A batch buffer in the model's input format and size. For a fixed batch axis the size is always the model's.
   * @param size image slots for a dynamic batch axis (default {@link maxBatchSize}).
   */
  allocateBatch(size = this.maxBatchSize): BatchBuffer {
    const n = this.spec.batchSize ?? size;
    return allocateBatch(this.spec.inputFormat, n, this.spec.inputHeight, this.spec.inputWidth);
  }

  /**
   * Decodes an image (path or bytes) with this detector's pixel limit.
   * @throws OspreyError as {@link decodeImage}.
   */
  decode(input: DetectInput): Promise<DecodedImage> {
    return typeof input === 'string'
      ? decodeImage(input, { maxPixels: this.maxPixels })
      : decodeImage(input.bytes, { maxPixels: this.maxPixels, name: input.name });
  }

  /**
   * Letterboxes a decoded image into slot `index` of `batch`.
   * @returns the geometry that maps this slot's boxes back to source pixels.
   */
  preprocessInto(image: DecodedImage, batch: BatchBuffer, index: number): Promise<LetterboxGeometry> {
    return letterboxImageInto(image, batch, index);
  }

  /**
   * Runs the first `count` slots of `batch` (all slots for a fixed batch axis). The batch's buffer is transferred
   * to the engine's worker (moved, not copied, even when `count` < the batch size): do not reuse it afterwards.
   * @returns the raw output, float32, e.g. `[count, 84, 8400]` for YOLOv8n.
   * @throws OspreyError `OSPREY_ERR_INFERENCE_FAILED`, `OSPREY_ERR_ENGINE_CLOSED`.
   */
  async runBatch(batch: BatchBuffer, count = batch.batchSize): Promise<FloatOutput> {
    const n = this.spec.batchSize ?? count;
    const perImage = batch.data.length / batch.batchSize;
    const data = n === batch.batchSize ? batch.data : batch.data.subarray(0, n * perImage);
    const tensor: Tensor = { type: this.spec.inputType === 'uint8' ? 'uint8' : 'float32', dims: batchDims(batch, n), data };
    const outputs = await this.engine.run({ [this.spec.inputName]: tensor });
    const out = outputs[this.spec.outputName];
    if (!out || !(out.data instanceof Float32Array)) {
      throw new OspreyError('OSPREY_ERR_INFERENCE_FAILED', `the model returned no float32 output '${this.spec.outputName}'`);
    }
    return { dims: out.dims, data: out.data };
  }

  /**
   * Detections for the first `geometries.length` images of a batch output, in source pixels.
   * @param geometries one per batch slot, in slot order (`undefined` skips a slot).
   */
  postprocessBatch(output: FloatOutput, geometries: readonly (LetterboxGeometry | undefined)[], options: Partial<DetectOptions> = {}): (Detection[] | undefined)[] {
    const opts = resolveDetectOptions(options);
    return geometries.map((g, i) =>
      g === undefined ? undefined : postprocessImage(output, this.spec.layout, i, g, this.spec.names, opts, this.spec.nmsInGraph),
    );
  }

  /**
   * Detects objects in each input: one {@link ImageResult} per input, in input order. An input that fails
   * (unreadable, not an image, too large, a failed run) becomes an `ImageFailure` with its code; the others
   * still run. Images are batched up to {@link maxBatchSize}; one batch runs per engine instance at a time, and
   * with `hooks.pipelineDepth` ≥ 2 (default 2) decoding + letterboxing of the next batch overlaps inference, and
   * post-processing overlaps the next batch's inference.
   * @throws OspreyError `OSPREY_ERR_INVALID_ARGUMENT` (detect options, `pipelineDepth` not a positive integer).
   */
  async detectFiles(inputs: readonly DetectInput[], options: Partial<DetectOptions> = {}, hooks: DetectFilesHooks = {}): Promise<ImageResult[]> {
    const opts = resolveDetectOptions(options);
    const results: ImageResult[] = new Array(inputs.length);
    const done = (i: number, r: ImageResult): void => {
      results[i] = r;
      hooks.onResult?.(i, r);
    };
    const chunks: number[][] = [];
    for (let i = 0; i < inputs.length; i += this.maxBatchSize) {
      chunks.push(Array.from({ length: Math.min(this.maxBatchSize, inputs.length - i) }, (_, k) => i + k));
    }
    const prepare = async (chunk: number[]) => {
      const decoded = await Promise.all(
        chunk.map(async (i) => {
          try {
            return await this.decode(inputs[i]!);
          } catch (err) {
            done(i, failure(inputs[i]!, err));
            return undefined;
          }
        }),
      );
      const ok = chunk.map((i, k) => ({ i, img: decoded[k] })).filter((x): x is { i: number; img: DecodedImage } => x.img !== undefined);
      if (ok.length === 0) return undefined;
      const batch = this.allocateBatch(ok.length);
      const slots = await Promise.all(
        ok.map(async ({ i, img }, slot) => {
          try {
            const geometry = await this.preprocessInto(img, batch, slot);
            return { i, slot, geometry, width: img.width, height: img.height, source: img.source };
          } catch (err) {
            done(i, failure(inputs[i]!, err));
            return undefined;
          }
        }),
      );
      return { batch, count: ok.length, slots };
    };
    type Prepared = NonNullable<Awaited<ReturnType<typeof prepare>>>;
    const live = (prepared: Prepared) => prepared.slots.filter((s): s is NonNullable<typeof s> => s !== undefined);
    let nextChunk = 0;
    // One loop per engine instance, `pipelineDepth` batches in flight in each.
    await runPipeline<number[], Prepared, FloatOutput | OspreyError>(
      {
        next: () => chunks[nextChunk++],
        prepare,
        run: (prepared) => this.runBatch(prepared.batch, prepared.count).catch((err: unknown) => toOspreyError(err)),
        finish: (prepared, output) => {
          for (const s of live(prepared)) {
            if (output instanceof OspreyError) {
              done(s.i, failure(inputs[s.i]!, output));
              continue;
            }
            try {
              const detections = postprocessImage(output, this.spec.layout, s.slot, s.geometry, this.spec.names, opts, this.spec.nmsInGraph);
              done(s.i, { image: s.source, width: s.width, height: s.height, detections });
            } catch (err) {
              done(s.i, failure(inputs[s.i]!, err));
            }
          }
        },
      },
      { depth: checkPipelineDepth(hooks.pipelineDepth ?? DEFAULT_PIPELINE_DEPTH, 'pipelineDepth'), loops: Math.max(1, this.instanceCount) },
    );
    return results;
  }

  /**
   * Detects objects in one image (path or bytes), batch of one.
   * @throws OspreyError with the image's code (see {@link decodeImage}) or the engine's.
   */
  async detect(input: DetectInput, options: Partial<DetectOptions> = {}): Promise<ImageResult & { detections: Detection[] }> {
    const image = await this.decode(input);
    const batch = this.allocateBatch(1);
    const geometry = await this.preprocessInto(image, batch, 0);
    const output = await this.runBatch(batch, 1);
    const [detections] = this.postprocessBatch(output, [geometry], options);
    return { image: image.source, width: image.width, height: image.height, detections: detections! };
  }

  /** Closes the engine when this detector created it. Idempotent. */
  async close(): Promise<void> {
    if (this.ownsEngine) await this.engine.close();
  }
}

/** Defaults filled in and values checked. @throws OspreyError `OSPREY_ERR_INVALID_ARGUMENT`. */
export function resolveDetectOptions(options: Partial<DetectOptions>): DetectOptions {
  const o: DetectOptions = { ...DEFAULT_DETECT_OPTIONS, ...stripUndefined(options) };
  const check = (ok: boolean, what: string): void => {
    if (!ok) throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', what);
  };
  check(o.confThreshold >= 0 && o.confThreshold <= 1, `confidence threshold must be in [0, 1], got ${o.confThreshold}`);
  check(o.iouThreshold >= 0 && o.iouThreshold <= 1, `IoU threshold must be in [0, 1], got ${o.iouThreshold}`);
  check(Number.isInteger(o.maxDetections) && o.maxDetections > 0, `max detections must be a positive integer, got ${o.maxDetections}`);
  check(Number.isInteger(o.maxCandidates) && o.maxCandidates > 0, `max candidates must be a positive integer, got ${o.maxCandidates}`);
  return o;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function failure(input: DetectInput, err: unknown): ImageResult {
  const e = toOspreyError(err);
  return { image: typeof input === 'string' ? input : input.name, error: { code: e.code, message: e.message } };
}

/**
 * The model with the uint8 NHWC input prefix, as bytes; undefined when the model does not qualify (not a single
 * float32 `[B, 3, H, W]` input, external data): it then loads unchanged.
 * @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND_FILE`, `OSPREY_ERR_INVALID_MODEL` (not ONNX).
 */
function withUint8Input(modelPath: string): Uint8Array | undefined {
  let model: OnnxModel;
  try {
    model = readOnnxModel(modelPath);
  } catch (err) {
    if (isOspreyError(err, 'OSPREY_ERR_ONNX_PARSE')) throw new OspreyError('OSPREY_ERR_INVALID_MODEL', err.message, { ...err.details }, { cause: err });
    if (isOspreyError(err, 'OSPREY_ERR_EXTERNAL_DATA')) return undefined;
    throw err;
  }
  const inputs = modelInputs(model);
  if (inputs.length !== 1 || inputs[0]!.type?.tensor_type?.elem_type !== DataType.FLOAT) return undefined;
  try {
    return encodeOnnxModel(uint8Input(model));
  } catch (err) {
    if (isOspreyError(err, 'OSPREY_ERR_PASS_FAILED')) return undefined;
    throw err;
  }
}

async function readLabels(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new OspreyError('OSPREY_ERR_LABELS', `${path}: cannot read the labels file (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { path }, { cause: err });
  }
}
