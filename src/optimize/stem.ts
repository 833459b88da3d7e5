/**
 * The `stemColumnsToChannels` pass: a quantized engine's first convolution, over the 3 colour channels of a uint8
 * NHWC image, rewritten to read 4 neighbouring pixels of a row as 12 channels (a width-only space-to-depth, like
 * YOLOv5's Focus layer, but free: in NHWC memory the 4 pixels are already adjacent, so it is a Reshape).
 *
 * Why: ONNX Runtime's CPU EP runs a QLinearConv with symmetric int8 weights through MLAS's indirect "ConvSym"
 * kernels only when the input channels are a multiple of 4 (`MlasConvSymPackWSize` in ORT's mlas/lib/convsym.cpp);
 * a 3-channel stem falls back to im2col + QGEMM with 3-byte gathers. Profiled on yolov8n INT8 (batch 1, 2-core
 * AVX512 CPU, ORT 1.29.0) the 3×3 stride-2 stem took 1.4–1.8 ms of a 23 ms run — slower than the FP32 stem (0.6 ms);
 * rewritten, 0.9–1.0 ms (docs/build.md, "Where it stands").
 *
 * The rewrite, for a stem Conv of kernel kH×kW, stride (sH, 2), pads (top, left, bottom, right), C input and M
 * output channels on an input of width W (W divisible by 4):
 *
 * ```
 * x [N, H, W, C] uint8 → Reshape [N, H, W/4, 4C] → Transpose(0,3,1,2) → DequantizeLinear
 *   → Conv (2M outputs, kernel kH×kW', stride (sH, 1)) → QuantizeLinear [N, 2M, H', W'/2]
 *   → Transpose(0,2,3,1) → Reshape [N, H', W', M] → Transpose(0,3,1,2)          (= the old [N, M, H', W'])
 * ```
 *
 * Output channel φ·M + o of the new Conv is output channel o at the original's column 2k + φ (two phases per merged
 * column, so the Reshape back to [N, H', W', M] is again free in NHWC). Its weight for merged-column offset d, pixel
 * p of the 4 and channel c is the original's weight at kx = 4d + p − 2φ + left, or the weight zero point where
 * that kx is outside the kernel (a weight of exactly 0). Every output is the same integer sum over the same
 * input bytes, padding included (a merged column is padding exactly when its 4 pixels are), so with the same
 * requantization the bytes are identical (test/optimize/qdq.test.ts on yolov8n, test/optimize/stem.test.ts).
 *
 * Matched: a Conv (group 1, dilations 1, horizontal stride 2) whose input is a per-tensor DequantizeLinear of
 * `Transpose(0,3,1,2)` of an 8-bit NHWC tensor with static H, W, C, whose weights are a constant int8/uint8 tensor
 * behind a DequantizeLinear (per-channel on axis 0 or per-tensor), whose bias (if any) is a constant int32 behind a
 * DequantizeLinear, and whose output goes only to one QuantizeLinear. Anything else is left as is, with the reason
 * logged. Meant for engines run by ORT's CPU EP (where it was measured).
 */
import { findConsumers, findProducer, getConstant, getIntAttribute, getIntsAttribute, getStringAttribute, indexGraph, makeNode, opsetVersion, removeUnusedNodes, topologicalSort, type GraphIndex } from '../onnx/graph.js';
import { GraphBuilder } from '../onnx/passes/builder.js';
import type { NodeProto, OnnxModel, TensorProto } from '../onnx/proto-types.js';
import { DataType } from '../onnx/proto-types.js';
import { cloneOnnxModel } from '../onnx/model.js';
import { inferShapes } from '../onnx/shapes.js';
import { makeTensor, tensorToTypedArray } from '../onnx/tensor.js';
import { perTensorQdqParams } from './qdq.js';

/** Options of {@link stemColumnsToChannels}. */
export interface StemColumnsToChannelsOptions {
  /** One line per rewrite or per reason for leaving a Conv as it was. */
  log?: (line: string) => void;
}

/** Pixels of a row merged into one column of channels. */
const MERGE = 4;

/** The horizontal geometry of the rewritten Conv. */
export interface MergedColumns {
  /** Kernel width over merged columns. */
  kernelWidth: number;
  /** Merged-column offset of the first kernel tap (≤ 0): the new left pad is its negation. */
  firstOffset: number;
  /** Right pad over merged columns. */
  padRight: number;
  /** Output width of the original Conv (even: two phases per merged column). */
  outWidth: number;
}

