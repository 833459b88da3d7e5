import { test } from 'node:test';
import assert from 'node:assert/strict';
import { percentile, percentileSorted, summarizeLatencies, SampleBuffer } from '../../src/bench/stats.js';

// Expected values computed once with numpy 2.4.6 (np.percentile, default method "linear").
const close = (a: number, b: number, tol = 1e-9) => assert.ok(Math.abs(a - b) <= tol, `${a} ≉ ${b}`);

test('percentile: numpy linear interpolation on known samples', () => {
  close(percentile([1, 2, 3, 4], 90), 3.7);
  close(percentile([15, 20, 35, 40, 50], 40), 29);
  const a = Array.from({ length: 100 }, (_, i) => i + 1);
  close(percentile(a, 0), 1);
  close(percentile(a, 50), 50.5);
  close(percentile(a, 90), 90.1);
  close(percentile(a, 95), 95.05);
  close(percentile(a, 99), 99.01);
  close(percentile(a, 100), 100);
});

test('percentile: unsorted input, single sample, even-count median', () => {
  const b = [3.1, 7.4, 1.2, 9.9, 5.5, 2.2, 8.8];
  close(percentile(b, 0), 1.2);
  close(percentile(b, 50), 5.5);
  close(percentile(b, 90), 9.24);
  close(percentile(b, 95), 9.57);
  close(percentile(b, 99), 9.834);
  close(percentile([42], 99), 42);
  close(percentile([4, 1, 3, 2], 50), 2.5);
  // the input is not reordered
  assert.deepEqual(b, [3.1, 7.4, 1.2, 9.9, 5.5, 2.2, 8.8]);
});

test('percentile: empty sample and q outside [0,100] are refused', () => {
  assert.throws(() => percentile([], 50), RangeError);
  assert.throws(() => percentileSorted([1, 2], 101), RangeError);
  assert.throws(() => percentileSorted([1, 2], -1), RangeError);
  assert.throws(() => percentileSorted([1, 2], Number.NaN), RangeError);
});

test('summarizeLatencies: min/mean/median/p90/p95/p99/max/std', () => {
  const s = summarizeLatencies([3.1, 7.4, 1.2, 9.9, 5.5, 2.2, 8.8]);
  close(s.min, 1.2);
  close(s.max, 9.9);
  close(s.median, 5.5);
  close(s.p90, 9.24);
  close(s.p99, 9.834);
  close(s.mean, 5.442857142857143);
  close(s.std, 3.1390886497549584, 1e-12);
  assert.equal(s.count, 7);
  assert.throws(() => summarizeLatencies([]), RangeError);
});

test('SampleBuffer grows and keeps values', () => {
  const buf = new SampleBuffer(16);
  for (let i = 0; i < 1000; i++) buf.push(i);
  assert.equal(buf.length, 1000);
  assert.equal(buf.values()[999], 999);
  close(summarizeLatencies(buf.values()).median, 499.5);
});
