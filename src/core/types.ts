/**
 * Core data types shared by every layer. Pure TS: no I/O.
 */

/** Element types of tensors Osprey moves around (ONNX Runtime's names). */
export type TensorDataType = 'float32' | 'float16' | 'uint8' | 'int8' | 'int32' | 'int64' | 'bool' | 'float64';

/** Typed-array storage of a tensor. float16 is carried as raw bits in a Uint16Array. */
export type TensorStorage =
  | Float32Array
  | Float64Array
  | Uint8Array
  | Int8Array
  | Int32Array
  | BigInt64Array
  | Uint16Array;

/**
 * A dense, row-major tensor.
 *
 * @example
 *   // a uint8 NHWC batch of two 640×640 RGB frames
 *   const t: Tensor = { type: 'uint8', dims: [2, 640, 640, 3], data: new Uint8Array(2 * 640 * 640 * 3) };
 */
export interface Tensor {
  readonly type: TensorDataType;
  readonly dims: readonly number[];
  readonly data: TensorStorage;
}

/** Name, element type and shape of a model input or output; a string or -1 marks a dynamic axis. */
export interface TensorSpec {
  name: string;
  type: TensorDataType;
  /** e.g. `[1, 3, 640, 640]` or `['batch', 3, 640, 640]`. */
  shape: readonly (number | string)[];
}

/** Box as [x1, y1, x2, y2] (corners, pixels; the coordinate space is stated where it is used). */
export type BoxXYXY = [number, number, number, number];

/** One detection in source-image pixels. */
export interface Detection {
  /** Class index in the model's output (0-based). */
  classId: number;
  /** Class name from the model metadata, a labels file, or the id as a string. */
  className: string;
  /** Confidence in [0, 1] (class score, times objectness for YOLOv5-style outputs). */
  score: number;
  /** [x1, y1, x2, y2] in source-image pixels, clipped to the image. */
  box: BoxXYXY;
}

/** Detections of one image: the `osprey detect --json` entry shape. */
export interface ImageDetections {
  image: string;
  /** Source image width in pixels (after EXIF orientation). */
  width: number;
  /** Source image height in pixels (after EXIF orientation). */
  height: number;
  detections: Detection[];
}

/** An image that failed, with its stable error code. */
export interface ImageFailure {
  image: string;
  error: { code: string; message: string };
}

export type ImageResult = ImageDetections | ImageFailure;

/**
 * The three detection-output layouts Osprey decodes:
 * - `yolov8`: `[batch, 4 + numClasses, numAnchors]`, rows cx, cy, w, h then class scores (YOLOv8/v11), e.g. `[1, 84, 8400]`.
 * - `yolov5`: `[batch, numAnchors, 5 + numClasses]`, columns cx, cy, w, h, objectness, class scores, e.g. `[1, 25200, 85]`.
 * - `end2end`: `[batch, K, 6]`, rows x1, y1, x2, y2, score, classId (YOLOv10 / NMS-free exports and Osprey's top-K suffix), e.g. `[1, 300, 6]`.
 */
export type OutputLayout = 'yolov8' | 'yolov5' | 'end2end';

/** Post-processing options (Ultralytics' names in comments). */
export interface DetectOptions {
  /** Minimum confidence (`conf`). Default 0.25. */
  confThreshold: number;
  /** NMS IoU threshold (`iou`). Default 0.7. */
  iouThreshold: number;
  /** Maximum detections per image after NMS (`max_det`). Default 300. */
  maxDetections: number;
  /** Maximum candidates entering NMS, highest scores kept (`max_nms`). Default 30000. */
  maxCandidates: number;
  /** Keep only these class ids (`classes`); undefined keeps all. */
  classes?: readonly number[];
  /** Class-agnostic NMS (`agnostic_nms`). Default false (class-aware). */
  agnostic: boolean;
}

export const DEFAULT_DETECT_OPTIONS: Readonly<DetectOptions> = Object.freeze({
  confThreshold: 0.25,
  iouThreshold: 0.7,
  maxDetections: 300,
  maxCandidates: 30000,
  agnostic: false,
});
