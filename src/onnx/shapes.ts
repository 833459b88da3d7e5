/**
 * Static shape inference, a small subset of ONNX's: value_info / graph inputs / outputs / initializers are
 * taken as declared, and the shapes of other values are derived for the operators YOLO exports use (Conv,
 * pooling, element-wise with numpy broadcasting, Concat, Split, Reshape, Transpose, Slice, Resize, Softmax,
 * Flatten, Squeeze/Unsqueeze, Gather, Cast, Shape, reductions, ArgMax, TopK, GatherElements, MatMul).
 * A value whose shape cannot be derived is absent from the result (callers treat that as "unknown").
 */
import type { GraphProto, NodeProto } from './proto-types.js';
import { getAttribute, getConstant, getIntAttribute, getIntsAttribute, indexGraph, type GraphIndex } from './graph.js';
import { tensorToFloat32, tensorToNumbers } from './tensor.js';

/** A shape: sizes, symbolic names (`'batch'`) or -1 for an unknown size. */
export type Shape = (number | string)[];

const SAME_SHAPE = new Set([
  'Sigmoid', 'Relu', 'LeakyRelu', 'Tanh', 'Exp', 'Log', 'Sqrt', 'Neg', 'Abs', 'Clip', 'Cast', 'CastLike', 'Identity', 'Erf',
  'HardSigmoid', 'HardSwish', 'Softmax', 'LogSoftmax', 'Hardmax', 'Floor', 'Ceil', 'Round', 'Sign', 'Reciprocal', 'Not',
  'Dropout', 'BatchNormalization', 'InstanceNormalization', 'LRN', 'Elu', 'Selu', 'Softplus', 'Softsign', 'Mish', 'Gelu',
  'QuantizeLinear', 'DequantizeLinear', 'IsNaN', 'IsInf', 'LayerNormalization',
]);

const BROADCAST = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Equal', 'Greater', 'Less', 'GreaterOrEqual',
  'LessOrEqual', 'And', 'Or', 'Xor', 'Where', 'PRelu', 'Mod', 'BitShift',
]);

/** Numpy-style broadcast of shapes (undefined when some input is unknown). */
export function broadcastShapes(shapes: (Shape | undefined)[]): Shape | undefined {
  if (shapes.some((s) => s === undefined)) return undefined;
  const rank = Math.max(...shapes.map((s) => s!.length));
  const out: Shape = [];
  for (let k = 0; k < rank; k++) {
    let d: number | string = 1;
    for (const s of shapes) {
      const v = s![s!.length - rank + k];
      if (v === undefined || v === 1) continue;
      if (d === 1) d = v;
      else if (d !== v) d = typeof d === 'number' && typeof v === 'number' ? -1 : d === -1 ? v : d;
    }
    out.push(d);
  }
  return out;
}

