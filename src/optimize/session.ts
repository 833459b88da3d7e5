/**
 * Build-time ONNX Runtime sessions (CPU): the builder runs the source model for calibration, the sensitivity
 * analysis and the broken-model check. This is a CLI step, not a server, so the session runs on the calling
 * thread (nothing else waits on it); servers use `src/engine` worker threads instead.
 */
import ort from 'onnxruntime-node';
import { OspreyError } from '../core/errors.js';
import type { OnnxModel } from '../onnx/proto-types.js';
import { encodeOnnxModel } from '../onnx/model.js';
import { float16BitsToFloat32 } from '../onnx/tensor.js';

export type BuildSession = ort.InferenceSession;

/**
 * Creates a CPU session from a model object or encoded bytes.
 * @throws OspreyError `OSPREY_ERR_INVALID_MODEL` when ONNX Runtime refuses the model.
 */
export async function createBuildSession(model: OnnxModel | Uint8Array, options: { intraOpNumThreads?: number; optimize?: boolean } = {}): Promise<BuildSession> {
  const bytes = model instanceof Uint8Array ? model : encodeOnnxModel(model);
  try {
    return await ort.InferenceSession.create(bytes, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: options.optimize === false ? 'disabled' : 'all',
      intraOpNumThreads: options.intraOpNumThreads ?? 0,
      logSeverityLevel: 3,
    });
  } catch (err) {
    throw new OspreyError('OSPREY_ERR_INVALID_MODEL', `ONNX Runtime cannot load the model: ${(err as Error).message}`, {}, { cause: err });
  }
}

/** Runs one input; returns the requested outputs (all by default). */
export async function runSession(
  session: BuildSession,
  inputName: string,
  data: Float32Array | Uint8Array | Uint16Array,
  dims: readonly number[],
  outputNames?: readonly string[],
): Promise<Record<string, ort.Tensor>> {
  // Uint16Array carries float16 bits
  const type = data instanceof Uint8Array ? 'uint8' : data instanceof Uint16Array ? 'float16' : 'float32';
  const feeds = { [inputName]: new ort.Tensor(type, data, dims as number[]) };
  try {
    return (outputNames ? await session.run(feeds, outputNames as string[]) : await session.run(feeds)) as Record<string, ort.Tensor>;
  } catch (err) {
    throw new OspreyError('OSPREY_ERR_INFERENCE_FAILED', `ONNX Runtime failed: ${(err as Error).message}`, {}, { cause: err });
  }
}

/** An output tensor's data as float32 (float16 outputs converted). */
export function outputAsFloat32(t: ort.Tensor): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') return float16BitsToFloat32(t.data as unknown as Uint16Array);
  throw new OspreyError('OSPREY_ERR_UNSUPPORTED_MODEL', `output is ${t.type}, expected float32 or float16`);
}
