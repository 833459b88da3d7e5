import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isOspreyError } from '../../src/core/errors.js';
import { computeLetterbox, LETTERBOX_PAD_VALUE } from '../../src/core/letterbox.js';
import type { DecodedImage } from '../../src/image/decode.js';
import { allocateBatch, batchDims, letterboxImageInto, letterboxInto, letterboxToBuffer } from '../../src/image/letterbox.js';
import { resizeBilinearRgbInto } from '../../src/image/resample.js';

/** A deterministic, textured RGB test image (channels differ so a channel mix-up shows). */
function testImage(width: number, height: number): DecodedImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      data[o] = (x * 7 + y * 3) % 256;
      data[o + 1] = (x * x + y * 5) % 256;
      data[o + 2] = (255 - ((x * 13 + y * y) % 256)) & 255;
    }
  }
  return { source: `${width}x${height}`, width, height, data, format: 'raw' };
}

/**
 * OpenCV's INTER_LINEAR, written out from its definition (imgproc/src/resize.cpp): sample at
 * src = (dst + 0.5) × (srcSize / dstSize) − 0.5, border replicated, no antialiasing. Used only as the test's reference.
 */
function cvInterLinear(img: DecodedImage, rw: number, rh: number): Float64Array {
  const { width: w, height: h, data } = img;
  const out = new Float64Array(rw * rh * 3);
  const fx = w / rw;
  const fy = h / rh;
  const clamp = (v: number, m: number) => Math.min(Math.max(v, 0), m - 1);
  for (let y = 0; y < rh; y++) {
    const sy = (y + 0.5) * fy - 0.5;
    const y0 = Math.floor(sy);
    const ay = sy - y0;
    for (let x = 0; x < rw; x++) {
      const sx = (x + 0.5) * fx - 0.5;
      const x0 = Math.floor(sx);
      const ax = sx - x0;
      for (let c = 0; c < 3; c++) {
        const p = (xx: number, yy: number) => data[(clamp(yy, h) * w + clamp(xx, w)) * 3 + c]!;
        out[(y * rw + x) * 3 + c] = (1 - ay) * ((1 - ax) * p(x0, y0) + ax * p(x0 + 1, y0)) + ay * ((1 - ax) * p(x0, y0 + 1) + ax * p(x0 + 1, y0 + 1));
      }
    }
  }
  return out;
}

function maxAbsDiffInside(canvas: Uint8Array, dstW: number, ref: Float64Array, g: ReturnType<typeof computeLetterbox>): number {
  let worst = 0;
  for (let y = 0; y < g.resizedHeight; y++) {
    for (let x = 0; x < g.resizedWidth; x++) {
      for (let c = 0; c < 3; c++) {
        const got = canvas[((y + g.padTop) * dstW + (x + g.padLeft)) * 3 + c]!;
        worst = Math.max(worst, Math.abs(got - ref[(y * g.resizedWidth + x) * 3 + c]!));
      }
    }
  }
  return worst;
}