function norm(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

function num(d: number | string | undefined): number | undefined {
  return typeof d === 'number' && d >= 0 ? d : undefined;
}

/**
 * Infers the shapes of all values of `graph` that can be derived (see the module note).
 * @returns value name → shape.
 */
export function inferShapes(graph: GraphProto, index: GraphIndex = indexGraph(graph)): Map<string, Shape> {
  const shapes = new Map<string, Shape>();
  for (const t of graph.initializer) if (t.name) shapes.set(t.name, [...t.dims]);
  for (const v of [...graph.input, ...graph.value_info, ...graph.output]) {
    const s = v.type?.tensor_type?.shape;
    if (v.name && s) shapes.set(v.name, s.dim.map((d) => (d.dim_value !== undefined ? d.dim_value : d.dim_param ? d.dim_param : -1)));
  }
  const ints = (name: string | undefined): number[] | undefined => {
    if (!name) return undefined;
    const c = getConstant(graph, name, index);
    return c ? tensorToNumbers(c) : undefined;
  };
  for (const n of graph.node) {
    if (n.output.every((o) => !o || shapes.has(o))) continue;
    let out: (Shape | undefined)[] = [];
    try {
      out = inferNode(n, (i) => (i ? shapes.get(i) : undefined), ints, graph, index);
    } catch {
      out = [];
    }
    n.output.forEach((o, k) => {
      const s = out[k];
      if (o && s && !shapes.has(o)) shapes.set(o, s);
    });
  }
  return shapes;
}

function inferNode(
  n: NodeProto,
  shapeOf: (name: string | undefined) => Shape | undefined,
  ints: (name: string | undefined) => number[] | undefined,
  graph: GraphProto,
  index: GraphIndex,
): (Shape | undefined)[] {
  const op = n.op_type ?? '';
  const x = shapeOf(n.input[0]);
  if (op === 'Constant') {
    const c = getConstant(graph, n.output[0]!, index);
    return [c ? [...c.dims] : undefined];
  }
  if (SAME_SHAPE.has(op)) return [x];
  if (BROADCAST.has(op)) return [broadcastShapes(n.input.map((i) => shapeOf(i)))];
  if (!x) return [];
  const rank = x.length;
  switch (op) {
    case 'Conv':
    case 'ConvInteger':
    case 'MaxPool':
    case 'AveragePool': {
      const w = shapeOf(n.input[1]);
      const spatial = rank - 2;
      const kernel = getIntsAttribute(n, 'kernel_shape') ?? w?.slice(2).map((d) => Number(d));
      if (!kernel) return [];
      const strides = getIntsAttribute(n, 'strides') ?? new Array(spatial).fill(1);
      const dil = getIntsAttribute(n, 'dilations') ?? new Array(spatial).fill(1);
      const pads = getIntsAttribute(n, 'pads') ?? new Array(2 * spatial).fill(0);
      const autoPad = getAttribute(n, 'auto_pad')?.s ? new TextDecoder().decode(getAttribute(n, 'auto_pad')!.s) : 'NOTSET';
      const ceil = getIntAttribute(n, 'ceil_mode', 0) === 1;
      const out: Shape = [x[0]!, op.startsWith('Conv') ? (w?.[0] ?? -1) : x[1]!];
      for (let k = 0; k < spatial; k++) {
        const inD = num(x[2 + k]);
        if (inD === undefined) return [];
        if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') out.push(Math.ceil(inD / strides[k]!));
        else {
          const eff = (kernel[k]! - 1) * dil[k]! + 1;
          const v = (inD + pads[k]! + pads[k + spatial]! - eff) / strides[k]!;
          out.push((ceil ? Math.ceil(v) : Math.floor(v)) + 1);
        }
      }
      return [out];
    }
    case 'GlobalAveragePool':
    case 'GlobalMaxPool':
      return [[x[0]!, x[1]!, ...x.slice(2).map(() => 1)]];
    case 'Concat': {
      const all = n.input.map((i) => shapeOf(i));
      if (all.some((s) => !s)) return [];
      const axis = norm(getIntAttribute(n, 'axis', 0)!, rank);
      const out = [...x];
      let sum = 0;
      for (const s of all) {
        const d = num(s![axis]);
        if (d === undefined) return [out.map((v, k) => (k === axis ? -1 : v))];
        sum += d;
      }
      out[axis] = sum;
      return [out];
    }
    case 'Split': {
      const axis = norm(getIntAttribute(n, 'axis', 0)!, rank);
      let sizes = ints(n.input[1]) ?? getIntsAttribute(n, 'split');
      const total = num(x[axis]);
      if ((!sizes || sizes.length === 0) && total !== undefined) {
        const parts = getIntAttribute(n, 'num_outputs', n.output.length)!;
        const each = Math.ceil(total / parts);
        sizes = Array.from({ length: parts }, (_, k) => Math.min(each, total - each * k));
      }
      if (!sizes) return [];
      return sizes.map((s) => x.map((v, k) => (k === axis ? s : v)));
    }
    case 'Reshape': {
      const shape = ints(n.input[1]);
      if (!shape) return [];
      const allowzero = getIntAttribute(n, 'allowzero', 0) === 1;
      const out: Shape = shape.map((d, k) => (d === 0 && !allowzero ? (x[k] ?? -1) : d));
      const minus = out.indexOf(-1);
      if (minus >= 0) {
        const totalIn = x.reduce<number | undefined>((a, d) => (a === undefined || num(d) === undefined ? undefined : a * num(d)!), 1);
        const known = out.reduce<number | undefined>((a, d, k) => (k === minus ? a : a === undefined || num(d) === undefined ? undefined : a * num(d)!), 1);
        out[minus] = totalIn !== undefined && known ? totalIn / known : -1;
      }
      return [out];
    }
    case 'Transpose': {
      const perm = getIntsAttribute(n, 'perm') ?? x.map((_, k) => rank - 1 - k);
      return [perm.map((p) => x[p]!)];
    }
    case 'Slice': {
      const starts = ints(n.input[1]);
      const ends = ints(n.input[2]);
      if (!starts || !ends) {
        // Run-time bounds (e.g. torch's chunk: ends = Shape(x)[1] / 2): the rank is kept and the sliced axes are unknown.
        const axes = ints(n.input[3]);
        if (!axes) return [x.map(() => -1)];
        const out = [...x];
        for (const a of axes) out[norm(a, rank)] = -1;
        return [out];
      }
      const axes = ints(n.input[3]) ?? starts.map((_, k) => k);
      const steps = ints(n.input[4]) ?? starts.map(() => 1);
      const out = [...x];
      axes.forEach((a0, k) => {
        const a = norm(a0, rank);
        const d = num(x[a]);
        if (d === undefined) {
          out[a] = -1;
          return;
        }
        const step = steps[k]!;
        const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
        let s = starts[k]! < 0 ? starts[k]! + d : starts[k]!;
        let e = ends[k]! < 0 ? ends[k]! + d : ends[k]!;
        if (step > 0) {
          s = clamp(s, 0, d);
          e = clamp(e, 0, d);
          out[a] = Math.max(0, Math.ceil((e - s) / step));
        } else {
          s = clamp(s, 0, d - 1);
          e = clamp(e, -1, d - 1);
          out[a] = Math.max(0, Math.ceil((e - s) / step));
        }
      });
      return [out];
    }
    case 'Resize':
    case 'Upsample': {
      const sizes = ints(n.input[3]);
      if (sizes && sizes.length === rank) return [sizes];
      const scalesName = op === 'Upsample' ? n.input[1] : n.input[2];
      const sc = scalesName ? getConstant(graph, scalesName, index) : undefined;
      if (!sc) return [];
      const scales = tensorToFloat32(sc);
      if (scales.length !== rank) return [];
      return [x.map((d, k) => (num(d) === undefined ? (scales[k] === 1 ? d : -1) : Math.floor(num(d)! * scales[k]!)))];
    }
    case 'Flatten': {
      const axis = norm(getIntAttribute(n, 'axis', 1)!, rank);
      const prod = (s: Shape) => s.reduce<number>((a, d) => (a < 0 || num(d) === undefined ? -1 : a * num(d)!), 1);
      return [[prod(x.slice(0, axis)), prod(x.slice(axis))]];
    }
    case 'Squeeze': {
      const axes = (ints(n.input[1]) ?? getIntsAttribute(n, 'axes'))?.map((a) => norm(a, rank));
      return [x.filter((d, k) => (axes ? !axes.includes(k) : d !== 1))];
    }
    case 'Unsqueeze': {
      const axes0 = ints(n.input[1]) ?? getIntsAttribute(n, 'axes');
      if (!axes0) return [];
      const outRank = rank + axes0.length;
      const axes = axes0.map((a) => norm(a, outRank));
      const out: Shape = [];
      let j = 0;
      for (let k = 0; k < outRank; k++) out.push(axes.includes(k) ? 1 : x[j++]!);
      return [out];
    }
    case 'Gather': {
      const idx = shapeOf(n.input[1]);
      if (!idx) return [];
      const axis = norm(getIntAttribute(n, 'axis', 0)!, rank);
      return [[...x.slice(0, axis), ...idx, ...x.slice(axis + 1)]];
    }
    case 'GatherElements':
      return [shapeOf(n.input[1])];
    case 'Shape':
      return [[rank]];
    case 'ReduceMax':
    case 'ReduceMin':
    case 'ReduceMean':
    case 'ReduceSum':
    case 'ReduceProd':
    case 'ArgMax':
    case 'ArgMin': {
      const keep = getIntAttribute(n, 'keepdims', 1) === 1;
      let axes: number[] | undefined;
      if (op === 'ArgMax' || op === 'ArgMin') axes = [getIntAttribute(n, 'axis', 0)!];
      else axes = ints(n.input[1]) ?? getIntsAttribute(n, 'axes');
      const a = (axes && axes.length ? axes : x.map((_, k) => k)).map((v) => norm(v, rank));
      return [keep ? x.map((d, k) => (a.includes(k) ? 1 : d)) : x.filter((_, k) => !a.includes(k))];
    }
    case 'TopK': {
      const k = ints(n.input[1]);
      const axis = norm(getIntAttribute(n, 'axis', -1)!, rank);
      const s = x.map((d, j) => (j === axis ? (k ? k[0]! : -1) : d));
      return [s, s];
    }
    case 'MatMul': {
      const y = shapeOf(n.input[1]);
      if (!y || rank < 2 || y.length < 2) return [];
      const batch = broadcastShapes([x.slice(0, -2), y.slice(0, -2)]);
      return batch ? [[...batch, x[rank - 2]!, y[y.length - 1]!]] : [];
    }
    default:
      return [];
  }
}

const BOOL_OUT = new Set(['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or', 'Xor', 'Not', 'IsNaN', 'IsInf']);
const INT64_OUT = new Set(['Shape', 'Size', 'ArgMax', 'ArgMin', 'NonZero', 'NonMaxSuppression']);

/**
 * Element type (ONNX code) of every value it can derive: declarations and initializers first, then per node
 * (Cast → `to`; Shape/ArgMax/NonZero/NonMaxSuppression → INT64; comparisons → BOOL; TopK → [T, INT64];
 * Constant/ConstantOfShape → their tensor's type; QuantizeLinear → its zero point's type (UINT8 without);
 * DequantizeLinear → its scale's type; Where → its second input's type; others → their first input's type).
 */
export function inferElemTypes(graph: GraphProto): Map<string, number> {
  const types = new Map<string, number>();
  for (const t of graph.initializer) if (t.name && t.data_type !== undefined) types.set(t.name, t.data_type);
  for (const v of [...graph.input, ...graph.value_info, ...graph.output]) {
    const e = v.type?.tensor_type?.elem_type;
    if (v.name && e !== undefined && e !== 0) types.set(v.name, e);
  }
  const FLOAT = 1, UINT8 = 2, INT64 = 7, BOOL = 9;
  for (const n of graph.node) {
    const op = n.op_type ?? '';
    const first = n.input[0] ? types.get(n.input[0]) : undefined;
    let outs: (number | undefined)[];
    if (op === 'Cast') outs = [getIntAttribute(n, 'to')];
    else if (op === 'CastLike') outs = [n.input[1] ? types.get(n.input[1]) : undefined];
    else if (INT64_OUT.has(op)) outs = [INT64];
    else if (BOOL_OUT.has(op)) outs = [BOOL];
    else if (op === 'TopK') outs = [first, INT64];
    else if (op === 'Constant') outs = [getAttribute(n, 'value')?.t?.data_type ?? (getAttribute(n, 'value_ints') || getAttribute(n, 'value_int') ? INT64 : FLOAT)];
    else if (op === 'ConstantOfShape') outs = [getAttribute(n, 'value')?.t?.data_type ?? FLOAT];
    else if (op === 'QuantizeLinear') outs = [n.input[2] ? types.get(n.input[2]) : UINT8];
    else if (op === 'DequantizeLinear') outs = [n.input[1] ? types.get(n.input[1]) : FLOAT];
    else if (op === 'DynamicQuantizeLinear') outs = [UINT8, FLOAT, UINT8];
    else if (op === 'ConvInteger' || op === 'MatMulInteger') outs = [6];
    else if (op === 'Where') outs = [n.input[1] ? types.get(n.input[1]) : undefined];
    else if (op === 'OneHot') outs = [n.input[2] ? types.get(n.input[2]) : undefined];
    else if (op === 'Range') outs = [first];
    else outs = n.output.map(() => first);
    n.output.forEach((o, k) => {
      const t = outs[k] ?? outs[0];
      if (o && t !== undefined && !types.has(o)) types.set(o, t);
    });
  }
  return types;
}
