/**
 * ONNX `Resize` semantics Osprey's graph passes and the GPU compiler rely on: which input pixel a nearest Resize
 * reads (ONNX Resize-19: `coordinate_transformation_mode`, then `nearest_mode`, clamped to the input), and whether a
 * whole-factor nearest upsampling is a plain copy of pixel ⌊y / f⌋ — checked against ONNX Runtime's Resize for every
 * mode pair in test/optimize/upsample.test.ts.
 */
import { getStringAttribute } from './graph.js';
import type { NodeProto } from './proto-types.js';

/**
 * A `Resize` (or opset ≤ 9 `Upsample`) node's interpolation modes with ONNX's defaults: `mode` nearest,
 * `coordinate_transformation_mode` half_pixel, `nearest_mode` round_prefer_floor; `Upsample` has no such attributes
 * and reads pixel ⌊y / scale⌋ (asymmetric + floor).
 * @example nearestResizeModes(node) // { mode: 'nearest', coordinateMode: 'asymmetric', nearestMode: 'floor' }
 */
export function nearestResizeModes(node: NodeProto): { mode: string; coordinateMode: string; nearestMode: string } {
  const mode = getStringAttribute(node, 'mode') ?? 'nearest';
  if (node.op_type === 'Upsample') return { mode, coordinateMode: 'asymmetric', nearestMode: 'floor' };
  return {
    mode,
    coordinateMode: getStringAttribute(node, 'coordinate_transformation_mode') ?? 'half_pixel',
    nearestMode: getStringAttribute(node, 'nearest_mode') ?? 'round_prefer_floor',
  };
}

/**
 * The input index a nearest `Resize` reads for output index `y` along one axis, by the ONNX operator's definition
 * (Resize-19: `coordinate_transformation_mode`, then `nearest_mode`, clamped to the input).
 * @param y output index (0-based)
 * @param scale output length ÷ input length along this axis (the Resize's scale)
 * @param outLen output length
 * @param inLen input length
 * @returns the input index, or `undefined` for a mode this function does not know
 * @example nearestSourceIndex(3, 2, 40, 20, 'asymmetric', 'floor') // 1
 */
export function nearestSourceIndex(y: number, scale: number, outLen: number, inLen: number, coordinateMode: string, nearestMode: string): number | undefined {
  let x: number;
  switch (coordinateMode) {
    case 'half_pixel':
      x = (y + 0.5) / scale - 0.5;
      break;
    case 'half_pixel_symmetric': {
      const adjustment = outLen / (scale * inLen);
      const center = inLen / 2;
      x = center * (1 - adjustment) + (y + 0.5) / scale - 0.5;
      break;
    }
    case 'pytorch_half_pixel':
      x = outLen > 1 ? (y + 0.5) / scale - 0.5 : 0;
      break;
    case 'align_corners':
      x = outLen === 1 ? 0 : (y * (inLen - 1)) / (outLen - 1);
      break;
    case 'asymmetric':
      x = y / scale;
      break;
    case 'tf_half_pixel_for_nn':
      x = (y + 0.5) / scale;
      break;
    default:
      return undefined;
  }
  let i: number;
  const frac = x - Math.floor(x);
  switch (nearestMode) {
    case 'round_prefer_floor':
      i = frac === 0.5 ? Math.floor(x) : Math.round(x);
      break;
    case 'round_prefer_ceil':
      i = frac === 0.5 ? Math.ceil(x) : Math.round(x);
      break;
    case 'floor':
      i = Math.floor(x);
      break;
    case 'ceil':
      i = Math.ceil(x);
      break;
    default:
      return undefined;
  }
  return Math.min(Math.max(i, 0), inLen - 1);
}

/**
 * Whether a nearest Resize by the whole factor `factor` along an axis of `inLen` pixels reads input pixel ⌊y / f⌋
 * for every output index y (so it can run as a copy: Expand, an upsample kernel). Checked for every output index of
 * that length, not by a list of mode names: e.g. `half_pixel` + `floor` reads pixel 0 for y = 2 at f = 2 (not a copy),
 * while `align_corners` + `round_prefer_floor` is one at f = 2.
 * @example readsFloorOfFactor(2, 20, 'asymmetric', 'floor') // true
 */
export function readsFloorOfFactor(factor: number, inLen: number, coordinateMode: string, nearestMode: string): boolean {
  if (!Number.isInteger(factor) || factor < 1 || !Number.isInteger(inLen) || inLen < 1) return false;
  for (let y = 0; y < factor * inLen; y++) if (nearestSourceIndex(y, factor, factor * inLen, inLen, coordinateMode, nearestMode) !== Math.floor(y / factor)) return false;
  return true;
}
