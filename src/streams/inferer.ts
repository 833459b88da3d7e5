/**
 * What a camera pipeline needs from inference: one letterboxed frame in, detections in source pixels out.
 *
 * {@link BatcherFrameInferer} submits each frame into a dynamic batcher (the same one `osprey serve` uses, so frames
 * of all cameras are batched together, with per-camera priority) and post-processes the batch row with
 * `postprocessImage` (decode → NMS → scale to source pixels).
 */
import type { LetterboxGeometry } from '../core/letterbox.js';
import type { DetectionModelSpec } from '../core/model-spec.js';
import { postprocessImage } from '../core/postprocess.js';
import { DEFAULT_DETECT_OPTIONS, type Detection, type DetectOptions, type Tensor } from '../core/types.js';
import { OspreyError } from '../core/errors.js';
import type { FrameFormat } from './frame-source.js';

export interface InferOptions {
  /** Scheduler priority (1 = highest). */
  priority: number;
  /** Confidence threshold for this camera. */
  confThreshold: number;
  /** Tag for the scheduler's logs/metrics, e.g. `camera:door#42`. */
  requestId?: string;
}

export interface InferResult {
  /** Detections in source pixels, sorted by descending score. */
  detections: Detection[];
  queueMicroseconds: number;
  computeMicroseconds: number;
  /** Size of the batch this frame ran in (cross-camera batching shows here). */
  batchSize: number;
}

export interface FrameInferer {
  /** Model input (canvas) size in pixels: frames must be letterboxed to it. */
  readonly inputWidth: number;
  readonly inputHeight: number;
  /** Frame layout the model takes. */
  readonly frameFormat: FrameFormat;
  /** True when `infer` may transfer (detach) the frame's buffer; the caller keeps a copy if it needs the pixels. */
  readonly consumesInput: boolean;
  /** Class names, indexed by class id. */
  readonly names: readonly string[];
  infer(frame: Uint8Array, geometry: LetterboxGeometry, options: InferOptions): Promise<InferResult>;
}

/** The dynamic batcher contract shared with `src/scheduler/dynamic-batcher.ts`. */
export interface BatchSubmitter {
  submit(
    inputs: Record<string, Tensor>,
    options?: { priority?: number; timeoutMicroseconds?: number; requestId?: string },
  ): Promise<{ outputs: Record<string, Tensor>; queueMicroseconds: number; computeMicroseconds: number; batchSize: number }>;
}

/** The frame layout a model takes: uint8 NHWC engines get rgb24, float32 NCHW models get planar float frames. */
export function frameFormatFor(spec: Pick<DetectionModelSpec, 'inputFormat' | 'inputType'>): FrameFormat {
  if (spec.inputFormat === 'uint8-nhwc') return 'rgb24';
  if (spec.inputType === 'float32') return 'rgbf32-planar';
  throw new OspreyError('OSPREY_ERR_UNSUPPORTED_MODEL', `streams: input type ${spec.inputType} (${spec.inputFormat}) is not supported; use an FP32-input model or an Osprey-built uint8 engine`);
}

/** Frames → tensors of batch 1 → the batcher → `postprocessImage`. */
export class BatcherFrameInferer implements FrameInferer {
  readonly inputWidth: number;
  readonly inputHeight: number;
  readonly frameFormat: FrameFormat;
  readonly consumesInput = true;
  readonly names: readonly string[];

  constructor(
    private readonly batcher: BatchSubmitter,
    private readonly spec: DetectionModelSpec,
    private readonly detectOptions: Partial<DetectOptions> = {},
    /** The batcher's priority levels: camera priorities above it are clamped to the lowest level. 0 = no levels. */
    private readonly priorityLevels = 0,
  ) {
    this.inputWidth = spec.inputWidth;
    this.inputHeight = spec.inputHeight;
    this.frameFormat = frameFormatFor(spec);
    this.names = spec.names;
  }

  async infer(frame: Uint8Array, geometry: LetterboxGeometry, options: InferOptions): Promise<InferResult> {
    const { inputWidth: W, inputHeight: H } = this;
    const tensor: Tensor =
      this.frameFormat === 'rgb24'
        ? { type: 'uint8', dims: [1, H, W, 3], data: frame }
        : { type: 'float32', dims: [1, 3, H, W], data: new Float32Array(frame.buffer, frame.byteOffset, frame.byteLength / 4) };
    const priority = this.priorityLevels > 0 ? Math.min(Math.max(1, options.priority), this.priorityLevels) : undefined;
    const res = await this.batcher.submit({ [this.spec.inputName]: tensor }, { ...(priority ? { priority } : {}), ...(options.requestId ? { requestId: options.requestId } : {}) });
    const out = res.outputs[this.spec.outputName];
    if (!out || !(out.data instanceof Float32Array)) {
      throw new OspreyError('OSPREY_ERR_INFERENCE_FAILED', `streams: output ${this.spec.outputName} missing or not float32`);
    }
    const opts: DetectOptions = { ...DEFAULT_DETECT_OPTIONS, ...this.detectOptions, confThreshold: options.confThreshold };
    const detections = postprocessImage({ dims: out.dims, data: out.data }, this.spec.layout, 0, geometry, this.spec.names, opts, this.spec.nmsInGraph);
    return { detections, queueMicroseconds: res.queueMicroseconds, computeMicroseconds: res.computeMicroseconds, batchSize: res.batchSize };
  }
}
