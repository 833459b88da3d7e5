/**
 * What Osprey needs to know to feed a detection model and read its output, derived from the model's inputs,
 * outputs and metadata — never from constants.
 */
import { detectOutputLayout, type LayoutInfo } from './decode.js';
import { OspreyError } from './errors.js';
import { resolveClassNames } from './names.js';
import type { TensorSpec } from './types.js';

export type InputFormat = 'float32-nchw' | 'uint8-nhwc';

export interface DetectionModelSpec {
  inputName: string;
  /** `float32-nchw`: `[batch, 3, height, width]` RGB in 0..1 (float32 or float16); `uint8-nhwc`: `[batch, height, width, 3]` RGB 0..255 (Osprey-built engines). */
  inputFormat: InputFormat;
  inputType: 'float32' | 'float16' | 'uint8';
  /** Fixed batch size from the model, or null for a dynamic batch axis. */
  batchSize: number | null;
  /** Model input height in pixels. */
  inputHeight: number;
  /** Model input width in pixels. */
  inputWidth: number;
  outputName: string;
  layout: LayoutInfo;
  /** Class names indexed by class id. */
  names: string[];
  /** Model stride in pixels (metadata `stride`, default 32). */
  stride: number;
  /** True when the graph already applies NMS (end-to-end models, Osprey's `--nms-in-graph`). */
  nmsInGraph: boolean;
}

function parseImgsz(v: string | undefined): [number, number] | undefined {
  if (!v) return undefined;
  const nums = v.match(/\d+/g)?.map(Number) ?? [];
  if (nums.length === 1) return [nums[0]!, nums[0]!];
  if (nums.length >= 2) return [nums[0]!, nums[1]!];
  return undefined;
}

const dimOf = (d: number | string | undefined): number | null => (typeof d === 'number' && d > 0 ? d : null);

/**
 * Resolves the detection spec of a model.
 *
 * @param options.imgsz input size for models whose spatial axes are dynamic (`640` or `[height, width]`); must match
 *   a fixed model size when given.
 * @param options.labelsText a labels file's text (one class per line), used when the metadata has no `names`.
 * @throws OspreyError `OSPREY_ERR_UNSUPPORTED_MODEL` (input not image-like, size unknown, imgsz mismatch),
 *   `OSPREY_ERR_UNSUPPORTED_LAYOUT` (output), `OSPREY_ERR_LABELS`.
 */
export function resolveDetectionModelSpec(
  inputs: readonly TensorSpec[],
  outputs: readonly TensorSpec[],
  metadata: Readonly<Record<string, string>>,
  options: { imgsz?: number | [number, number]; labelsText?: string } = {},
): DetectionModelSpec {
  const input = inputs.find((i) => i.name === 'images') ?? inputs[0];
  if (!input) throw new OspreyError('OSPREY_ERR_UNSUPPORTED_MODEL', 'the model has no inputs');
  const s = input.shape;
  if (s.length !== 4) {
    throw new OspreyError('OSPREY_ERR_UNSUPPORTED_MODEL', `input '${input.name}' has shape [${s.join(', ')}]; expected an image batch [B, 3, H, W] or [B, H, W, 3]`);
  }
  let inputFormat: InputFormat;
  let h: number | null;
  let w: number | null;
  if (input.type === 'uint8' && s[3] === 3) {
    inputFormat = 'uint8-nhwc';
    h = dimOf(s[1]);
    w = dimOf(s[2]);
  } else if ((input.type === 'float32' || input.type === 'float16') && (s[1] === 3 || typeof s[1] !== 'number')) {
    inputFormat = 'float32-nchw';
    h = dimOf(s[2]);
    w = dimOf(s[3]);
  } else {
    throw new OspreyError('OSPREY_ERR_UNSUPPORTED_MODEL', `input '${input.name}' (${input.type} [${s.join(', ')}]) is neither float [B, 3, H, W] nor uint8 [B, H, W, 3]`);
  }
  const wanted = options.imgsz === undefined ? undefined : typeof options.imgsz === 'number' ? [options.imgsz, options.imgsz] : options.imgsz;
  if (h !== null && w !== null) {
    if (wanted && (wanted[0] !== h || wanted[1] !== w)) {
      throw new OspreyError('OSPREY_ERR_UNSUPPORTED_MODEL', `--imgsz ${wanted.join('x')} does not match the model's fixed input size ${h}x${w}`);
    }
  } else {
    const fromMeta = parseImgsz(metadata.imgsz);
    const size = wanted ?? fromMeta;
    if (!size) throw new OspreyError('OSPREY_ERR_UNSUPPORTED_MODEL', `input '${input.name}' has dynamic height/width and no imgsz metadata; pass --imgsz`);
    h = h ?? size[0];
    w = w ?? size[1];
  }
  const output = outputs[0];
  if (!output) throw new OspreyError('OSPREY_ERR_UNSUPPORTED_MODEL', 'the model has no outputs');
  let hint: number | undefined;
  if (metadata.names !== undefined) {
    try {
      hint = resolveClassNames(0, metadata).length;
    } catch {
      hint = undefined;
    }
  }
  const layout = detectOutputLayout(output.shape, hint);
  const names = resolveClassNames(layout.numClasses, metadata, options.labelsText);
  if (layout.numClasses === 0) layout.numClasses = names.length;
  const stride = Number(metadata.stride ?? 32) || 32;
  const nmsInGraph =
    metadata.osprey_nms_in_graph === 'true' || (layout.layout === 'end2end' && metadata.osprey_postprocess === undefined);
  return {
    inputName: input.name,
    inputFormat,
    inputType: input.type as 'float32' | 'float16' | 'uint8',
    batchSize: dimOf(s[0]),
    inputHeight: h,
    inputWidth: w,
    outputName: output.name,
    layout,
    names,
    stride,
    nmsInGraph,
  };
}
