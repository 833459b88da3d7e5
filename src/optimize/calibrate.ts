/**
 * Calibration: runs the FP32 source model on real images (pre-processed exactly as at inference) with the
 * activation tensors to quantize added as graph outputs, and accumulates their statistics
 * (min/max + |x| histogram, see `calibration.ts`).
 */
import type { OnnxModel, ValueInfoProto } from '../onnx/proto-types.js';
import { DataType } from '../onnx/proto-types.js';
import { cloneOnnxModel } from '../onnx/model.js';
import { type TensorStatistics, createTensorStatistics, updateTensorStatistics, DEFAULT_HISTOGRAM_BINS } from './calibration.js';
import type { CalibrationPreprocessing } from './calibration-cache.js';
import { LETTERBOX_PAD_VALUE } from '../core/letterbox.js';
import { createBuildSession, runSession } from './session.js';
import type { PreparedImage } from './images.js';

/** The pre-processing calibration uses for a model input of the given size. */
export function calibrationPreprocessing(inputHeight: number, inputWidth: number): CalibrationPreprocessing {
  return { resize: 'letterbox', padValue: LETTERBOX_PAD_VALUE, inputHeight, inputWidth, layout: 'float32-nchw', scale: 1 / 255 };
}

/**
 * A copy of `model` whose graph outputs also expose `tensorNames` (the original outputs kept first).
 * Output types come from value_info when the model has it; tensors known not to be float are left out.
 */
export function exposeTensors(model: OnnxModel, tensorNames: readonly string[]): { model: OnnxModel; exposed: string[] } {
  const copy = cloneOnnxModel(model);
  const info = new Map<string, ValueInfoProto>();
  for (const v of copy.graph.value_info) if (v.name) info.set(v.name, v);
  const existing = new Set(copy.graph.output.map((o) => o.name));
  const exposed: string[] = [];
  for (const name of tensorNames) {
    if (existing.has(name)) continue;
    const v = info.get(name);
    const elem = v?.type?.tensor_type?.elem_type;
    if (elem !== undefined && elem !== DataType.FLOAT) continue;
    copy.graph.output.push({ name, type: { tensor_type: { elem_type: DataType.FLOAT } } });
    exposed.push(name);
  }
  return { model: copy, exposed };
}

/** Options of {@link collectStatistics}. */
export interface CollectOptions {
  bins?: number;
  /** Called after each image (for progress bars). */
  onImage?: (done: number, name: string) => void;
}

/**
 * Runs `model` on each image and accumulates statistics of `tensorNames`.
 *
 * @param model the FP32 source model (float32 `[1, 3, H, W]` input)
 * @param images letterboxed float32 NCHW images (`prepareImages`)
 * @returns tensor name → statistics (only tensors ONNX Runtime returned as float32)
 */
export async function collectStatistics(
  model: OnnxModel,
  inputName: string,
  tensorNames: readonly string[],
  images: AsyncIterable<PreparedImage> | Iterable<PreparedImage>,
  options: CollectOptions = {},
): Promise<{ statistics: Map<string, TensorStatistics>; images: string[] }> {
  const { model: exposedModel, exposed } = exposeTensors(model, tensorNames);
  const session = await createBuildSession(exposedModel);
  const statistics = new Map<string, TensorStatistics>();
  const names: string[] = [];
  try {
    for await (const img of images) {
      const out = await runSession(session, inputName, img.data, img.dims, exposed);
      for (const name of exposed) {
        const t = out[name];
        if (!t || t.type !== 'float32') continue;
        let s = statistics.get(name);
        if (!s) {
          s = createTensorStatistics(options.bins ?? DEFAULT_HISTOGRAM_BINS);
          statistics.set(name, s);
        }
        updateTensorStatistics(s, t.data as Float32Array);
        t.dispose?.();
      }
      names.push(img.name);
      options.onImage?.(names.length, img.name);
    }
  } finally {
    await session.release();
  }
  return { statistics, images: names };
}
