/**
 * The FP16 pass: weights and compute in float16, with a list of operators and nodes kept in float32.
 *
 * What changes: every node not kept that touches float32 values computes in float16 — its float32 outputs
 * become float16, float32 initializers/Constant values it reads are stored as float16 (a float16 copy when
 * kept nodes read them too), `Cast(to=FLOAT)` becomes `Cast(to=FLOAT16)`, `ConstantOfShape` values become
 * float16. Where a float16 value meets a float32 reader (or the reverse) one shared `Cast` is inserted.
 * Inputs that the ONNX spec types as float32 only (Resize `roi`/`scales`, Upsample `scales`) stay float32.
 *
 * Kept in float32 (defaults measured on yolov8n, see docs/onnx-passes.md and bench/suites/onnx-passes-fp16.ts):
 * - ops in {@link DEFAULT_FP16_KEEP_OPS};
 * - the output tail (`keepOutputTail`, default true): every node from which a graph output is reached
 *   without passing a Conv/ConvTranspose/MatMul/Gemm — in YOLO exports the box decode (anchors, strides,
 *   pixel coordinates up to 640, where float16 steps are 0.25–0.5 px), the class Sigmoid and Osprey's top-K/
 *   NMS suffix; plus single-output-channel Conv on that border (the DFL expectation, values 0..15 grid cells);
 * - nodes named in `keepNodes` (exact names, or prefixes ending in `*`), nodes of custom domains, and ops
 *   float16 cannot express here (QuantizeLinear/DequantizeLinear, NonMaxSuppression, integer ops).
 *
 * Graph inputs/outputs stay float32 by default (`keepIO`, Casts inserted), else become float16.
 */
import type { NodeProto, OnnxModel, TensorProto } from '../proto-types.js';
import { DataType } from '../proto-types.js';
import { cloneOnnxModel } from '../model.js';
import { getAttribute, getMetadata, indexGraph, makeNode, modelInputs, opsetVersion, replaceInputs, setMetadata, topologicalSort, uniqueNamer } from '../graph.js';
import { inferElemTypes } from '../shapes.js';
import { float32ToFloat16, makeTensor, tensorToFloat32 } from '../tensor.js';
import { passFailed, type PassCommonOptions } from './common.js';

/** Ops kept in float32 by default (see docs/onnx-passes.md for the measurement behind the list). */
export const DEFAULT_FP16_KEEP_OPS: readonly string[] = Object.freeze(['Softmax', 'LogSoftmax']);

/** Ops never converted (no float16 form in the ONNX spec / ORT, or integer arithmetic). */
const ALWAYS_FP32 = new Set([
  'QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear', 'QLinearConv', 'QLinearMatMul', 'ConvInteger', 'MatMulInteger',
  'NonMaxSuppression', 'RoiAlign', 'RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Multinomial', 'EyeLike',
]);

/** Ops whose outputs a tail walk stops at (the "weights" layers). */
const TAIL_STOP = new Set(['Conv', 'ConvTranspose', 'MatMul', 'Gemm']);

/** Ops that only read their input's shape: they take either precision, no Cast needed. */
const SHAPE_ONLY = new Set(['Shape', 'Size']);

/** Input indices that must stay float32 whatever the node's precision. */
const FP32_ONLY_INPUTS: Record<string, number[]> = { Resize: [1, 2], Upsample: [1] };

/** Options of {@link fp16}. */
export interface Fp16Options extends PassCommonOptions {
  /** Op types kept in float32. Default {@link DEFAULT_FP16_KEEP_OPS}. */
  keepOps?: readonly string[];
  /** Node names kept in float32 (exact, or a prefix when ending with `*`, e.g. `'/model.22/*'`). */
  keepNodes?: readonly string[];
  /** Keep the output tail in float32 (see the module note). Default true. */
  keepOutputTail?: boolean;
  /** Keep graph inputs and outputs float32 (Casts inserted). Default true; false makes them float16. */
  keepIO?: boolean;
}

/**
 * Converts a model to float16. Returns a new model.
 *
 * @example
 *   fp16(model) // Conv weights float16, decode tail float32, images/output0 still float32
 * @throws OspreyError `OSPREY_ERR_PASS_FAILED` when the model is already float16 (metadata `osprey_precision=fp16`),
 *   has no float32 values, or keeps every float node in float32.
 */
