import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  computeTensorRange,
  createTensorStatistics,
  entropyThreshold,
  klDivergence,
  percentileThreshold,
  rebinHistogram,
  updateTensorStatistics,
} from '../../src/optimize/calibration.js';
import {
  activationQuantParams,
  fakeQuantize,
  quantizeBias,
  quantizeWeightsPerChannel,
  roundHalfToEven,
} from '../../src/optimize/quant-params.js';
import {
  createCalibrationCache,
  float32ToHex,
  hexToFloat32,
  parseCalibrationCache,
  parseTensorRtCalibrationTable,
  rangesFromStatistics,
  toTensorRtCalibrationTable,
  type CalibrationPreprocessing,
} from '../../src/optimize/calibration-cache.js';
import { isOspreyError } from '../../src/core/errors.js';
import { rng } from '../support/rng.js';


/** Standard normal samples (Box–Muller) with a few large outliers appended. */
function gaussianWithOutliers(n: number, outliers: number[]): Float32Array {
  const r = rng(7);
  const out = new Float32Array(n + outliers.length);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
  outliers.forEach((v, i) => (out[n + i] = v));
  return out;
}

test('minmax keeps the observed range and widening re-bins the histogram without losing counts', () => {
  const s = createTensorStatistics(64);
  updateTensorStatistics(s, Float32Array.from([0, 1, 2, -0.5]));
  updateTensorStatistics(s, Float32Array.from([10, -3]));
  assert.equal(s.min, -3);
  assert.equal(s.max, 10);
  assert.equal(s.histogramMax, 10);
  assert.equal(s.count, 6);
  assert.equal(s.histogram.reduce((a, b) => a + b, 0), 6);
  assert.deepEqual(computeTensorRange(s, { method: 'minmax' }), { rangeMin: -3, rangeMax: 10 });
  // a positive-only tensor still gets a range that contains 0
  const p = createTensorStatistics(16);
  updateTensorStatistics(p, Float32Array.from([2, 3]));
  assert.deepEqual(computeTensorRange(p, { method: 'minmax' }), { rangeMin: 0, rangeMax: 3 });
  const rebinned = rebinHistogram(Float64Array.from([1, 2, 3, 4]), 4, 8);
  assert.deepEqual(Array.from(rebinned), [3, 7, 0, 0]);
});

test('percentile clips the outliers: 99.99 of a Gaussian with 3 far outliers is near 4 sigma, not 1000', () => {
  const data = gaussianWithOutliers(200_000, [1000, -900, 800]);
  const s = createTensorStatistics();
  updateTensorStatistics(s, data);
  const t = percentileThreshold(s, 99.99);
  assert.ok(t > 3 && t < 5, `threshold ${t}`);
  assert.equal(percentileThreshold(s, 100), 1000);
  const r = computeTensorRange(s, { method: 'percentile', percentile: 99.99 });
  assert.ok(r.rangeMax <= t && r.rangeMin >= -t);
});

test('entropy (TensorRT KL calibration) picks a threshold far below the outliers on a Gaussian', () => {
  const data = gaussianWithOutliers(200_000, [60, -50]);
  const s = createTensorStatistics();
  updateTensorStatistics(s, data);
  const t = entropyThreshold(s);
  // KL-optimal int8 clipping of N(0,1) sits around 2.5–4.5 sigma; the outliers at 60 must be clipped
  assert.ok(t > 2 && t < 8, `threshold ${t}`);
  // a uniform distribution has nothing to clip: the threshold stays near the maximum
  const u = createTensorStatistics();
  const r = rng(3);
  updateTensorStatistics(u, Float32Array.from({ length: 100_000 }, () => r()));
  assert.ok(entropyThreshold(u) > 0.9 * u.histogramMax, `uniform threshold ${entropyThreshold(u)}`);
  // KL of identical distributions is 0, and KL is infinite where Q misses P's mass
  assert.equal(klDivergence(Float64Array.from([1, 2, 3]), Float64Array.from([2, 4, 6])), 0);
  assert.equal(klDivergence(Float64Array.from([1, 1]), Float64Array.from([1, 0])), Infinity);
});

