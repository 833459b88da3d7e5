/**
 * The broken-model check: run a model on a few real images and refuse it when its class scores are constant,
 * all zero or not finite (see {@link judgeScores}), or never reach 0.25 on any real image (see {@link judgeDetections}). `osprey build` runs it on every engine before writing it,
 * and `osprey build --check MODEL` runs it on any model, e.g. the known-broken
 * `yolov8n_int8_static_qoperator_broken.onnx` (ONNX Runtime static QOperator quantization whose class scores are
 * all exactly 0 because boxes and scores went through one 8-bit scale).
 */
import { OspreyError } from '../core/errors.js';
import type { DetectionModelSpec } from '../core/model-spec.js';
import type { OnnxModel } from '../onnx/proto-types.js';
import { readOnnxModel } from '../onnx/model.js';
import { float32ToFloat16 } from '../onnx/tensor.js';
import { detectionSpecOf } from './model-info.js';
import { type PreparedImage, prepareAllImages } from './images.js';
import { type BrokenVerdict, type ScoreStatistics, emptyScoreStatistics, judgeDetections, judgeScores, scoreStatistics } from './output-check.js';
import { createBuildSession, outputAsFloat32, runSession } from './session.js';

/** Result of {@link checkModel}. */
export interface CheckResult extends BrokenVerdict {
  /** Image names used (or `synthetic` when no images were given). */
  images: string[];
  scores: ScoreStatistics;
  /** Detections above confidence 0.25 (before NMS) per image: a quick plausibility figure. */
  candidatesPerImage: number[];
}

/**
 * A deterministic synthetic image (smooth colour gradients, float32 NCHW 0..1), used only when no real image is
 * available: a healthy detector's scores still vary on it, a broken one's stay constant.
 */
export function syntheticImage(height: number, width: number): PreparedImage {
  const plane = height * width;
  const data = new Float32Array(3 * plane);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      data[i] = x / width;
      data[plane + i] = y / height;
      data[2 * plane + i] = 0.5 + 0.5 * Math.sin((x + y) / 16);
    }
  }
  return { name: 'synthetic', data, dims: [1, 3, height, width] };
}

/** Converts a float32 NCHW image to the model's input (uint8 NHWC or float16 NCHW) when needed. */
function feedFor(spec: DetectionModelSpec, img: PreparedImage): { data: Float32Array | Uint8Array | Uint16Array; dims: number[] } {
  if (spec.inputFormat === 'uint8-nhwc') {
    if (img.data instanceof Uint8Array) return { data: img.data, dims: img.dims };
    // float32 NCHW 0..1 → uint8 NHWC (only for the synthetic image; real images are letterboxed as uint8 directly)
    const [, , h, w] = img.dims as [number, number, number, number];
    const out = new Uint8Array(h * w * 3);
    const plane = h * w;
    for (let c = 0; c < 3; c++) for (let i = 0; i < plane; i++) out[i * 3 + c] = Math.round(img.data[c * plane + i]! * 255);
    return { data: out, dims: [1, h, w, 3] };
  }
  if (spec.inputType === 'float16') return { data: float32ToFloat16(img.data as Float32Array), dims: img.dims };
  return { data: img.data, dims: img.dims };
}

/**
 * Runs the broken-model check.
 *
 * @param model a model object, a path, or ONNX bytes
 * @param imageFiles real images (a few are enough; 4 by default in the CLI); none → one synthetic image
 * @throws OspreyError `OSPREY_ERR_UNSUPPORTED_LAYOUT` / `OSPREY_ERR_UNSUPPORTED_MODEL` when the model is not a
 *   detector Osprey can read; `OSPREY_ERR_CALIBRATION_DATA` when none of the image files decodes. A broken model
 *   is reported in the result (`broken: true`), not thrown: see {@link assertNotBroken}.
 */
export async function checkModel(model: OnnxModel | string | Uint8Array, imageFiles: readonly string[] = []): Promise<CheckResult> {
  const m = model instanceof Uint8Array || typeof model === 'string' ? readOnnxModel(model) : model;
  const spec = detectionSpecOf(m);
  const images =
    imageFiles.length > 0
      ? await prepareAllImages(imageFiles, { height: spec.inputHeight, width: spec.inputWidth, format: spec.inputFormat }, 'check images')
      : [syntheticImage(spec.inputHeight, spec.inputWidth)];
  const session = await createBuildSession(m);
  const scores = emptyScoreStatistics();
  const candidatesPerImage: number[] = [];
  try {
    for (const img of images) {
      const feed = feedFor(spec, img);
      const out = await runSession(session, spec.inputName, feed.data, feed.dims, [spec.outputName]);
      const data = outputAsFloat32(out[spec.outputName]!);
      const before = { ...scores };
      const one = scoreStatistics(data, spec.layout, emptyScoreStatistics());
      Object.assign(scores, {
        min: Math.min(before.min, one.min),
        max: Math.max(before.max, one.max),
        nonFinite: before.nonFinite + one.nonFinite,
        count: before.count + one.count,
        boxMin: Math.min(before.boxMin, one.boxMin),
        boxMax: Math.max(before.boxMax, one.boxMax),
      });
      candidatesPerImage.push(countConfident(data, spec, 0.25));
    }
  } finally {
    await session.release();
  }
  const verdict = judgeScores(scores);
  // On real images (not the synthetic fallback) a working detector also finds something.
  const detections = imageFiles.length > 0 ? judgeDetections(candidatesPerImage, scores.max) : { broken: false, reasons: [] };
  return {
    broken: verdict.broken || detections.broken,
    reasons: [...verdict.reasons, ...detections.reasons],
    images: images.map((i) => i.name),
    scores,
    candidatesPerImage,
  };
}

function countConfident(out: Float32Array, spec: DetectionModelSpec, conf: number): number {
  const { layout, numBoxes: n, numClasses: nc } = spec.layout;
  let count = 0;
  for (let j = 0; j < n; j++) {
    let best = 0;
    if (layout === 'yolov8') for (let c = 0; c < nc; c++) best = Math.max(best, out[(4 + c) * n + j]!);
    else if (layout === 'yolov5') for (let c = 0; c < nc; c++) best = Math.max(best, out[j * (5 + nc) + 4]! * out[j * (5 + nc) + 5 + c]!);
    else best = out[j * 6 + 4]!;
    if (best >= conf) count++;
  }
  return count;
}

/**
 * Throws when the check says broken.
 * @throws OspreyError `OSPREY_ERR_BROKEN_MODEL` with the reasons and the images used.
 */
export function assertNotBroken(result: CheckResult, what: string): void {
  if (!result.broken) return;
  throw new OspreyError(
    'OSPREY_ERR_BROKEN_MODEL',
    `${what}: the model runs but is broken: ${result.reasons.join('; ')} (on ${result.images.length} image(s): ${result.images.join(', ')}); not shipping it`,
    { reasons: result.reasons, images: result.images, scoreMin: result.scores.min, scoreMax: result.scores.max },
  );
}
