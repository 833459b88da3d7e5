/**
 * parse → lower → fuse: an ONNX YOLO detection export (Ultralytics YOLOv8/YOLO11 layout: Conv, SiLU as
 * Sigmoid·Mul, residual Add, Concat, Split, MaxPool, nearest Resize, the Detect head's DFL + dist2bbox) into a
 * list of fused operations on named values with per-image NCHW shapes.
 *
 * Fusions (each a pure pass over the op list, logged):
 * - **Conv + bias + SiLU**: `Conv → Sigmoid, Mul(x, sigmoid(x))` becomes one conv with a SiLU epilogue.
 * - **Residual Add into the epilogue**: `Add(conv(...), shortcut)` where the conv's output has no other reader
 *   becomes the conv's residual input (added after the activation, as YOLO's bottleneck does).
 * - **Detect head**: everything after the last box/class convolutions (Reshape, Concat over levels, DFL
 *   Reshape/Transpose/Softmax/Conv, Slice, anchors Sub/Add, Div, Concat, × strides, Sigmoid, final Concat) becomes
 *   one {@link DetectOp} with the anchor points and strides read from the graph's constants.
 * Concat and Split stay as ops here; {@link placeTensors} (place.ts) turns them into views.
 */
import { OspreyError } from '../core/errors.js';
import { nearestResizeModes, readsFloorOfFactor } from '../onnx/resize.js';
import {
  getConstant,
  getIntAttribute,
  getIntsAttribute,
  getStringAttribute,
  indexGraph,
  inferShapes,
  tensorToFloat32,
  tensorToNumbers,
  type GraphIndex,
  type NodeProto,
  type OnnxModel,
  type TensorProto,
} from '../onnx/index.js';

/** Per-image shape `[C, H, W]` (the batch axis dropped). */
export type Chw = [number, number, number];

export interface ConvOp {
  kind: 'conv';
  name: string;
  input: string;
  output: string;
  residual?: string;
  /** ONNX weight `[cout, cin, kh, kw]`, float32. */
  weight: Float32Array;
  bias: Float32Array;
  cin: number;
  cout: number;
  kernel: [number, number];
  stride: [number, number];
  pads: [number, number, number, number];
  activation: 'none' | 'silu';
  fused: string[];
  /** Index of the last ONNX node absorbed (execution order). */
  order: number;
}

export interface MaxPoolOp {
  kind: 'maxpool';
  name: string;
  input: string;
  output: string;
  kernel: [number, number];
  stride: [number, number];
  pads: [number, number, number, number];
  order: number;
}

export interface UpsampleOp {
  kind: 'upsample';
  name: string;
  input: string;
  output: string;
  scale: number;
  order: number;
}

export interface ConcatOp {
  kind: 'concat';
  name: string;
  inputs: string[];
  output: string;
  order: number;
}

export interface SplitOp {
  kind: 'split';
  name: string;
  input: string;
  outputs: string[];
  sizes: number[];
  order: number;
}

export interface DetectLevel {
  /** Box-logit conv output `[4·regMax, H, W]`. */
  box: string;
  /** Class-logit conv output `[numClasses, H, W]`. */
  cls: string;
  h: number;
  w: number;
  anchorOffset: number;
}

export interface DetectOp {
  kind: 'detect';
  name: string;
  levels: DetectLevel[];
  anchors: number;
  regMax: number;
  numClasses: number;
  /** `[anchors, 2]` anchor points (x, y), cells. */
  anchorPoints: Float32Array;
  /** `[anchors]` strides, pixels. */
  anchorStrides: Float32Array;
  output: string;
  fused: string[];
  order: number;
}

export type FusedOp = ConvOp | MaxPoolOp | UpsampleOp | ConcatOp | SplitOp | DetectOp;

export interface LoweredGraph {
  input: { name: string; chw: Chw };
  output: { name: string; shape: number[] };
  ops: FusedOp[];
  /** Per-image NCHW shape of every value the ops read or write. */
  shapes: Map<string, Chw>;
  /** Sum of every intermediate value of the source graph at FP32, bytes per image. */
  onnxTensorBytesPerImage: number;
  metadata: Record<string, string>;
  log: string[];
}