/**
 * The merged-column kernel of a stride-2 convolution along the width: for every phase φ ∈ {0, 1} and tap kx, the
 * original column 2(2k + φ) − padLeft + kx lies in merged column k + ⌊(2φ − padLeft + kx) / 4⌋.
 * @returns the geometry, or `undefined` when the width is not divisible by 4, the original output width is odd, or
 *   no stride-1 Conv over the merged columns gives exactly half the original output width.
 * @example mergedColumns(3, 1, 1, 640) // { kernelWidth: 2, firstOffset: -1, padRight: 0, outWidth: 320 }
 */
export function mergedColumns(kernelWidth: number, padLeft: number, padRightPixels: number, width: number): MergedColumns | undefined {
  const outWidth = Math.floor((width + padLeft + padRightPixels - kernelWidth) / 2) + 1;
  if (outWidth < 2 || outWidth % 2 !== 0 || width % MERGE !== 0) return undefined;
  let lo = Infinity;
  let hi = -Infinity;
  for (let phase = 0; phase < 2; phase++) {
    for (let kx = 0; kx < kernelWidth; kx++) {
      const d = Math.floor((2 * phase - padLeft + kx) / MERGE);
      lo = Math.min(lo, d);
      hi = Math.max(hi, d);
    }
  }
  if (lo > 0) return undefined;
  const columns = width / MERGE;
  const lastRead = outWidth / 2 - 1 + hi;
  const padRight = Math.max(0, lastRead - (columns - 1));
  // the new Conv's output width, columns − kernelWidth + 1 + pads, must be exactly the phases' columns
  if (columns - hi + padRight !== outWidth / 2) return undefined;
  return { kernelWidth: hi - lo + 1, firstOffset: lo, padRight, outWidth };
}

interface StemMatch {
  conv: NodeProto;
  inputDq: NodeProto;
  nhwc: string;
  weightDq: NodeProto;
  /** The 8-bit weights `[M, C, kH, kW]` behind `weightDq`. */
  weights: TensorProto;
  biasDq?: NodeProto;
  quantize: NodeProto;
  strides: number[];
  /** ONNX order: top, left, bottom, right. */
  pads: number[];
  height: number;
  width: number;
  channels: number;
  geometry: MergedColumns;
}

function findStems(model: OnnxModel): { matches: StemMatch[]; misses: string[]; index: GraphIndex } {
  const g = model.graph;
  const index = indexGraph(g);
  const shapes = inferShapes(g, index);
  const matches: StemMatch[] = [];
  const misses: string[] = [];
  const outputs = new Set(g.output.map((o) => o.name ?? ''));
  for (const conv of g.node) {
    if (conv.op_type !== 'Conv' || (conv.domain ?? '') !== '') continue;
    const inputDq = findProducer(g, conv.input[0] ?? '');
    const transpose = inputDq?.op_type === 'DequantizeLinear' ? findProducer(g, inputDq.input[0] ?? '') : undefined;
    const perm = transpose?.op_type === 'Transpose' ? getIntsAttribute(transpose, 'perm') : undefined;
    if (!inputDq || !transpose || !perm || perm.join(',') !== '0,3,1,2') continue; // not a stem on NHWC pixels
    const label = conv.name ?? conv.output[0] ?? 'Conv';
    const miss = (why: string) => misses.push(`${label}: ${why}`);
    const nhwc = transpose.input[0] ?? '';
    const shape = shapes.get(nhwc);
    if (!shape || shape.length !== 4 || [1, 2, 3].some((a) => typeof shape[a] !== 'number' || (shape[a] as number) <= 0)) {
      miss(`input '${nhwc}' has no static [N, H, W, C] shape`);
      continue;
    }
    const [height, width, channels] = [shape[1] as number, shape[2] as number, shape[3] as number];
    if (!perTensorQdqParams(g, inputDq, index)) {
      miss('its input is not quantized per tensor');
      continue;
    }
    const weightDq = findProducer(g, conv.input[1] ?? '');
    const wq = weightDq?.op_type === 'DequantizeLinear' ? getConstant(g, weightDq.input[0] ?? '', index) : undefined;
    if (!weightDq || !wq || (wq.data_type !== DataType.INT8 && wq.data_type !== DataType.UINT8) || wq.dims.length !== 4 || (getIntAttribute(weightDq, 'axis', 1) ?? 1) !== 0 && getConstant(g, weightDq.input[1] ?? '', index)?.dims.length) {
      miss('its weights are not a constant 8-bit tensor behind a DequantizeLinear (axis 0)');
      continue;
    }
    const biasDq = conv.input[2] ? findProducer(g, conv.input[2]) : undefined;
    if (conv.input[2] && (!biasDq || biasDq.op_type !== 'DequantizeLinear' || getConstant(g, biasDq.input[0] ?? '', index)?.data_type !== DataType.INT32)) {
      miss('its bias is not a constant int32 tensor behind a DequantizeLinear');
      continue;
    }
    const readers = findConsumers(g, conv.output[0] ?? '');
    const quantize = readers[0];
    if (readers.length !== 1 || !quantize || quantize.op_type !== 'QuantizeLinear' || outputs.has(conv.output[0] ?? '')) {
      miss('its output does not go to a single QuantizeLinear');
      continue;
    }
    const kernel = getIntsAttribute(conv, 'kernel_shape') ?? wq.dims.slice(2);
    const strides = getIntsAttribute(conv, 'strides') ?? [1, 1];
    const pads = getIntsAttribute(conv, 'pads') ?? [0, 0, 0, 0];
    if ((getIntAttribute(conv, 'group', 1) ?? 1) !== 1 || (getIntsAttribute(conv, 'dilations') ?? [1, 1]).some((d) => d !== 1) || (getStringAttribute(conv, 'auto_pad') ?? 'NOTSET') !== 'NOTSET') {
      miss('group, dilations or auto_pad other than 1, 1, NOTSET');
      continue;
    }
    if (strides[1] !== 2 || wq.dims[1] !== channels || kernel[1] !== wq.dims[3]) {
      miss(`horizontal stride ${strides[1]} (needs 2) or weights ${JSON.stringify(wq.dims)} not over ${channels} channels`);
      continue;
    }
    if (channels % MERGE === 0) {
      miss(`${channels} input channels are already a multiple of ${MERGE}`);
      continue;
    }
    const geometry = mergedColumns(kernel[1]!, pads[1]!, pads[3]!, width);
    if (!geometry) {
      miss(`width ${width} not divisible by ${MERGE}, or an odd output width`);
      continue;
    }
    matches.push({ conv, inputDq, nhwc, weightDq, weights: wq, biasDq, quantize, strides, pads, height, width, channels, geometry });
  }
  return { matches, misses, index };
}

