/**
 * Small ONNX graphs of each pattern the GPU engine builder fuses, built node by node in the exact form Ultralytics
 * exports (Conv → Sigmoid·Mul SiLU, bottleneck Add, C2f Split/Concat, SPPF MaxPools, nearest Resize + Concat, the
 * Detect head's DFL/dist2bbox/strides/Sigmoid tail), with seeded random weights, plus ONNX Runtime CPU to run them.
 */
import * as ort from 'onnxruntime-node';
import { DataType, encodeOnnxModel, makeTensor, makeValueInfo, type OnnxModel } from '../../src/onnx/index.js';
import { GraphBuilder } from '../../src/onnx/passes/builder.js';
import { rng } from '../support/rng.js';
import { compilePlan } from '../../src/compile/index.js';
import { writeEngineFile } from '../../src/compile/serialize.js';

export interface Tiny {
  b: GraphBuilder;
  model: OnnxModel;
  rand: () => number;
}

export function tinyModel(size: number, seed = 7): Tiny {
  const model: OnnxModel = {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    producer_name: 'osprey-test',
    metadata_props: [{ key: 'names', value: "{0: 'a', 1: 'b', 2: 'c'}" }],
    graph: { name: 'tiny', node: [], initializer: [], input: [makeValueInfo('images', DataType.FLOAT, [1, 3, size, size])], output: [], value_info: [] },
  } as OnnxModel;
  const b = new GraphBuilder(model.graph, 'm/', 17);
  return { b, model, rand: rng(seed) };
}

/** Conv with random weights (He-like scale) and bias; `silu` adds the Sigmoid·Mul pair Ultralytics exports. */
export function conv(t: Tiny, x: string, cin: number, cout: number, k: number, stride: number, silu = true): string {
  const w = new Float32Array(cout * cin * k * k).map(() => (t.rand() * 2 - 1) * Math.sqrt(3 / (cin * k * k)));
  const bias = new Float32Array(cout).map(() => (t.rand() * 2 - 1) * 0.1);
  const wn = t.b.name('w');
  const bn = t.b.name('b');
  t.model.graph.initializer.push(makeTensor(wn, [cout, cin, k, k], w), makeTensor(bn, [cout], bias));
  const p = Math.floor(k / 2);
  const y = t.b.op1('Conv', [x, wn, bn], { kernel_shape: [k, k], strides: [stride, stride], pads: [p, p, p, p], dilations: [1, 1], group: 1 }, 'Conv');
  if (!silu) return y;
  const s = t.b.op1('Sigmoid', [y], {}, 'Sigmoid');
  return t.b.op1('Mul', [y, s], {}, 'Mul');
}

/** C2f with `n` bottlenecks (shortcut = residual Add). */
export function c2f(t: Tiny, x: string, cin: number, cout: number, n: number, shortcut: boolean): string {
  const c = cout / 2;
  const y = conv(t, x, cin, 2 * c, 1, 1);
  const [a, bb] = t.b.op('Split', [y, t.b.int64([c, c], 'split')], { axis: 1 }, 'Split', 2) as [string, string];
  const parts = [a, bb];
  let cur = bb;
  for (let i = 0; i < n; i++) {
    const m = conv(t, conv(t, cur, c, c, 3, 1), c, c, 3, 1);
    cur = shortcut ? t.b.op1('Add', [cur, m], {}, 'Add') : m;
    parts.push(cur);
  }
  return conv(t, t.b.op1('Concat', parts, { axis: 1 }, 'Concat'), (2 + n) * c, cout, 1, 1);
}

