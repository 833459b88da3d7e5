/**
 * The `expandNearestResize` pass: a nearest-neighbour upsampling by whole factors on a quantized tensor, written as a
 * broadcast copy (`Expand`) instead of a `Resize`.
 *
 * YOLOv5/v8/v11 necks upsample by 2 with `Resize(mode=nearest)`. In a QDQ engine that Resize sits between a
 * DequantizeLinear and a QuantizeLinear of the same scale and zero point, and ONNX Runtime's CPU EP runs it on the
 * 8-bit tensor in NHWC (its layout transformer moves the quantized graph to channels-last), where `Resize` has no
 * fast path: a per-element index walk on one thread (`UpsampleNearestImpl` in ORT's upsample.cc; its 2× fast path is
 * for NCHW only). Profiled on yolov8n INT8 (batch 1, 2-core AVX512 CPU, ORT 1.29.0) the two Resizes took 1.55 ms of
 * a 23 ms run. The same values come from
 *
 * ```
 * xq [N, C, H, W] (8-bit) → Transpose(0,2,3,1) → Reshape [N, H, 1, W, 1, C]
 *   → Expand [N, H, fh, W, fw, C] → Reshape [N, H·fh, W·fw, C] → Transpose(0,3,1,2)   (= the QuantizeLinear's output)
 * ```
 *
 * ORT cancels both Transposes against its own layout transposes, and `Expand` copies whole C-byte pixels:
 * 0.05 + 0.07 ms for yolov8n's two upsamplings in the same profile (docs/build.md, "Where it stands").
 *
 * Exact, not approximate: nearest upsampling by a whole factor f reads input pixel ⌊y / f⌋ for output row y under
 * the Resize's own `coordinate_transformation_mode` and `nearest_mode` — checked for every output row and column of
 * the actual shape with ONNX's formulas before a Resize is rewritten — and QuantizeLinear(DequantizeLinear(q)) = q
 * for the same scale and zero point, so the rewritten graph gives the same bytes (test/optimize/upsample.test.ts).
 * Left as is, with the reason logged: other modes (linear, cubic), fractional or downscaling factors, a factor on
 * the batch or channel axis, `tf_crop_and_resize`, an `axes` attribute, non-constant scales/sizes, a Resize not
 * between a per-tensor DequantizeLinear and a QuantizeLinear of equal parameters, unknown C/H/W. The batch axis may
 * be symbolic (`0` in the Reshape shapes copies it).
 *
 * Meant for engines run by ORT's CPU EP (where it was measured); an FP32 graph keeps its Resize (ORT runs that one
 * as an NCHWc `Upsample`, 0.3 ms for both).
 */
import { findConsumers, findProducer, getConstant, indexGraph, opsetVersion, removeUnusedNodes, topologicalSort } from '../onnx/graph.js';
import { GraphBuilder } from '../onnx/passes/builder.js';
import type { NodeProto, OnnxModel } from '../onnx/proto-types.js';
import { cloneOnnxModel } from '../onnx/model.js';
import { nearestResizeModes, readsFloorOfFactor } from '../onnx/resize.js';
import { inferShapes } from '../onnx/shapes.js';
import { tensorToFloat32 } from '../onnx/tensor.js';
import { perTensorQdqParams } from './qdq.js';

/** Options of {@link expandNearestResize}. */
export interface ExpandNearestResizeOptions {
  /** One line per rewrite or per reason for leaving a Resize as it was. */
  log?: (line: string) => void;
}

/** A Resize that can be rewritten, with the nodes around it and the static sizes. */
interface UpsampleMatch {
  resize: NodeProto;
  dequantize: NodeProto;
  quantize: NodeProto;
  channels: number;
  height: number;
  width: number;
  factorH: number;
  factorW: number;
}

