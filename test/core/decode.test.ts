import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeDetections, detectOutputLayout } from '../../src/core/decode.js';
import { isOspreyError } from '../../src/core/errors.js';
import { computeLetterbox } from '../../src/core/letterbox.js';
import { postprocessImage } from '../../src/core/postprocess.js';
import { DEFAULT_DETECT_OPTIONS, type DetectOptions } from '../../src/core/types.js';

const opts: DetectOptions = { ...DEFAULT_DETECT_OPTIONS };

test('layout detection for the three layouts, dynamic axes and hints', () => {
  assert.deepEqual(detectOutputLayout([1, 84, 8400]), { layout: 'yolov8', numClasses: 80, numBoxes: 8400 });
  assert.deepEqual(detectOutputLayout(['batch', 84, 'anchors']), { layout: 'yolov8', numClasses: 80, numBoxes: -1 });
  assert.deepEqual(detectOutputLayout([1, 25200, 85]), { layout: 'yolov5', numClasses: 80, numBoxes: 25200 });
  assert.deepEqual(detectOutputLayout([1, 300, 6]), { layout: 'end2end', numClasses: 0, numBoxes: 300 });
  assert.deepEqual(detectOutputLayout([4, 300, 6], 80), { layout: 'end2end', numClasses: 80, numBoxes: 300 });
  // a 2-class YOLOv8 head is [B, 6, N]; the hint keeps it from being read as end-to-end
  assert.deepEqual(detectOutputLayout([1, 6, 8400], 2), { layout: 'yolov8', numClasses: 2, numBoxes: 8400 });
});

test('unsupported layouts are refused with the shape in the message', () => {
  for (const dims of [[1, 1000], [1, 3, 4, 5], [1, 4, 4]]) {
    assert.throws(
      () => detectOutputLayout(dims),
      (e: unknown) => isOspreyError(e, 'OSPREY_ERR_UNSUPPORTED_LAYOUT') && e.message.includes(`[${dims.join(', ')}]`),
    );
  }
  assert.throws(() => detectOutputLayout([1, 84, 8400], 2), (e) => isOspreyError(e, 'OSPREY_ERR_UNSUPPORTED_LAYOUT'));
});

/** Builds a YOLOv8-style [B, 4+nc, N] tensor from per-anchor rows (cx, cy, w, h, scores...). */
function v8(batch: Array<Array<number[]>>, nc: number): { dims: number[]; data: Float32Array } {
  const n = batch[0]!.length;
  const data = new Float32Array(batch.length * (4 + nc) * n);
  batch.forEach((anchors, b) => anchors.forEach((row, a) => row.forEach((v, r) => (data[b * (4 + nc) * n + r * n + a] = v))));
  return { dims: [batch.length, 4 + nc, n], data };
}

test('yolov8 decode: cxcywh → xyxy, best class, strict confidence threshold, batch index', () => {
  const out = v8(
    [
      [
        [50, 50, 20, 10, 0.1, 0.9, 0.0],
        [10, 10, 4, 4, 0.25, 0.0, 0.0], // exactly at conf 0.25: dropped (strictly greater)
        [30, 30, 10, 10, 0.0, 0.0, 0.3],
      ],
      [
        [5, 5, 2, 2, 0.0, 0.0, 0.0],
        [100, 100, 10, 20, 0.8, 0.1, 0.1],
        [0, 0, 1, 1, 0.0, 0.0, 0.0],
      ],
    ],
    3,
  );
  const info = detectOutputLayout(out.dims, 3);
  const c0 = decodeDetections(out, info, 0, opts);
  assert.equal(c0.count, 2);
  assert.deepEqual(Array.from(c0.boxes.subarray(0, 4)), [40, 45, 60, 55]);
  assert.deepEqual([c0.classIds[0], c0.classIds[1]], [1, 2]);
  const c1 = decodeDetections(out, info, 1, opts);
  assert.equal(c1.count, 1);
  assert.deepEqual(Array.from(c1.boxes.subarray(0, 4)), [95, 90, 105, 110]);
  assert.equal(c1.classIds[0], 0);
  // class filter
  assert.equal(decodeDetections(out, info, 0, { ...opts, classes: [2] }).count, 1);
  // empty output
  assert.equal(decodeDetections(out, info, 0, { ...opts, confThreshold: 0.99 }).count, 0);
  assert.throws(() => decodeDetections(out, info, 2, opts), (e) => isOspreyError(e, 'OSPREY_ERR_INVALID_TENSOR'));
});

test('max-candidates cap keeps the highest scores', () => {
  const anchors: number[][] = [];
  for (let i = 0; i < 20; i++) anchors.push([i * 10, 0, 4, 4, 0.3 + i * 0.01]);
  const out = v8([anchors], 1);
  const c = decodeDetections(out, detectOutputLayout(out.dims, 1), 0, { ...opts, maxCandidates: 5 });
  assert.equal(c.count, 5);
  assert.deepEqual(Array.from(c.scores).map((s) => Math.round(s * 100)), [49, 48, 47, 46, 45]);
});

