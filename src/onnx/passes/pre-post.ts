/**
 * Pre- and post-processing fused into the graph:
 *
 * - {@link uint8Input}: the model takes `uint8 [batch, height, width, 3]` RGB frames (letterboxed by the
 *   host) and does layout change, cast and 1/255 scaling itself: `Transpose(0,3,1,2) → Cast → Div(255)`
 *   feeding the old float input (Ultralytics divides by 255 in `preprocess`; Div keeps the values bit-exact).
 * - {@link topKOutput}: from a YOLOv8-style `[batch, 4 + numClasses, numAnchors]` (e.g. `[1, 84, 8400]`) or
 *   YOLOv5-style `[batch, numAnchors, 5 + numClasses]` output, produces `[batch, K, 6]` rows
 *   `x1, y1, x2, y2, score, classId` (model-input pixels; score = best class score, × objectness for v5),
 *   highest scores first: ReduceMax/ArgMax over classes, TopK(K), GatherElements, cx,cy,w,h → corners. The
 *   host then applies its confidence threshold and NMS on ≤ K candidates (kilobytes instead of megabytes).
 *   With `nmsInGraph`, ONNX NonMaxSuppression (class-aware, on the K candidates) runs in the graph too and the
 *   output is `[batch, maxDetections, 6]`, kept rows first, padded with all-zero rows (score 0).
 */
import { OspreyError } from '../../core/errors.js';
import { detectOutputLayout, type LayoutInfo } from '../../core/decode.js';
import { parseClassNames } from '../../core/names.js';
import type { OnnxModel, ValueInfoProto } from '../proto-types.js';
import { DataType } from '../proto-types.js';
import { cloneOnnxModel } from '../model.js';
import { getMetadata, getValueShape, makeValueInfo, modelInputs, opsetVersion, replaceInputs, setMetadata, topologicalSort, uniqueNamer, findProducer } from '../graph.js';
import { dataTypeName } from '../tensor.js';
import { GraphBuilder } from './builder.js';
import { passFailed, type PassCommonOptions } from './common.js';

/** Options of {@link uint8Input}. */
export interface Uint8InputOptions extends PassCommonOptions {
  /** The float NCHW input to replace (default: the model's only input). */
  input?: string;
  /** Name of the new uint8 input (default: the old input's name, e.g. `images`). */
  name?: string;
}

function singleTensorDims(v: ValueInfoProto): (number | string)[] | undefined {
  return v.type?.tensor_type?.shape?.dim.map((d) => (d.dim_value !== undefined ? d.dim_value : d.dim_param ? d.dim_param : -1));
}

/**
 * Adds the uint8 NHWC prefix. Returns a new model.
 *
 * @example
 *   uint8Input(model) // images: float32 ['batch', 3, 640, 640] → uint8 ['batch', 640, 640, 3]
 * @throws OspreyError `OSPREY_ERR_PASS_FAILED` when the input is not a float `[batch, 3, height, width]` tensor.
 */
export function uint8Input(model: OnnxModel, options: Uint8InputOptions = {}): OnnxModel {
  const PASS = 'uint8Input';
  const out = cloneOnnxModel(model);
  const g = out.graph;
  const inputs = modelInputs(out);
  const target = options.input ? inputs.find((i) => i.name === options.input) : inputs.length === 1 ? inputs[0] : undefined;
  if (!target) {
    throw passFailed(PASS, undefined, options.input ? `the model has no input '${options.input}'` : `the model has ${inputs.length} inputs; name the image input`);
  }
  const elem = target.type?.tensor_type?.elem_type;
  const dims = singleTensorDims(target);
  if (elem !== DataType.FLOAT && elem !== DataType.FLOAT16) {
    throw passFailed(PASS, undefined, `input '${target.name}' is ${dataTypeName(elem ?? 0)}, not a float image tensor`);
  }
  if (!dims || dims.length !== 4 || dims[1] !== 3) {
    throw passFailed(PASS, undefined, `input '${target.name}' has shape [${dims?.join(',') ?? '?'}], not [batch, 3, height, width]`);
  }
  const oldName = target.name!;
  const newName = options.name ?? oldName;
  const b = new GraphBuilder(g, 'osprey/pre/', opsetVersion(out) ?? 13);
  if (newName !== oldName && uniqueNamer(g)(newName) !== newName) {
    throw passFailed(PASS, undefined, `the name '${newName}' is already used in the graph`);
  }
  const floatName = newName === oldName ? b.name('images_float') : oldName;
  if (newName === oldName) replaceInputs(g, oldName, floatName);
  const nchw = b.op1('Transpose', [newName], { perm: [0, 3, 1, 2] }, 'Transpose');
  const cast = b.cast(nchw, elem);
  b.nodes.push({ input: [cast, b.float([255], elem, 'scale', [])], output: [floatName], name: b.name('Div'), op_type: 'Div', attribute: [] });
  const idx = g.input.indexOf(target);
  g.input[idx] = makeValueInfo(newName, DataType.UINT8, [dims[0]!, dims[2]!, dims[3]!, 3]);
  g.value_info.push(makeValueInfo(floatName, elem, dims));
  g.node.unshift(...b.nodes);
  setMetadata(out, { osprey_input_format: 'uint8-nhwc' });
  options.log?.(`input '${newName}': uint8 [${[dims[0], dims[2], dims[3], 3].join(',')}] → Transpose → Cast → Div(255) → '${floatName}' [${dims.join(',')}]`);
  return out;
}

