/**
 * Letterbox geometry: how a source image is resized (aspect ratio kept) and padded onto the model's input canvas,
 * and how boxes go back from model-input pixels to source pixels.
 *
 * Semantics follow Ultralytics' `LetterBox` (ultralytics/data/augment.py) and `scale_boxes`
 * (ultralytics/utils/ops.py), including Python's round-half-to-even, so boxes match Ultralytics' own predictions.
 * Pure TS: the pixel work itself happens in sharp / ffmpeg / the ONNX graph.
 */
import { OspreyError } from './errors.js';

/** Pad value Ultralytics uses for letterbox borders (gray 114 on each RGB channel). */
export const LETTERBOX_PAD_VALUE = 114;

/**
 * Where a source image lands on the model's input canvas.
 * All sizes in pixels; `src*` are source-image pixels (after EXIF orientation), the rest model-input pixels.
 */
export interface LetterboxGeometry {
  srcWidth: number;
  srcHeight: number;
  /** Canvas width: the model input width, or the stride-aligned minimal width when `auto`. */
  dstWidth: number;
  /** Canvas height: the model input height, or the stride-aligned minimal height when `auto`. */
  dstHeight: number;
  /** Scale from source to model pixels: min(dstH/srcH, dstW/srcW), capped at 1 when scaleUp is false. */
  ratio: number;
  /** Width of the resized image inside the canvas: round(srcWidth × ratio). */
  resizedWidth: number;
  /** Height of the resized image inside the canvas: round(srcHeight × ratio). */
  resizedHeight: number;
  padLeft: number;
  padTop: number;
  padRight: number;
  padBottom: number;
}

export interface LetterboxOptions {
  /** Minimal stride-aligned padding (Ultralytics `auto=True`, used for rectangular inference). Default false. */
  auto?: boolean;
  /** Stride for `auto` padding. Default 32. */
  stride?: number;
  /** Allow enlarging images smaller than the canvas. Default true. */
  scaleUp?: boolean;
}

/** Python 3's round(): round half to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  const v = Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  return v === 0 ? 0 : v; // no negative zero
}

/**
 * Computes the letterbox of a `srcWidth × srcHeight` image onto a `dstWidth × dstHeight` canvas.
 *
 * @example
 *   computeLetterbox(810, 1080, 640, 640)
 *   // → { ratio: 0.5926, resizedWidth: 480, resizedHeight: 640, padLeft: 80, padRight: 80, padTop: 0, padBottom: 0, ... }
 * @throws OspreyError `OSPREY_ERR_INVALID_ARGUMENT` when a size is not a positive integer.
 */
export function computeLetterbox(
  srcWidth: number,
  srcHeight: number,
  dstWidth: number,
  dstHeight: number,
  options: LetterboxOptions = {},
): LetterboxGeometry {
  for (const [name, v] of [['srcWidth', srcWidth], ['srcHeight', srcHeight], ['dstWidth', dstWidth], ['dstHeight', dstHeight]] as const) {
    if (!Number.isInteger(v) || v <= 0) {
      throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `letterbox: ${name} must be a positive integer, got ${v}`);
    }
  }
  const stride = options.stride ?? 32;
  let ratio = Math.min(dstHeight / srcHeight, dstWidth / srcWidth);
  if (options.scaleUp === false) ratio = Math.min(ratio, 1);
  const resizedWidth = Math.max(1, roundHalfEven(srcWidth * ratio));
  const resizedHeight = Math.max(1, roundHalfEven(srcHeight * ratio));
  let dw = dstWidth - resizedWidth;
  let dh = dstHeight - resizedHeight;
  if (options.auto) {
    dw %= stride;
    dh %= stride;
  }
  dw /= 2;
  dh /= 2;
  const padTop = roundHalfEven(dh - 0.1);
  const padBottom = roundHalfEven(dh + 0.1);
  const padLeft = roundHalfEven(dw - 0.1);
  const padRight = roundHalfEven(dw + 0.1);
  return {
    srcWidth,
    srcHeight,
    dstWidth: resizedWidth + padLeft + padRight,
    dstHeight: resizedHeight + padTop + padBottom,
    ratio,
    resizedWidth,
    resizedHeight,
    padLeft,
    padTop,
    padRight,
    padBottom,
  };
}

/**
 * Maps boxes from model-input pixels back to source pixels, in place, and clips them to the source image
 * (Ultralytics `scale_boxes` + `clip_boxes`).
 *
 * @param boxes `[count × 4]` float32, xyxy, model-input pixels on entry, source pixels on return.
 */
export function scaleBoxesToSource(boxes: Float32Array, count: number, g: LetterboxGeometry): void {
  const inv = 1 / g.ratio;
  const w = g.srcWidth;
  const h = g.srcHeight;
  for (let i = 0; i < count; i++) {
    const o = i * 4;
    const x1 = (boxes[o]! - g.padLeft) * inv;
    const y1 = (boxes[o + 1]! - g.padTop) * inv;
    const x2 = (boxes[o + 2]! - g.padLeft) * inv;
    const y2 = (boxes[o + 3]! - g.padTop) * inv;
    boxes[o] = x1 < 0 ? 0 : x1 > w ? w : x1;
    boxes[o + 1] = y1 < 0 ? 0 : y1 > h ? h : y1;
    boxes[o + 2] = x2 < 0 ? 0 : x2 > w ? w : x2;
    boxes[o + 3] = y2 < 0 ? 0 : y2 > h ? h : y2;
  }
}
