import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { isOspreyError } from '../../src/core/errors.js';
import { arenaIsValid, compilePlan, executePlan, planArena, type EnginePlan } from '../../src/compile/index.js';
import { DataType, readOnnxModel, type OnnxModel } from '../../src/onnx/index.js';
import { loadBatch, YOLO_PATH, IMAGES } from '../support/onnx.js';
import { c2f, conv, detectHead, frames, relativeError, runOrt, sppf, tinyModel, upsample } from './fixtures.js';

const SIZE = 32;

/** `[4 + nc, A]` (cx, cy, w, h, scores) → the top-`k` `[k, 6]` rows x1, y1, x2, y2, score, class of Osprey's top-K suffix. */
function topRows(raw: Float32Array, nc: number, k: number): Float32Array {
  const A = raw.length / (4 + nc);
  const best = new Float32Array(A);
  const cls = new Int32Array(A);
  for (let a = 0; a < A; a++) {
    for (let c = 0; c < nc; c++) {
      const v = raw[(4 + c) * A + a]!;
      if (v > best[a]! || c === 0) {
        best[a] = v;
        cls[a] = c;
      }
    }
  }
  const order = Array.from({ length: A }, (_, i) => i).sort((x, y) => best[y]! - best[x]! || x - y);
  const out = new Float32Array(k * 6);
  order.slice(0, k).forEach((a, r) => {
    const [cx, cy, w, h] = [0, 1, 2, 3].map((q) => raw[q * A + a]!) as [number, number, number, number];
    out.set([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, best[a]!, cls[a]!], r * 6);
  });
  return out;
}

function kinds(plan: EnginePlan): Record<string, number> {
  const k: Record<string, number> = {};
  for (const l of plan.layers) k[l.kind] = (k[l.kind] ?? 0) + 1;
  return k;
}

/** Compiles at FP32, runs the plan on the CPU and ORT on the source; returns the plan and the relative error. */
async function check(model: OnnxModel, batch = 2) {
  const { plan, weightData } = compilePlan(model, { precision: 'float32', k: 20 });
  const images = frames(batch, SIZE);
  const ref = await runOrt(model, images, batch, SIZE);
  const r = executePlan(plan, weightData, images, batch, { raw: true });
  const err = relativeError(r.raw!, ref);
  assert.equal(err.nan, 0, 'every output element was written (the arena starts as NaN)');
  return { plan, err, r };
}

test('fusion: Conv + bias + SiLU (Sigmoid·Mul) becomes one conv layer with a SiLU epilogue, equal to ONNX Runtime', async () => {
  const t = tinyModel(SIZE);
  const x = conv(t, conv(t, 'images', 3, 16, 3, 2), 16, 32, 3, 1);
  detectHead(t, [{ x, c: 32, size: SIZE / 2, stride: 2 }], 3, 4);
  const { plan, err } = await check(t.model);
  assert.ok(err.rel < 1e-5, `relative error ${err.rel}`);
  const convs = plan.layers.filter((l) => l.kind === 'conv');
  assert.equal(convs.filter((c) => c.kind === 'conv' && c.activation === 'silu').length, 4, 'two body convs + the two 3×3 head convs');
  assert.equal(kinds(plan).conv, 6);
  assert.ok(!plan.layers.some((l) => (l as { name: string }).name.includes('Sigmoid')));
  assert.match(plan.passLog.join('\n'), /fuse: 4 Conv\+bias\+SiLU/);
});

test('fusion: the bottleneck residual Add goes into the second conv epilogue; C2f Split/Concat become views (no copies)', async () => {
  const t = tinyModel(SIZE);
  const x = c2f(t, conv(t, 'images', 3, 16, 3, 2), 16, 32, 2, true);
  detectHead(t, [{ x, c: 32, size: SIZE / 2, stride: 2 }], 3, 4);
  const { plan, err } = await check(t.model);
  assert.ok(err.rel < 1e-5, `relative error ${err.rel}`);
  const withResidual = plan.layers.filter((l) => l.kind === 'conv' && l.residual);
  assert.equal(withResidual.length, 2);
  assert.match(plan.passLog.join('\n'), /2 residual Add into the conv epilogue/);
  assert.match(plan.passLog.join('\n'), /place: 3 concat inputs written in place \(Concat eliminated\), 2 split outputs as views, 0 copies/);
  assert.equal(kinds(plan).copy, undefined);
  // cv1's output buffer IS the concat buffer: the split halves and both bottleneck outputs share one buffer
  const concatConv = plan.layers.find((l) => l.kind === 'conv' && l.input.c === 64);
  assert.ok(concatConv && concatConv.kind === 'conv');
  const buf = concatConv.input.buffer;
  const writers = plan.layers.filter((l) => l.kind === 'conv' && l.output.buffer === buf);
  assert.equal(writers.length, 3, 'cv1 (channels 0..31) and the two bottlenecks (32..47, 48..63) write the concat buffer');
  assert.deepEqual(writers.map((w) => (w.kind === 'conv' ? w.output.channelOffset : -1)).sort((a, b) => a - b), [0, 32, 48]);
});

