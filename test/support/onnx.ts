/**
 * Shared fixtures of the ONNX pass tests: model/image paths resolved from the test files, real letterboxed
 * batches (src/image with sharp), in-process ONNX Runtime sessions from model bytes.
 */
import { resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { decodeImage } from '../../src/image/decode.js';
import { allocateBatch, letterboxImageInto, type BatchBuffer } from '../../src/image/letterbox.js';
import type { LetterboxGeometry } from '../../src/core/letterbox.js';
import { encodeOnnxModel, type OnnxModel } from '../../src/onnx/index.js';

import { SHARED_DATA_DIR as SHARED } from './data.js';
export { SHARED_DATA_DIR as SHARED, MODEL_PATH as YOLO_PATH } from './data.js';
/** Four real images: the two Ultralytics samples and two COCO val images. */
export const IMAGES = [
  resolve(SHARED, 'images/bus.jpg'),
  resolve(SHARED, 'images/zidane.jpg'),
  resolve(SHARED, 'coco-val-dev/images/000000000802.jpg'),
  resolve(SHARED, 'coco-val-dev/images/000000018575.jpg'),
];

/** Letterboxes `paths` into one batch (640×640 unless given). */
export async function loadBatch(paths: readonly string[], format: 'float32-nchw' | 'uint8-nhwc', size = 640): Promise<{ batch: BatchBuffer; geometries: LetterboxGeometry[] }> {
  const batch = allocateBatch(format, paths.length, size, size);
  const geometries: LetterboxGeometry[] = [];
  for (let i = 0; i < paths.length; i++) geometries.push(await letterboxImageInto(await decodeImage(paths[i]!), batch, i));
  return { batch, geometries };
}

/** An ORT CPU session on an in-memory model (one intra-op thread per session keeps the 2-core box usable). */
export async function session(model: OnnxModel | Uint8Array): Promise<ort.InferenceSession> {
  const bytes = model instanceof Uint8Array ? model : encodeOnnxModel(model);
  return ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: 2, graphOptimizationLevel: 'all' });
}

/** Image `index` of a batch buffer as its own batch-1 tensor. */
export function slice(batch: BatchBuffer, index: number): ort.Tensor {
  const per = batch.data.length / batch.batchSize;
  const data = batch.data.subarray(index * per, (index + 1) * per);
  return batch.format === 'uint8-nhwc'
    ? new ort.Tensor('uint8', data as Uint8Array, [1, batch.height, batch.width, 3])
    : new ort.Tensor('float32', data as Float32Array, [1, 3, batch.height, batch.width]);
}

/** The whole batch buffer as a tensor (first `count` images). */
export function whole(batch: BatchBuffer, count = batch.batchSize): ort.Tensor {
  const per = batch.data.length / batch.batchSize;
  const data = batch.data.subarray(0, count * per);
  return batch.format === 'uint8-nhwc'
    ? new ort.Tensor('uint8', data as Uint8Array, [count, batch.height, batch.width, 3])
    : new ort.Tensor('float32', data as Float32Array, [count, 3, batch.height, batch.width]);
}

/** Largest |a − b| over two equally long arrays. */
export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/**
 * Runs `model` once on ORT's CPU EP (a fresh session, released after) and returns output `output`.
 * @example await runOnce(graph, 'x', bytes, [2, 6, 5, 7], 'y') // { data: Uint8Array, dims: [2, 6, 10, 21] }
 */
export async function runOnce(model: OnnxModel, input: string, data: Uint8Array | Float32Array, dims: readonly number[], output: string): Promise<{ data: ort.Tensor['data']; dims: readonly number[] }> {
  const s = await session(model);
  try {
    const t = data instanceof Uint8Array ? new ort.Tensor('uint8', data, dims as number[]) : new ort.Tensor('float32', data, dims as number[]);
    const y = (await s.run({ [input]: t }))[output];
    if (!y) throw new Error(`the model has no output '${output}'`);
    return { data: y.data, dims: y.dims };
  } finally {
    await s.release();
  }
}
