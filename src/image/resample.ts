/**
 * Bilinear resize of packed RGB uint8 pixels, OpenCV `INTER_LINEAR` semantics, written into a destination canvas at
 * an offset (the letterbox's resized rectangle): a WebAssembly SIMD kernel, with a TypeScript loop as its reference.
 *
 * Algorithm (OpenCV imgproc/src/resize.cpp, `resizeGeneric_` with `HResizeLinear`/`VResizeLinear` for 8-bit):
 * destination pixel `d` samples the source at `s = (d + 0.5) · (srcSize / dstSize) − 0.5`; `s0 = ⌊s⌋`, weight
 * `a = s − s0`; samples left of the first pixel clamp to it with weight 0 and samples at or right of the last pixel
 * clamp to the last (border replicated, no antialiasing). Weights are fixed point with 11 fractional bits
 * (`INTER_RESIZE_COEF_BITS`): horizontal `p0·(2048 − ax) + p1·ax`, then vertical `(t·(2048 − ay) + b·ay + 2²¹) >> 22`.
 * On bus.jpg (810×1080 → 480×640) the result equals libvips' `affine` with its bilinear interpolator and ±0.5
 * offsets — the path Osprey used before — byte for byte; against the floating-point formula it is within 1 grey
 * level (test/image/letterbox.test.ts).
 *
 * Why our own: letterboxing is the host cost every image pays before the engine, and libvips' generic per-pixel
 * affine took 7.6–11 ms of CPU per 810×1080 image on the 2-core AMD EPYC development machine; the TypeScript loop
 * ({@link resizeBilinearRgbScalar}) takes ~4.1 ms. {@link resizeBilinearRgbInto} runs the same integer arithmetic as
 * a WebAssembly SIMD kernel (src/image/resample.wat: one pixel per iteration, its three channels in i32x4 lanes),
 * byte for byte the same result (test/image/resample-wasm.test.ts), and falls back to the TypeScript loop where
 * WebAssembly is unavailable (`node --jitless`).
 */
import { RESAMPLE_WASM_BASE64 } from './resample-wasm.js';

/** Fractional bits of the fixed-point weights (OpenCV's `INTER_RESIZE_COEF_BITS`). */
const COEF_BITS = 11;
const COEF_ONE = 1 << COEF_BITS;
/** Rounding term and shift of the vertical pass (two weights multiplied: 2 × 11 bits). */
const ROUND_2X = 1 << (2 * COEF_BITS - 1);
const SHIFT_2X = 2 * COEF_BITS;

/**
 * One axis' taps, in bytes: offset of the first source sample (index × `bytesPerIndex`), step to the second (0 at
 * the borders), weight of the second (0..2048).
 */
interface AxisTaps {
  first: Int32Array;
  step: Int32Array;
  weight: Int32Array;
}

function axisTaps(srcSize: number, dstSize: number, bytesPerIndex: number): AxisTaps {
  const scale = srcSize / dstSize;
  const first = new Int32Array(dstSize);
  const step = new Int32Array(dstSize);
  const weight = new Int32Array(dstSize);
  for (let d = 0; d < dstSize; d++) {
    const f = (d + 0.5) * scale - 0.5;
    let s = Math.floor(f);
    let a = f - s;
    if (s < 0) {
      s = 0;
      a = 0;
    }
    if (s >= srcSize - 1) {
      s = srcSize - 1;
      a = 0;
    }
    first[d] = s * bytesPerIndex;
    step[d] = s + 1 < srcSize ? bytesPerIndex : 0;
    weight[d] = Math.round(a * COEF_ONE);
  }
  return { first, step, weight };
}

