/**
 * Picks the model file of a version for the GPU at hand, as Triton's `ccModelFilenames` does: a map from CUDA
 * compute capability to a file built for it (e.g. `{"9.0": "model.sm90.fp16.onnx"}`), falling back to the portable
 * `defaultModelFilename` (default `model.onnx`), and saying which it took and why.
 */
import type { GpuInfo } from './system.js';

export interface ModelFileChoice {
  file: string;
  /** e.g. "model.sm90.onnx for compute capability 9.0 (NVIDIA H100 80GB HBM3)" or "model.onnx (portable: no GPU)". */
  reason: string;
}

export function selectModelFile(options: {
  defaultModelFilename?: string;
  ccModelFilenames?: Readonly<Record<string, string>>;
  gpus: readonly GpuInfo[];
  /** Whether a file exists in the version folder. */
  exists: (file: string) => boolean;
  /** GPU index the instance runs on. Default 0. */
  gpuIndex?: number;
}): ModelFileChoice {
  const fallback = options.defaultModelFilename ?? 'model.onnx';
  const map = options.ccModelFilenames ?? {};
  const gpu = options.gpus.find((g) => g.index === (options.gpuIndex ?? 0)) ?? options.gpus[0];
  if (!gpu) return { file: fallback, reason: `${fallback} (portable: no GPU visible)` };
  const file = map[gpu.computeCapability];
  if (!file) {
    return { file: fallback, reason: `${fallback} (portable: no engine listed for compute capability ${gpu.computeCapability} of ${gpu.name})` };
  }
  if (!options.exists(file)) {
    return { file: fallback, reason: `${fallback} (portable: ${file}, listed for compute capability ${gpu.computeCapability}, is missing)` };
  }
  return { file, reason: `${file} for compute capability ${gpu.computeCapability} (${gpu.name})` };
}
