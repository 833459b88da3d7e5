/**
 * The `fastDfl` pass: Ultralytics' Distribution Focal Loss decode rewritten so that ONNX Runtime's CPU EP runs its
 * softmax along the innermost axis.
 *
 * YOLOv8-style heads export the DFL expectation (Li et al., "Generalized Focal Loss", 2020: each box side is the
 * expectation Σ i·softmax(x)_i over `reg_max` = 16 bins) as
 *
 * ```
 * x [B, 4·R, N] → Reshape [B, 4, R, N] → Transpose(0,2,1,3) [B, R, 4, N] → Softmax(axis=1)
 *   → Conv 1×1 (R → 1 channel, weights 0..R−1, no bias) [B, 1, 4, N] → Reshape [B, 4, N]
 * ```
 *
 * ORT's Softmax over a non-innermost axis transposes internally, and the single-channel Conv runs in NCHWc with
 * reorders around it: profiled on yolov8n (batch 1, 2-core AVX512 CPU) that Softmax alone took 4.8–5.0 ms of the
 * 39 ms INT8 run (13%), as much as in the 78 ms FP32 run. The rewrite computes the same expectation as
 *
 * ```
 * x [B, 4·R, N] → Transpose(0,2,1) [B, N, 4·R] → Reshape [B, N, 4, R] → Softmax(axis=−1)
 *   → MatMul [R, 1] (the Conv's weights) [B, N, 4, 1] → Reshape [B, N, 4] → Transpose(0,2,1) [B, 4, N]
 * ```
 *
 * (0.3–0.7 ms for the Softmax after the rewrite). Same arithmetic; only the summation order of the 16-term dot
 * product could differ, and on yolov8n the outputs are bit-identical (bus.jpg + zidane.jpg, batch 2:
 * test/optimize/dfl.test.ts). Graphs without the pattern are left unchanged; the batch axis stays symbolic (`0` in
 * the Reshape shapes copies it).
 */
import { findConsumers, findProducer, getConstant, getConstantInts, getIntAttribute, getIntsAttribute, indexGraph, opsetVersion, removeUnusedNodes, topologicalSort } from '../onnx/graph.js';
import { GraphBuilder } from '../onnx/passes/builder.js';
import type { NodeProto, OnnxModel } from '../onnx/proto-types.js';
import { DataType } from '../onnx/proto-types.js';
import { cloneOnnxModel } from '../onnx/model.js';
import { tensorToFloat32 } from '../onnx/tensor.js';

/** Options of {@link fastDfl}. */
export interface FastDflOptions {
  /** One line per rewrite or per reason for leaving the graph as it was. */
  log?: (line: string) => void;
}

/** The matched DFL nodes, in graph order. */
interface DflMatch {
  reshapeIn: NodeProto;
  transpose: NodeProto;
  softmax: NodeProto;
  conv: NodeProto;
  reshapeOut: NodeProto;
  bins: number;
  weights: Float32Array;
}

