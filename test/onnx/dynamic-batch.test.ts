/**
 * dynamicBatch on the real yolov8n: B=1 and B=4 outputs equal the original model's per image (real letterboxed
 * images); refusals on small models with batch baked in ways the pass cannot prove safe.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isOspreyError } from '../../src/core/errors.js';
import {
  DataType,
  getMetadata,
  makeFloatTensor,
  makeInt64Tensor,
  makeNode,
  makeValueInfo,
  readModelMetadata,
  encodeOnnxModel,
  readOnnxModel,
  type OnnxModel,
} from '../../src/onnx/index.js';
import { dynamicBatch } from '../../src/onnx/passes/dynamic-batch.js';
import { IMAGES, YOLO_PATH, loadBatch, maxAbsDiff, session, slice, whole } from '../support/onnx.js';

test('dynamicBatch on yolov8n: B=1 and B=4 equal the original per image (max abs diff reported)', async (t) => {
  const original = readOnnxModel(YOLO_PATH);
  const lines: string[] = [];
  const dyn = dynamicBatch(original, { log: (l) => lines.push(l), maxBatch: 8 });
  // the four Ultralytics Reshape constants are rewritten
  assert.equal(lines.filter((l) => l.includes('→ [0,')).length, 4, lines.join('\n'));
  assert.ok(lines.some((l) => l.includes('[1,4,16,8400] → [0,4,16,8400]')));
  const meta = readModelMetadata(encodeOnnxModel(dyn));
  assert.deepEqual(meta.inputs, [{ name: 'images', type: 'float32', shape: ['batch', 3, 640, 640] }]);
  assert.deepEqual(meta.outputs, [{ name: 'output0', type: 'float32', shape: ['batch', 84, 8400] }]);
  assert.equal(meta.metadata.osprey_dynamic_batch, 'true');
  assert.equal(meta.metadata.osprey_max_batch, '8');
  assert.equal(meta.metadata.names, getMetadata(original).names, 'Ultralytics metadata kept');
  assert.equal(original.graph.input[0]!.type!.tensor_type!.shape!.dim[0]!.dim_value, 1, 'the input model is not modified');

  const { batch } = await loadBatch(IMAGES, 'float32-nchw');
  const plain = await session(original);
  const dynamic = await session(dyn);
  try {
    const out4 = (await dynamic.run({ images: whole(batch) })).output0!;
    assert.deepEqual(out4.dims, [4, 84, 8400]);
    const per = 84 * 8400;
    let worst4 = 0;
    let worst1 = 0;
    for (let i = 0; i < IMAGES.length; i++) {
      const ref = (await plain.run({ images: slice(batch, i) })).output0!.data as Float32Array;
      worst4 = Math.max(worst4, maxAbsDiff(ref, (out4.data as Float32Array).subarray(i * per, (i + 1) * per)));
      if (i === 0) worst1 = maxAbsDiff(ref, (await dynamic.run({ images: slice(batch, 0) })).output0!.data as Float32Array);
    }
    t.diagnostic(`max abs diff vs original: B=1 ${worst1}, B=4 ${worst4} (output values up to 640)`);
    assert.ok(worst1 <= 1e-3, `B=1 max abs diff ${worst1}`);
    assert.ok(worst4 <= 1e-3, `B=4 max abs diff ${worst4}`);
  } finally {
    await plain.release();
    await dynamic.release();
  }
});

/** A small model: x [1,3,4,4] → Relu → (node under test) → y. */
function small(build: (m: OnnxModel) => void): OnnxModel {
  const m: OnnxModel = {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    metadata_props: [],
    graph: {
      name: 'small',
      node: [makeNode('Relu', ['x'], ['r'], {}, 'relu')],
      initializer: [],
      input: [makeValueInfo('x', DataType.FLOAT, [1, 3, 4, 4])],
      output: [],
      value_info: [],
    },
  };
  build(m);
  return m;
}

function assertRefused(m: OnnxModel, nodeName: string, reason: RegExp): void {
  assert.throws(
    () => dynamicBatch(m),
    (e: unknown) => isOspreyError(e, 'OSPREY_ERR_PASS_FAILED') && e.message.includes(`'${nodeName}'`) && reason.test(e.message),
  );
}

