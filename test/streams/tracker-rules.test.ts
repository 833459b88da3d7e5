/** ByteTrack-style tracker and rule engine on synthetic detections (pure, milliseconds). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BoxXYXY, Detection } from '../../src/core/types.js';
import { parseRule } from '../../src/streams/config.js';
import { RuleEngine, pointInPolygon, sideOfLine } from '../../src/streams/rules.js';
import { ByteTracker, type TrackedObject } from '../../src/streams/tracker.js';

const det = (box: BoxXYXY, score = 0.9, className = 'person', classId = 0): Detection => ({ box, score, className, classId });
const shift = (b: BoxXYXY, dx: number, dy = 0): BoxXYXY => [b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy];

test('tracker: stable ids for two moving objects, new ids only for new objects', () => {
  const t = new ByteTracker();
  let a: BoxXYXY = [10, 10, 60, 110];
  let b: BoxXYXY = [300, 10, 350, 110];
  const ids = new Set<number>();
  for (let f = 0; f < 20; f++) {
    const out = t.update([det(a), det(b, 0.8)], f * 100);
    if (f > 0) assert.equal(out.length, 2, `frame ${f}`);
    out.forEach((o) => ids.add(o.trackId));
    a = shift(a, 8);
    b = shift(b, -8);
  }
  assert.deepEqual([...ids].sort(), [1, 2]);
});

test('tracker: a low-score detection (occlusion) keeps the track alive via the second association (ByteTrack)', () => {
  const t = new ByteTracker();
  let a: BoxXYXY = [10, 10, 60, 110];
  t.update([det(a)], 0);
  for (let f = 1; f < 4; f++) t.update([det((a = shift(a, 5)))], f);
  const low = t.update([det((a = shift(a, 5)), 0.2)], 5);
  assert.deepEqual(low.map((o) => o.trackId), [1], 'low-score box continues track 1');
  const back = t.update([det((a = shift(a, 5)), 0.9)], 6);
  assert.deepEqual(back.map((o) => o.trackId), [1]);
});

test('tracker: constant-velocity prediction re-acquires a track after missed frames; lost tracks die after maxLostFrames', () => {
  const t = new ByteTracker({ maxLostFrames: 3 });
  let a: BoxXYXY = [0, 0, 40, 80];
  for (let f = 0; f < 5; f++) t.update([det((a = shift(a, 20)))], f);
  // Two frames without detections while the object keeps moving 20 px/frame.
  t.update([], 5);
  a = shift(a, 20);
  t.update([], 6);
  a = shift(a, 20);
  const again = t.update([det((a = shift(a, 20)))], 7);
  assert.deepEqual(again.map((o) => o.trackId), [1], 'same id after the gap');
  for (let f = 8; f < 13; f++) t.update([], f);
  assert.equal(t.size, 0, 'lost track removed');
  const fresh = t.update([det([500, 0, 540, 80])], 14);
  assert.equal(fresh.length, 0, 'a new object is tentative for one frame (minHits 2)');
  assert.deepEqual(t.update([det([502, 0, 542, 80])], 15).map((o) => o.trackId), [2]);
});

test('tracker: class-aware association and minHits 1', () => {
  const t = new ByteTracker({ minHits: 1 });
  t.update([det([0, 0, 50, 50], 0.9, 'person', 0)], 0);
  const out = t.update([det([0, 0, 50, 50], 0.9, 'car', 2)], 1);
  assert.equal(out.length, 1);
  assert.equal(out[0]!.trackId, 2, 'a car does not continue a person track');
  assert.equal(out[0]!.className, 'car');
});

test('geometry: point in polygon and side of line (screen coordinates, y down)', () => {
  const sq: Array<[number, number]> = [[0, 0], [10, 0], [10, 10], [0, 10]];
  assert.ok(pointInPolygon(5, 5, sq));
  assert.ok(!pointInPolygon(15, 5, sq));
  // Walking right along the screen, points below are on the right.
  assert.equal(sideOfLine([0, 0], [10, 0], [5, 5]), 1);
  assert.equal(sideOfLine([0, 0], [10, 0], [5, -5]), -1);
});

const obj = (trackId: number, box: BoxXYXY, score = 0.9, className = 'person'): TrackedObject => ({ trackId, box, score, className, classId: 0, firstSeenMs: 0, hits: 2 });

test('zone rule: fires once per stay after minDwellMs, filters class and confidence', () => {
  const rule = parseRule({ name: 'z', type: 'zone', zone: [[0, 0], [100, 0], [100, 100], [0, 100]], classes: ['person'], minConfidence: 0.5, minDwellMs: 1000 }, 'r');
  const e = new RuleEngine([rule]);
  const inside: BoxXYXY = [40, 40, 60, 90]; // anchor (50, 90) inside
  assert.deepEqual(e.evaluate([obj(1, inside)], 0), []);
  assert.deepEqual(e.evaluate([obj(1, inside)], 500), []);
  const fired = e.evaluate([obj(1, inside)], 1000);
  assert.equal(fired.length, 1);
  assert.equal(fired[0]!.dwellMs, 1000);
  assert.deepEqual(e.evaluate([obj(1, inside)], 1500), [], 'once per stay');
  assert.deepEqual(e.evaluate([obj(2, [200, 0, 220, 50])], 1600), [], 'outside');
  assert.deepEqual(e.evaluate([obj(3, inside, 0.3)], 3000), [], 'below minConfidence');
  assert.deepEqual(e.evaluate([obj(4, inside, 0.9, 'car')], 3000), [], 'other class');
});

test('line rule: fires on a crossing in the configured direction only, with cool-down and de-duplication', () => {
  const rule = parseRule({ name: 'l', type: 'line', line: [[0, 50], [100, 50]], direction: 'right-to-left', cooldownMs: 0, dedupIoU: 0.7, dedupWindowMs: 5000 }, 'r');
  const e = new RuleEngine([rule]);
  // Moving up the screen (y decreasing) crosses from the right side (below) to the left side (above).
  assert.deepEqual(e.evaluate([obj(1, [40, 40, 60, 80])], 0), []);
  const up = e.evaluate([obj(1, [40, 10, 60, 30])], 100);
  assert.equal(up.length, 1);
  assert.equal(up[0]!.direction, 'right-to-left');
  // Track 2 moves down: wrong direction.
  e.evaluate([obj(2, [10, 10, 30, 30])], 0);
  assert.deepEqual(e.evaluate([obj(2, [10, 40, 30, 80])], 100), []);
  // Track 3 repeats track 1's crossing at the same place within the window (an id switch): de-duplicated.
  e.evaluate([obj(3, [40, 40, 60, 80])], 200);
  assert.deepEqual(e.evaluate([obj(3, [40, 10, 60, 30])], 300), []);
  // Outside the segment's extent: no crossing.
  e.evaluate([obj(4, [140, 40, 160, 80])], 400);
  assert.deepEqual(e.evaluate([obj(4, [140, 10, 160, 30])], 500), []);
});

test('cool-down: a rule stays quiet for cooldownMs after firing (any track)', () => {
  const rule = parseRule({ name: 'z', type: 'zone', zone: [[0, 0], [1000, 0], [1000, 1000], [0, 1000]], cooldownMs: 1000, dedupIoU: 0 }, 'r');
  const e = new RuleEngine([rule]);
  assert.equal(e.evaluate([obj(1, [0, 0, 10, 10])], 0).length, 1);
  assert.equal(e.evaluate([obj(2, [500, 500, 510, 510])], 500).length, 0);
  assert.equal(e.evaluate([obj(3, [700, 700, 710, 710])], 1200).length, 1);
});

test('tracker + rules: a snapshot taken mid-stream, restored from JSON into fresh instances, continues exactly as the original', () => {
  const zone = parseRule({ name: 'z', type: 'zone', zone: [[100, 0], [400, 0], [400, 400], [100, 400]], minDwellMs: 300, cooldownMs: 0 }, 'r');
  const line = parseRule({ name: 'l', type: 'line', line: [[250, 0], [250, 400]], direction: 'any' }, 'r');
  const frames = Array.from({ length: 40 }, (_, f) => {
    const out: Detection[] = [det(shift([0, 100, 40, 180], f * 12))];
    if (f % 7 !== 3) out.push(det(shift([500, 100, 540, 180], -f * 10), 0.7));
    if (f > 15) out.push(det(shift([120, 250, 160, 330], f), 0.3 + (f % 5) / 10, 'car', 2));
    return out;
  });
  const run = (from: number, to: number, t: ByteTracker, r: RuleEngine): string[] => {
    const got: string[] = [];
    for (let f = from; f < to; f++) for (const x of r.evaluate(t.update(frames[f]!, f * 100), f * 100)) got.push(`${f}:${x.rule}:${x.trackId}`);
    return got;
  };
  const whole = run(0, 40, new ByteTracker(), new RuleEngine([zone, line]));
  assert.ok(whole.length >= 3, `the sequence fires rules (${whole.join(' ')})`);
  const t1 = new ByteTracker();
  const r1 = new RuleEngine([zone, line]);
  const first = run(0, 21, t1, r1);
  const saved = JSON.parse(JSON.stringify({ tracker: t1.snapshot(), rules: r1.snapshot() })) as { tracker: ReturnType<ByteTracker['snapshot']>; rules: ReturnType<RuleEngine['snapshot']> };
  const t2 = new ByteTracker();
  const r2 = new RuleEngine([zone, line]);
  t2.restore(saved.tracker);
  r2.restore(saved.rules);
  assert.deepEqual([...first, ...run(21, 40, t2, r2)], whole);
});