function fail(node: NodeProto | undefined, why: string): OspreyError {
  return new OspreyError('OSPREY_ERR_GPU_COMPILE', `${node ? `node '${node.name ?? node.op_type}' (${node.op_type}): ` : ''}${why}`, node ? { node: node.name, opType: node.op_type } : {});
}

/** Parses and lowers the model: static per-image shapes, constants folded into the ops that read them. */
export function lowerOnnx(model: OnnxModel): LoweredGraph {
  const g = model.graph;
  const index = indexGraph(g);
  const rawShapes = inferShapes(g, index);
  const log: string[] = [];
  const inits = new Set(g.initializer.map((t) => t.name!));
  const realInputs = g.input.filter((i) => !inits.has(i.name!));
  if (realInputs.length !== 1) throw fail(undefined, `the model has ${realInputs.length} inputs; the GPU engine takes one image input`);
  if (g.output.length !== 1) throw fail(undefined, `the model has ${g.output.length} outputs; the GPU engine lowers single-output detection models`);
  const constant = (name: string): TensorProto | undefined => getConstant(g, name, index);

  const perImage = (name: string, node?: NodeProto): number[] => {
    const s = rawShapes.get(name);
    if (!s) throw fail(node, `the shape of '${name}' cannot be inferred`);
    const rest = s.slice(1);
    if (!rest.every((d) => typeof d === 'number' && d >= 0)) throw fail(node, `'${name}' has shape [${s.join(',')}]: only the batch axis may be dynamic`);
    return rest as number[];
  };
  const chwOf = (name: string, node?: NodeProto): Chw => {
    const s = perImage(name, node);
    if (s.length !== 3) throw fail(node, `'${name}' is not a [batch, C, H, W] tensor (per-image shape [${s.join(',')}])`);
    return s as Chw;
  };
  const shapes = new Map<string, Chw>();
  const inputName = realInputs[0]!.name!;
  const inChw = chwOf(inputName);
  shapes.set(inputName, inChw);

  let onnxBytes = 0;
  for (const n of g.node) {
    if (n.op_type === 'Constant') continue;
    for (const o of n.output) {
      const s = rawShapes.get(o);
      if (s && s.slice(1).every((d) => typeof d === 'number')) onnxBytes += (s.slice(1) as number[]).reduce((a, b) => a * b, 1) * 4;
    }
  }

  // ---- detect head (matched from the output backwards) ----
  const detect = matchDetectHead(model, index, constant, perImage);
  const headNodes = new Set(detect.fusedNodes);
  log.push(
    `detect head: ${detect.op.fused.length} nodes (DFL, dist2bbox, strides, sigmoid) fused into one layer; ${detect.op.levels.length} levels, ${detect.op.anchors} anchors, ${detect.op.numClasses} classes, regMax ${detect.op.regMax}`,
  );

  // ---- the body: one op per node, SiLU and residual Add fused ----
  const ops: FusedOp[] = [];
  const producerOp = new Map<string, FusedOp>();
  const consumers = (v: string) => index.consumers.get(v) ?? [];
  let silu = 0;
  let residual = 0;
  const skip = new Set<NodeProto>();
  g.node.forEach((n, order) => {
    if (skip.has(n) || headNodes.has(n) || n.op_type === 'Constant') return;
    const op = n.op_type;
    if (op === 'Conv') {
      const w = constant(n.input[1]!);
      if (!w) throw fail(n, 'the weight is not a constant');
      const group = getIntAttribute(n, 'group', 1)!;
      if (group !== 1) throw fail(n, `group ${group} convolutions are not supported yet`);
      const dil = getIntsAttribute(n, 'dilations') ?? [1, 1];
      if (dil.some((d) => d !== 1)) throw fail(n, `dilations [${dil.join(',')}] are not supported`);
      const autoPad = getStringAttribute(n, 'auto_pad');
      if (autoPad && autoPad !== 'NOTSET') throw fail(n, `auto_pad ${autoPad} is not supported (export with explicit pads)`);
      const dims = w.dims.map(Number);
      if (dims.length !== 4) throw fail(n, 'only 2-D convolutions are supported');
      const [cout, cin, kh, kw] = dims as [number, number, number, number];
      const b = n.input[2] ? constant(n.input[2]) : undefined;
      if (n.input[2] && !b) throw fail(n, 'the bias is not a constant');
      const pads = (getIntsAttribute(n, 'pads') ?? [0, 0, 0, 0]) as number[];
      const stride = (getIntsAttribute(n, 'strides') ?? [1, 1]) as number[];
      const inShape = chwOf(n.input[0]!, n);
      if (inShape[0] !== cin) throw fail(n, `input has ${inShape[0]} channels, the weight expects ${cin}`);
      const c: ConvOp = {
        kind: 'conv',
        name: n.name ?? `conv${order}`,
        input: n.input[0]!,
        output: n.output[0]!,
        weight: tensorToFloat32(w),
        bias: b ? tensorToFloat32(b) : new Float32Array(cout),
        cin,
        cout,
        kernel: [kh, kw],
        stride: [stride[0]!, stride[1]!],
        pads: [pads[0]!, pads[1]!, pads[2]!, pads[3]!],
        activation: 'none',
        fused: [n.name ?? op],
        order,
      };
      shapes.set(c.input, inShape);
      shapes.set(c.output, chwOf(c.output, n));
      // SiLU: x → Sigmoid(x), Mul(x, sigmoid)
      const readers = consumers(c.output);
      if (readers.length === 2) {
        const sig = readers.find((r) => r.op_type === 'Sigmoid');
        const mul = readers.find((r) => r.op_type === 'Mul');
        if (sig && mul && mul.input.includes(c.output) && mul.input.includes(sig.output[0]!) && consumers(sig.output[0]!).length === 1) {
          c.activation = 'silu';
          c.fused.push(sig.name ?? 'Sigmoid', mul.name ?? 'Mul');
          c.output = mul.output[0]!;
          shapes.set(c.output, chwOf(c.output, mul));
          skip.add(sig);
          skip.add(mul);
          silu++;
        }
      }
      ops.push(c);
      producerOp.set(c.output, c);
      return;
    }
    if (op === 'Add') {
      // residual: one side is a conv output read only by this Add
      for (const [a, b] of [
        [n.input[0]!, n.input[1]!],
        [n.input[1]!, n.input[0]!],
      ] as const) {
        const p = producerOp.get(a);
        if (p?.kind === 'conv' && !p.residual && consumers(a).length === 1 && !constant(b)) {
          const sa = shapes.get(a)!;
          const sb = chwOf(b, n);
          if (sa.join() !== sb.join()) continue;
          producerOp.delete(a);
          p.residual = b;
          p.output = n.output[0]!;
          p.fused.push(n.name ?? 'Add');
          p.order = order;
          shapes.set(b, sb);
          shapes.set(p.output, chwOf(p.output, n));
          producerOp.set(p.output, p);
          residual++;
          return;
        }
      }
      throw fail(n, 'an Add that is not a residual shortcut of a convolution is not supported');
    }
    if (op === 'Concat') {
      const axis = getIntAttribute(n, 'axis', 1)!;
      const rank = rawShapes.get(n.output[0]!)?.length ?? 4;
      if ((axis < 0 ? axis + rank : axis) !== 1) throw fail(n, `Concat on axis ${axis}: only the channel axis is supported outside the detect head`);
      for (const i of n.input) shapes.set(i, chwOf(i, n));
      shapes.set(n.output[0]!, chwOf(n.output[0]!, n));
      const c: ConcatOp = { kind: 'concat', name: n.name ?? `concat${order}`, inputs: [...n.input], output: n.output[0]!, order };
      ops.push(c);
      producerOp.set(c.output, c);
      return;
    }
    if (op === 'Split') {
      const axis = getIntAttribute(n, 'axis', 0)!;
      if ((axis < 0 ? axis + 4 : axis) !== 1) throw fail(n, `Split on axis ${axis}: only the channel axis is supported`);
      const inShape = chwOf(n.input[0]!, n);
      shapes.set(n.input[0]!, inShape);
      const sizes = n.output.map((o) => chwOf(o, n)[0]);
      n.output.forEach((o) => shapes.set(o, chwOf(o, n)));
      if (sizes.reduce((a, b) => a + b, 0) !== inShape[0]) throw fail(n, 'the split sizes do not add up to the input channels');
      const s: SplitOp = { kind: 'split', name: n.name ?? `split${order}`, input: n.input[0]!, outputs: [...n.output], sizes, order };
      ops.push(s);
      for (const o of s.outputs) producerOp.set(o, s);
      return;
    }
    if (op === 'MaxPool') {
      const k = getIntsAttribute(n, 'kernel_shape')!;
      const stride = getIntsAttribute(n, 'strides') ?? [1, 1];
      const pads = getIntsAttribute(n, 'pads') ?? [0, 0, 0, 0];
      if (getIntAttribute(n, 'ceil_mode', 0) === 1) throw fail(n, 'ceil_mode is not supported');
      if ((getIntsAttribute(n, 'dilations') ?? [1, 1]).some((d) => d !== 1)) throw fail(n, 'dilated pooling is not supported');
      shapes.set(n.input[0]!, chwOf(n.input[0]!, n));
      shapes.set(n.output[0]!, chwOf(n.output[0]!, n));
      const m: MaxPoolOp = {
        kind: 'maxpool',
        name: n.name ?? `maxpool${order}`,
        input: n.input[0]!,
        output: n.output[0]!,
        kernel: [k[0]!, k[1]!],
        stride: [stride[0]!, stride[1]!],
        pads: [pads[0]!, pads[1]!, pads[2]!, pads[3]!],
        order,
      };
      ops.push(m);
      producerOp.set(m.output, m);
      return;
    }
    if (op === 'Resize' || op === 'Upsample') {
      const { mode, coordinateMode: ctm, nearestMode: nearest } = nearestResizeModes(n);
      if (mode !== 'nearest') throw fail(n, `Resize mode '${mode}' is not supported (nearest only)`);
      const inShape = chwOf(n.input[0]!, n);
      const outShape = chwOf(n.output[0]!, n);
      const sy = outShape[1] / inShape[1];
      const sx = outShape[2] / inShape[2];
      if (sy !== sx || !Number.isInteger(sy) || sy < 1) throw fail(n, `scale ${sy}×${sx}: only equal integer upsampling factors are supported`);
      // the upsample kernel copies source pixel ⌊out / s⌋: the Resize's modes must read exactly that pixel everywhere
      const exact = readsFloorOfFactor(sy, inShape[1], ctm, nearest) && readsFloorOfFactor(sx, inShape[2], ctm, nearest);
      if (!exact) throw fail(n, `Resize nearest with coordinate_transformation_mode '${ctm}' and nearest_mode '${nearest}' does not copy pixel ⌊y / ${sy}⌋ (not supported)`);
      shapes.set(n.input[0]!, inShape);
      shapes.set(n.output[0]!, outShape);
      const u: UpsampleOp = { kind: 'upsample', name: n.name ?? `resize${order}`, input: n.input[0]!, output: n.output[0]!, scale: sy, order };
      ops.push(u);
      producerOp.set(u.output, u);
      return;
    }
    throw fail(n, `${op} is not supported by the GPU engine outside the detect head`);
  });
  ops.sort((a, b) => a.order - b.order);
  log.push(`lower: ${g.node.length} ONNX nodes → ${ops.length} ops before placement`);
  log.push(`fuse: ${silu} Conv+bias+SiLU (Sigmoid·Mul into the epilogue), ${residual} residual Add into the conv epilogue`);
  for (const l of detect.op.levels) {
    shapes.set(l.box, chwOf(l.box));
    shapes.set(l.cls, chwOf(l.cls));
  }
  detect.op.order = g.node.length;
  ops.push(detect.op);
  const metadata: Record<string, string> = {};
  for (const p of model.metadata_props ?? []) if (p.key && ['names', 'stride', 'imgsz', 'task', 'description', 'version'].includes(p.key)) metadata[p.key] = p.value ?? '';
  return {
    input: { name: inputName, chw: inChw },
    output: { name: g.output[0]!.name!, shape: rawShapes.get(g.output[0]!.name!)?.map(Number) ?? [] },
    ops,
    shapes,
    onnxTensorBytesPerImage: onnxBytes,
    metadata,
    log,
  };
}