test('Reshape folding the batch axis ([3,-1]) → OSPREY_ERR_PASS_FAILED naming the node', () => {
  const m = small((m) => {
    m.graph.initializer.push(makeInt64Tensor('s', [3, -1]));
    m.graph.node.push(makeNode('Reshape', ['r', 's'], ['y'], {}, 'fold'));
    m.graph.output.push(makeValueInfo('y', DataType.FLOAT, [3, 16]));
  });
  assertRefused(m, 'fold', /folds the batch axis/);
});

test('Reshape with -1 first over more than one image ([-1,4]) → OSPREY_ERR_PASS_FAILED', () => {
  const m = small((m) => {
    m.graph.initializer.push(makeInt64Tensor('s', [-1, 4]));
    m.graph.node.push(makeNode('Reshape', ['r', 's'], ['y'], {}, 'minus'));
    m.graph.output.push(makeValueInfo('y', DataType.FLOAT, [12, 4]));
  });
  assertRefused(m, 'minus', /exactly one image/);
});

test('Concat of a batched value with a batch-1 constant → OSPREY_ERR_PASS_FAILED', () => {
  const m = small((m) => {
    m.graph.initializer.push(makeFloatTensor('c', new Array(16).fill(0), [1, 1, 4, 4]));
    m.graph.node.push(makeNode('Concat', ['r', 'c'], ['y'], { axis: 1 }, 'cat'));
    m.graph.output.push(makeValueInfo('y', DataType.FLOAT, [1, 4, 4, 4]));
  });
  assertRefused(m, 'cat', /batch 1 baked in/);
});

test('Transpose moving the batch axis → OSPREY_ERR_PASS_FAILED', () => {
  const m = small((m) => {
    m.graph.node.push(makeNode('Transpose', ['r'], ['y'], { perm: [1, 0, 2, 3] }, 'swap'));
    m.graph.output.push(makeValueInfo('y', DataType.FLOAT, [3, 1, 4, 4]));
  });
  assertRefused(m, 'swap', /moves the batch axis/);
});

test('Slice keeping only the first image → OSPREY_ERR_PASS_FAILED', () => {
  const m = small((m) => {
    m.graph.initializer.push(makeInt64Tensor('st', [0]), makeInt64Tensor('en', [1]), makeInt64Tensor('ax', [0]));
    m.graph.node.push(makeNode('Slice', ['r', 'st', 'en', 'ax'], ['y'], {}, 'first'));
    m.graph.output.push(makeValueInfo('y', DataType.FLOAT, [1, 3, 4, 4]));
  });
  assertRefused(m, 'first', /slices the batch axis/);
});

test('Slice on the channel axis with run-time ends (torch chunk export) is accepted, and runs at B=3', async () => {
  // ends = Shape(x)[1] / 2 computed at run time, constant axes [1]: as torch.onnx exports C2f's chunk(2, 1)
  const m = small((m) => {
    m.graph.initializer.push(
      makeInt64Tensor('idx1', [1]),
      makeInt64Tensor('two', [2]),
      makeInt64Tensor('zero', [0]),
      makeInt64Tensor('ax1', [1]),
    );
    m.graph.node.push(
      makeNode('Shape', ['r'], ['shp'], {}, 'shape'),
      makeNode('Gather', ['shp', 'idx1'], ['ch'], { axis: 0 }, 'gather'),
      makeNode('Div', ['ch', 'two'], ['half'], {}, 'div'),
      makeNode('Slice', ['r', 'zero', 'half', 'ax1'], ['c'], {}, 'chunk'),
      // no value_info: the rank after a run-time Slice must be inferred for the element-wise op that follows
      makeNode('Relu', ['c'], ['y'], {}, 'after_chunk'),
    );
    m.graph.output.push(makeValueInfo('y', DataType.FLOAT, [1, 1, 4, 4]));
  });
  const dyn = dynamicBatch(m);
  const meta = readModelMetadata(encodeOnnxModel(dyn));
  assert.equal(meta.inputs[0]!.shape[0], 'batch');
  const s = await session(dyn);
  const ort = await import('onnxruntime-node');
  const x = new Float32Array(3 * 3 * 4 * 4).map((_, i) => (i % 7) - 3);
  const out = await s.run({ x: new ort.Tensor('float32', x, [3, 3, 4, 4]) });
  assert.deepEqual(out.y!.dims, [3, 1, 4, 4]);
  assert.equal((out.y!.data as Float32Array)[16], Math.max(0, x[48]!)); // image 1, channel 0, first pixel
});

