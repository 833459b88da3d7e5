/**
 * The dynamic-batch pass: makes the batch axis (axis 0) of a model's inputs and outputs symbolic and rewrites
 * the shape constants that bake batch 1 into the graph, proving along the way that every operator keeps the
 * batch axis as axis 0 and never mixes images.
 *
 * How it proves it: the pass walks the graph in topological order and tracks which values carry the batch on
 * axis 0 ("batched"), starting from the graph inputs, using static shapes at batch 1 (value_info, else
 * {@link inferShapes}). Each operator reading a batched value must be one of the known per-image operators,
 * with the batch axis untouched:
 * - element-wise ops (Add, Mul, Sigmoid, Where, ...): batched inputs have the output's rank; a non-batched
 *   input of the same rank must have size 1 on axis 0 (it broadcasts over the batch);
 * - Conv / pooling / Resize (scale 1 on axis 0) / Softmax, reductions, Split, Concat, Slice, TopK, Gather,
 *   GatherElements, Pad: their axis is not 0 (Slice on axis 0 only when it keeps the whole axis);
 * - Transpose keeps axis 0 first; Squeeze/Unsqueeze never touch axis 0; Flatten axis ≥ 1;
 * - Reshape: a constant shape starting with `1` is rewritten to start with `0` (ONNX: copy the input's
 *   dimension), e.g. Ultralytics' `[1,64,-1]` → `[0,64,-1]` and `[1,4,16,8400]` → `[0,4,16,8400]`; a shape
 *   starting with `0` is kept; `-1` first is kept when the other sizes hold exactly one image;
 * - Expand/Tile keep size 1 on axis 0.
 * Shapes computed at run time from a batched value's `Shape` (the pattern of exports made with dynamic
 * axes) are trusted to follow the input. Anything else reading a batched value is refused with
 * `OSPREY_ERR_PASS_FAILED` naming the node (e.g. `Reshape` to `[4,-1]`, `Concat` of a batched value with a
 * constant of batch 1, `Transpose` moving axis 0, `DynamicQuantizeLinear` whose scale would mix the images of a
 * batch, `Loop`).
 *
 * After the walk, inputs/outputs/value_info of batched values get axis 0 = `batchDimName`; constants
 * the rewrite made unused are removed. Metadata: `osprey_dynamic_batch=true` (and `osprey_max_batch` when
 * given).
 */
import type { OnnxModel, ValueInfoProto } from '../proto-types.js';
import { cloneOnnxModel } from '../model.js';
import {
  addInitializer,
  getAttribute,
  getConstant,
  getIntAttribute,
  getIntsAttribute,
  indexGraph,
  modelInputs,
  opsetVersion,
  removeUnusedNodes,
  setMetadata,
  topologicalSort,
  uniqueNamer,
} from '../graph.js';
import { inferShapes } from '../shapes.js';
import { makeInt64Tensor, tensorToFloat32, tensorToNumbers } from '../tensor.js';
import { nodeLabel, passFailed, setLeadingDimParam, type PassCommonOptions } from './common.js';

/** Options of {@link dynamicBatch}. */
export interface DynamicBatchOptions extends PassCommonOptions {
  /** Symbolic name of the batch axis. Default `'batch'`. */
  batchDimName?: string;
  /** Inputs to make batched (default: every graph input). Each must have size 1 (or be symbolic) on axis 0. */
  inputs?: readonly string[];
  /** Largest batch the engine is built for; recorded as metadata `osprey_max_batch` (no graph change). */
  maxBatch?: number;
}

const PASS = 'dynamicBatch';

/** Per-image element-wise ops: every input broadcasts numpy-style. */
const ELEMENTWISE = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual',
  'And', 'Or', 'Xor', 'Where', 'PRelu', 'Mod', 'Sigmoid', 'Relu', 'LeakyRelu', 'Tanh', 'Exp', 'Log', 'Sqrt', 'Neg', 'Abs',
  'Cast', 'CastLike', 'Identity', 'Erf', 'HardSigmoid', 'HardSwish', 'Floor', 'Ceil', 'Round', 'Sign', 'Reciprocal', 'Not',
  'Elu', 'Selu', 'Softplus', 'Softsign', 'Mish', 'Gelu', 'IsNaN', 'IsInf',
]);

