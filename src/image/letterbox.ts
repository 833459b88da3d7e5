/**
 * Letterboxing with sharp into a preallocated batch buffer: resize (aspect ratio kept, bilinear) + pad with gray
 * 114, written at a batch index as uint8 NHWC (RGB) or float32 NCHW (RGB, 0..1). All pixel work is libvips;
 * JS only copies finished planes into the batch with `TypedArray.set` (memcpy).
 *
 * Geometry comes from core `computeLetterbox` (Ultralytics `LetterBox` semantics); resampling reproduces OpenCV's
 * `INTER_LINEAR` (see {@link letterboxToBuffer}).
 */
import sharp from 'sharp';
import { OspreyError } from '../core/errors.js';
import { computeLetterbox, LETTERBOX_PAD_VALUE, type LetterboxGeometry, type LetterboxOptions } from '../core/letterbox.js';
import type { InputFormat } from '../core/model-spec.js';
import { RGB_CHANNELS, type DecodedImage } from './decode.js';

export type { InputFormat };

/** Identity 3×3 kernel with scale 255: out = in / 255, computed and output in float. */
const DIVIDE_BY_255 = { width: 3, height: 3, kernel: [0, 0, 0, 0, 1, 0, 0, 0, 0], scale: 255, offset: 0 };

/** A batch of letterboxed images, ready to feed a model. */
export interface BatchBuffer {
  format: InputFormat;
  /** Number of image slots. */
  batchSize: number;
  /** Canvas height (model input height), pixels. */
  height: number;
  /** Canvas width (model input width), pixels. */
  width: number;
  /**
   * `uint8-nhwc`: Uint8Array `[batch, height, width, 3]` RGB 0..255;
   * `float32-nchw`: Float32Array `[batch, 3, height, width]` RGB 0..1.
   */
  data: Uint8Array | Float32Array;
}

/**
 * Allocates a zero-filled batch buffer.
 * @example allocateBatch('float32-nchw', 1, 640, 640).data.length // → 1228800
 */
export function allocateBatch(format: InputFormat, batchSize: number, height: number, width: number): BatchBuffer {
  const size = batchSize * height * width * RGB_CHANNELS;
  const data = format === 'uint8-nhwc' ? new Uint8Array(size) : new Float32Array(size);
  return { format, batchSize, height, width, data };
}

/** Shape of a batch buffer as the model expects it: `[B, H, W, 3]` or `[B, 3, H, W]`. */
export function batchDims(batch: BatchBuffer, count = batch.batchSize): number[] {
  return batch.format === 'uint8-nhwc' ? [count, batch.height, batch.width, RGB_CHANNELS] : [count, RGB_CHANNELS, batch.height, batch.width];
}

/**
 * Renders the letterboxed canvas of `image` as packed RGB uint8 `[dstHeight, dstWidth, 3]` (a fresh Buffer).
 *
 * Resampling reproduces OpenCV's `cv2.resize(..., INTER_LINEAR)` that Ultralytics' `LetterBox` uses: bilinear
 * sampling at `src = (dst + 0.5) / scale - 0.5` with the border replicated, no antialiasing. libvips' `affine`
 * with the bilinear interpolator and input/output offsets of +0.5/−0.5 computes exactly that (checked pixel by
 * pixel against a cv2-formula reference in test/image/letterbox.test.ts, |Δ| ≤ 1 grey level from rounding).
 * sharp's `resize({ kernel: 'linear' })` is not the same: libvips widens the kernel when shrinking
 * (antialiasing), which moved a bus.jpg box by 4.9 px against the OpenCV reference; the affine path is within 0.3 px.
 * Upscaling samples up to half a pixel outside the image, so the source gets a 1-pixel replicated border first.
 * The resize is skipped when the image already has the resized size (as Ultralytics does).
 */
