/**
 * fp16 on the real yolov8n: detections within the stated tolerance of FP32 (matched boxes IoU ≥ 0.99, same
 * classes, same count, |Δscore| ≤ 0.02 — measured over 10 images: min IoU 0.9968, max |Δscore| 0.0048, see
 * bench/results/cpu-2core-amd-epyc/onnx-passes-fp16.json). Plus the rewrite contract on a small model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { isOspreyError } from '../../src/core/errors.js';
import { detectOutputLayout } from '../../src/core/decode.js';
import { postprocessImage } from '../../src/core/postprocess.js';
import { DEFAULT_DETECT_OPTIONS } from '../../src/core/types.js';
import {
  DataType,
  getMetadata,
  makeFloatTensor,
  makeNode,
  makeValueInfo,
  readModelMetadata,
  encodeOnnxModel,
  readOnnxModel,
  type OnnxModel,
} from '../../src/onnx/index.js';
import { fp16 } from '../../src/onnx/passes/index.js';
import { IMAGES, YOLO_PATH, loadBatch, session, slice } from '../support/onnx.js';
import { iouOfBoxes } from '../../src/core/nms.js';


test('fp16 yolov8n: detections within tolerance of FP32 (IoU ≥ 0.99, same classes, |Δscore| ≤ 0.02)', async (t) => {
  const original = readOnnxModel(YOLO_PATH);
  const half = fp16(original);
  const bytes = encodeOnnxModel(half);
  const meta = readModelMetadata(bytes);
  assert.deepEqual(meta.inputs, [{ name: 'images', type: 'float32', shape: [1, 3, 640, 640] }], 'IO stays float32 by default');
  assert.equal(meta.outputs[0]!.type, 'float32');
  assert.equal(meta.metadata.osprey_precision, 'fp16');
  assert.ok(bytes.length < 0.55 * encodeOnnxModel(original).length, `fp16 model ${bytes.length} bytes`);
  const convs = half.graph.node.filter((n) => n.op_type === 'Conv');
  const halfWeights = convs.filter((n) => half.graph.initializer.find((i) => i.name === n.input[1])?.data_type === DataType.FLOAT16);
  assert.equal(halfWeights.length, convs.length - 1, 'every Conv but the DFL expectation has float16 weights');

  const paths = IMAGES.slice(0, 2);
  const { batch, geometries } = await loadBatch(paths, 'float32-nchw');
  const s32 = await session(original);
  const s16 = await session(bytes);
  try {
    let minIoU = 1;
    let maxScore = 0;
    for (let i = 0; i < paths.length; i++) {
      const run = async (s: ort.InferenceSession) => {
        const o = (await s.run({ images: slice(batch, i) })).output0!;
        const dims = o.dims as number[];
        return postprocessImage({ dims, data: o.data as Float32Array }, detectOutputLayout(dims), 0, geometries[i]!, [], DEFAULT_DETECT_OPTIONS);
      };
      const ref = await run(s32);
      const got = await run(s16);
      assert.equal(got.length, ref.length, `${paths[i]}: detection count`);
      const used = new Set<number>();
      for (const r of ref) {
        let best = -1;
        let bestIoU = 0;
        got.forEach((d, j) => {
          if (!used.has(j) && d.classId === r.classId && iouOfBoxes(r.box, d.box) > bestIoU) [best, bestIoU] = [j, iouOfBoxes(r.box, d.box)];
        });
        assert.ok(best >= 0, `class ${r.classId} box matched`);
        used.add(best);
        minIoU = Math.min(minIoU, bestIoU);
        maxScore = Math.max(maxScore, Math.abs(got[best]!.score - r.score));
      }
    }
    t.diagnostic(`fp16 vs fp32 on ${paths.length} images: min IoU ${minIoU.toFixed(5)}, max |Δscore| ${maxScore.toFixed(5)}`);
    assert.ok(minIoU >= 0.99, `min IoU ${minIoU}`);
    assert.ok(maxScore <= 0.02, `max |Δscore| ${maxScore}`);
  } finally {
    await s32.release();
    await s16.release();
  }
});

/** x [1,2,4,4] → Conv(w) → Resize(×2, scales) → Softmax(axis 1) → Add(w-shared bias b) → y; `b` also read by a kept node. */
function small(): OnnxModel {
  return {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    metadata_props: [],
    graph: {
      name: 'small',
      node: [
        makeNode('Conv', ['x', 'w'], ['c'], { kernel_shape: [1, 1] }, 'conv'),
        makeNode('Resize', ['c', '', 'scales'], ['r'], { mode: 'nearest' }, 'resize'),
        makeNode('Softmax', ['r'], ['s'], { axis: 1 }, 'softmax'),
        makeNode('Add', ['s', 'b'], ['a'], {}, 'add'),
        makeNode('Mul', ['a', 'b'], ['y'], {}, 'keepme'),
      ],
      initializer: [
        makeFloatTensor('w', [1, 0.5, -0.25, 2], [2, 2, 1, 1]),
        makeFloatTensor('scales', [1, 1, 2, 2]),
        makeFloatTensor('b', [0.125], [1]),
      ],
      input: [makeValueInfo('x', DataType.FLOAT, [1, 2, 4, 4])],
      output: [makeValueInfo('y', DataType.FLOAT, [1, 2, 8, 8])],
      value_info: [],
    },
  };
}