/** Ops reading input 0 per image, other inputs being parameters (never batched). */
const PER_IMAGE_FIRST_INPUT = new Set([
  'Conv', 'ConvInteger', 'ConvTranspose', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'LpPool', 'LRN',
  'BatchNormalization', 'InstanceNormalization', 'Dropout', 'Clip', 'QLinearConv',
]);

/** Ops that compute one statistic over the whole tensor, so over every image of the batch at once. */
const WHOLE_BATCH_STATISTICS = new Set(['DynamicQuantizeLinear']);

const REDUCTIONS = new Set(['ReduceMax', 'ReduceMin', 'ReduceMean', 'ReduceSum', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSumExp', 'ReduceSumSquare']);

/** Ops doing arithmetic on shape vectors: with a run-time shape input, their output is a run-time shape. */
const SHAPE_ARITHMETIC = new Set([
  'Gather', 'Concat', 'Unsqueeze', 'Squeeze', 'Slice', 'Cast', 'Mul', 'Div', 'Add', 'Sub', 'Identity', 'ReduceProd',
  'Max', 'Min', 'Floor', 'Ceil', 'Equal', 'Where', 'Reshape', 'Range', 'Mod', 'Neg', 'Abs',
]);

type State = 'batch' | 'shape';

/**
 * Makes the batch axis of `model` dynamic. Returns a new model; `model` is not modified.
 *
 * @example
 *   const dyn = dynamicBatch(readOnnxModel('yolov8n.onnx'));
 *   // images: ['batch', 3, 640, 640] → output0: ['batch', 84, 8400]
 * @throws OspreyError `OSPREY_ERR_PASS_FAILED` naming the node where batch 1 is baked in a way the pass cannot
 *   prove safe, or an input whose axis 0 is a fixed size other than 1.
 */
export function dynamicBatch(model: OnnxModel, options: DynamicBatchOptions = {}): OnnxModel {
  const out = cloneOnnxModel(model);
  const g = out.graph;
  const log = options.log ?? (() => {});
  const dimName = options.batchDimName ?? 'batch';
  topologicalSort(g);
  const index = indexGraph(g);
  const shapes = inferShapes(g, index);
  const opset = opsetVersion(out) ?? 1;

  const realInputs = modelInputs(out);
  const chosen = options.inputs ? realInputs.filter((i) => options.inputs!.includes(i.name ?? '')) : realInputs;
  for (const name of options.inputs ?? []) {
    if (!realInputs.some((i) => i.name === name)) throw passFailed(PASS, undefined, `the model has no input '${name}' (inputs: ${realInputs.map((i) => i.name).join(', ')})`);
  }
  if (chosen.length === 0) throw passFailed(PASS, undefined, 'the model has no inputs to batch');
  const state = new Map<string, State>();
  for (const inp of chosen) {
    const dims = inp.type?.tensor_type?.shape?.dim;
    if (!dims || dims.length === 0) throw passFailed(PASS, undefined, `input '${inp.name}' has no declared shape (rank unknown), so its batch axis cannot be identified`);
    const d0 = dims[0]!;
    if (d0.dim_value !== undefined && d0.dim_value !== 1) {
      throw passFailed(PASS, undefined, `input '${inp.name}' has a fixed batch of ${d0.dim_value}; re-export the model with batch 1 (or dynamic axes)`);
    }
    state.set(inp.name!, 'batch');
    // analysis runs on batch-1 shapes
    const s = shapes.get(inp.name!);
    if (s) s[0] = 1;
  }

  const rewrittenShapes = new Map<string, string>();
  const fresh = uniqueNamer(g);
  const rank = (name: string): number | undefined => shapes.get(name)?.length;

  for (const n of g.node) {
    const ins = n.input.filter((i) => i !== '');
    const batched = ins.filter((i) => state.get(i) === 'batch');
    const shaped = ins.filter((i) => state.get(i) === 'shape');
    if (batched.length === 0 && shaped.length === 0) continue;
    const op = n.op_type ?? '';
    if ((n.domain ?? '') !== '' && n.domain !== 'ai.onnx') {
      throw passFailed(PASS, n, `custom-domain operator ${n.domain}.${op} reads a batched value; the pass cannot prove it keeps images apart`);
    }
    const setAll = (s: State) => n.output.forEach((o) => o && state.set(o, s));

    if (batched.length === 0) {
      // only run-time shape vectors flow in
      if (op === 'ConstantOfShape' || op === 'Expand' || op === 'Tile') {
        setAll('batch');
        log(`${nodeLabel(n)}: shape computed at run time from the input; output trusted to follow the batch`);
      } else if (SHAPE_ARITHMETIC.has(op)) setAll('shape');
      else throw passFailed(PASS, n, `${op} consumes a shape computed from the batched input; the pass cannot prove it is batch-safe`);
      continue;
    }

    const outRank = rank(n.output[0] ?? '');
    const need = (cond: boolean, reason: string) => {
      if (!cond) throw passFailed(PASS, n, reason);
    };
    const notBatched = (from: number) => {
      for (const i of n.input.slice(from)) need(!i || state.get(i) !== 'batch', `its parameter input '${i}' is batched`);
    };
    const axisAttr = (nameAttr: string, dflt: number, r: number | undefined): number => {
      const a = getIntAttribute(n, nameAttr, dflt)!;
      if (a >= 0) return a;
      need(r !== undefined, `the rank of '${n.input[0]}' is unknown, so axis ${a} cannot be resolved`);
      return a + r!;
    };
    const constInts = (name: string | undefined, what: string): number[] => {
      const c = name ? getConstant(g, name, index) : undefined;
      need(c !== undefined, `its ${what} input '${name}' is computed at run time`);
      return tensorToNumbers(c!);
    };

    if (WHOLE_BATCH_STATISTICS.has(op)) {
      throw passFailed(PASS, n, `${op} computes its scale over the whole tensor: with a batch, each image's result would depend on the other images (quantize statically instead)`);
    }

    if (ELEMENTWISE.has(op)) {
      need(outRank !== undefined, `the rank of its output '${n.output[0]}' is unknown (add value_info / run shape inference)`);
      for (const i of ins) {
        const s = shapes.get(i);
        if (state.get(i) === 'batch') {
          need(s !== undefined && s.length === outRank, `batched input '${i}' has rank ${s?.length ?? '?'} but the output has rank ${outRank}: the batch axis would not stay on axis 0`);
        } else if (state.get(i) === 'shape') {
          need(false, `input '${i}' is a run-time shape vector mixed with image data`);
        } else {
          need(s !== undefined, `the shape of input '${i}' is unknown`);
          if (s!.length === outRank) {
            need(s![0] === 1, `input '${i}' (shape [${s!.join(',')}]) has ${s![0]} on the batch axis: a batch baked into a constant`);
          }
        }
      }
      setAll('batch');
      continue;
    }

    switch (op) {
      case 'QuantizeLinear':
      case 'DequantizeLinear': {
        need(n.input[0] !== undefined && state.get(n.input[0]) === 'batch', 'a quantization parameter is batched');
        notBatched(1);
        const scale = shapes.get(n.input[1] ?? '');
        if (scale && scale.length === 1 && scale[0] !== 1) {
          need(axisAttr('axis', 1, rank(n.input[0]!)) !== 0, 'per-axis quantization along the batch axis');
        }
        setAll('batch');
        break;
      }
      case 'LayerNormalization':
        need(state.get(n.input[0]!) === 'batch', 'a normalization parameter is batched');
        notBatched(1);
        need(axisAttr('axis', -1, rank(n.input[0]!)) !== 0, 'it normalizes over the batch axis');
        setAll('batch');
        break;
      case 'Softmax':
      case 'LogSoftmax':
      case 'Hardmax':
        need(axisAttr('axis', opset >= 13 ? -1 : 1, rank(n.input[0]!)) !== 0, 'it normalizes over the batch axis (axis 0)');
        setAll('batch');
        break;
      case 'Resize':
      case 'Upsample': {
        need(state.get(n.input[0]!) === 'batch', 'its ROI/scales/sizes input is batched');
        notBatched(1);
        const scalesName = op === 'Upsample' ? n.input[1] : n.input[2];
        const sizesName = op === 'Resize' ? n.input[3] : undefined;
        if (scalesName) {
          const c = getConstant(g, scalesName, index);
          need(c !== undefined, `its scales input '${scalesName}' is computed at run time`);
          need(tensorToFloat32(c!)[0] === 1, `its scales '${scalesName}' scale the batch axis`);
        } else if (sizesName) {
          if (state.get(sizesName) !== 'shape') {
            const sizes = constInts(sizesName, 'sizes');
            need(false, `its sizes [${sizes.join(',')}] bake the batch size (${sizes[0]}); export with scales instead`);
          }
        } else if (getAttribute(n, 'scales')) {
          need(getAttribute(n, 'scales')!.floats?.[0] === 1, 'its scales attribute scales the batch axis');
        }
        setAll('batch');
        break;
      }
      case 'Concat': {
        const axis = axisAttr('axis', 0, outRank);
        need(axis !== 0, 'it concatenates along the batch axis');
        for (const i of ins) {
          if (state.get(i) !== 'batch') {
            need(false, `it concatenates batched values with '${i}', which has batch 1 baked in (it would not grow with the batch)`);
          }
        }
        setAll('batch');
        break;
      }
      case 'Split': {
        need(state.get(n.input[0]!) === 'batch', 'its split sizes are batched');
        need(axisAttr('axis', 0, rank(n.input[0]!)) !== 0, 'it splits the batch axis');
        setAll('batch');
        break;
      }
      case 'Slice': {
        need(state.get(n.input[0]!) === 'batch', 'its starts/ends are computed from the batched value');
        notBatched(1);
        const r = rank(n.input[0]!);
        need(r !== undefined, `the rank of '${n.input[0]}' is unknown`);
        if (n.input[3]) {
          // Constant axes without axis 0: starts/ends may be computed at run time (torch's chunk exports
          // ends = Shape(x)[1] / 2 …); they only bound the other axes, so the batch passes through untouched.
          const explicitAxes = constInts(n.input[3], 'axes').map((a) => (a < 0 ? a + r! : a));
          if (!explicitAxes.includes(0)) {
            notBatched(2);
            setAll('batch');
            break;
          }
        }
        const starts = constInts(n.input[1], 'starts');
        const ends = constInts(n.input[2], 'ends');
        const axes = n.input[3] ? constInts(n.input[3], 'axes').map((a) => (a < 0 ? a + r! : a)) : starts.map((_, k) => k);
        const steps = n.input[4] ? constInts(n.input[4], 'steps') : starts.map(() => 1);
        const k0 = axes.indexOf(0);
        if (k0 >= 0) {
          const wholeAxis = starts[k0] === 0 && steps[k0] === 1 && ends[k0]! >= 2 ** 31 - 1;
          need(wholeAxis, `it slices the batch axis (starts ${starts[k0]}, ends ${ends[k0]}, step ${steps[k0]})`);
        }
        setAll('batch');
        break;
      }
      case 'Transpose': {
        const perm = getIntsAttribute(n, 'perm');
        need(perm !== undefined && perm[0] === 0, `its perm [${perm?.join(',') ?? 'reversed'}] moves the batch axis`);
        setAll('batch');
        break;
      }
      case 'Reshape': {
        need(state.get(n.input[0]!) === 'batch', 'its shape input is computed from batched data');
        const shapeName = n.input[1]!;
        if (state.get(shapeName) === 'shape') {
          log(`${nodeLabel(n)}: shape computed at run time from the input; output trusted to follow the batch`);
          setAll('batch');
          break;
        }
        const shape = constInts(shapeName, 'shape');
        const allowzero = getIntAttribute(n, 'allowzero', 0) === 1;
        const inShape = shapes.get(n.input[0]!);
        if (shape[0] === 0 && !allowzero) {
          // already copies the batch
        } else if (shape[0] === -1) {
          const prod = (s: readonly (number | string)[]) => s.reduce<number>((a, d) => (a < 0 || typeof d !== 'number' || d < 0 ? -1 : a * d), 1);
          const restIn = inShape ? prod(inShape.slice(1)) : -1;
          const restOut = prod(shape.slice(1));
          need(restIn > 0 && restIn === restOut, `its shape [${shape.join(',')}] infers axis 0 from sizes that do not hold exactly one image`);
        } else if (shape[0] === 1) {
          need(!allowzero, `its shape [${shape.join(',')}] bakes batch 1 and allowzero=1 forbids the 0 (copy) rewrite`);
          need(inShape !== undefined && inShape[0] === 1, `its input's batch axis is not axis 0`);
          let newName = rewrittenShapes.get(shapeName);
          if (!newName) {
            newName = fresh(`${shapeName}_dynamic_batch`);
            addInitializer(g, makeInt64Tensor(newName, [0, ...shape.slice(1)]));
            rewrittenShapes.set(shapeName, newName);
            log(`${nodeLabel(n)}: shape [${shape.join(',')}] → [0,${shape.slice(1).join(',')}]`);
          }
          n.input[1] = newName;
        } else {
          need(false, `its shape [${shape.join(',')}] folds the batch axis (axis 0 would be ${shape[0]}, not the batch)`);
        }
        setAll('batch');
        break;
      }
      case 'Flatten':
        need(axisAttr('axis', 1, rank(n.input[0]!)) >= 1, 'it flattens the batch axis (axis 0)');
        setAll('batch');
        break;
      case 'Squeeze': {
        const r = rank(n.input[0]!);
        const axes = n.input[1] ? constInts(n.input[1], 'axes') : getIntsAttribute(n, 'axes');
        need(axes !== undefined && axes.length > 0, 'it squeezes every size-1 axis, the batch axis included');
        need(r !== undefined || axes!.every((a) => a >= 0), `the rank of '${n.input[0]}' is unknown`);
        need(!axes!.map((a) => (a < 0 ? a + r! : a)).includes(0), 'it squeezes the batch axis');
        setAll('batch');
        break;
      }
      case 'Unsqueeze': {
        const axes = n.input[1] ? constInts(n.input[1], 'axes') : getIntsAttribute(n, 'axes');
        need(axes !== undefined && outRank !== undefined, 'its axes or output rank are unknown');
        need(!axes!.map((a) => (a < 0 ? a + outRank! : a)).includes(0), 'it inserts an axis before the batch axis');
        setAll('batch');
        break;
      }
      case 'Gather': {
        const dataB = state.get(n.input[0]!) === 'batch';
        const idxB = state.get(n.input[1]!) === 'batch';
        const axis = axisAttr('axis', 0, rank(n.input[0]!));
        if (dataB && !idxB) need(axis !== 0, 'it gathers along the batch axis');
        else need(!dataB && idxB && axis === 0 && state.get(n.input[0]!) !== 'shape', 'it gathers with batched indices in a way that moves the batch axis');
        setAll('batch');
        break;
      }
      case 'GatherElements':
      case 'ScatterElements':
      case 'GatherND': {
        need(op !== 'GatherND', 'GatherND is not supported on batched values');
        for (const i of ins.slice(0, op === 'ScatterElements' ? 3 : 2)) need(state.get(i) === 'batch', `input '${i}' is not batched while the others are`);
        need(axisAttr('axis', 0, rank(n.input[0]!)) !== 0, 'it indexes along the batch axis');
        setAll('batch');
        break;
      }
      case 'ArgMax':
      case 'ArgMin':
        need(axisAttr('axis', 0, rank(n.input[0]!)) !== 0, 'it reduces the batch axis');
        setAll('batch');
        break;
      case 'TopK':
        need(state.get(n.input[0]!) === 'batch' && state.get(n.input[1] ?? '') !== 'batch', 'its K is batched');
        need(axisAttr('axis', -1, rank(n.input[0]!)) !== 0, 'it selects along the batch axis');
        setAll('batch');
        break;
      case 'MatMul': {
        const [a, b] = [n.input[0]!, n.input[1]!];
        const ra = rank(a), rb = rank(b);
        need(ra !== undefined && rb !== undefined, 'the ranks of its inputs are unknown');
        if (state.get(a) === 'batch' && state.get(b) === 'batch') need(ra === rb && ra! >= 3, 'both inputs are batched but not as a shared leading axis');
        else if (state.get(a) === 'batch') need(ra! >= 2 && rb! <= ra!, 'the batch axis would not stay on axis 0');
        else need(rb! >= 3 && ra! <= rb!, 'the batch axis would not stay on axis 0');
        setAll('batch');
        break;
      }
      case 'Gemm':
        need(state.get(n.input[0]!) === 'batch' && getIntAttribute(n, 'transA', 0) === 0, 'its rows are not the batch');
        notBatched(1);
        setAll('batch');
        break;
      case 'Pad': {
        need(state.get(n.input[0]!) === 'batch', 'its pads are batched');
        const r = rank(n.input[0]!);
        const pads = n.input[1] ? constInts(n.input[1], 'pads') : getIntsAttribute(n, 'pads') ?? [];
        need(r !== undefined, `the rank of '${n.input[0]}' is unknown`);
        const axes = n.input[3] ? constInts(n.input[3], 'axes').map((a) => (a < 0 ? a + r! : a)) : Array.from({ length: r! }, (_, k) => k);
        const k0 = axes.indexOf(0);
        need(k0 < 0 || (pads[k0] === 0 && pads[k0 + axes.length] === 0), 'it pads the batch axis');
        setAll('batch');
        break;
      }
      case 'Expand':
      case 'Tile': {
        need(state.get(n.input[0]!) === 'batch', `its ${op === 'Expand' ? 'shape' : 'repeats'} input is batched data`);
        if (state.get(n.input[1]!) === 'shape') {
          setAll('batch');
          break;
        }
        const v = constInts(n.input[1], op === 'Expand' ? 'shape' : 'repeats');
        const r = rank(n.input[0]!);
        need(r !== undefined && v.length <= r!, 'the output gains leading axes: the batch axis would move');
        need(v.length < r! || v[0] === 1, `its ${op === 'Expand' ? 'shape' : 'repeats'} [${v.join(',')}] ${op === 'Expand' ? 'bakes a batch' : 'repeats the batch'} on axis 0`);
        setAll('batch');
        break;
      }
      case 'Shape': {
        const start = getIntAttribute(n, 'start', 0)!;
        if (start === 0) setAll('shape');
        break;
      }
      case 'Size':
        setAll('shape');
        break;
      default:
        if (REDUCTIONS.has(op)) {
          const r = rank(n.input[0]!);
          const axes = n.input[1] ? constInts(n.input[1], 'axes') : getIntsAttribute(n, 'axes');
          need(axes !== undefined && axes.length > 0, 'it reduces every axis, the batch axis included');
          need(r !== undefined || axes!.every((a) => a >= 0), `the rank of '${n.input[0]}' is unknown`);
          need(!axes!.map((a) => (a < 0 ? a + r! : a)).includes(0), 'it reduces the batch axis');
          setAll('batch');
        } else if (PER_IMAGE_FIRST_INPUT.has(op)) {
          need(state.get(n.input[0]!) === 'batch', `a parameter input is batched`);
          notBatched(1);
          setAll('batch');
        } else {
          throw passFailed(PASS, n, `${op} reads a batched value and the pass cannot prove it keeps images apart`);
        }
    }
  }

  // declarations
  const applyDecl = (v: ValueInfoProto) => {
    if (v.name && state.get(v.name) === 'batch') setLeadingDimParam(v, dimName);
  };
  for (const inp of chosen) setLeadingDimParam(inp, dimName);
  g.output.forEach(applyDecl);
  g.value_info.forEach(applyDecl);
  const removed = removeUnusedNodes(g);
  if (removed) log(`removed ${removed} constant node(s) left unused by the rewrite`);
  const md: Record<string, string> = { osprey_dynamic_batch: 'true' };
  if (options.maxBatch !== undefined) md.osprey_max_batch = String(options.maxBatch);
  setMetadata(out, md);
  log(`batch axis '${dimName}' on inputs ${chosen.map((i) => i.name).join(', ')}; outputs ${g.output.filter((o) => state.get(o.name ?? '') === 'batch').map((o) => o.name).join(', ')}; ${rewrittenShapes.size} shape constant(s) rewritten`);
  return out;
}

/** The shape rewrites a {@link dynamicBatch} run would make, without applying them (for `osprey build --dry-run` style reports). */
export function describeDynamicBatch(model: OnnxModel, options: Omit<DynamicBatchOptions, 'log'> = {}): string[] {
  const lines: string[] = [];
  dynamicBatch(model, { ...options, log: (l) => lines.push(l) });
  return lines;
}