function sameInts(a: readonly number[] | undefined, b: readonly number[]): boolean {
  return a !== undefined && a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Finds every DFL decode of the form in the module doc. */
function findDfl(model: OnnxModel): { matches: DflMatch[]; misses: string[] } {
  const g = model.graph;
  const index = indexGraph(g);
  const matches: DflMatch[] = [];
  const misses: string[] = [];
  for (const softmax of g.node) {
    if (softmax.op_type !== 'Softmax' || (softmax.domain ?? '') !== '') continue;
    const label = softmax.name ?? softmax.output[0] ?? 'Softmax';
    const transpose = findProducer(g, softmax.input[0] ?? '');
    if (!transpose || transpose.op_type !== 'Transpose' || !sameInts(getIntsAttribute(transpose, 'perm'), [0, 2, 1, 3])) continue;
    if (getIntAttribute(softmax, 'axis', -1) !== 1) continue;
    const reshapeIn = findProducer(g, transpose.input[0] ?? '');
    const consumers = findConsumers(g, softmax.output[0] ?? '');
    const conv = consumers[0];
    if (!reshapeIn || reshapeIn.op_type !== 'Reshape' || consumers.length !== 1 || !conv || conv.op_type !== 'Conv' || conv.input.length > 2 && conv.input[2]) {
      misses.push(`${label}: Softmax(axis=1) after Transpose(0,2,1,3) but not between a Reshape and a bias-free Conv`);
      continue;
    }
    const shapeIn = getConstantInts(g, reshapeIn.input[1] ?? '', index);
    const w = getConstant(g, conv.input[1] ?? '', index);
    const bins = shapeIn?.[2];
    if (!shapeIn || shapeIn.length !== 4 || shapeIn[1] !== 4 || !bins || bins < 2 || !w || w.data_type !== DataType.FLOAT || !sameInts(w.dims, [1, bins, 1, 1])) {
      misses.push(`${label}: the Reshape/Conv around it are not [B, 4, R, N] / [1, R, 1, 1] float weights`);
      continue;
    }
    if ((getIntAttribute(conv, 'group', 1) ?? 1) !== 1 || !(getIntsAttribute(conv, 'kernel_shape') ?? [1, 1]).every((k) => k === 1)) continue;
    if ((getIntsAttribute(conv, 'strides') ?? [1, 1]).some((s) => s !== 1) || (getIntsAttribute(conv, 'pads') ?? [0, 0, 0, 0]).some((p) => p !== 0)) continue;
    const outs = findConsumers(g, conv.output[0] ?? '');
    const reshapeOut = outs[0];
    const shapeOut = reshapeOut && reshapeOut.op_type === 'Reshape' ? getConstantInts(g, reshapeOut.input[1] ?? '', index) : undefined;
    if (outs.length !== 1 || !reshapeOut || !shapeOut || shapeOut.length !== 3 || shapeOut[1] !== 4) {
      misses.push(`${label}: the Conv's output does not go straight into a Reshape to [B, 4, N]`);
      continue;
    }
    const inner = [reshapeIn.output[0], transpose.output[0], softmax.output[0], conv.output[0]];
    if (findConsumers(g, reshapeIn.output[0] ?? '').length !== 1 || findConsumers(g, transpose.output[0] ?? '').length !== 1 || g.output.some((o) => o.name !== undefined && inner.includes(o.name))) {
      misses.push(`${label}: an intermediate tensor of the decode has other readers`);
      continue;
    }
    matches.push({ reshapeIn, transpose, softmax, conv, reshapeOut, bins, weights: tensorToFloat32(w) });
  }
  return { matches, misses };
}

/**
 * Rewrites every DFL decode (see the module doc). Returns a new model; the input is left unchanged.
 * @example fastDfl(readOnnxModel('yolov8n.onnx')) // '/model.22/dfl/Softmax' now runs on [1, 8400, 4, 16], axis −1
 */
export function fastDfl(model: OnnxModel, options: FastDflOptions = {}): OnnxModel {
  const { matches, misses } = findDfl(model);
  for (const m of misses) options.log?.(`fastDfl: left as is: ${m}`);
  if (matches.length === 0) {
    options.log?.('fastDfl: no DFL decode (Reshape → Transpose → Softmax(axis=1) → 1-channel Conv → Reshape) found; graph unchanged');
    return model;
  }
  const out = cloneOnnxModel(model);
  const g = out.graph;
  const b = new GraphBuilder(g, 'osprey/dfl/', opsetVersion(out) ?? 13);
  for (const m0 of matches) {
    const reshapeIn = g.node.find((n) => n.output[0] === m0.reshapeIn.output[0])!;
    const reshapeOut = g.node.find((n) => n.output[0] === m0.reshapeOut.output[0])!;
    const x = reshapeIn.input[0]!;
    const t1 = b.op1('Transpose', [x], { perm: [0, 2, 1] }, 'Transpose');
    const r1 = b.op1('Reshape', [t1, b.int64([0, -1, 4, m0.bins], 'shape')], {}, 'Reshape');
    const sm = b.op1('Softmax', [r1], { axis: -1 }, 'Softmax');
    const mm = b.op1('MatMul', [sm, b.float(Array.from(m0.weights), DataType.FLOAT, 'bins', [m0.bins, 1])], {}, 'MatMul');
    const r2 = b.op1('Reshape', [mm, b.int64([0, -1, 4], 'shape')], {}, 'Reshape');
    // the last Transpose writes the old Reshape's output name, so every reader (and value_info) stays valid
    b.opInto('Transpose', [r2], reshapeOut.output[0]!, { perm: [0, 2, 1] });
    reshapeOut.output[0] = b.name('unused');
    options.log?.(`fastDfl: ${m0.softmax.name ?? 'Softmax'}: Softmax over the innermost axis of [B, N, 4, ${m0.bins}] + MatMul [${m0.bins}, 1] instead of Softmax(axis=1) + 1-channel Conv`);
  }
  g.node.push(...b.nodes);
  removeUnusedNodes(g);
  topologicalSort(g);
  return out;
}