function findUpsamples(model: OnnxModel): { matches: UpsampleMatch[]; misses: string[] } {
  const g = model.graph;
  const index = indexGraph(g);
  const shapes = inferShapes(g, index);
  const matches: UpsampleMatch[] = [];
  const misses: string[] = [];
  const outputs = new Set(g.output.map((o) => o.name ?? ''));
  for (const resize of g.node) {
    if (resize.op_type !== 'Resize' || (resize.domain ?? '') !== '') continue;
    const label = resize.name ?? resize.output[0] ?? 'Resize';
    const miss = (why: string) => misses.push(`${label}: ${why}`);
    const { mode, coordinateMode, nearestMode } = nearestResizeModes(resize);
    if (mode !== 'nearest') {
      miss(`mode '${mode}', not nearest`);
      continue;
    }
    if (coordinateMode === 'tf_crop_and_resize' || resize.attribute.some((a) => a.name === 'axes')) {
      miss(`coordinate_transformation_mode '${coordinateMode}' or an axes attribute`);
      continue;
    }
    const dequantize = findProducer(g, resize.input[0] ?? '');
    const readers = findConsumers(g, resize.output[0] ?? '');
    const quantize = readers[0];
    if (!dequantize || dequantize.op_type !== 'DequantizeLinear' || readers.length !== 1 || !quantize || quantize.op_type !== 'QuantizeLinear' || outputs.has(resize.output[0] ?? '')) {
      miss('not between a DequantizeLinear and a single QuantizeLinear');
      continue;
    }
    const pIn = perTensorQdqParams(g, dequantize, index);
    const pOut = perTensorQdqParams(g, quantize, index);
    if (!pIn || !pOut || pIn.scale !== pOut.scale || pIn.zeroPoint !== pOut.zeroPoint || pIn.zeroType !== pOut.zeroType || quantize.attribute.some((a) => a.name === 'output_dtype' || a.name === 'saturate')) {
      miss('its DequantizeLinear and QuantizeLinear are not per-tensor with equal scale and zero point');
      continue;
    }
    const inShape = shapes.get(resize.input[0] ?? '');
    const outShape = shapes.get(resize.output[0] ?? '');
    if (!inShape || !outShape || inShape.length !== 4 || outShape.length !== 4 || [1, 2, 3].some((a) => typeof inShape[a] !== 'number' || (inShape[a] as number) <= 0 || typeof outShape[a] !== 'number')) {
      miss(`channels, height and width not known statically (input ${JSON.stringify(inShape)}, output ${JSON.stringify(outShape)})`);
      continue;
    }
    const [c, h, w] = [inShape[1] as number, inShape[2] as number, inShape[3] as number];
    const [oc, oh, ow] = [outShape[1] as number, outShape[2] as number, outShape[3] as number];
    const scales = resize.input[2] ? getConstant(g, resize.input[2], index) : undefined;
    const sizes = resize.input[3] ? getConstant(g, resize.input[3], index) : undefined;
    if ((resize.input[2] && !scales) || (resize.input[3] && !sizes) || (!scales && !sizes)) {
      miss('scales/sizes are not constants');
      continue;
    }
    const scaleList = scales && tensorToFloat32(scales).length === 4 ? Array.from(tensorToFloat32(scales)) : [1, oc / c, oh / h, ow / w];
    const fh = oh / h;
    const fw = ow / w;
    if (oc !== c || scaleList[0] !== 1 || scaleList[1] !== 1 || !Number.isInteger(fh) || !Number.isInteger(fw) || fh < 1 || fw < 1 || fh * fw === 1 || scaleList[2] !== fh || scaleList[3] !== fw) {
      miss(`factors ${JSON.stringify(scaleList)} are not whole upsampling factors on height and width only`);
      continue;
    }
    if (!readsFloorOfFactor(fh, h, coordinateMode, nearestMode) || !readsFloorOfFactor(fw, w, coordinateMode, nearestMode)) {
      miss(`coordinate_transformation_mode '${coordinateMode}' with nearest_mode '${nearestMode}' does not read pixel ⌊y / f⌋ for every output pixel`);
      continue;
    }
    matches.push({ resize, dequantize, quantize, channels: c, height: h, width: w, factorH: fh, factorW: fw });
  }
  return { matches, misses };
}

/**
 * Rewrites every quantized nearest upsampling of the form in the module doc. Returns a new model; the input is left
 * unchanged (and returned as is when nothing matched).
 * @example expandNearestResize(quantizedYolov8n) // '/model.10/Resize' and '/model.13/Resize' become Expand on uint8
 */
export function expandNearestResize(model: OnnxModel, options: ExpandNearestResizeOptions = {}): OnnxModel {
  const { matches, misses } = findUpsamples(model);
  for (const m of misses) options.log?.(`expandNearestResize: left as is: ${m}`);
  if (matches.length === 0) {
    options.log?.('expandNearestResize: no nearest Resize between a DequantizeLinear and a QuantizeLinear found; graph unchanged');
    return model;
  }
  const out = cloneOnnxModel(model);
  const g = out.graph;
  const b = new GraphBuilder(g, 'osprey/upsample/', opsetVersion(out) ?? 13);
  for (const m of matches) {
    const quantize = g.node.find((n) => n.output[0] === m.quantize.output[0])!;
    const q = m.dequantize.input[0]!;
    const { channels: c, height: h, width: w, factorH: fh, factorW: fw } = m;
    const nhwc = b.op1('Transpose', [q], { perm: [0, 2, 3, 1] }, 'Transpose');
    const split = b.op1('Reshape', [nhwc, b.int64([0, h, 1, w, 1, c], 'shape')], {}, 'Reshape');
    const copies = b.op1('Expand', [split, b.int64([1, h, fh, w, fw, c], 'shape')], {}, 'Expand');
    const merged = b.op1('Reshape', [copies, b.int64([0, h * fh, w * fw, c], 'shape')], {}, 'Reshape');
    // the last Transpose writes the QuantizeLinear's output name, so every reader (and value_info) stays valid
    b.opInto('Transpose', [merged], quantize.output[0]!, { perm: [0, 3, 1, 2] });
    quantize.output[0] = b.name('unused');
    options.log?.(`expandNearestResize: ${m.resize.name ?? 'Resize'}: nearest ×${fh}×${fw} of [N, ${c}, ${h}, ${w}] as Expand on the quantized tensor (bit-exact)`);
  }
  g.node.push(...b.nodes);
  removeUnusedNodes(g);
  topologicalSort(g);
  return out;
}
