import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emptyScoreStatistics, judgeDetections, judgeScores, outputError, scoreStatistics } from '../../src/optimize/output-check.js';
import { layerOf } from '../../src/optimize/sensitivity.js';

const info = { layout: 'yolov8' as const, numClasses: 2, numBoxes: 3 };
// [1, 4 + 2, 3]: rows cx, cy, w, h, class0, class1
const ref = Float32Array.from([10, 20, 30, 20, 40, 60, 4, 4, 4, 8, 8, 8, 0.9, 0.0, 0.3, 0.0, 0.5, 0.0]);

test('outputError is 0 for identical outputs and grows with score and box changes', () => {
  assert.deepEqual(outputError(ref, ref, info), { scoreError: 0, boxError: 0, error: 0 });
  const q = Float32Array.from(ref);
  q[12] = 0.45; // class-0 score of anchor 0 halves
  const e = outputError(ref, q, info);
  assert.ok(Math.abs(e.scoreError - 0.45 / 1.7) < 1e-6, String(e.scoreError));
  const b = Float32Array.from(ref);
  b[0] = 14; // cx of anchor 0 moves by 4 px, box 4×8 → 0.5 of the larger side, averaged over 3 confident anchors
  assert.ok(Math.abs(outputError(ref, b, info).boxError - 0.5 / 3) < 1e-6);
});

test('judgeScores: all-zero, constant and NaN scores are broken; varying scores are not', () => {
  const zero = Float32Array.from(ref);
  zero.fill(0, 12);
  const v = judgeScores(scoreStatistics(zero, info));
  assert.equal(v.broken, true);
  assert.match(v.reasons[0]!, /exactly 0/);
  const constant = Float32Array.from(ref);
  constant.fill(0.5, 12);
  assert.match(judgeScores(scoreStatistics(constant, info)).reasons[0]!, /constant/);
  const nan = Float32Array.from(ref);
  nan[13] = NaN;
  assert.equal(judgeScores(scoreStatistics(nan, info)).broken, true);
  assert.equal(judgeScores(scoreStatistics(ref, info, emptyScoreStatistics())).broken, false);
});

test('judgeDetections: scores that never reach 0.25 on any real image are broken; one candidate anywhere is enough', () => {
  const v = judgeDetections([0, 0, 0, 0], 0.105);
  assert.equal(v.broken, true);
  assert.match(v.reasons[0]!, /no class score reaches 0\.25 on any of the 4 real image\(s\) \(highest 0\.105\)/);
  assert.equal(judgeDetections([0, 0, 3, 0], 0.9).broken, false);
  assert.equal(judgeDetections([], 0).broken, false, 'no real images: this rule does not apply');
});

test('layerOf groups an Ultralytics Conv module (conv + SiLU) into one layer', () => {
  assert.equal(layerOf('/model.2/cv1/conv/Conv'), '/model.2/cv1');
  assert.equal(layerOf('/model.2/cv1/act/Sigmoid'), '/model.2/cv1');
  assert.equal(layerOf('/model.2/cv1/act/Mul'), '/model.2/cv1');
  assert.equal(layerOf('/model.22/Concat_3'), '/model.22/Concat_3');
});