/** SPPF: cv1, three 5×5 MaxPools, Concat of the four, cv2. */
export function sppf(t: Tiny, x: string, cin: number, cout: number): string {
  const c = cin / 2;
  const y = conv(t, x, cin, c, 1, 1);
  const m1 = t.b.op1('MaxPool', [y], { kernel_shape: [5, 5], strides: [1, 1], pads: [2, 2, 2, 2], dilations: [1, 1], ceil_mode: 0 }, 'MaxPool');
  const m2 = t.b.op1('MaxPool', [m1], { kernel_shape: [5, 5], strides: [1, 1], pads: [2, 2, 2, 2], dilations: [1, 1], ceil_mode: 0 }, 'MaxPool');
  const m3 = t.b.op1('MaxPool', [m2], { kernel_shape: [5, 5], strides: [1, 1], pads: [2, 2, 2, 2], dilations: [1, 1], ceil_mode: 0 }, 'MaxPool');
  return conv(t, t.b.op1('Concat', [y, m1, m2, m3], { axis: 1 }, 'Concat'), 4 * c, cout, 1, 1);
}

/** Nearest ×2 Resize (Ultralytics' Upsample export: asymmetric, floor, scales input). */
export function upsample(t: Tiny, x: string): string {
  return t.b.op1('Resize', [x, '', t.b.float([1, 1, 2, 2], DataType.FLOAT, 'scales')], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }, 'Resize');
}

/**
 * The Detect head on `levels` feature maps (channels, size, stride), `nc` classes, `regMax` DFL bins, written as
 * Ultralytics exports it, ending in `output0 [1, 4 + nc, anchors]`.
 */
export function detectHead(t: Tiny, levels: Array<{ x: string; c: number; size: number; stride: number }>, nc: number, regMax: number): void {
  const b = t.b;
  const boxes: string[] = [];
  const clss: string[] = [];
  const anchors: number[][] = [[], []];
  const strides: number[] = [];
  for (const l of levels) {
    const bx = conv(t, conv(t, l.x, l.c, 16, 3, 1), 16, 4 * regMax, 1, 1, false);
    const cl = conv(t, conv(t, l.x, l.c, 16, 3, 1), 16, nc, 1, 1, false);
    boxes.push(b.op1('Reshape', [bx, b.int64([1, 4 * regMax, -1], 'shape')], {}, 'Reshape'));
    clss.push(b.op1('Reshape', [cl, b.int64([1, nc, -1], 'shape')], {}, 'Reshape'));
    for (let y = 0; y < l.size; y++)
      for (let x = 0; x < l.size; x++) {
        anchors[0]!.push(x + 0.5);
        anchors[1]!.push(y + 0.5);
        strides.push(l.stride);
      }
  }
  const A = strides.length;
  const boxCat = b.op1('Concat', boxes, { axis: 2 }, 'Concat');
  const clsCat = b.op1('Concat', clss, { axis: 2 }, 'Concat');
  const r = b.op1('Reshape', [boxCat, b.int64([1, 4, regMax, A], 'shape')], {}, 'Reshape');
  const tr = b.op1('Transpose', [r], { perm: [0, 2, 1, 3] }, 'Transpose');
  const sm = b.op1('Softmax', [tr], { axis: 1 }, 'Softmax');
  const dflW = b.float(Array.from({ length: regMax }, (_, i) => i), DataType.FLOAT, 'dfl', [1, regMax, 1, 1]);
  const dc = b.op1('Conv', [sm, dflW], { kernel_shape: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 }, 'Conv');
  const dist = b.op1('Reshape', [dc, b.int64([1, 4, A], 'shape')], {}, 'Reshape');
  const lt = b.slice(dist, 0, 2, 1);
  const rb = b.slice(dist, 2, 4, 1);
  const ap = b.float([...anchors[0]!, ...anchors[1]!], DataType.FLOAT, 'anchors', [1, 2, A]);
  const ap2 = b.float([...anchors[0]!, ...anchors[1]!], DataType.FLOAT, 'anchors', [1, 2, A]);
  const x1y1 = b.op1('Sub', [ap, lt], {}, 'Sub');
  const x2y2 = b.op1('Add', [ap2, rb], {}, 'Add');
  const c = b.op1('Div', [b.op1('Add', [x1y1, x2y2], {}, 'Add'), b.float([2], DataType.FLOAT, 'two', [])], {}, 'Div');
  const wh = b.op1('Sub', [x2y2, x1y1], {}, 'Sub');
  const box = b.op1('Mul', [b.op1('Concat', [c, wh], { axis: 1 }, 'Concat'), b.float(strides, DataType.FLOAT, 'strides', [1, A])], {}, 'Mul');
  const out = b.op1('Concat', [box, b.op1('Sigmoid', [clsCat], {}, 'Sigmoid')], { axis: 1 }, 'Concat');
  b.nodes[b.nodes.length - 1]!.output = ['output0'];
  void out;
  t.model.graph.node.push(...b.nodes);
  b.nodes.length = 0;
  t.model.graph.output.push(makeValueInfo('output0', DataType.FLOAT, [1, 4 + nc, A]));
}

