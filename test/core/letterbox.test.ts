import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeLetterbox, roundHalfEven, scaleBoxesToSource } from '../../src/core/letterbox.js';
import { isOspreyError } from '../../src/core/errors.js';

test('roundHalfEven matches Python round()', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, 2.4, 2.6, 79.9, 80.1].map(roundHalfEven), [0, 2, 2, 0, 2, 3, 80, 80]);
});

test('bus.jpg (810×1080) onto 640×640: 480×640 centred with 80 px each side', () => {
  const g = computeLetterbox(810, 1080, 640, 640);
  assert.equal(g.resizedWidth, 480);
  assert.equal(g.resizedHeight, 640);
  assert.deepEqual([g.padLeft, g.padRight, g.padTop, g.padBottom], [80, 80, 0, 0]);
  assert.equal(g.dstWidth, 640);
  assert.equal(g.dstHeight, 640);
  assert.ok(Math.abs(g.ratio - 640 / 1080) < 1e-12);
});

test('zidane.jpg (1280×720) onto 640×640: odd padding split like Ultralytics (140/140)', () => {
  const g = computeLetterbox(1280, 720, 640, 640);
  assert.equal(g.resizedWidth, 640);
  assert.equal(g.resizedHeight, 360);
  assert.deepEqual([g.padTop, g.padBottom], [140, 140]);
});

test('odd total padding: top gets round(d - 0.1), bottom round(d + 0.1)', () => {
  // 100×61 onto 100×100: resized 100×61, dh = 39 / 2 = 19.5 → top 19, bottom 20
  const g = computeLetterbox(100, 61, 100, 100);
  assert.deepEqual([g.padTop, g.padBottom, g.padLeft, g.padRight], [19, 20, 0, 0]);
  assert.equal(g.dstHeight, 100);
});

test('auto (stride-aligned minimal) padding and scaleUp=false', () => {
  const g = computeLetterbox(1280, 720, 640, 640, { auto: true, stride: 32 });
  // 640×360 → pad to 384 (multiple of 32): 24 in total, 12 + 12
  assert.equal(g.dstHeight, 384);
  assert.equal(g.dstWidth, 640);
  const small = computeLetterbox(100, 50, 640, 640, { scaleUp: false });
  assert.equal(small.ratio, 1);
  assert.equal(small.resizedWidth, 100);
  assert.equal(small.padLeft + small.padRight, 540);
});

test('invalid sizes are refused with OSPREY_ERR_INVALID_ARGUMENT', () => {
  assert.throws(() => computeLetterbox(0, 10, 640, 640), (e) => isOspreyError(e, 'OSPREY_ERR_INVALID_ARGUMENT'));
  assert.throws(() => computeLetterbox(10, 10, 640.5, 640), (e) => isOspreyError(e, 'OSPREY_ERR_INVALID_ARGUMENT'));
});

test('scaleBoxesToSource inverts the letterbox and clips to the image', () => {
  const g = computeLetterbox(810, 1080, 640, 640);
  // a box covering the whole resized image maps to the whole source image; one outside is clipped
  const boxes = new Float32Array([80, 0, 560, 640, -20, -5, 700, 700]);
  scaleBoxesToSource(boxes, 2, g);
  assert.ok(Math.abs(boxes[0]! - 0) < 1e-3 && Math.abs(boxes[2]! - 810) < 1e-3 && Math.abs(boxes[3]! - 1080) < 1e-3);
  assert.deepEqual(Array.from(boxes.subarray(4)), [0, 0, 810, 1080]);
  // a point in the middle of the canvas is the middle of the source
  const mid = new Float32Array([320, 320, 320, 320]);
  scaleBoxesToSource(mid, 1, g);
  assert.ok(Math.abs(mid[0]! - 405) < 1e-3 && Math.abs(mid[1]! - 540) < 1e-3);
});