/**
 * Matches the Ultralytics Detect head (YOLOv8 / YOLO11 export, `output0 = Concat(boxes·strides, sigmoid(cls))`):
 * ```
 * box_l  = Conv(...)  [4·regMax, H, W] → Reshape [1, 4·regMax, H·W] ─┐ Concat(axis 2) → Reshape [1,4,regMax,A] → Transpose(0,2,1,3)
 *   → Softmax(axis 1) → Conv(1×1, weights 0..regMax-1) → Reshape [1,4,A] → Slice lt [0:2], rb [2:4]
 *   → x1y1 = anchors − lt, x2y2 = anchors + rb → Concat((x1y1 + x2y2)/2, x2y2 − x1y1) · strides
 * cls_l  = Conv(...)  [nc, H, W] → Reshape [1, nc, H·W] → Concat(axis 2) → Sigmoid
 * ```
 */
function matchDetectHead(
  model: OnnxModel,
  index: GraphIndex,
  constant: (name: string) => TensorProto | undefined,
  perImage: (name: string, node?: NodeProto) => number[],
): { op: DetectOp; fusedNodes: NodeProto[] } {
  const g = model.graph;
  const nodes: NodeProto[] = [];
  const prod = (v: string, want: string, why: string): NodeProto => {
    const p = index.producer.get(v);
    if (!p || p.op_type !== want) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', `detect head: expected ${want} producing '${v}' (${why}), found ${p ? `${p.op_type} '${p.name}'` : 'a graph input or constant'}`, { value: v });
    nodes.push(p);
    return p;
  };
  const constOf = (n: NodeProto): { name: string; t: TensorProto; other: string } | undefined => {
    for (let i = 0; i < n.input.length; i++) {
      const t = constant(n.input[i]!);
      if (t) return { name: n.input[i]!, t, other: n.input[1 - i]! };
    }
    return undefined;
  };
  const out = g.output[0]!.name!;
  const outShape = perImage(out);
  if (outShape.length !== 2) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', `detect head: output '${out}' is [batch, ${outShape.join(', ')}], not a YOLOv8-style [batch, 4 + classes, anchors]`);
  const final = prod(out, 'Concat', 'boxes and scores');
  if (final.input.length !== 2) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', `detect head: the final Concat has ${final.input.length} inputs, expected 2 (boxes, scores)`);
  const [boxesV, scoresV] = final.input as [string, string];
  const sig = prod(scoresV, 'Sigmoid', 'class scores');
  const clsCat = prod(sig.input[0]!, 'Concat', 'class logits of every level');
  const mulStride = prod(boxesV, 'Mul', 'boxes × strides');
  const strides = constOf(mulStride);
  if (!strides) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', `detect head: '${mulStride.name}' has no constant strides input`);
  const cat2 = prod(strides.other, 'Concat', 'centre and size');
  const div = prod(cat2.input[0]!, 'Div', 'centre = (x1y1 + x2y2) / 2');
  const two = constOf(div);
  if (!two || tensorToNumbers(two.t)[0] !== 2) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', `detect head: '${div.name}' does not divide by 2`);
  const sum = prod(div.input[0]!, 'Add', 'x1y1 + x2y2');
  const wh = prod(cat2.input[1]!, 'Sub', 'size = x2y2 − x1y1');
  const x2y2V = wh.input[0]!;
  const x1y1V = wh.input[1]!;
  if (!sum.input.includes(x1y1V) || !sum.input.includes(x2y2V)) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', `detect head: '${sum.name}' does not add x1y1 and x2y2`);
  const sub = prod(x1y1V, 'Sub', 'x1y1 = anchors − lt');
  const add = prod(x2y2V, 'Add', 'x2y2 = anchors + rb');
  const anchorsT = constant(sub.input[0]!);
  if (!anchorsT) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', `detect head: '${sub.name}' has no constant anchor points as its first input`);
  const addAnchors = constOf(add);
  if (!addAnchors) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', `detect head: '${add.name}' has no constant anchor points`);
  const lt = prod(sub.input[1]!, 'Slice', 'lt = dist[0:2]');
  const rb = prod(addAnchors.other, 'Slice', 'rb = dist[2:4]');
  if (lt.input[0] !== rb.input[0]) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', 'detect head: lt and rb are not slices of one distance tensor');
  const sliceRange = (s: NodeProto) => [constant(s.input[1]!), constant(s.input[2]!)].map((t) => (t ? Number(tensorToNumbers(t)[0]) : NaN));
  const [lt0, lt1] = sliceRange(lt);
  const [rb0, rb1] = sliceRange(rb);
  if (lt0 !== 0 || lt1 !== 2 || rb0 !== 2 || rb1 !== 4) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', `detect head: slices [${lt0}:${lt1}] and [${rb0}:${rb1}] are not lt = [0:2], rb = [2:4]`);
  const distR = prod(lt.input[0]!, 'Reshape', 'distances [1, 4, A]');
  const dflConv = prod(distR.input[0]!, 'Conv', 'DFL expectation');
  const dflW = constant(dflConv.input[1]!);
  if (!dflW) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', 'detect head: the DFL conv weight is not constant');
  const wv = tensorToFloat32(dflW);
  const regMax = wv.length;
  for (let i = 0; i < regMax; i++) if (wv[i] !== i) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', `detect head: the DFL conv weight is not 0..${regMax - 1}`);
  const soft = prod(dflConv.input[0]!, 'Softmax', 'DFL softmax');
  const tr = prod(soft.input[0]!, 'Transpose', 'DFL transpose');
  const perm = getIntsAttribute(tr, 'perm');
  if (perm?.join() !== '0,2,1,3') throw new OspreyError('OSPREY_ERR_GPU_COMPILE', `detect head: DFL transpose perm [${perm?.join(',')}], expected [0,2,1,3]`);
  const softAxis = getIntAttribute(soft, 'axis', -1)!;
  if (softAxis !== 1) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', `detect head: DFL softmax on axis ${softAxis}, expected 1 (the bins after the transpose)`);
  const dflR = prod(tr.input[0]!, 'Reshape', 'DFL [1, 4, regMax, A]');
  const boxCat = prod(dflR.input[0]!, 'Concat', 'box logits of every level');
  const levelsOf = (cat: NodeProto, channels: number, what: string) =>
    cat.input.map((v) => {
      const r = prod(v, 'Reshape', `${what} of one level flattened`);
      const src = r.input[0]!;
      const s = perImage(src, r);
      if (s.length !== 3 || s[0] !== channels) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', `detect head: '${src}' is [${s.join(',')}], expected [${channels}, H, W]`);
      return { value: src, h: s[1]!, w: s[2]! };
    });
  for (const c of [boxCat, clsCat]) {
    const ax = getIntAttribute(c, 'axis', 0)!;
    if (ax !== 2 && ax !== -1) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', `detect head: '${c.name}' concatenates axis ${ax}, expected the anchor axis 2`);
  }
  const numClasses = outShape[0]! - 4;
  const boxLevels = levelsOf(boxCat, 4 * regMax, 'box logits');
  const clsLevels = levelsOf(clsCat, numClasses, 'class logits');
  if (boxLevels.length !== clsLevels.length) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', 'detect head: box and class levels differ in number');
  let offset = 0;
  const levels: DetectLevel[] = boxLevels.map((b, i) => {
    const c = clsLevels[i]!;
    if (b.h !== c.h || b.w !== c.w) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', `detect head: level ${i} box and class maps differ in size`);
    const l = { box: b.value, cls: c.value, h: b.h, w: b.w, anchorOffset: offset };
    offset += b.h * b.w;
    return l;
  });
  const anchors = offset;
  if (anchors !== outShape[1]) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', `detect head: ${anchors} anchors in the levels, the output has ${outShape[1]}`);
  const ap = tensorToFloat32(anchorsT);
  const apAdd = tensorToFloat32(addAnchors.t);
  if (ap.length !== 2 * anchors || apAdd.length !== 2 * anchors || ap.some((v, i) => v !== apAdd[i])) {
    throw new OspreyError('OSPREY_ERR_GPU_COMPILE', 'detect head: the anchor points of the Sub and the Add differ or are not [1, 2, anchors]');
  }
  const st = tensorToFloat32(strides.t);
  if (st.length !== anchors) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', `detect head: ${st.length} strides for ${anchors} anchors`);
  // [1, 2, A] (x row, y row) → [A, 2]
  const anchorPoints = new Float32Array(2 * anchors);
  for (let a = 0; a < anchors; a++) {
    anchorPoints[2 * a] = ap[a]!;
    anchorPoints[2 * a + 1] = ap[anchors + a]!;
  }
  return {
    op: {
      kind: 'detect',
      name: 'detect',
      levels,
      anchors,
      regMax,
      numClasses,
      anchorPoints,
      anchorStrides: Float32Array.from(st),
      output: out,
      fused: nodes.map((n) => n.name ?? n.op_type ?? ''),
      order: 0,
    },
    fusedNodes: nodes,
  };
}