describe('letterbox', () => {
  for (const [w, h, dw, dh] of [
    [81, 108, 64, 64], // downscale, portrait (padding left/right)
    [120, 50, 96, 96], // downscale, landscape (padding top/bottom)
    [30, 20, 96, 64], // upscale
    [64, 48, 64, 64], // no resize, pad only
  ] as const) {
    it(`${w}×${h} → ${dw}×${dh} matches cv2 INTER_LINEAR within 1 grey level, pads with ${LETTERBOX_PAD_VALUE}`, async () => {
      const img = testImage(w, h);
      const g = computeLetterbox(w, h, dw, dh);
      const canvas = await letterboxToBuffer(img, g);
      assert.equal(canvas.length, dw * dh * 3);
      const ref = cvInterLinear(img, g.resizedWidth, g.resizedHeight);
      const diff = maxAbsDiffInside(canvas, dw, ref, g);
      assert.ok(diff <= 1, `max |Δ| = ${diff}`);
      // Every pixel outside the resized image is the pad value.
      for (let y = 0; y < dh; y++) {
        for (let x = 0; x < dw; x++) {
          const inside = x >= g.padLeft && x < g.padLeft + g.resizedWidth && y >= g.padTop && y < g.padTop + g.resizedHeight;
          if (inside) continue;
          const o = (y * dw + x) * 3;
          assert.deepEqual([canvas[o], canvas[o + 1], canvas[o + 2]], [114, 114, 114], `pad pixel (${x}, ${y})`);
        }
      }
    });
  }

  it('uint8 NHWC slot equals the canvas; float32 NCHW slot equals canvas / 255 in planes', async () => {
    const img = testImage(90, 60);
    const g = computeLetterbox(90, 60, 48, 48);
    const canvas = await letterboxToBuffer(img, g);
    const u8 = allocateBatch('uint8-nhwc', 3, 48, 48);
    await letterboxInto(img, g, u8, 1);
    const plane = 48 * 48;
    assert.deepEqual(Buffer.from(u8.data.subarray(plane * 3, plane * 6)), canvas);
    assert.ok(u8.data.subarray(0, plane * 3).every((v) => v === 0), 'slot 0 untouched');
    assert.ok(u8.data.subarray(plane * 6).every((v) => v === 0), 'slot 2 untouched');
    assert.deepEqual(batchDims(u8), [3, 48, 48, 3]);

    const f32 = allocateBatch('float32-nchw', 2, 48, 48);
    await letterboxInto(img, g, f32, 1);
    const data = f32.data as Float32Array;
    assert.deepEqual(batchDims(f32, 2), [2, 3, 48, 48]);
    let worst = 0;
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < plane; i++) {
        worst = Math.max(worst, Math.abs(data[(3 + c) * plane + i]! - canvas[i * 3 + c]! / 255));
      }
    }
    assert.ok(worst < 1e-6, `float plane vs canvas/255: ${worst}`);
    assert.ok(data.subarray(0, 3 * plane).every((v) => v === 0), 'slot 0 untouched');
  });

  it('letterboxImageInto returns the Ultralytics geometry (bus.jpg size onto 640×640)', async () => {
    const img = testImage(81, 108); // same aspect as bus.jpg (810×1080)
    const b = allocateBatch('uint8-nhwc', 1, 64, 64);
    const g = await letterboxImageInto(img, b, 0);
    assert.deepEqual([g.resizedWidth, g.resizedHeight, g.padLeft, g.padRight, g.padTop, g.padBottom], [48, 64, 8, 8, 0, 0]);
  });

  it('a batch index outside the batch or a canvas of another size → OSPREY_ERR_INVALID_ARGUMENT', async () => {
    const img = testImage(20, 20);
    const b = allocateBatch('uint8-nhwc', 2, 32, 32);
    const g = computeLetterbox(20, 20, 32, 32);
    for (const p of [letterboxInto(img, g, b, 2), letterboxInto(img, computeLetterbox(20, 20, 16, 16), b, 0), letterboxInto(img, computeLetterbox(21, 20, 32, 32), b, 0)]) {
      await assert.rejects(p, (e: unknown) => isOspreyError(e, 'OSPREY_ERR_INVALID_ARGUMENT'));
    }
  });
});

describe('resizeBilinearRgbInto (OpenCV INTER_LINEAR, 11-bit fixed point)', () => {
  it('writes only its rectangle, within 1 grey level of the floating-point formula, shrinking and enlarging', () => {
    for (const [w, h, rw, rh] of [[97, 61, 40, 25], [13, 9, 50, 31], [1, 1, 4, 3], [7, 1, 3, 1]] as const) {
      const img = testImage(w, h);
      const stride = rw + 5;
      const dst = new Uint8Array(stride * (rh + 3) * 3).fill(7);
      resizeBilinearRgbInto(img.data, w, h, dst, stride, rw, rh, 2, 1);
      const ref = cvInterLinear(img, rw, rh);
      for (let y = 0; y < rh + 3; y++) {
        for (let x = 0; x < stride; x++) {
          for (let c = 0; c < 3; c++) {
            const got = dst[(y * stride + x) * 3 + c]!;
            const inside = x >= 2 && x < 2 + rw && y >= 1 && y < 1 + rh;
            if (!inside) assert.equal(got, 7, `(${x}, ${y}) outside the rectangle was written`);
            else assert.ok(Math.abs(got - ref[((y - 1) * rw + (x - 2)) * 3 + c]!) <= 1, `${w}×${h} → ${rw}×${rh} at (${x}, ${y}, ${c})`);
          }
        }
      }
    }
  });

  it('a size that is not a positive integer, a short source or a rectangle outside the destination → RangeError', () => {
    const src = new Uint8Array(4 * 4 * 3);
    const dst = new Uint8Array(8 * 8 * 3);
    assert.throws(() => resizeBilinearRgbInto(src, 0, 4, dst, 8, 2, 2, 0, 0), RangeError);
    assert.throws(() => resizeBilinearRgbInto(src, 4, 4, dst, 8, 2.5, 2, 0, 0), RangeError);
    assert.throws(() => resizeBilinearRgbInto(src, 5, 4, dst, 8, 2, 2, 0, 0), /source has 48 bytes/);
    assert.throws(() => resizeBilinearRgbInto(src, 4, 4, dst, 8, 4, 4, 6, 0), /does not fit/);
    assert.throws(() => resizeBilinearRgbInto(src, 4, 4, dst, 8, 4, 4, 0, 6), /does not fit/);
  });
});
