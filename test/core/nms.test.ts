import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocateCandidates, type Candidates } from '../../src/core/decode.js';
import { boxIoU, iouXYXY, nonMaxSuppression } from '../../src/core/nms.js';

function cands(rows: Array<[number, number, number, number, number, number]>): Candidates {
  const c = allocateCandidates(rows.length);
  rows.forEach(([x1, y1, x2, y2, s, k], i) => {
    c.boxes.set([x1, y1, x2, y2], i * 4);
    c.scores[i] = s;
    c.classIds[i] = k;
  });
  c.count = rows.length;
  return c;
}
const opts = { iouThreshold: 0.5, maxDetections: 300, agnostic: false };

test('IoU: identical 1, disjoint 0, touching 0 (never negative), nested = area ratio', () => {
  assert.equal(iouXYXY(0, 0, 10, 10, 0, 0, 10, 10), 1);
  assert.equal(iouXYXY(0, 0, 10, 10, 20, 20, 30, 30), 0);
  assert.equal(iouXYXY(0, 0, 10, 10, 10, 0, 20, 10), 0); // shares an edge
  assert.equal(iouXYXY(0, 0, 10, 10, 10, 10, 20, 20), 0); // shares a corner
  assert.equal(iouXYXY(0, 0, 10, 10, 2, 2, 7, 7), 25 / 100); // nested
  assert.equal(iouXYXY(0, 0, 0, 0, 0, 0, 0, 0), 0); // empty boxes
  assert.ok(iouXYXY(0, 0, 10, 10, 100, 100, 50, 50) >= 0); // inverted box
  const b = new Float32Array([0, 0, 10, 10, 5, 0, 15, 10]);
  assert.equal(boxIoU(b, 0, 1), 50 / 150);
});

test('NMS keeps disjoint and touching boxes, suppresses overlapping ones, orders by score', () => {
  const c = cands([
    [0, 0, 10, 10, 0.6, 0],
    [1, 1, 11, 11, 0.9, 0], // overlaps #0 with IoU 81/119 = 0.68
    [10, 0, 20, 10, 0.5, 0], // touches #0
    [50, 50, 60, 60, 0.7, 0], // disjoint
  ]);
  assert.deepEqual(Array.from(nonMaxSuppression(c, opts)), [1, 3, 2]);
});

test('NMS: a nested box is suppressed only above the IoU threshold', () => {
  const c = cands([
    [0, 0, 10, 10, 0.9, 0],
    [2, 2, 7, 7, 0.8, 0], // IoU 0.25
  ]);
  assert.deepEqual(Array.from(nonMaxSuppression(c, opts)), [0, 1]);
  assert.deepEqual(Array.from(nonMaxSuppression(c, { ...opts, iouThreshold: 0.2 })), [0]);
});

test('NMS: IoU exactly at the threshold is kept (suppression is strictly greater)', () => {
  const c = cands([
    [0, 0, 10, 10, 0.9, 0],
    [5, 0, 15, 10, 0.8, 0], // IoU 1/3
  ]);
  assert.deepEqual(Array.from(nonMaxSuppression(c, { ...opts, iouThreshold: 50 / 150 })), [0, 1]);
});

test('NMS: ties in score keep input order (stable) and the first suppresses the second', () => {
  const c = cands([
    [0, 0, 10, 10, 0.8, 0],
    [0, 0, 10, 10, 0.8, 0],
    [30, 30, 40, 40, 0.8, 0],
  ]);
  assert.deepEqual(Array.from(nonMaxSuppression(c, opts)), [0, 2]);
});

test('NMS: class-aware keeps overlapping boxes of different classes; agnostic does not', () => {
  const c = cands([
    [0, 0, 10, 10, 0.9, 0],
    [0, 0, 10, 10, 0.8, 1],
  ]);
  assert.deepEqual(Array.from(nonMaxSuppression(c, opts)), [0, 1]);
  assert.deepEqual(Array.from(nonMaxSuppression(c, { ...opts, agnostic: true })), [0]);
});

test('NMS: maxDetections caps the output; empty input gives empty output', () => {
  const rows: Array<[number, number, number, number, number, number]> = [];
  for (let i = 0; i < 50; i++) rows.push([i * 20, 0, i * 20 + 10, 10, 1 - i / 100, 0]);
  const kept = nonMaxSuppression(cands(rows), { ...opts, maxDetections: 7 });
  assert.deepEqual(Array.from(kept), [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(nonMaxSuppression(allocateCandidates(0), opts).length, 0);
});