test('fusion: SPPF max-pools read and write slices of one concat buffer', async () => {
  const t = tinyModel(SIZE);
  const x = sppf(t, conv(t, 'images', 3, 32, 3, 2), 32, 32);
  detectHead(t, [{ x, c: 32, size: SIZE / 2, stride: 2 }], 3, 4);
  const { plan, err } = await check(t.model);
  assert.ok(err.rel < 1e-5, `relative error ${err.rel}`);
  const pools = plan.layers.filter((l) => l.kind === 'maxpool');
  assert.equal(pools.length, 3);
  for (const p of pools) if (p.kind === 'maxpool') assert.equal(p.input.buffer, p.output.buffer);
  assert.deepEqual(pools.map((p) => (p.kind === 'maxpool' ? p.output.channelOffset : -1)), [16, 32, 48]);
});

test('fusion: nearest Resize writes its concat slice; two levels of the detect head write pixel ranges of one buffer', async () => {
  const t = tinyModel(SIZE);
  const p3 = conv(t, 'images', 3, 16, 3, 2); // 16×16, stride 2
  const p4 = conv(t, p3, 16, 32, 3, 2); // 8×8, stride 4
  const up = upsample(t, p4);
  const merged = conv(t, t.b.op1('Concat', [up, p3], { axis: 1 }, 'Concat'), 48, 16, 3, 1);
  detectHead(t, [{ x: merged, c: 16, size: 16, stride: 2 }, { x: p4, c: 32, size: 8, stride: 4 }], 3, 4);
  const { plan, err } = await check(t.model);
  assert.ok(err.rel < 1e-5, `relative error ${err.rel}`);
  const ups = plan.layers.filter((l) => l.kind === 'upsample');
  assert.equal(ups.length, 1);
  const det = plan.layers.find((l) => l.kind === 'detect')!;
  assert.ok(det.kind === 'detect');
  assert.equal(det.anchors, 16 * 16 + 8 * 8);
  const boxWriters = plan.layers.filter((l) => l.kind === 'conv' && l.output.buffer === det.box.buffer);
  assert.deepEqual(boxWriters.map((w) => (w.kind === 'conv' ? w.output.pixelOffset : -1)), [0, 256]);
});

test('placement: a value read by two Concats is written in place in one and copied into the other', async () => {
  const t = tinyModel(SIZE);
  const a = conv(t, 'images', 3, 16, 3, 2);
  const b1 = conv(t, a, 16, 16, 3, 1);
  const c1 = t.b.op1('Concat', [a, b1], { axis: 1 }, 'Concat');
  const c2 = t.b.op1('Concat', [b1, a], { axis: 1 }, 'Concat');
  const x = conv(t, t.b.op1('Concat', [conv(t, c1, 32, 16, 1, 1), conv(t, c2, 32, 16, 1, 1)], { axis: 1 }, 'Concat'), 32, 32, 3, 1);
  detectHead(t, [{ x, c: 32, size: 16, stride: 2 }], 3, 4);
  const { plan, err } = await check(t.model);
  assert.ok(err.rel < 1e-5, `relative error ${err.rel}`);
  assert.equal(kinds(plan).copy, 2);
});