export async function letterboxToBuffer(image: DecodedImage, g: LetterboxGeometry): Promise<Buffer> {
  checkGeometry(image, g);
  const expected = g.dstWidth * g.dstHeight * RGB_CHANNELS;
  const sx = g.resizedWidth / image.width;
  const sy = g.resizedHeight / image.height;
  const v = LETTERBOX_PAD_VALUE;
  const pad = { top: g.padTop, bottom: g.padBottom, left: g.padLeft, right: g.padRight, background: { r: v, g: v, b: v } };
  const rawOf = (data: Uint8Array, width: number, height: number) => sharp(data, { raw: { width, height, channels: RGB_CHANNELS } });

  if (sx === 1 && sy === 1) return checked(await rawOf(image.data, image.width, image.height).extend(pad).raw().toBuffer(), expected, image);

  if (sx <= 1 && sy <= 1) {
    // Downscale: every sample lies inside the image; affine output is exactly resizedWidth × resizedHeight.
    const buf = await rawOf(image.data, image.width, image.height)
      .affine([sx, 0, 0, sy], { interpolator: 'bilinear', idx: 0.5, idy: 0.5, odx: -0.5, ody: -0.5 })
      .extend(pad)
      .raw()
      .toBuffer();
    if (buf.length === expected) return buf;
    // Output area off by a pixel (not seen on 300 random sizes): fall through to the explicit crop.
  }
  // Replicate a 1-pixel border, resample, then crop the resized image at the origin and pad.
  const bordered = await rawOf(image.data, image.width, image.height)
    .extend({ top: 1, bottom: 1, left: 1, right: 1, extendWith: 'copy' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const resampled = await rawOf(bordered.data, bordered.info.width, bordered.info.height)
    .affine([sx, 0, 0, sy], { interpolator: 'bilinear', idx: -0.5, idy: -0.5, odx: -0.5, ody: -0.5 })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const buf = await rawOf(resampled.data, resampled.info.width, resampled.info.height)
    .extract({ left: 0, top: 0, width: g.resizedWidth, height: g.resizedHeight })
    .extend(pad)
    .raw()
    .toBuffer();
  return checked(buf, expected, image);
}

function checked(buf: Buffer, expected: number, image: DecodedImage): Buffer {
  if (buf.length !== expected) {
    throw new OspreyError('OSPREY_ERR_INTERNAL', `${image.source}: letterbox produced ${buf.length} bytes, expected ${expected}`);
  }
  return buf;
}

function checkGeometry(image: DecodedImage, g: LetterboxGeometry): void {
  if (g.srcWidth !== image.width || g.srcHeight !== image.height) {
    throw new OspreyError(
      'OSPREY_ERR_INVALID_ARGUMENT',
      `${image.source}: letterbox geometry is for ${g.srcWidth}×${g.srcHeight} but the image is ${image.width}×${image.height}`,
    );
  }
}

/**
 * Letterboxes `image` into slot `batchIndex` of `batch` with geometry `g` (whose canvas must equal the batch's).
 *
 * float32 NCHW: the uint8 canvas is split into its three channel planes by libvips, each divided by 255 on the way
 * (a 3×3 identity convolution with `scale: 255`: libvips convolves in float, so the plane comes out as float32 —
 * sharp's `linear()` would round back to uint8) and copied into place. Measured on bus.jpg (2-core CPU): ~12 ms for
 * the three planes, against ~25 ms with `recomb()` (same values, bit for bit).
 *
 * @throws OspreyError `OSPREY_ERR_INVALID_ARGUMENT` (index out of range, canvas/batch size mismatch).
 */
export async function letterboxInto(image: DecodedImage, g: LetterboxGeometry, batch: BatchBuffer, batchIndex: number): Promise<void> {
  if (!Number.isInteger(batchIndex) || batchIndex < 0 || batchIndex >= batch.batchSize) {
    throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `batch index ${batchIndex} is outside [0, ${batch.batchSize})`);
  }
  if (g.dstWidth !== batch.width || g.dstHeight !== batch.height) {
    throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `letterbox canvas ${g.dstWidth}×${g.dstHeight} does not match the batch ${batch.width}×${batch.height}`);
  }
  const canvas = await letterboxToBuffer(image, g);
  const plane = batch.width * batch.height;
  if (batch.format === 'uint8-nhwc') {
    (batch.data as Uint8Array).set(canvas, batchIndex * plane * RGB_CHANNELS);
    return;
  }
  const raw = { raw: { width: batch.width, height: batch.height, channels: RGB_CHANNELS } } as const;
  const planes = await Promise.all(
    [0, 1, 2].map((c) =>
      sharp(canvas, raw)
        .convolve(DIVIDE_BY_255)
        .extractChannel(c as 0 | 1 | 2)
        .raw({ depth: 'float' })
        .toBuffer(),
    ),
  );
  // Copy bytes (a Buffer's offset need not be 4-aligned, so go through byte views).
  const dst = batch.data as Float32Array;
  const dstBytes = new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength);
  for (let c = 0; c < RGB_CHANNELS; c++) {
    const p = planes[c]!;
    if (p.length !== plane * 4) throw new OspreyError('OSPREY_ERR_INTERNAL', `${image.source}: channel plane ${c} has ${p.length} bytes, expected ${plane * 4}`);
    dstBytes.set(p, ((batchIndex * RGB_CHANNELS + c) * plane) * 4);
  }
}

/**
 * Computes the letterbox for `image` onto the batch canvas and fills slot `batchIndex`.
 * @returns the geometry (model pixels ↔ source pixels) to scale this image's boxes back.
 */
export async function letterboxImageInto(
  image: DecodedImage,
  batch: BatchBuffer,
  batchIndex: number,
  options: LetterboxOptions = {},
): Promise<LetterboxGeometry> {
  const g = computeLetterbox(image.width, image.height, batch.width, batch.height, { ...options, auto: false });
  await letterboxInto(image, g, batch, batchIndex);
  return g;
}