/** Options of {@link topKOutput}. */
export interface TopKOutputOptions extends PassCommonOptions {
  /** Candidates kept per image (capped at the number of anchors). Default 1000. */
  k?: number;
  /** The detection output to replace (default: the model's only output). */
  output?: string;
  /** Name of the new `[batch, K, 6]` output (default: the old output's name, e.g. `output0`). */
  name?: string;
  /** Run class-aware NonMaxSuppression in the graph. Default false (the host runs NMS on the K candidates). */
  nmsInGraph?: boolean;
  /** NMS IoU threshold baked into the graph (nmsInGraph). Default 0.7 (Ultralytics `iou`). */
  iouThreshold?: number;
  /** Score threshold baked into the graph NMS (nmsInGraph): rows need score > it. Default 0.001 (the host applies its own, higher threshold after). */
  confThreshold?: number;
  /** Rows of the NMS output (nmsInGraph). Default 300 (Ultralytics `max_det`). */
  maxDetections?: number;
}

/** Default K of {@link topKOutput}: 1000 candidates per image (24 KB of float32 rows). */
export const DEFAULT_TOPK = 1000;

/**
 * Adds the top-K (optionally NMS) post-processing suffix. Returns a new model.
 * Metadata set: `osprey_postprocess` (`topk` | `nms`), `osprey_topk`, `osprey_nms_in_graph` (`true`/`false`),
 * `osprey_source_layout` (`yolov8`/`yolov5`), and for NMS `osprey_nms_iou_threshold`, `osprey_nms_conf_threshold`,
 * `osprey_max_det`. Ultralytics' `names`, `stride`, `imgsz` are kept.
 *
 * @example
 *   topKOutput(model, { k: 300 }) // output0: float32 ['batch', 84, 8400] → float32 ['batch', 300, 6]
 * @throws OspreyError `OSPREY_ERR_UNSUPPORTED_LAYOUT` when the output is none of the YOLO layouts,
 *   `OSPREY_ERR_PASS_FAILED` when its sizes are not static or the opset is below 11.
 */
