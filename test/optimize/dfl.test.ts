/**
 * fastDfl on the real yolov8n: the DFL softmax moves to the innermost axis, the outputs stay equal (float32
 * summation order only), the batch axis stays dynamic, and a graph without the pattern is returned unchanged.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dynamicBatch, encodeOnnxModel, getIntAttribute, readOnnxModel } from '../../src/onnx/index.js';
import type { OnnxModel } from '../../src/onnx/index.js';
import { fastDfl } from '../../src/optimize/dfl.js';
import { prepareAllImages } from '../../src/optimize/images.js';
import { createBuildSession, outputAsFloat32, runSession } from '../../src/optimize/session.js';

const data = fileURLToPath(new URL('../../../shared/data/', import.meta.url));
const MODEL = join(data, 'models/yolov8n.onnx');

async function outputs(m: OnnxModel, input: Float32Array, dims: number[]): Promise<Float32Array> {
  const s = await createBuildSession(encodeOnnxModel(m));
  try {
    return outputAsFloat32((await runSession(s, 'images', input, dims)).output0!);
  } finally {
    await s.release();
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

test('fastDfl: Softmax over the innermost axis + MatMul; yolov8n outputs equal within float32 rounding on two real images (batch 2, dynamic axis)', async (t) => {
  const source = dynamicBatch(readOnnxModel(MODEL), { maxBatch: 2 });
  const lines: string[] = [];
  const fast = fastDfl(source, { log: (l) => lines.push(l) });
  assert.notEqual(fast, source);
  assert.match(lines.join('\n'), /Softmax over the innermost axis of \[B, N, 4, 16\]/);
  const softmaxes = fast.graph.node.filter((n) => n.op_type === 'Softmax');
  assert.equal(softmaxes.length, 1);
  assert.equal(getIntAttribute(softmaxes[0]!, 'axis'), -1);
  assert.equal(fast.graph.node.some((n) => n.name === '/model.22/dfl/conv/Conv'), false, 'the 1-channel Conv is gone');
  assert.equal(fast.graph.node.filter((n) => n.op_type === 'MatMul').length, 1);
  const imgs = await prepareAllImages([join(data, 'images/bus.jpg'), join(data, 'images/zidane.jpg')], { height: 640, width: 640, format: 'float32-nchw' });
  const batch = new Float32Array(2 * 3 * 640 * 640);
  batch.set(imgs[0]!.data as Float32Array, 0);
  batch.set(imgs[1]!.data as Float32Array, 3 * 640 * 640);
  const a = await outputs(source, batch, [2, 3, 640, 640]);
  const b = await outputs(fast, batch, [2, 3, 640, 640]);
  assert.equal(a.length, 2 * 84 * 8400);
  // boxes are in input pixels (0..640): 1e-3 px is far below a pixel; class scores pass through untouched
  const d = maxAbsDiff(a, b);
  t.diagnostic(`max |Δ| over output0: ${d}`);
  assert.ok(d < 1e-3, `max |Δ| ${d}`);
  // the input model is left unchanged
  assert.equal(source.graph.node.filter((n) => n.op_type === 'Softmax' && getIntAttribute(n, 'axis') === 1).length, 1);
});

test('fastDfl on a graph without the DFL pattern returns it unchanged and says why', () => {
  const once = fastDfl(readOnnxModel(MODEL));
  const lines: string[] = [];
  assert.equal(fastDfl(once, { log: (l) => lines.push(l) }), once);
  assert.match(lines.join('\n'), /no DFL decode .* found; graph unchanged/);
});