test('element-wise op with a constant of batch 2 → OSPREY_ERR_PASS_FAILED', () => {
  const m = small((m) => {
    m.graph.initializer.push(makeFloatTensor('c', new Array(96).fill(1), [2, 3, 4, 4]));
    m.graph.node.push(makeNode('Add', ['r', 'c'], ['y'], {}, 'add2'));
    m.graph.output.push(makeValueInfo('y', DataType.FLOAT, [2, 3, 4, 4]));
  });
  assertRefused(m, 'add2', /batch baked into a constant/);
});

test('unknown operator on a batched value → OSPREY_ERR_PASS_FAILED', () => {
  const m = small((m) => {
    m.graph.node.push(makeNode('NonZero', ['r'], ['y'], {}, 'nz'));
    m.graph.output.push(makeValueInfo('y', DataType.INT64, [4, -1]));
  });
  assertRefused(m, 'nz', /cannot prove/);
});

test('input with a fixed batch of 2 → OSPREY_ERR_PASS_FAILED naming the input', () => {
  const m = small((m) => {
    m.graph.input[0] = makeValueInfo('x', DataType.FLOAT, [2, 3, 4, 4]);
    m.graph.output.push(makeValueInfo('r', DataType.FLOAT, [2, 3, 4, 4]));
  });
  assert.throws(() => dynamicBatch(m), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_PASS_FAILED') && /'x' has a fixed batch of 2/.test(e.message));
});

test('safe small graph: Reshape [1,-1] rewritten, anchors-style broadcast constant accepted, value_info updated', () => {
  const m = small((m) => {
    m.graph.initializer.push(makeInt64Tensor('s', [1, 3, -1]), makeFloatTensor('anch', new Array(16).fill(2), [1, 1, 16]));
    m.graph.node.push(makeNode('Reshape', ['r', 's'], ['f'], {}, 'flat'), makeNode('Sub', ['anch', 'f'], ['y'], {}, 'sub'));
    m.graph.value_info.push(makeValueInfo('f', DataType.FLOAT, [1, 3, 16]));
    m.graph.output.push(makeValueInfo('y', DataType.FLOAT, [1, 3, 16]));
  });
  const d = dynamicBatch(m, { batchDimName: 'N' });
  assert.equal(d.graph.node.find((n) => n.name === 'flat')!.input[1], 's_dynamic_batch');
  assert.ok(!d.graph.initializer.some((t) => t.name === 's'), 'the unused constant is removed');
  assert.equal(d.graph.value_info[0]!.type!.tensor_type!.shape!.dim[0]!.dim_param, 'N');
  assert.equal(d.graph.output[0]!.type!.tensor_type!.shape!.dim[0]!.dim_param, 'N');
});

test('ORT dynamic-quantized yolov8n (DynamicQuantizeLinear: one scale over the whole batch) → OSPREY_ERR_PASS_FAILED', () => {
  const int8 = readOnnxModel(YOLO_PATH.replace('yolov8n.onnx', 'yolov8n_int8_dynamic.onnx'));
  assert.throws(
    () => dynamicBatch(int8),
    (e: unknown) => isOspreyError(e, 'OSPREY_ERR_PASS_FAILED') && /DynamicQuantizeLinear/.test(e.message) && /other images/.test(e.message),
  );
});

test('shapes computed at run time from Shape (dynamic-axes export pattern) are trusted and left as they are', () => {
  const m = small((m) => {
    // Reshape(r, Concat(Gather(Shape(r), 0) as [1], [-1])) — the batch flows through the shape at run time
    m.graph.initializer.push(makeInt64Tensor('zero', [0]), makeInt64Tensor('minus1', [-1]));
    m.graph.node.push(
      makeNode('Shape', ['r'], ['shp'], {}, 'shape'),
      makeNode('Gather', ['shp', 'zero'], ['n'], { axis: 0 }, 'gather'),
      makeNode('Concat', ['n', 'minus1'], ['target'], { axis: 0 }, 'concat'),
      makeNode('Reshape', ['r', 'target'], ['y'], {}, 'flatten'),
    );
    m.graph.output.push(makeValueInfo('y', DataType.FLOAT, [1, 48]));
  });
  const lines: string[] = [];
  const d = dynamicBatch(m, { log: (l) => lines.push(l) });
  assert.ok(lines.some((l) => l.includes("'flatten'") && l.includes('trusted')), lines.join('\n'));
  assert.equal(d.graph.node.find((n) => n.name === 'flatten')!.input[1], 'target', 'the run-time shape is not rewritten');
  assert.equal(d.graph.output[0]!.type!.tensor_type!.shape!.dim[0]!.dim_param, 'batch');
});