/** Repeats a per-channel tensor (dims [M]) for both phases (dims [2M]); a per-tensor one is returned as is. */
function twoPhases(t: TensorProto, name: string): TensorProto {
  if (t.dims.length === 0 || (t.dims.length === 1 && t.dims[0] === 1)) return { ...t, name };
  const a = tensorToTypedArray(t);
  const out = new (a.constructor as new (n: number) => typeof a)(a.length * 2);
  out.set(a as never, 0);
  out.set(a as never, a.length);
  return makeTensor(name, [a.length * 2], out, t.data_type);
}

/**
 * Rewrites every 3-channel stride-2 stem of the form in the module doc. Returns a new model; the input is left
 * unchanged (and returned as is when nothing matched).
 * @example stemColumnsToChannels(quantizedYolov8n) // '/model.0/conv/Conv': 12 → 32 channels, kernel 3×2, stride (2, 1)
 */
export function stemColumnsToChannels(model: OnnxModel, options: StemColumnsToChannelsOptions = {}): OnnxModel {
  const { matches, misses, index } = findStems(model);
  for (const m of misses) options.log?.(`stemColumnsToChannels: left as is: ${m}`);
  if (matches.length === 0) {
    options.log?.('stemColumnsToChannels: no quantized stride-2 Conv on uint8 NHWC pixels found; graph unchanged');
    return model;
  }
  const out = cloneOnnxModel(model);
  const g = out.graph;
  // constants (weights, scales, zero points) are read from the input model, which is left unchanged
  const constant = (name: string) => getConstant(model.graph, name, index);
  const b = new GraphBuilder(g, 'osprey/stem/', opsetVersion(out) ?? 13);
  for (const m of matches) {
    const conv = g.node.find((n) => n.output[0] === m.conv.output[0])!;
    const quantize = g.node.find((n) => n.output[0] === m.quantize.output[0])!;
    const { height: h, width: w, channels: c, geometry: geo, weights: wq, pads, strides } = m;
    const [outChannels, , kH, kW] = wq.dims as [number, number, number, number];
    // weights [2M, 4C, kH, kW']: the original tap kx = 4(d + firstOffset) + p − 2φ + padLeft, else the zero point
    const src = tensorToTypedArray(wq) as Int8Array | Uint8Array;
    const wzp = m.weightDq.input[2] ? constant(m.weightDq.input[2]) : undefined;
    const zp = wzp ? Array.from(tensorToTypedArray(wzp) as Int8Array | Uint8Array) : [0];
    const cw = MERGE * c;
    const dst = new (src.constructor as new (n: number) => Int8Array | Uint8Array)(2 * outChannels * cw * kH * geo.kernelWidth);
    for (let phase = 0; phase < 2; phase++) {
      for (let o = 0; o < outChannels; o++) {
        const fill = zp.length === 1 ? zp[0]! : zp[o]!;
        for (let p = 0; p < MERGE; p++) {
          for (let ch = 0; ch < c; ch++) {
            for (let ky = 0; ky < kH; ky++) {
              for (let d = 0; d < geo.kernelWidth; d++) {
                const kx = MERGE * (d + geo.firstOffset) + p - 2 * phase + pads[1]!;
                const at = (((phase * outChannels + o) * cw + p * c + ch) * kH + ky) * geo.kernelWidth + d;
                dst[at] = kx >= 0 && kx < kW ? src[((o * c + ch) * kH + ky) * kW + kx]! : fill;
              }
            }
          }
        }
      }
    }
    const wName = b.name('weight_quantized');
    g.initializer.push(makeTensor(wName, [2 * outChannels, cw, kH, geo.kernelWidth], dst, wq.data_type));
    const dqInputs = (dq: NodeProto, first: string): string[] =>
      [first, ...dq.input.slice(1).map((name, i) => {
        const t = name ? constant(name) : undefined;
        if (!t) return name;
        const renamed = b.name(i === 0 ? 'scale' : 'zero_point');
        g.initializer.push(twoPhases(t, renamed));
        return renamed;
      })];
    const weight = b.op1('DequantizeLinear', dqInputs(m.weightDq, wName), { axis: 0 }, 'DequantizeLinear');
    let bias: string | undefined;
    if (m.biasDq) {
      const bq = constant(m.biasDq.input[0]!)!;
      const bName = b.name('bias_quantized');
      g.initializer.push(twoPhases(bq, bName));
      bias = b.op1('DequantizeLinear', dqInputs(m.biasDq, bName), { axis: 0 }, 'DequantizeLinear');
    }
    const merged = b.op1('Reshape', [m.nhwc, b.int64([0, h, w / MERGE, cw], 'shape')], {}, 'Reshape');
    const nchw = b.op1('Transpose', [merged], { perm: [0, 3, 1, 2] }, 'Transpose');
    const x = b.op1('DequantizeLinear', [nchw, ...m.inputDq.input.slice(1)], {}, 'DequantizeLinear');
    // the new Conv keeps the old one's name (profiles and --exclude refer to it); the old one is removed below
    const convOut = b.name('Conv_output');
    b.nodes.push(
      makeNode('Conv', bias ? [x, weight, bias] : [x, weight], [convOut], {
        kernel_shape: [kH, geo.kernelWidth],
        strides: [strides[0]!, 1],
        pads: [pads[0]!, -geo.firstOffset, pads[2]!, geo.padRight],
        dilations: [1, 1],
        group: 1,
      }, conv.name ?? b.name('Conv')),
    );
    conv.output[0] = b.name('unused');
    const q = b.op1('QuantizeLinear', [convOut, ...quantize.input.slice(1)], {}, 'QuantizeLinear');
    const hOut = Math.floor((h + pads[0]! + pads[2]! - kH) / strides[0]!) + 1;
    const t1 = b.op1('Transpose', [q], { perm: [0, 2, 3, 1] }, 'Transpose');
    const r = b.op1('Reshape', [t1, b.int64([0, hOut, geo.outWidth, outChannels], 'shape')], {}, 'Reshape');
    // the last Transpose writes the QuantizeLinear's output name, so every reader stays valid
    b.opInto('Transpose', [r], quantize.output[0]!, { perm: [0, 3, 1, 2] });
    quantize.output[0] = b.name('unused');
    options.log?.(
      `stemColumnsToChannels: ${conv.name ?? 'Conv'}: ${c} → ${cw} channels (${MERGE} pixels of a row), ${2 * outChannels} outputs (2 column phases), kernel ${kH}×${geo.kernelWidth}, stride (${strides[0]}, 1) (bit-exact)`,
    );
  }
  const dropped = new Set(matches.map((m) => m.conv.output[0] ?? ''));
  g.value_info = g.value_info.filter((v) => !dropped.has(v.name ?? ''));
  g.node.push(...b.nodes);
  removeUnusedNodes(g);
  topologicalSort(g);
  return out;
}
