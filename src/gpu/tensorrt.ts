/**
 * TensorRT execution provider configuration through the environment variables ONNX Runtime reads
 * (onnxruntime-node passes no TensorRT provider options). Names are those the TensorRT provider library of
 * ONNX Runtime 1.29 reads (`ORT_TENSORRT_*`, listed by `strings libonnxruntime_providers_tensorrt.so`).
 *
 * NOT RUN: TensorRT is not installed on any machine this project can use (no libnvinfer.so.10 on the lent GPU
 * machine); only this configuration logic is tested.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { findSharedLibrary } from './system.js';

export interface TensorrtOptions {
  /** sha256 (hex) of the model file the engine is built from. */
  modelSha256: string;
  /** GPU name, e.g. "NVIDIA H100 80GB HBM3". */
  gpuName: string;
  /** Compute capability, e.g. "9.0". */
  computeCapability: string;
  /** TensorRT version, e.g. "10.13.0"; see {@link detectTensorrtVersion}. */
  tensorrtVersion: string;
  fp16?: boolean;
  /** INT8 from the QDQ graph (explicit quantization; no calibration table needed). */
  int8?: boolean;
  /** Root folder of engine caches; one sub-folder per model × GPU × TensorRT version. */
  cacheRoot: string;
  /** Builder workspace limit in bytes. Default 4 GiB. */
  maxWorkspaceBytes?: number;
}

/** The engine-cache folder for a model × GPU × TensorRT version (so a cache is never reused across them). */
export function tensorrtCacheDir(o: Pick<TensorrtOptions, 'modelSha256' | 'gpuName' | 'computeCapability' | 'tensorrtVersion' | 'cacheRoot' | 'fp16' | 'int8'>): string {
  const gpu = o.gpuName.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '').toLowerCase();
  const precision = o.int8 ? 'int8' : o.fp16 ? 'fp16' : 'fp32';
  const key = createHash('sha256').update(`${o.modelSha256}|${o.gpuName}|${o.computeCapability}|${o.tensorrtVersion}|${precision}`).digest('hex').slice(0, 12);
  return join(o.cacheRoot, `${o.modelSha256.slice(0, 16)}-${gpu}-sm${o.computeCapability.replace('.', '')}-trt${o.tensorrtVersion}-${precision}-${key}`);
}

/**
 * The environment for a TensorRT session. Apply it with {@link applyTensorrtEnvironment} in the main thread
 * BEFORE engine workers start: ONNX Runtime reads the process environment (getenv), and worker threads get a copy of
 * `process.env` that does not reach the C library.
 */
export function tensorrtEnvironment(o: TensorrtOptions): Record<string, string> {
  const cacheDir = tensorrtCacheDir(o);
  return {
    ORT_TENSORRT_FP16_ENABLE: o.fp16 ? '1' : '0',
    ORT_TENSORRT_INT8_ENABLE: o.int8 ? '1' : '0',
    ORT_TENSORRT_ENGINE_CACHE_ENABLE: '1',
    ORT_TENSORRT_CACHE_PATH: cacheDir,
    ORT_TENSORRT_TIMING_CACHE_ENABLE: '1',
    ORT_TENSORRT_MAX_WORKSPACE_SIZE: String(o.maxWorkspaceBytes ?? 4 * 2 ** 30),
  };
}

/** Sets the variables in this process's environment (main thread). Returns the previous values to restore. */
export function applyTensorrtEnvironment(env: Record<string, string>): Record<string, string | undefined> {
  const previous: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    previous[k] = process.env[k];
    process.env[k] = v;
  }
  return previous;
}

/** TensorRT version from the real file name of libnvinfer.so.10 (e.g. libnvinfer.so.10.13.0 → "10.13.0"), or null. */
export function detectTensorrtVersion(find: (name: string) => string | null = findSharedLibrary, realpath?: (p: string) => string): string | null {
  const p = find('libnvinfer.so.10');
  if (!p) return null;
  const real = realpath ? realpath(p) : p;
  const m = /libnvinfer\.so\.(\d+(?:\.\d+)*)$/.exec(real);
  return m ? m[1]! : '10';
}
