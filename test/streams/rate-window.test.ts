/** The sliding window behind a camera's fps and latency: exact counts over time, 0 when nothing arrives. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MIN_SPAN_MS, SlidingWindow, rateWindowMsFor } from '../../src/streams/rate-window.js';

test('a steady 5 fps stream reads 5.00 fps once the window is full, and the mean latency of the frames in it', () => {
  const w = new SlidingWindow(5000, 0);
  for (let t = 200; t <= 20000; t += 200) w.add(t, t < 10000 ? 100 : 300);
  assert.equal(w.count(20000), 25);
  assert.equal(w.rate(20000), 5);
  assert.equal(w.mean(20000), 300, 'only the last 5 s of latencies count');
});

test('a camera that stops reads 0 fps and null latency one window later, decaying linearly on the way (never frozen)', () => {
  const w = new SlidingWindow(5000, 0);
  for (let t = 100; t <= 10000; t += 100) w.add(t, 50);
  assert.equal(w.rate(10000), 10);
  assert.equal(w.rate(12500), 5, 'half the window without frames: half the rate');
  assert.equal(w.rate(15000), 0);
  assert.equal(w.mean(15000), null);
  assert.equal(w.count(15000), 0);
  w.add(16000, 80);
  assert.equal(w.rate(16000), 1000 / 5000, 'one frame in the window');
  assert.equal(w.mean(16000), 80);
});

test('early rates: the span is the time since the start (at least MIN_SPAN_MS), so a fresh camera does not read as a burst', () => {
  const w = new SlidingWindow(5000, 1000);
  w.add(1100);
  w.add(1200);
  assert.equal(w.rate(1200), (2 * 1000) / MIN_SPAN_MS, 'a 0.2 s old camera: 2 frames over the 1 s minimum span');
  for (let t = 1400; t <= 2500; t += 200) w.add(t);
  assert.equal(w.count(2500), 8);
  assert.ok(Math.abs(w.rate(2500) - 8 / 1.5) < 1e-9);
  w.reset(10000);
  assert.equal(w.rate(10000), 0);
});

test('a burst after a reconnect is counted as the frames it is, not as an instantaneous rate (no "3.4/3 fps")', () => {
  const w = new SlidingWindow(5000, 0);
  // 3 fps, then a 4 s outage, then a burst of 2 frames 10 ms apart, then 3 fps again.
  for (let t = 333; t <= 6000; t += 333) w.add(t);
  for (const t of [10000, 10010]) w.add(t);
  assert.ok(w.rate(10010) <= 3, `rate after the burst: ${w.rate(10010)}`);
});

test('long runs stay exact (compaction keeps the sum right) and the window length follows the target fps', () => {
  const w = new SlidingWindow(1000, 0);
  for (let i = 1; i <= 100000; i++) w.add(i, i % 7);
  // Window (99000, 100000]: 1000 events with values i % 7.
  let expected = 0;
  for (let i = 99001; i <= 100000; i++) expected += i % 7;
  assert.equal(w.count(100000), 1000);
  assert.ok(Math.abs(w.mean(100000)! - expected / 1000) < 1e-9);
  assert.equal(rateWindowMsFor(5), 5000);
  assert.equal(rateWindowMsFor(0.5), 10000);
  assert.throws(() => new SlidingWindow(0, 0), RangeError);
});