test('fp16 rewrite: weights float16, Resize scales float32, shared initializer copied, Casts at the borders, runs in ORT', async () => {
  const m = small();
  const h = fp16(m, { keepNodes: ['keepme'], keepOutputTail: false });
  const init = (n: string) => h.graph.initializer.find((t) => t.name === n);
  assert.equal(init('w')!.data_type, DataType.FLOAT16);
  assert.equal(init('scales')!.data_type, DataType.FLOAT, 'Resize scales must stay float32');
  assert.equal(init('b')!.data_type, DataType.FLOAT, 'b is still read by the kept Mul');
  assert.equal(init('b_fp16')!.data_type, DataType.FLOAT16, 'a float16 copy for the converted Add');
  const casts = h.graph.node.filter((n) => n.op_type === 'Cast');
  assert.ok(casts.length >= 3, `casts: ${casts.map((c) => c.name).join(', ')}`); // x→fp16, softmax kept (in/out), a→fp32
  assert.equal(h.graph.input[0]!.type!.tensor_type!.elem_type, DataType.FLOAT);
  assert.equal(getMetadata(h).osprey_precision, 'fp16');
  const x = Float32Array.from({ length: 32 }, (_, i) => (i % 7) / 7 - 0.3);
  const [s32, s16] = [await session(m), await session(h)];
  try {
    const a = (await s32.run({ x: new ort.Tensor('float32', x, [1, 2, 4, 4]) })).y!.data as Float32Array;
    const b = (await s16.run({ x: new ort.Tensor('float32', x, [1, 2, 4, 4]) })).y!.data as Float32Array;
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 2e-3, `y[${i}] ${a[i]} vs ${b[i]}`);
  } finally {
    await s32.release();
    await s16.release();
  }
  const io16 = fp16(m, { keepIO: false, keepOutputTail: false });
  assert.equal(io16.graph.input[0]!.type!.tensor_type!.elem_type, DataType.FLOAT16);
  assert.equal(io16.graph.output[0]!.type!.tensor_type!.elem_type, DataType.FLOAT16);
});

test('fp16 on an already float16 model → OSPREY_ERR_PASS_FAILED', () => {
  const h = fp16(small(), { keepIO: false, keepOps: [], keepOutputTail: false });
  assert.throws(() => fp16(h), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_PASS_FAILED') && /already float16/.test(e.message));
});

test('fp16 keeping every float op → OSPREY_ERR_PASS_FAILED (nothing to convert)', () => {
  const keepAll = ['Conv', 'Resize', 'Softmax', 'Add', 'Mul'];
  assert.throws(() => fp16(small(), { keepOps: keepAll }), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_PASS_FAILED') && /nothing to convert/.test(e.message));
});

test('the full build chain fp16(topKOutput(uint8Input(dynamicBatch(m)))) runs: suffix kept float32, uint8 in, float32 [B,K,6] out', async () => {
  const { dynamicBatch, topKOutput, uint8Input } = await import('../../src/onnx/passes/index.js');
  const lines: string[] = [];
  const chain = fp16(topKOutput(uint8Input(dynamicBatch(readOnnxModel(YOLO_PATH))), { k: 300 }), { log: (l) => lines.push(l) });
  const meta = readModelMetadata(encodeOnnxModel(chain));
  assert.deepEqual(meta.inputs, [{ name: 'images', type: 'uint8', shape: ['batch', 640, 640, 3] }]);
  assert.deepEqual(meta.outputs, [{ name: 'output0', type: 'float32', shape: ['batch', 300, 6] }]);
  const suffix = chain.graph.node.filter((n) => (n.name ?? '').startsWith('osprey/topk/'));
  assert.ok(suffix.length > 10);
  assert.ok(!suffix.some((n) => n.op_type === 'Cast' && Number(n.attribute[0]!.i) === DataType.FLOAT16), 'no suffix node casts to float16');
  const suffixInits = new Set(suffix.flatMap((n) => n.input));
  assert.ok(!chain.graph.initializer.some((t) => suffixInits.has(t.name!) && t.data_type === DataType.FLOAT16), 'suffix constants stay float32');
  const { batch } = await loadBatch(IMAGES.slice(0, 2), 'uint8-nhwc');
  const s = await session(chain);
  try {
    const out = (await s.run({ images: new ort.Tensor('uint8', batch.data as Uint8Array, [2, 640, 640, 3]) })).output0!;
    assert.deepEqual(out.dims, [2, 300, 6]);
    const d = out.data as Float32Array;
    assert.ok(d[4]! > 0.8 && d[4]! <= 1, `best score of bus.jpg ${d[4]}`);
  } finally {
    await s.release();
  }
  assert.ok(lines.some((l) => l.startsWith('fp16:')), lines.join('\n'));
});