test('yolov5 decode: confidence = objectness × class score', () => {
  // [1, N=2, 5+2]
  const data = new Float32Array([
    10, 10, 4, 4, 0.5, 0.9, 0.1, // 0.45 class 0
    20, 20, 4, 4, 0.9, 0.2, 0.25, // best 0.225 → below 0.25
  ]);
  const out = { dims: [1, 2, 7], data };
  const info = detectOutputLayout(out.dims, 2);
  assert.equal(info.layout, 'yolov5');
  const c = decodeDetections(out, info, 0, opts);
  assert.equal(c.count, 1);
  assert.ok(Math.abs(c.scores[0]! - 0.45) < 1e-6);
  assert.deepEqual(Array.from(c.boxes.subarray(0, 4)), [8, 8, 12, 12]);
});

test('end2end decode and post-processing with NMS in graph vs on host', () => {
  const data = new Float32Array([
    0, 0, 10, 10, 0.9, 3,
    1, 1, 11, 11, 0.8, 3, // overlaps the first
    0, 0, 0, 0, 0, 0, // padding row
  ]);
  const out = { dims: [1, 3, 6], data };
  const info = detectOutputLayout(out.dims, 4);
  const g = computeLetterbox(20, 20, 20, 20);
  const names = ['a', 'b', 'c', 'd'];
  assert.equal(postprocessImage(out, info, 0, g, names, opts, true).length, 2);
  const host = postprocessImage(out, info, 0, g, names, { ...opts, iouThreshold: 0.5 }, false);
  assert.equal(host.length, 1);
  assert.deepEqual(host[0], { classId: 3, className: 'd', score: host[0]!.score, box: [0, 0, 10, 10] });
});

test('postprocessImage maps boxes to source pixels and names classes', () => {
  const out = v8([[[320, 320, 64, 64, 0.0, 0.95]]], 2);
  const g = computeLetterbox(1280, 720, 640, 640); // ratio 0.5, padTop 140
  const [d] = postprocessImage(out, detectOutputLayout(out.dims, 2), 0, g, ['cat', 'dog'], opts);
  assert.equal(d!.className, 'dog');
  assert.deepEqual(d!.box.map((v) => Math.round(v)), [576, 296, 704, 424]);
});

test('yolov8 decode: same candidates as a plain argmax over every class (random scores, ties, NaN, float32 threshold edge)', () => {
  // The decoder skips scores not above the threshold before comparing with the running best; a plain argmax
  // (first class reaching the maximum, then the strict threshold) must agree on every anchor.
  const nc = 7;
  const n = 500;
  const data = new Float32Array((4 + nc) * n);
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let i = 0; i < data.length; i++) data[i] = rand();
  for (let a = 0; a < n; a++) for (let j = 0; j < 4; j++) data[j * n + a] = 10 + 600 * rand();
  const conf = 0.3; // float32(0.3) = 0.30000001… is above the double 0.3: such a score passes the threshold
  for (const [a, scores] of [
    [0, [0.2, 0.9, 0.9, 0.1, 0.9, 0, 0]], // tie: the first class with the maximum wins
    [1, [Math.fround(0.3), 0, 0, 0, 0, 0, 0]], // exactly float32(conf): kept (> the double conf)
    [2, [NaN, 0.5, NaN, 0, 0, 0, 0]],
    [3, [0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25]],
    [4, [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]],
  ] as const) scores.forEach((s, k) => (data[(4 + k) * n + a] = s));
  const expected: { anchor: number; score: number; cls: number }[] = [];
  for (let a = 0; a < n; a++) {
    let best = -Infinity;
    let cls = 0;
    for (let k = 0; k < nc; k++) if (data[(4 + k) * n + a]! > best) [best, cls] = [data[(4 + k) * n + a]!, k];
    if (best > conf) expected.push({ anchor: a, score: best, cls });
  }
  const c = decodeDetections({ dims: [1, 4 + nc, n], data }, detectOutputLayout([1, 4 + nc, n]), 0, { ...opts, confThreshold: conf, maxCandidates: 100000 });
  assert.equal(c.count, expected.length);
  expected.forEach((e, i) => {
    assert.equal(c.scores[i], e.score, `anchor ${e.anchor}`);
    assert.equal(c.classIds[i], e.cls, `anchor ${e.anchor}`);
    assert.equal(c.boxes[i * 4], Math.fround(data[e.anchor]! - data[2 * n + e.anchor]! / 2));
  });
  assert.deepEqual(expected.slice(0, 3).map((e) => [e.anchor, e.cls]), [[0, 1], [1, 0], [2, 1]]);
  assert.ok(expected.every((e) => e.anchor !== 3 && e.anchor !== 4));
});
