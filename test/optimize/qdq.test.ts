/**
 * The INT8 graph choices that make ONNX Runtime's CPU EP fast, on the real yolov8n calibrated on 2 real images:
 * the uint8 input fused into the first QLinearConv bit-exactly, Concat inputs sharing their output's scale, the
 * prediction convs quantized while the output tail stays FP32, the DFL rewrite keeping outputs equal, and the
 * upsampling and stem rewrites giving the same bytes.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readdirSync } from 'node:fs';
import { cloneOnnxModel, dynamicBatch, readOnnxModel, uint8Input } from '../../src/onnx/index.js';
import type { OnnxModel, TensorProto } from '../../src/onnx/index.js';
import { tensorToNumbers } from '../../src/onnx/tensor.js';
import { collectStatistics } from '../../src/optimize/calibrate.js';
import { rangesFromStatistics } from '../../src/optimize/calibration-cache.js';
import type { TensorRange } from '../../src/optimize/calibration.js';
import { prepareAllImages } from '../../src/optimize/images.js';
import { calibrationTensorNames, fuseUint8InputQuantize, headNodes, quantizeQdq, UINT8_IMAGE_PARAMS } from '../../src/optimize/qdq.js';
import { maxAbsDiff, runOnce } from '../support/onnx.js';
import { expandNearestResize } from '../../src/optimize/upsample.js';
import { stemColumnsToChannels } from '../../src/optimize/stem.js';

const data = fileURLToPath(new URL('../../../shared/data/', import.meta.url));
const MODEL = join(data, 'models/yolov8n.onnx');
const BUS = join(data, 'images/bus.jpg');

let source: OnnxModel;
let ranges: Map<string, TensorRange>;

before(async () => {
  source = readOnnxModel(MODEL);
  const files = readdirSync(join(data, 'coco-val-dev/images')).filter((f) => f.endsWith('.jpg')).sort().slice(0, 2).map((f) => join(data, 'coco-val-dev/images', f));
  const imgs = await prepareAllImages(files, { height: 640, width: 640, format: 'float32-nchw' });
  const { statistics } = await collectStatistics(source, 'images', calibrationTensorNames(source), imgs);
  ranges = rangesFromStatistics(statistics, 'minmax');
});

/** Largest |Δ| between two graphs' output0 on one uint8 NHWC input (each run in its own ORT session). */
async function outputDiff(a: OnnxModel, b: OnnxModel, data: Uint8Array, dims: readonly number[]): Promise<number> {
  const ya = (await runOnce(a, 'images', data, dims, 'output0')).data as Float32Array;
  const yb = (await runOnce(b, 'images', data, dims, 'output0')).data as Float32Array;
  assert.equal(ya.length, dims[0]! * 84 * 8400);
  return maxAbsDiff(ya, yb);
}

function initializer(m: OnnxModel, name: string): TensorProto {
  const t = m.graph.initializer.find((x) => x.name === name);
  assert.ok(t, name);
  return t;
}

test('fuseUint8InputQuantize: uint8 frames go straight to the first DequantizeLinear, outputs bit-identical to the unfused graph', async () => {
  const q = cloneOnnxModel(source);
  quantizeQdq(q, ranges, { fixedParams: new Map([['images', UINT8_IMAGE_PARAMS]]) });
  const unfused = uint8Input(q);
  const fused = cloneOnnxModel(unfused);
  assert.equal(fuseUint8InputQuantize(fused), 1);
  const ops = (m: OnnxModel) => m.graph.node.map((n) => n.op_type);
  assert.equal(ops(fused).filter((o) => o === 'QuantizeLinear').length, ops(unfused).filter((o) => o === 'QuantizeLinear').length - 1);
  assert.equal(fused.graph.node.some((n) => n.name === 'osprey/pre/Cast' || n.name === 'osprey/pre/Div'), false, 'no Cast/Div over the pixels');
  const dq = fused.graph.node.find((n) => n.op_type === 'DequantizeLinear' && n.input[0] === 'osprey/pre/Transpose_out')!;
  assert.ok(dq, 'the uint8 NCHW transpose feeds a DequantizeLinear');
  assert.equal(tensorToNumbers(initializer(fused, dq.input[1]!))[0], Math.fround(1 / 255));
  assert.equal(fuseUint8InputQuantize(fused), 0, 'nothing left to fuse');
  const [img] = await prepareAllImages([BUS], { height: 640, width: 640, format: 'uint8-nhwc' });
  assert.equal(await outputDiff(unfused, fused, img!.data as Uint8Array, img!.dims), 0);
});