test('memory plan: buffers live at the same step never share bytes; the arena is far below the sum of the buffers', () => {
  const simple = planArena([
    { id: 0, bytes: 1000, first: 0, last: 1 },
    { id: 1, bytes: 1000, first: 1, last: 2 },
    { id: 2, bytes: 1000, first: 2, last: 3 },
  ]);
  assert.equal(simple.offsets.get(0), simple.offsets.get(2), 'buffers 0 and 2 never live together: same bytes');
  assert.notEqual(simple.offsets.get(0), simple.offsets.get(1));
  assert.equal(simple.arenaBytes, 2 * 1024);
  const { plan } = compilePlan(readOnnxModel(YOLO_PATH));
  const ranges = plan.buffers.map((b) => ({ id: b.id, bytes: b.bytesPerImage, first: b.firstLayer, last: b.lastLayer }));
  assert.ok(arenaIsValid(ranges, { offsets: new Map(plan.buffers.map((b) => [b.id, b.offsetPerImage])), arenaBytes: plan.memory.arenaBytesPerImage }));
  assert.ok(plan.memory.arenaBytesPerImage < plan.memory.bufferBytesPerImage / 2, `arena ${plan.memory.arenaBytesPerImage} vs buffers ${plan.memory.bufferBytesPerImage}`);
  assert.ok(plan.memory.bufferBytesPerImage < plan.memory.onnxTensorBytesPerImage / 4);
});

test('yolov8n: the FP16 plan (FP16 weights, every activation rounded to FP16) keeps the CPU path detections on zidane.jpg', async () => {
  const model = readOnnxModel(YOLO_PATH);
  const { plan, weightData } = compilePlan(model, { precision: 'float16', k: 100 });
  assert.equal(plan.weights.find((w) => w.name.endsWith('/weight'))!.dtype, 'float16');
  const { batch } = await loadBatch([IMAGES[1]!], 'uint8-nhwc');
  const images = batch.data as Uint8Array;
  const ref = await runOrt(readFileSync(YOLO_PATH), images, 1, 640);
  const r = executePlan(plan, weightData, images, 1, { raw: true });
  const err = relativeError(r.raw!, ref);
  assert.ok(err.rel < 2e-3, `relative error ${err.rel}`);
  // the confident rows (score ≥ 0.25): same classes, boxes within a pixel, scores within 0.03 (FP16 storage of ~60 layers)
  const rows = (d: Float32Array) => Array.from({ length: d.length / 6 }, (_, i) => Array.from(d.subarray(6 * i, 6 * i + 6))).filter((x) => x[4]! >= 0.25);
  const fp32 = topRows(ref, 80, 100); // ONNX Runtime's FP32 output0, as the top-K suffix would turn it into rows
  const a = rows(r.detections);
  const b = rows(fp32);
  assert.ok(b.length >= 3, 'zidane.jpg has at least 3 confident candidates');
  for (const row of b.slice(0, 10)) {
    // the nearest FP16 row of the same class (neighbouring anchors give near-duplicate boxes)
    const dist = (x: number[]) => Math.max(...[0, 1, 2, 3].map((q) => Math.abs(x[q]! - row[q]!)));
    const m = a.filter((x) => x[5] === row[5]).sort((x, y) => dist(x) - dist(y))[0];
    assert.ok(m && dist(m) < 1, `FP32 row ${row.map((v) => v.toFixed(1)).join(',')} has an FP16 twin within a pixel`);
    assert.ok(Math.abs(m[4]! - row[4]!) < 0.03, `score ${m[4]} vs ${row[4]}`);
  }
});

test('bad graphs: an unsupported op names the node; a non-shortcut Add and a model without a detect head are refused', () => {
  const t = tinyModel(SIZE);
  const y = t.b.op1('Relu', [conv(t, 'images', 3, 16, 3, 2, false)], {}, 'Relu');
  detectHead(t, [{ x: y, c: 16, size: 16, stride: 2 }], 3, 4);
  assert.throws(() => compilePlan(t.model), (e) => isOspreyError(e, 'OSPREY_ERR_GPU_COMPILE') && /node 'm\/Relu' \(Relu\): Relu is not supported/.test(e.message));

  const t2 = tinyModel(SIZE);
  const a = conv(t2, 'images', 3, 16, 3, 2);
  const sum = t2.b.op1('Add', [a, t2.b.float(new Array(16).fill(1), 1, 'c', [1, 16, 1, 1])], {}, 'Add');
  detectHead(t2, [{ x: sum, c: 16, size: 16, stride: 2 }], 3, 4);
  assert.throws(() => compilePlan(t2.model), (e) => isOspreyError(e, 'OSPREY_ERR_GPU_COMPILE') && /Add that is not a residual/.test(e.message));

  const t3 = tinyModel(SIZE);
  const z = conv(t3, 'images', 3, 16, 3, 2);
  t3.model.graph.node.push(...t3.b.nodes);
  t3.model.graph.output.push({ name: z, type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_value: 1 }, { dim_value: 16 }, { dim_value: 16 }, { dim_value: 16 }] } } } });
  assert.throws(() => compilePlan(t3.model), (e) => isOspreyError(e, 'OSPREY_ERR_GPU_COMPILE') && /detect head/.test(e.message));
});

