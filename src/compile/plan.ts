/**
 * The GPU engine plan: what `osprey build --engine cuda` compiles an ONNX YOLO export into, and what the runtime
 * (src/engine/gpu-*.ts) and the CPU reference executor ({@link executePlan}) run. Pure data (JSON-serializable
 * except the weight blob), built by pure functions (parse → lower → fuse → place → plan memory → tactics →
 * serialize, the order TensorRT's builder uses).
 *
 * Layout: every activation is **NHWC, FP16** on the device, per image `[pixels, channels]` with pixels = H·W row-major.
 * A tensor is a {@link View} into a {@link BufferPlan}: a channel range of a wider buffer (Concat eliminated: producers
 * write into slices of the concat buffer; Split outputs are views) and/or a pixel range (the detect head's per-level
 * outputs written into one `[anchors, channels]` buffer). Element `(n, y, x, c)` of a view lies at
 *   `arena + buffer.offset·B + n·buffer.bytesPerImage + ((pixelOffset + y·w + x)·buffer.channels + channelOffset + c)·2`
 * in an arena planned for batch B (offsets per image scale with the batch, so one plan serves every profile).
 */

/** A device buffer (one per non-aliased tensor group), per image. */
export interface BufferPlan {
  id: number;
  /** The ONNX value it was made for (the widest: a Concat output, a conv output, …). */
  name: string;
  /** Pixels per image (H·W, or anchors for the detect head buffers). */
  pixels: number;
  /** Channels (the pixel stride in elements). */
  channels: number;
  /** Element type: activations are float16; the detect head's decoded candidates float32. */
  dtype: 'float16' | 'float32';
  /** pixels · channels · element size, bytes per image. */
  bytesPerImage: number;
  /** Arena offset per image, bytes (× batch = the offset at that batch), from {@link planMemory}. */
  offsetPerImage: number;
  /** First and last layer index touching it (liveness). */
  firstLayer: number;
  lastLayer: number;
}

/** A tensor as a window of a buffer. */
export interface View {
  buffer: number;
  pixelOffset: number;
  channelOffset: number;
  h: number;
  w: number;
  c: number;
}

/** A weight tensor in the engine's weight blob. */
export interface WeightPlan {
  id: number;
  name: string;
  dtype: 'float16' | 'float32';
  /** Conv weights `[cout, kh, kw, cinPadded]` (KRSC); bias `[cout]` float32; anchors `[anchors, 2]`; strides `[anchors]`. */
  shape: number[];
  byteOffset: number;
  bytes: number;
}

export type Activation = 'none' | 'silu';

export interface PreprocessLayer {
  kind: 'preprocess';
  name: string;
  /** uint8 NHWC RGB frames `[B, H, W, 3]` in; the view gets `value / 255` (channels past 3 zeroed: padding for 16-byte loads). */
  output: View;
  inputChannels: number;
}

export interface ConvLayer {
  kind: 'conv';
  name: string;
  input: View;
  output: View;
  /** Added after the activation (YOLO's bottleneck shortcut), same shape as the output. */
  residual?: View;
  weight: number;
  bias: number;
  kernel: [number, number];
  stride: [number, number];
  /** top, left, bottom, right */
  pads: [number, number, number, number];
  activation: Activation;
  /** The ONNX nodes fused into this layer, in order. */
  fused: string[];
}

export interface MaxPoolLayer {
  kind: 'maxpool';
  name: string;
  input: View;
  output: View;
  kernel: [number, number];
  stride: [number, number];
  pads: [number, number, number, number];
}

/** Nearest-neighbour upsampling by an integer factor (ONNX Resize nearest, asymmetric, floor), written into its (concat) view. */
export interface UpsampleLayer {
  kind: 'upsample';
  name: string;
  input: View;
  output: View;
  scale: number;
}

/** A copy of a view into another (when a tensor must appear in two concat buffers). */
export interface CopyLayer {
  kind: 'copy';
  name: string;
  input: View;
  output: View;
}

/**
 * YOLOv8/v11 detect head after its last convolutions: DFL (softmax over `regMax` bins, expectation), dist2bbox with
 * the anchor points, × stride, sigmoid of the class logits — then the best class per anchor and the top-K anchors
 * by that score, sorted, as `[K, 6]` rows `x1, y1, x2, y2, score, classId` in model-input pixels (the rows of
 * Osprey's ONNX top-K suffix, src/onnx/passes/pre-post.ts).
 */
export interface DetectLayer {
  kind: 'detect';
  name: string;
  /** `[anchors, 4·regMax]` box logits (every level's conv writes its pixel range). */
  box: View;
  /** `[anchors, numClasses]` class logits. */
  cls: View;
  anchors: number;
  regMax: number;
  numClasses: number;
  /** float32 `[anchors, 2]` anchor points (grid cell centres, in cells). */
  anchorPoints: number;
  /** float32 `[anchors]` stride of each anchor's level, pixels. */
  anchorStrides: number;
  /** Candidates kept per image. */
  k: number;
  /** The ONNX nodes fused into this layer. */
  fused: string[];
}

export type Layer = PreprocessLayer | ConvLayer | MaxPoolLayer | UpsampleLayer | CopyLayer | DetectLayer;

export interface MemoryReport {
  /** Arena bytes per image (× batch for a profile). */
  arenaBytesPerImage: number;
  /** Sum of every plan buffer, bytes per image (what an allocator without liveness reuse would take). */
  bufferBytesPerImage: number;
  /** Sum of every intermediate tensor of the source ONNX graph at its own type (FP32), bytes per image. */
  onnxTensorBytesPerImage: number;
  /** Bytes per image saved by Concat elimination and Split views (buffers not allocated). */
  concatSplitSavedBytesPerImage: number;
}

/** Batch profiles: the runtime captures one CUDA graph per entry of `batches`. */
export interface BatchProfiles {
  min: number;
  opt: number;
  max: number;
  /** The batch sizes an engine instance is prepared for (min … max, powers of two plus the ends). */
  batches: number[];
}

export interface EnginePlan {
  format: 'osprey-gpu-plan';
  formatVersion: 1;
  /** Model input: uint8 NHWC frames. */
  input: { name: string; height: number; width: number; channels: number };
  /** Model output: `[B, K, 6]` float32 rows. */
  output: { name: string; k: number };
  precision: 'float16' | 'float32';
  layers: Layer[];
  buffers: BufferPlan[];
  weights: WeightPlan[];
  /** Total weight blob bytes. */
  weightBytes: number;
  memory: MemoryReport;
  profiles: BatchProfiles;
  /** Ultralytics metadata kept from the ONNX model (names, stride, imgsz, task) plus osprey_* keys. */
  metadata: Record<string, string>;
  /** What each pass did (one line each), for the build log and the manifest. */
  passLog: string[];
}

/** Bytes per element. */
export function dtypeBytes(d: 'float16' | 'float32'): number {
  return d === 'float16' ? 2 : 4;
}

/** Element index (in elements of the buffer's dtype, image 0) of a view's first element. */
export function viewBaseElement(buffers: readonly BufferPlan[], v: View): number {
  const b = buffers[v.buffer]!;
  return v.pixelOffset * b.channels + v.channelOffset;
}