function checkArguments(src: Uint8Array, srcWidth: number, srcHeight: number, dst: Uint8Array, dstStridePixels: number, dstRectWidth: number, dstRectHeight: number, left: number, top: number): void {
  for (const v of [srcWidth, srcHeight, dstStridePixels, dstRectWidth, dstRectHeight]) {
    if (!Number.isInteger(v) || v <= 0) throw new RangeError(`resize: size ${v} is not a positive integer`);
  }
  if (src.length < srcWidth * srcHeight * 3) throw new RangeError(`resize: source has ${src.length} bytes, expected ${srcWidth * srcHeight * 3}`);
  if (!Number.isInteger(left) || !Number.isInteger(top) || left < 0 || top < 0 || left + dstRectWidth > dstStridePixels || (top + dstRectHeight) * dstStridePixels * 3 > dst.length) {
    throw new RangeError(`resize: rectangle ${dstRectWidth}×${dstRectHeight} at (${left}, ${top}) does not fit the destination`);
  }
}

/** The WebAssembly kernel of this thread: its memory and `resize` (src/image/resample.wat); null without WebAssembly. */
interface WasmKernel {
  memory: { readonly buffer: ArrayBuffer; grow(pages: number): number };
  resize: (src: number, rowTab: number, colTab: number, out: number, outRowBytes: number, width: number, height: number) => void;
}

/** The part of the WebAssembly global used here (the project's TypeScript libs have no DOM types). */
interface WasmGlobal {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}

let kernel: WasmKernel | null | undefined;

function wasmKernel(): WasmKernel | null {
  if (kernel !== undefined) return kernel;
  const wasm = (globalThis as { WebAssembly?: WasmGlobal }).WebAssembly;
  try {
    kernel = wasm ? (new wasm.Instance(new wasm.Module(Buffer.from(RESAMPLE_WASM_BASE64, 'base64')), {}).exports as WasmKernel) : null;
  } catch {
    kernel = null; // WebAssembly without SIMD: the TypeScript loop does the work
  }
  return kernel; // null also under node --jitless (no WebAssembly global)
}

/**
 * Resizes packed RGB `src` `[srcHeight, srcWidth, 3]` to `dstRectWidth × dstRectHeight` and writes it into `dst`
 * `[·, dstStridePixels, 3]` with its top-left corner at (`left`, `top`) (pixels). Pixels of `dst` outside the
 * rectangle are not touched. Runs the WebAssembly SIMD kernel (the source is copied into its memory, the rectangle
 * copied out row by row); the same bytes as {@link resizeBilinearRgbScalar}.
 *
 * @example
 *   // bus.jpg 810×1080 into a 640×640 letterbox canvas: resized 480×640 at x = 80
 *   resizeBilinearRgbInto(rgb, 810, 1080, canvas, 640, 480, 640, 80, 0);
 * @throws RangeError when a size is not a positive integer or the rectangle does not fit `dst` (callers check
 *   geometry first; see src/image/letterbox.ts).
 */