test('a nearest Resize whose modes do not copy pixel ⌊y / 2⌋ (half_pixel + floor reads pixel 0 for y = 2) is refused, naming the node', () => {
  const t = tinyModel(SIZE);
  const a = conv(t, 'images', 3, 16, 3, 2);
  const up = t.b.op1('Resize', [a, '', t.b.float([1, 1, 2, 2], DataType.FLOAT, 'scales')], { mode: 'nearest', coordinate_transformation_mode: 'half_pixel', nearest_mode: 'floor' }, 'Resize');
  detectHead(t, [{ x: up, c: 16, size: SIZE, stride: 1 }], 3, 4);
  assert.throws(() => compilePlan(t.model), (e) => isOspreyError(e, 'OSPREY_ERR_GPU_COMPILE') && /'half_pixel' and nearest_mode 'floor' does not copy pixel ⌊y \/ 2⌋/.test(e.message));
});

test('batch 3: the arena laid out per image scales with the batch (each image equals its batch-1 result)', () => {
  const t = tinyModel(SIZE, 11);
  const x = c2f(t, conv(t, 'images', 3, 16, 3, 2), 16, 32, 1, true);
  detectHead(t, [{ x, c: 32, size: 16, stride: 2 }], 3, 4);
  const { plan, weightData } = compilePlan(t.model, { precision: 'float32', k: 10 });
  const images = frames(3, SIZE, 5);
  const all = executePlan(plan, weightData, images, 3, { raw: true }).raw!;
  const per = all.length / 3;
  for (let n = 0; n < 3; n++) {
    const one = executePlan(plan, weightData, images.subarray(n * SIZE * SIZE * 3, (n + 1) * SIZE * SIZE * 3), 1, { raw: true }).raw!;
    assert.deepEqual(Array.from(all.subarray(n * per, (n + 1) * per)), Array.from(one));
  }
});

// One reference-executor run of the whole FP32 yolov8n (≈ 12 s on 2 cores) checks both its raw output against ONNX
// Runtime CPU and its top-K rows against the ONNX engine Osprey builds for ONNX Runtime.
test('yolov8n: the lowered FP32 plan equals ONNX Runtime CPU on bus.jpg, and its [B, K, 6] rows equal those of the ONNX engine Osprey builds (uint8 prefix + top-K suffix)', async () => {
  const { uint8Input, topKOutput } = await import('../../src/onnx/passes/index.js');
  const ort = await import('onnxruntime-node');
  const { encodeOnnxModel } = await import('../../src/onnx/index.js');
  const model = readOnnxModel(YOLO_PATH);
  const built = topKOutput(uint8Input(model), { k: 50 });
  const { batch } = await loadBatch([IMAGES[0]!], 'uint8-nhwc');
  const images = batch.data as Uint8Array;
  const s = await ort.InferenceSession.create(encodeOnnxModel(built), { intraOpNumThreads: 2 });
  const out = (await s.run({ images: new ort.Tensor('uint8', images, [1, 640, 640, 3]) })).output0!;
  await s.release();
  assert.deepEqual(out.dims, [1, 50, 6]);
  const { plan, weightData } = compilePlan(model, { precision: 'float32', k: 50 });
  assert.deepEqual(kinds(plan), { preprocess: 1, conv: 63, maxpool: 3, upsample: 2, detect: 1 });
  assert.deepEqual([plan.input.name, plan.output.name, plan.output.k], ['images', 'output0', 50]);
  assert.equal(plan.metadata.osprey_postprocess, 'topk');
  const ref = await runOrt(readFileSync(YOLO_PATH), images, 1, 640);
  const r = executePlan(plan, weightData, images, 1, { raw: true });
  const err = relativeError(r.raw!, ref);
  assert.equal(err.nan, 0);
  assert.ok(err.rel < 1e-5, `relative error ${err.rel} (max |diff| ${err.max})`);
  const mine = r.detections;
  const theirs = out.data as Float32Array;
  // same anchors in the same order while scores are distinct; boxes and scores equal to float rounding
  for (let q = 0; q < 20; q++) {
    for (let c = 0; c < 6; c++) assert.ok(Math.abs(mine[q * 6 + c]! - theirs[q * 6 + c]!) < 2e-3, `row ${q} col ${c}: ${mine[q * 6 + c]} vs ${theirs[q * 6 + c]}`);
  }
});