test('uint8 asymmetric and int8 symmetric activation parameters represent zero exactly', () => {
  const u = activationQuantParams(-0.2785, 6.0, 'uint8');
  assert.ok(u.zeroPoint >= 0 && u.zeroPoint <= 255);
  assert.equal(fakeQuantize(0, u), 0);
  assert.ok(Math.abs(fakeQuantize(3.3, u) - 3.3) <= u.scale / 2 + 1e-6);
  const s = activationQuantParams(-2, 1, 'int8');
  assert.equal(s.zeroPoint, 0);
  assert.ok(Math.abs(s.scale - 2 / 127) < 1e-7);
  assert.equal(roundHalfToEven(2.5), 2);
  assert.equal(roundHalfToEven(3.5), 4);
  assert.equal(roundHalfToEven(-2.5), -2);
});

test('per-channel symmetric int8 weights: each channel uses its own max, error ≤ scale/2', () => {
  const w = Float32Array.from([0.5, -1, 0.25, 0.1, 100, -50, 0, 0]);
  const q = quantizeWeightsPerChannel(w, [4, 2]);
  assert.equal(q.scales.length, 4);
  assert.ok(Math.abs(q.scales[0]! - 1 / 127) < 1e-7);
  assert.ok(Math.abs(q.scales[2]! - 100 / 127) < 1e-5);
  assert.deepEqual(Array.from(q.data.slice(0, 2)), [64, -127]);
  for (let i = 0; i < w.length; i++) {
    const c = Math.floor(i / 2);
    assert.ok(Math.abs(q.data[i]! * q.scales[c]! - w[i]!) <= q.scales[c]! / 2 + 1e-6);
  }
  const b = quantizeBias(Float32Array.from([1, -2, 0, 3]), 0.02, q.scales);
  assert.ok(Math.abs(b.data[0]! * b.scales[0]! - 1) < b.scales[0]!);
});

const PRE: CalibrationPreprocessing = { resize: 'letterbox', padValue: 114, inputHeight: 640, inputWidth: 640, layout: 'float32-nchw', scale: 1 / 255 };

test('calibration cache round-trips the statistics; a cache for another model is refused (hash mismatch)', () => {
  const s = createTensorStatistics();
  updateTensorStatistics(s, gaussianWithOutliers(10_000, [9]));
  const cache = createCalibrationCache({ modelSha256: 'a'.repeat(64), preprocessing: PRE, images: ['x.jpg'], statistics: new Map([['t0', s]]) });
  const text = JSON.stringify(cache);
  const back = parseCalibrationCache(text, { modelSha256: 'a'.repeat(64), preprocessing: PRE });
  const s2 = back.statistics.get('t0')!;
  assert.equal(s2.max, s.max);
  assert.equal(percentileThreshold(s2), percentileThreshold(s));
  assert.throws(
    () => parseCalibrationCache(text, { modelSha256: 'b'.repeat(64), preprocessing: PRE }),
    (e: unknown) => isOspreyError(e, 'OSPREY_ERR_CALIBRATION_CACHE') && /another model/.test((e as Error).message),
  );
  assert.throws(() => parseCalibrationCache(text, { modelSha256: 'a'.repeat(64), preprocessing: { ...PRE, inputWidth: 320 } }), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_CALIBRATION_CACHE'));
  assert.throws(() => parseCalibrationCache('{"hello":1}', { modelSha256: 'a'.repeat(64), preprocessing: PRE }), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_CALIBRATION_CACHE'));
});

test('TensorRT calibration table: header, hex float32 scales = amax/127, parses back', () => {
  assert.equal(float32ToHex(1), '3f800000');
  assert.equal(hexToFloat32('40000000'), 2);
  const ranges = new Map([
    ['images', { rangeMin: 0, rangeMax: 1 }],
    ['/model.0/conv/Conv_output_0', { rangeMin: -12.7, rangeMax: 6 }],
  ]);
  const text = toTensorRtCalibrationTable(ranges, 'entropy', '100900');
  assert.match(text, /^TRT-100900-EntropyCalibration2\nimages: [0-9a-f]{8}\n/);
  const parsed = parseTensorRtCalibrationTable(text);
  assert.equal(parsed.header, 'TRT-100900-EntropyCalibration2');
  assert.ok(Math.abs(parsed.scales.get('/model.0/conv/Conv_output_0')! - 0.1) < 1e-7);
  assert.ok(Math.abs(parsed.scales.get('images')! - 1 / 127) < 1e-9);
  const s = createTensorStatistics();
  updateTensorStatistics(s, Float32Array.from([-1, 2]));
  assert.deepEqual(rangesFromStatistics(new Map([['a', s]]), 'minmax').get('a'), { rangeMin: -1, rangeMax: 2 });
});