test('a calibrated input range is replaced by fixedParams (exact 1/255, zero point 0)', () => {
  const q = cloneOnnxModel(source);
  quantizeQdq(q, ranges, { fixedParams: new Map([['images', UINT8_IMAGE_PARAMS]]) });
  assert.equal(tensorToNumbers(initializer(q, 'images_scale'))[0], Math.fround(1 / 255));
  assert.equal(tensorToNumbers(initializer(q, 'images_zero_point'))[0], 0);
});

test('shareConcatParams: every quantized Concat reads inputs with its own scale and zero point', () => {
  const plain = cloneOnnxModel(source);
  quantizeQdq(plain, ranges, {});
  const shared = cloneOnnxModel(source);
  quantizeQdq(shared, ranges, { shareConcatParams: true });
  const paramsOf = (m: OnnxModel, dqOut: string): [number, number] => {
    const dq = m.graph.node.find((n) => n.output[0] === dqOut)!;
    return [tensorToNumbers(initializer(m, dq.input[1]!))[0]!, tensorToNumbers(initializer(m, dq.input[2]!))[0]!];
  };
  const concats = (m: OnnxModel) => m.graph.node.filter((n) => n.op_type === 'Concat' && n.input.every((i) => i.endsWith('_DequantizeLinear_Output')));
  let differing = 0;
  for (const c of concats(plain)) {
    const outDq = `${c.output[0]}_DequantizeLinear_Output`;
    if (!plain.graph.node.some((n) => n.output[0] === outDq)) continue;
    const out = paramsOf(plain, outDq);
    if (c.input.some((i) => paramsOf(plain, i).join() !== out.join())) differing++;
  }
  assert.ok(differing >= 5, `without sharing, ${differing} Concats requantize some input`);
  const checked = concats(shared).filter((c) => shared.graph.node.some((n) => n.output[0] === `${c.output[0]}_DequantizeLinear_Output`));
  assert.ok(checked.length >= 10, `${checked.length} quantized Concats`);
  for (const c of checked) {
    const out = paramsOf(shared, `${c.output[0]}_DequantizeLinear_Output`);
    for (const i of c.input) assert.deepEqual(paramsOf(shared, i), out, `${c.name}: ${i}`);
  }
});

test('quantizeHeadConvs: the six prediction convs get int8 weights, the output tail (DFL, Sigmoid, decode) stays FP32', () => {
  const head = headNodes(source);
  const border = head.borderConvs.map((n) => n.name!);
  assert.equal(border.length, 6);
  const q = cloneOnnxModel(source);
  const r = quantizeQdq(q, ranges, { quantizeHeadConvs: true });
  for (const b of border) assert.ok(r.quantizedNodes.includes(b), b);
  for (const t of head.tail) assert.equal(r.quantizedNodes.includes(t.name!), false, t.name);
  const q2 = cloneOnnxModel(source);
  const r2 = quantizeQdq(q2, ranges, {});
  for (const b of border) assert.equal(r2.quantizedNodes.includes(b), false, `default keeps ${b} FP32`);
  // graph outputs are never quantized
  assert.equal(q.graph.node.some((n) => n.op_type === 'QuantizeLinear' && n.input[0] === 'output0'), false);
});

test('expandNearestResize + stemColumnsToChannels on the quantized yolov8n: no Resize, a 12-channel stem, outputs bit-identical on two real images (batch 2)', async (t) => {
  const q = cloneOnnxModel(dynamicBatch(source, { maxBatch: 2 }));
  quantizeQdq(q, ranges, { fixedParams: new Map([['images', UINT8_IMAGE_PARAMS]]), quantizeHeadConvs: true, shareConcatParams: true });
  const before = uint8Input(q);
  assert.equal(fuseUint8InputQuantize(before), 1);
  const lines: string[] = [];
  const after = stemColumnsToChannels(expandNearestResize(before, { log: (l) => lines.push(l) }), { log: (l) => lines.push(l) });
  t.diagnostic(lines.join('\n'));
  assert.equal(lines.filter((l) => /as Expand on the quantized tensor/.test(l)).length, 2);
  assert.match(lines.join('\n'), /\/model\.0\/conv\/Conv: 3 → 12 channels \(4 pixels of a row\), 32 outputs \(2 column phases\), kernel 3×2, stride \(2, 1\)/);
  assert.equal(after.graph.node.some((n) => n.op_type === 'Resize'), false);
  assert.equal(before.graph.node.filter((n) => n.op_type === 'Resize').length, 2, 'the input model is left unchanged');
  const imgs = await prepareAllImages([BUS, join(data, 'images/zidane.jpg')], { height: 640, width: 640, format: 'uint8-nhwc' });
  const batch = new Uint8Array(2 * 640 * 640 * 3);
  batch.set(imgs[0]!.data as Uint8Array, 0);
  batch.set(imgs[1]!.data as Uint8Array, 640 * 640 * 3);
  assert.equal(await outputDiff(before, after, batch, [2, 640, 640, 3]), 0);
});