export function topKOutput(model: OnnxModel, options: TopKOutputOptions = {}): OnnxModel {
  const PASS = 'topKOutput';
  const out = cloneOnnxModel(model);
  const g = out.graph;
  const opset = opsetVersion(out) ?? 0;
  if (opset < 11) throw passFailed(PASS, undefined, `the model's opset ${opset} is below 11 (TopK/GatherElements/NonMaxSuppression forms used here)`);
  const target = options.output ? g.output.find((o) => o.name === options.output) : g.output.length === 1 ? g.output[0] : undefined;
  if (!target) throw passFailed(PASS, undefined, options.output ? `the model has no output '${options.output}'` : `the model has ${g.output.length} outputs; name the detection output`);
  const dims = singleTensorDims(target) ?? getValueShape(g, target.name!) ?? [];
  const md = getMetadata(out);
  let hint: number | undefined;
  try {
    hint = md.names ? parseClassNames(md.names).length : undefined;
  } catch {
    hint = undefined;
  }
  const info: LayoutInfo = detectOutputLayout(dims, hint);
  if (info.layout === 'end2end') {
    throw new OspreyError('OSPREY_ERR_UNSUPPORTED_LAYOUT', `${PASS}: output '${target.name}' [${dims.join(',')}] is already end-to-end [B,K,6]`, { shape: dims });
  }
  const nc = info.numClasses;
  const n = info.numBoxes;
  if (!(n > 0) || !(nc > 0)) throw passFailed(PASS, undefined, `output '${target.name}' [${dims.join(',')}] needs static class and anchor sizes`);
  const k = Math.min(options.k ?? DEFAULT_TOPK, n);
  if (!(k >= 1) || !Number.isInteger(k)) throw passFailed(PASS, undefined, `k must be a positive integer, got ${options.k}`);
  const nms = options.nmsInGraph ?? false;
  const iou = options.iouThreshold ?? 0.7;
  const conf = options.confThreshold ?? 0.001;
  const maxDet = Math.min(options.maxDetections ?? 300, k);

  const oldName = target.name!;
  const newName = options.name ?? oldName;
  const b = new GraphBuilder(g, nms ? 'osprey/nms/' : 'osprey/topk/', opset);
  let raw = oldName;
  if (newName === oldName) {
    // rename the model's own output value; the suffix produces the old name
    raw = b.name('raw');
    const producer = findProducer(g, oldName);
    if (!producer) throw passFailed(PASS, undefined, `output '${oldName}' is not produced by a node`);
    producer.output = producer.output.map((o) => (o === oldName ? raw : o));
    replaceInputs(g, oldName, raw);
  }
  const elem = target.type?.tensor_type?.elem_type ?? DataType.FLOAT;
  if (elem !== DataType.FLOAT && elem !== DataType.FLOAT16) throw passFailed(PASS, undefined, `output '${oldName}' is ${dataTypeName(elem)}, not float`);
  let x = elem === DataType.FLOAT16 ? b.cast(raw, DataType.FLOAT, 'CastFloat') : raw;

  // boxes [B,4,N] cx,cy,w,h; scores [B,nc,N]
  let boxes: string;
  let scores: string;
  if (info.layout === 'yolov8') {
    boxes = b.slice(x, 0, 4, 1, 'boxes');
    scores = b.slice(x, 4, 4 + nc, 1, 'scores');
  } else {
    boxes = b.op1('Transpose', [b.slice(x, 0, 4, 2, 'boxes_nc')], { perm: [0, 2, 1] }, 'boxes');
    const obj = b.slice(x, 4, 5, 2, 'objectness');
    const cls = b.slice(x, 5, 5 + nc, 2, 'class_scores');
    scores = b.op1('Transpose', [b.op1('Mul', [cls, obj], {}, 'scores_nc')], { perm: [0, 2, 1] }, 'scores');
  }
  const best = b.reduceMax(scores, [1], false, 'best_score');
  const bestClass = b.op1('ArgMax', [scores], { axis: 1, keepdims: 0 }, 'best_class');
  const [topScore, topIndex] = b.op('TopK', [best, b.int64([k], 'k')], { axis: -1, largest: 1, sorted: 1 }, 'TopK', 2) as [string, string];
  const topClass = b.cast(b.op1('GatherElements', [bestClass, topIndex], { axis: 1 }, 'top_class_i64'), DataType.FLOAT, 'top_class');
  const boxIndex = b.op1('Expand', [b.unsqueeze(topIndex, [1], 'top_index_1'), b.int64([1, 4, 1], 'expand_shape')], {}, 'box_index');
  const topBoxes = b.op1('GatherElements', [boxes, boxIndex], { axis: 2 }, 'top_boxes_cxcywh');
  const center = b.slice(topBoxes, 0, 2, 1, 'center');
  const half = b.op1('Mul', [b.slice(topBoxes, 2, 4, 1, 'size'), b.float([0.5], DataType.FLOAT, 'half', [])], {}, 'half_size');
  const corners = b.op1('Concat', [b.op1('Sub', [center, half], {}, 'x1y1'), b.op1('Add', [center, half], {}, 'x2y2')], { axis: 1 }, 'corners');
  const xyxy = b.op1('Transpose', [corners], { perm: [0, 2, 1] }, 'boxes_xyxy'); // [B,K,4]

  let result: string;
  let rows: number;
  if (!nms) {
    result = b.op1('Concat', [xyxy, b.unsqueeze(topScore, [2], 'score_col'), b.unsqueeze(topClass, [2], 'class_col')], { axis: 2 }, 'detections');
    rows = k;
  } else {
    // class-aware NMS on the K candidates: each candidate scores only in its best class (Ultralytics single-label)
    const oneHot = b.op1('OneHot', [b.cast(topClass, DataType.INT64, 'top_class_idx'), b.int64([nc], 'depth'), b.float([0, 1], DataType.FLOAT, 'onehot_values')], { axis: 1 }, 'one_hot'); // [B,nc,K]
    const perClass = b.op1('Mul', [oneHot, b.unsqueeze(topScore, [1], 'score_row')], {}, 'class_scores_k'); // [B,nc,K]
    const selected = b.op1(
      'NonMaxSuppression',
      [xyxy, perClass, b.int64([maxDet], 'max_out'), b.float([iou], DataType.FLOAT, 'iou_threshold'), b.float([conf], DataType.FLOAT, 'score_threshold')],
      { center_point_box: 0 },
      'NonMaxSuppression',
    ); // [M,3] (batch, class, index)
    const where = b.op1('Gather', [selected, b.int64([0, 2], 'batch_and_index')], { axis: 1 }, 'selected_at'); // [M,2]
    const count = b.op1('Slice', [b.op1('Shape', [selected], {}, 'selected_shape'), b.int64([0], 's0'), b.int64([1], 'e1')], {}, 'selected_count');
    const ones = b.op1('ConstantOfShape', [count], { value: { name: b.name('one'), dims: [1], data_type: DataType.FLOAT, raw_data: new Uint8Array(new Float32Array([1]).buffer) } }, 'ones');
    const zeros = b.op1('ConstantOfShape', [b.op1('Shape', [topScore], {}, 'top_shape')], {}, 'zeros');
    const keep = b.op1('ScatterND', [zeros, where, ones], {}, 'keep_mask'); // [B,K] 1 = kept
    const kept = b.op1('Mul', [topScore, keep], {}, 'kept_score');
    const [finalScore, finalIndex] = b.op('TopK', [kept, b.int64([maxDet], 'max_det')], { axis: -1, largest: 1, sorted: 1 }, 'TopK_kept', 2) as [string, string];
    const rowIndex = b.op1('Expand', [b.unsqueeze(finalIndex, [2], 'final_index_1'), b.int64([1, 1, 4], 'expand_rows')], {}, 'row_index');
    const finalBoxes = b.op1('GatherElements', [xyxy, rowIndex], { axis: 1 }, 'final_boxes');
    const finalClass = b.op1('GatherElements', [topClass, finalIndex], { axis: 1 }, 'final_class');
    const table = b.op1('Concat', [finalBoxes, b.unsqueeze(finalScore, [2], 'final_score_col'), b.unsqueeze(finalClass, [2], 'final_class_col')], { axis: 2 }, 'rows');
    const valid = b.unsqueeze(b.cast(b.op1('Greater', [finalScore, b.float([0], DataType.FLOAT, 'zero', [])], {}, 'is_kept'), DataType.FLOAT, 'valid'), [2], 'valid_col');
    result = b.op1('Mul', [table, valid], {}, 'detections');
    rows = maxDet;
  }
  // the last node writes the output name
  const last = b.nodes[b.nodes.length - 1]!;
  last.output = [newName];
  g.node.push(...b.nodes);
  void result;
  const idx = g.output.indexOf(target);
  g.output[idx] = makeValueInfo(newName, DataType.FLOAT, [dims[0]!, rows, 6]);
  g.value_info = g.value_info.filter((v) => v.name !== oldName);
  topologicalSort(g);
  const meta: Record<string, string> = {
    osprey_postprocess: nms ? 'nms' : 'topk',
    osprey_topk: String(k),
    osprey_nms_in_graph: nms ? 'true' : 'false',
    osprey_source_layout: info.layout,
  };
  if (nms) {
    meta.osprey_nms_iou_threshold = String(iou);
    meta.osprey_nms_conf_threshold = String(conf);
    meta.osprey_max_det = String(maxDet);
  }
  setMetadata(out, meta);
  options.log?.(`output '${newName}': ${info.layout} [${dims.join(',')}] → ${nms ? `NMS (IoU ${iou}, score > ${conf}) → ` : ''}[${dims[0]},${rows},6] (top ${k} of ${n})`);
  return out;
}
