/**
 * Letterboxing into a preallocated batch buffer: resize (aspect ratio kept, bilinear) + pad with gray 114, written
 * at a batch index as uint8 NHWC (RGB) or float32 NCHW (RGB, 0..1). The resize (src/image/resample.ts) writes
 * straight into the batch slot for uint8 NHWC; float32 NCHW goes through one uint8 canvas and a table lookup.
 *
 * Geometry comes from core `computeLetterbox` (Ultralytics `LetterBox` semantics); resampling reproduces OpenCV's
 * `INTER_LINEAR` (see {@link letterboxToBuffer}).
 */
import { OspreyError } from '../core/errors.js';
import { computeLetterbox, LETTERBOX_PAD_VALUE, type LetterboxGeometry, type LetterboxOptions } from '../core/letterbox.js';
import type { InputFormat } from '../core/model-spec.js';
import { RGB_CHANNELS, type DecodedImage } from './decode.js';
import { resizeBilinearRgbInto } from './resample.js';

export type { InputFormat };

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
 * sampling at `src = (dst + 0.5) / scale - 0.5` with the border replicated, no antialiasing, OpenCV's 11-bit fixed
 * point weights (src/image/resample.ts; within 1 grey level of the floating-point formula, checked pixel by pixel in
 * test/image/letterbox.test.ts). sharp's `resize({ kernel: 'linear' })` is not the same: libvips widens the kernel
 * when shrinking (antialiasing), which moved a bus.jpg box by 4.9 px against the OpenCV reference.
 * The resize is skipped when the image already has the resized size (as Ultralytics does).
 */
export async function letterboxToBuffer(image: DecodedImage, g: LetterboxGeometry): Promise<Buffer> {
  checkGeometry(image, g);
  const canvas = Buffer.allocUnsafe(g.dstWidth * g.dstHeight * RGB_CHANNELS);
  drawLetterbox(image, g, canvas, 0);
  return canvas;
}

/**
 * Draws the letterbox of `image` into `dst` (packed RGB uint8, the canvas `g.dstWidth × g.dstHeight` starting at
 * byte `offset`): pad bands with {@link LETTERBOX_PAD_VALUE}, the resized image inside. Every canvas byte is written.
 */
function drawLetterbox(image: DecodedImage, g: LetterboxGeometry, dst: Uint8Array, offset: number): void {
  const canvas = dst.subarray(offset, offset + g.dstWidth * g.dstHeight * RGB_CHANNELS);
  const rowBytes = g.dstWidth * RGB_CHANNELS;
  const v = LETTERBOX_PAD_VALUE;
  // Pad: the bands above and below, then the left and right margins of the rows in between.
  canvas.fill(v, 0, g.padTop * rowBytes);
  canvas.fill(v, (g.padTop + g.resizedHeight) * rowBytes);
  if (g.padLeft > 0 || g.padRight > 0) {
    for (let y = g.padTop; y < g.padTop + g.resizedHeight; y++) {
      const row = y * rowBytes;
      canvas.fill(v, row, row + g.padLeft * RGB_CHANNELS);
      canvas.fill(v, row + (g.padLeft + g.resizedWidth) * RGB_CHANNELS, row + rowBytes);
    }
  }
  if (g.resizedWidth === image.width && g.resizedHeight === image.height) {
    const srcRow = image.width * RGB_CHANNELS;
    for (let y = 0; y < image.height; y++) {
      canvas.set(image.data.subarray(y * srcRow, (y + 1) * srcRow), ((g.padTop + y) * g.dstWidth + g.padLeft) * RGB_CHANNELS);
    }
    return;
  }
  resizeBilinearRgbInto(image.data, image.width, image.height, canvas, g.dstWidth, g.resizedWidth, g.resizedHeight, g.padLeft, g.padTop);
}

/** The uint8 canvas of the float32 NCHW path, kept between calls (see letterboxInto). */
let floatScratch = new Uint8Array(0);

/** uint8 → float32 `v / 255` (the value ONNX Runtime's float Div would give), by table. */
const UNIT_SCALE = Float32Array.from({ length: 256 }, (_v, i) => i / 255);

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
 * uint8 NHWC: drawn in place (pad bands, then the resize). float32 NCHW: drawn into a uint8 canvas, then split into
 * the three RGB planes as `v / 255` (float32). Synchronous work on the calling thread (bus.jpg onto 640×640 on the
 * 2-core AMD EPYC development machine: ~1.2 ms uint8 with the WebAssembly resize, ~3.8 ms float32, whose plane split
 * is a TypeScript loop); the promise is kept for the callers' sake.
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
  checkGeometry(image, g);
  const plane = batch.width * batch.height;
  if (batch.format === 'uint8-nhwc') {
    drawLetterbox(image, g, batch.data as Uint8Array, batchIndex * plane * RGB_CHANNELS);
    return;
  }
  // One scratch canvas per thread, reused (drawn and split with no await between: no other call can interleave).
  if (floatScratch.length !== plane * RGB_CHANNELS) floatScratch = new Uint8Array(plane * RGB_CHANNELS);
  const canvas = floatScratch;
  drawLetterbox(image, g, canvas, 0);
  const dst = batch.data as Float32Array;
  const r = batchIndex * RGB_CHANNELS * plane;
  const gr = r + plane;
  const b = gr + plane;
  for (let i = 0, j = 0; i < plane; i++, j += 3) {
    dst[r + i] = UNIT_SCALE[canvas[j]!]!;
    dst[gr + i] = UNIT_SCALE[canvas[j + 1]!]!;
    dst[b + i] = UNIT_SCALE[canvas[j + 2]!]!;
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