export function fp16(model: OnnxModel, options: Fp16Options = {}): OnnxModel {
  const PASS = 'fp16';
  const out = cloneOnnxModel(model);
  const g = out.graph;
  const log = options.log ?? (() => {});
  const keepIO = options.keepIO ?? true;
  const keepOps = new Set(options.keepOps ?? DEFAULT_FP16_KEEP_OPS);
  const keepNodes = options.keepNodes ?? [];
  if (getMetadata(out).osprey_precision === 'fp16') throw passFailed(PASS, undefined, 'the model is already float16 (metadata osprey_precision=fp16)');
  topologicalSort(g);
  const types = inferElemTypes(g);
  const F = DataType.FLOAT;
  const H = DataType.FLOAT16;
  if (![...types.values()].includes(F)) throw passFailed(PASS, undefined, 'the model has no float32 values to convert');
  const index = indexGraph(g);
  const fresh = uniqueNamer(g);

  // ---- which nodes stay float32
  const kept = new Set<NodeProto>();
  const nameKept = (n: NodeProto) =>
    keepNodes.some((k) => (k.endsWith('*') ? (n.name ?? '').startsWith(k.slice(0, -1)) : n.name === k));
  for (const n of g.node) {
    const op = n.op_type ?? '';
    if (keepOps.has(op) || ALWAYS_FP32.has(op) || ((n.domain ?? '') !== '' && n.domain !== 'ai.onnx') || nameKept(n)) kept.add(n);
  }
  let tail = 0;
  if (options.keepOutputTail ?? true) {
    const stack = g.output.map((o) => index.producer.get(o.name ?? '')).filter((n): n is NodeProto => n !== undefined);
    const seen = new Set<NodeProto>();
    while (stack.length) {
      const n = stack.pop()!;
      if (seen.has(n)) continue;
      seen.add(n);
      if (TAIL_STOP.has(n.op_type ?? '')) {
        // a single-output-channel Conv on the border is a fixed reduction (Ultralytics' DFL expectation)
        const w = index.initializers.get(n.input[1] ?? '');
        if (n.op_type === 'Conv' && w && w.dims[0] === 1) {
          kept.add(n);
          tail++;
        }
        continue;
      }
      kept.add(n);
      tail++;
      for (const i of n.input) {
        const p = index.producer.get(i);
        if (p) stack.push(p);
      }
    }
  }
  const isFloat = (v: string) => types.get(v) === F;
  const touchesFloat = (n: NodeProto) => n.input.some((i) => i && isFloat(i)) || n.output.some((o) => o && isFloat(o));
  const converted = new Set(g.node.filter((n) => !kept.has(n) && touchesFloat(n)));
  // Constant nodes follow their readers: converted only when every reader is
  for (const n of g.node) {
    if (n.op_type !== 'Constant' || !converted.has(n)) continue;
    const readers = index.consumers.get(n.output[0]!) ?? [];
    if (readers.some((r) => !converted.has(r))) converted.delete(n);
  }
  if (converted.size === 0) throw passFailed(PASS, undefined, 'every float node is kept in float32: nothing to convert');

  // ---- value precisions after conversion
  const half = new Set<string>();
  for (const n of converted) for (const o of n.output) if (o && isFloat(o)) half.add(o);
  const realInputs = new Set(modelInputs(out).map((i) => i.name!));
  if (!keepIO) for (const i of realInputs) if (isFloat(i)) half.add(i);

  // ---- node rewrites: Cast targets, ConstantOfShape and Constant values
  for (const n of converted) {
    if (n.op_type === 'Cast') {
      const to = getAttribute(n, 'to');
      if (to && Number(to.i) === F) to.i = H;
    }
    for (const attrName of ['value']) {
      const a = getAttribute(n, attrName);
      if (a?.t && a.t.data_type === F && (n.op_type === 'Constant' || n.op_type === 'ConstantOfShape')) a.t = toHalfTensor(a.t, a.t.name ?? '');
    }
  }

  // ---- initializers
  const halfUse = (n: NodeProto, k: number) => converted.has(n) && !(FP32_ONLY_INPUTS[n.op_type ?? ''] ?? []).includes(k);
  let convertedWeights = 0;
  for (const t of [...g.initializer]) {
    if (t.data_type !== F || !t.name || realInputs.has(t.name)) continue;
    const uses = (index.consumers.get(t.name) ?? []).flatMap((n) => n.input.map((i, k) => (i === t.name ? { n, k } : undefined)).filter((u) => u !== undefined));
    const halfUses = uses.filter((u) => halfUse(u!.n, u!.k));
    if (halfUses.length === 0) continue;
    convertedWeights++;
    if (halfUses.length === uses.length) {
      Object.assign(t, toHalfTensor(t, t.name));
      half.add(t.name);
    } else {
      const copy = toHalfTensor(t, fresh(`${t.name}_fp16`));
      g.initializer.push(copy);
      half.add(copy.name!);
      for (const u of halfUses) u!.n.input[u!.k] = copy.name!;
    }
  }

  // ---- Casts at precision borders
  const castCache = new Map<string, string>();
  const casts: NodeProto[] = [];
  const castTo = (v: string, to: number): string => {
    const key = `${v}->${to}`;
    let name = castCache.get(key);
    if (!name) {
      name = fresh(`${v}_${to === H ? 'fp16' : 'fp32'}`);
      casts.push(makeNode('Cast', [v], [name], { to }, fresh(`osprey/fp16/Cast_${to === H ? 'fp16' : 'fp32'}_${v}`)));
      castCache.set(key, name);
    }
    return name;
  };
  let borders = 0;
  for (const n of g.node) {
    n.input.forEach((v, k) => {
      if (!v || !(isFloat(v) || half.has(v))) return;
      const have = half.has(v) ? H : F;
      const need = SHAPE_ONLY.has(n.op_type ?? '') ? have : halfUse(n, k) ? H : F;
      if (have !== need) {
        n.input[k] = castTo(v, need);
        borders++;
      }
    });
  }
  // graph outputs
  for (const o of g.output) {
    const v = o.name!;
    if (!(isFloat(v) || half.has(v))) continue;
    const have = half.has(v) ? H : F;
    const want = keepIO ? F : H;
    if (have === want) continue;
    const producer = index.producer.get(v);
    if (!producer) throw passFailed(PASS, undefined, `output '${v}' is not produced by a node`);
    const inner = fresh(`${v}_${have === H ? 'fp16' : 'fp32'}`);
    producer.output = producer.output.map((x) => (x === v ? inner : x));
    replaceInputs(g, v, inner);
    if (have === H) {
      half.delete(v);
      half.add(inner);
    }
    casts.push(makeNode('Cast', [inner], [v], { to: want }, fresh(`osprey/fp16/Cast_output_${v}`)));
    borders++;
  }
  g.node.push(...casts);

  // ---- declarations
  for (const v of [...g.input, ...g.output, ...g.value_info]) {
    const tt = v.type?.tensor_type;
    if (!tt || !v.name) continue;
    if (g.output.includes(v)) tt.elem_type = keepIO ? (tt.elem_type === H ? H : tt.elem_type) : tt.elem_type === F ? H : tt.elem_type;
    else if (half.has(v.name) && tt.elem_type === F) tt.elem_type = H;
  }
  if (!keepIO) for (const o of g.output) if (o.type?.tensor_type?.elem_type === F) o.type.tensor_type.elem_type = H;
  topologicalSort(g);
  const opset = opsetVersion(out) ?? 0;
  setMetadata(out, { osprey_precision: 'fp16' });
  log(
    `fp16: ${converted.size} nodes in float16, ${g.node.length - converted.size - casts.length} kept float32 (${tail} in the output tail; ops kept: ${[...keepOps].join(', ') || 'none'}), ` +
      `${convertedWeights} weights converted, ${casts.length} Cast nodes at ${borders} borders, IO ${keepIO ? 'float32' : 'float16'}, opset ${opset}`,
  );
  return out;
}

function toHalfTensor(t: TensorProto, name: string): TensorProto {
  const h = makeTensor(name, t.dims, float32ToFloat16(tensorToFloat32(t)), DataType.FLOAT16);
  if (t.doc_string) h.doc_string = t.doc_string;
  return h;
}