export function resizeBilinearRgbInto(
  src: Uint8Array,
  srcWidth: number,
  srcHeight: number,
  dst: Uint8Array,
  dstStridePixels: number,
  dstRectWidth: number,
  dstRectHeight: number,
  left: number,
  top: number,
): void {
  checkArguments(src, srcWidth, srcHeight, dst, dstStridePixels, dstRectWidth, dstRectHeight, left, top);
  const k = wasmKernel();
  if (!k) {
    resizeBilinearRgbScalar(src, srcWidth, srcHeight, dst, dstStridePixels, dstRectWidth, dstRectHeight, left, top);
    return;
  }
  // Kernel memory: column taps, row taps (12 bytes each), the output rectangle, then the source (+16 readable bytes:
  // the kernel loads 4 bytes per pixel).
  const colTab = 0;
  const rowTab = colTab + 12 * dstRectWidth;
  const out = rowTab + 12 * dstRectHeight;
  const outRowBytes = dstRectWidth * 3;
  const srcBytes = srcWidth * srcHeight * 3;
  const srcAt = (out + outRowBytes * dstRectHeight + 15) & ~15;
  const needed = srcAt + srcBytes + 16;
  const have = k.memory.buffer.byteLength;
  if (needed > have) k.memory.grow(Math.ceil((needed - have) / 65536));
  const mem = new Uint8Array(k.memory.buffer);
  const words = new Int32Array(k.memory.buffer, 0, out >> 2);
  // interleaved { offset, step, weight } per column, then per row (the kernel's tables)
  for (const [taps, at] of [[axisTaps(srcWidth, dstRectWidth, 3), colTab], [axisTaps(srcHeight, dstRectHeight, srcWidth * 3), rowTab]] as const) {
    for (let i = 0, w = at >> 2; i < taps.first.length; i++, w += 3) {
      words[w] = taps.first[i]!;
      words[w + 1] = taps.step[i]!;
      words[w + 2] = taps.weight[i]!;
    }
  }
  mem.set(src.subarray(0, srcBytes), srcAt);
  k.resize(srcAt, rowTab, colTab, out, outRowBytes, dstRectWidth, dstRectHeight);
  const stride = dstStridePixels * 3;
  if (dstStridePixels === dstRectWidth) {
    dst.set(mem.subarray(out, out + outRowBytes * dstRectHeight), top * stride);
    return;
  }
  for (let y = 0; y < dstRectHeight; y++) {
    dst.set(mem.subarray(out + y * outRowBytes, out + (y + 1) * outRowBytes), (top + y) * stride + left * 3);
  }
}

/**
 * {@link resizeBilinearRgbInto} as a TypeScript loop on typed arrays: the reference the WebAssembly kernel is
 * checked against, and the path where WebAssembly is unavailable.
 * @throws RangeError as {@link resizeBilinearRgbInto}.
 */
export function resizeBilinearRgbScalar(
  src: Uint8Array,
  srcWidth: number,
  srcHeight: number,
  dst: Uint8Array,
  dstStridePixels: number,
  dstRectWidth: number,
  dstRectHeight: number,
  left: number,
  top: number,
): void {
  checkArguments(src, srcWidth, srcHeight, dst, dstStridePixels, dstRectWidth, dstRectHeight, left, top);
  const { first: colFirst, step: colStep, weight: colWeight } = axisTaps(srcWidth, dstRectWidth, 3);
  const ys = axisTaps(srcHeight, dstRectHeight, srcWidth * 3);
  for (let y = 0; y < dstRectHeight; y++) {
    const row0 = ys.first[y]!;
    const rowStep = ys.step[y]!;
    const wy = ys.weight[y]!;
    let o = ((top + y) * dstStridePixels + left) * 3;
    for (let x = 0; x < dstRectWidth; x++) {
      const a = row0 + colFirst[x]!;
      const d = colStep[x]!;
      const b = a + rowStep;
      const wx = colWeight[x]!;
      // a·(1 − w) + b·w written as a·1 + (b − a)·w (same integers, one multiply); channels unrolled.
      let p = src[a]!;
      let t = (p << COEF_BITS) + (src[a + d]! - p) * wx;
      p = src[b]!;
      let u = (p << COEF_BITS) + (src[b + d]! - p) * wx;
      dst[o] = ((t << COEF_BITS) + (u - t) * wy + ROUND_2X) >> SHIFT_2X;
      p = src[a + 1]!;
      t = (p << COEF_BITS) + (src[a + d + 1]! - p) * wx;
      p = src[b + 1]!;
      u = (p << COEF_BITS) + (src[b + d + 1]! - p) * wx;
      dst[o + 1] = ((t << COEF_BITS) + (u - t) * wy + ROUND_2X) >> SHIFT_2X;
      p = src[a + 2]!;
      t = (p << COEF_BITS) + (src[a + d + 2]! - p) * wx;
      p = src[b + 2]!;
      u = (p << COEF_BITS) + (src[b + d + 2]! - p) * wx;
      dst[o + 2] = ((t << COEF_BITS) + (u - t) * wy + ROUND_2X) >> SHIFT_2X;
      o += 3;
    }
  }
}