/** Deterministic letterbox-like uint8 NHWC frames `[B, size, size, 3]`. */
export function frames(batch: number, size: number, seed = 3): Uint8Array {
  const r = rng(seed);
  return new Uint8Array(batch * size * size * 3).map(() => Math.floor(r() * 256));
}

/** ORT CPU on the FP32 NCHW form of `frames` (÷255), returning output0 `[B, 4 + nc, A]`. */
export async function runOrt(model: OnnxModel | Uint8Array, images: Uint8Array, batch: number, size: number): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(model instanceof Uint8Array ? model : encodeOnnxModel(model), { intraOpNumThreads: 2 });
  const per = size * size;
  const outs: Float32Array[] = [];
  try {
    for (let n = 0; n < batch; n++) {
      const f = new Float32Array(3 * per);
      for (let p = 0; p < per; p++) for (let c = 0; c < 3; c++) f[c * per + p] = images[(n * per + p) * 3 + c]! / 255;
      const r = await s.run({ images: new ort.Tensor('float32', f, [1, 3, size, size]) });
      outs.push(r.output0!.data as Float32Array);
    }
  } finally {
    await s.release();
  }
  const all = new Float32Array(outs.reduce((a, o) => a + o.length, 0));
  let o = 0;
  for (const x of outs) {
    all.set(x, o);
    o += x.length;
  }
  return all;
}

/** ‖a − b‖ / ‖b‖ and the largest |a − b|. */
export function relativeError(a: Float32Array, b: Float32Array): { rel: number; max: number; nan: number } {
  let num = 0;
  let den = 0;
  let max = 0;
  let nan = 0;
  for (let i = 0; i < b.length; i++) {
    if (Number.isNaN(a[i]!)) nan++;
    const d = a[i]! - b[i]!;
    num += d * d;
    den += b[i]! * b[i]!;
    max = Math.max(max, Math.abs(d));
  }
  return { rel: Math.sqrt(num / den), max, nan };
}

/**
 * A real engine file of a tiny YOLO-shaped graph (compilePlan + writeEngineFile), as `osprey build --engine cuda`
 * writes one, for compute capability `cc`. The cubin bytes stand for the kernels (no GPU here to compile for): only
 * code that reads files, not code that launches kernels, can use it.
 */
export function tinyEngineFile(cc = '9.0'): Uint8Array {
  const t = tinyModel(32);
  detectHead(t, [{ x: c2f(t, conv(t, 'images', 3, 16, 3, 2), 16, 32, 1, true), c: 32, size: 16, stride: 2 }], 3, 4);
  const { plan, weightData } = compilePlan(t.model, { k: 10 });
  const cubin = new Uint8Array(4096).map((_, i) => (i * 31) & 255);
  const target = { gpuName: 'NVIDIA H100 80GB HBM3', computeCapability: cc, driverVersion: '13.0', nvrtcVersion: '13.0', cudnnVersion: null };
  return writeEngineFile({ createdAt: '2026-12-07T00:00:00Z', osprey: 'test', source: { file: 'tiny.onnx', sha256: '0'.repeat(64) }, target, plan, tactics: {}, build: {} }, weightData, cubin);
}
