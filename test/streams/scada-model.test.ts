/**
 * The plant view shared by OPC UA and Sparkplug (src/streams/scada-model.ts), on a real StreamManager (no model,
 * cameras not started, a real SQLite file): frames and rule firings are fed through the manager's own events, the
 * way the pipeline emits them, with tracked objects placed in and out of a zone. Checks per-class counts in zones
 * (anchor = bottom-centre, class and confidence filters), rule activity (active on a firing, held for alarmHoldMs,
 * kept while an object is inside a zone, cleared after), hit counts, last detection time, cameras added/removed and
 * rules changed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { BoxXYXY } from '../../src/core/types.js';
import { parseStreamsConfig } from '../../src/streams/config.js';
import type { StoredEvent } from '../../src/streams/events.js';
import { StreamManager, type FrameSummary } from '../../src/streams/manager.js';
import { ScadaModel, type AlarmChange, type PointChange } from '../../src/streams/scada-model.js';
import type { TrackedObject } from '../../src/streams/tracker.js';
import { CAR_VIDEO, waitFor } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'osprey-scada-model-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const obj = (trackId: number, className: string, box: BoxXYXY, score = 0.9): TrackedObject => ({ trackId, classId: className === 'car' ? 2 : 0, className, score, box, firstSeenMs: 0, hits: 3 });
const frame = (camera: string, objects: TrackedObject[], t: number): FrameSummary => ({ camera, objects, detections: objects.length, frameTimeMs: t, readyAtMs: t + 5 });

async function setup() {
  const config = parseStreamsConfig({
    events: { database: join(dir, `events-${Math.random()}.db`), snapshots: join(dir, 'snaps') },
    cameras: [
      {
        id: 'lot',
        url: CAR_VIDEO,
        enabled: false,
        rules: [
          { name: 'left-half', type: 'zone', zone: [[0, 0], [384, 0], [384, 432], [0, 432]], classes: ['car', 'truck'], minConfidence: 0.5, severity: 800, alarmHoldMs: 300 },
          { name: 'crossing', type: 'line', line: [[384, 0], [384, 432]], alarmHoldMs: 200 },
        ],
      },
    ],
  });
  const manager = new StreamManager({ config, inferer: null });
  await manager.start();
  const model = new ScadaModel(manager, 20);
  const changes: PointChange[] = [];
  const alarms: Array<{ rule: string; active: boolean }> = [];
  model.on('changed', (c: PointChange) => changes.push(c));
  model.on('alarm', (a: AlarmChange) => alarms.push({ rule: a.rule.name, active: a.rule.active }));
  const fire = async (rule: string, ruleType: 'zone' | 'line', atMs: number) => {
    const { event } = await manager.store.insert({ kind: 'rule', camera: 'lot', rule, ruleType, className: 'car', classId: 2, trackId: 1, score: 0.9, box: [10, 10, 50, 50], timeMs: atMs, latencyMs: 1, details: {} });
    manager.emit('event', event satisfies StoredEvent | null);
  };
  return { manager, model, changes, alarms, fire, async close() { model.close(); await manager.stop(); } };
}

test('zone counts per class use the anchor, the classes and minConfidence; LastDetectionTime follows frames with detections', async () => {
  const s = await setup();
  try {
    const p = s.model.point('lot')!;
    assert.deepEqual(p.zones, [{ rule: 'left-half', classes: ['car', 'truck'], counts: { car: 0, truck: 0 }, total: 0 }]);
    assert.equal(p.state, 'stopped');
    assert.deepEqual(p.rules.map((r) => [r.name, r.severity, r.active, r.hitCount]), [['left-half', 800, false, 0], ['crossing', 500, false, 0]]);
    const t = Date.now();
    s.manager.emit('frame', frame('lot', [
      obj(1, 'car', [10, 10, 100, 100]), // anchor (55, 100): inside
      obj(2, 'car', [300, 10, 500, 100]), // anchor (400, 100): outside (box overlaps the zone, anchor does not)
      obj(3, 'truck', [20, 200, 60, 300]), // inside
      obj(4, 'person', [20, 200, 60, 300]), // inside, not a class of the rule
      obj(5, 'car', [20, 200, 60, 300], 0.3), // inside, under minConfidence
    ], t));
    assert.deepEqual([p.zones[0]!.counts, p.zones[0]!.total], [{ car: 1, truck: 1 }, 2]);
    assert.equal(p.lastDetectionTimeMs, t);
    const c = s.changes.at(-1)!;
    assert.ok(c.keys.has('zones') && c.keys.has('lastDetectionTimeMs'));
    assert.equal(c.atMs, t + 5, 'a frame change is stamped with its detections-ready time');
    s.manager.emit('frame', frame('lot', [], t + 100));
    assert.equal(p.zones[0]!.total, 0);
    assert.equal(p.lastDetectionTimeMs, t, 'a frame without detections does not move LastDetectionTime');
    assert.ok(!s.changes.at(-1)!.keys.has('lastDetectionTimeMs'));
  } finally {
    await s.close();
  }
});

test('rule activity: active on a firing, held alarmHoldMs, kept while objects are in the zone, then cleared; hit counts', async () => {
  const s = await setup();
  try {
    const p = s.model.point('lot')!;
    const zone = () => p.rules.find((r) => r.name === 'left-half')!;
    const line = () => p.rules.find((r) => r.name === 'crossing')!;
    const t0 = Date.now();
    s.manager.emit('frame', frame('lot', [obj(1, 'car', [10, 10, 100, 100])], t0));
    await s.fire('left-half', 'zone', t0);
    await s.fire('crossing', 'line', t0);
    assert.deepEqual([zone().active, zone().hitCount, zone().lastHitMs], [true, 1, t0]);
    assert.equal(line().active, true);
    assert.deepEqual(s.alarms, [{ rule: 'left-half', active: true }, { rule: 'crossing', active: true }]);
    await s.fire('left-half', 'zone', t0 + 1);
    assert.equal(zone().hitCount, 2);
    assert.equal(s.alarms.length, 2, 'a second firing while active raises no new alarm transition');
    // The line rule clears after its hold on the model's timer; the zone rule stays active while the car is inside.
    await waitFor(() => !line().active, 2000, 'the line rule to clear');
    await new Promise((r) => setTimeout(r, 400));
    s.manager.emit('frame', frame('lot', [obj(1, 'car', [10, 10, 100, 100])], Date.now()));
    assert.equal(zone().active, true, 'held past alarmHoldMs while the car is inside');
    s.manager.emit('frame', frame('lot', [], Date.now()));
    assert.equal(zone().active, false, 'cleared once the zone is empty and the hold is over');
    assert.deepEqual(s.alarms.slice(2), [{ rule: 'crossing', active: false }, { rule: 'left-half', active: false }]);
  } finally {
    await s.close();
  }
});

test('cameras added and removed at run time, rules changed → added / removed / rebuilt (hit counts kept by rule name)', async () => {
  const s = await setup();
  const seen: string[] = [];
  s.model.on('added', (p: { id: string }) => seen.push(`added ${p.id}`));
  s.model.on('removed', (id: string) => seen.push(`removed ${id}`));
  s.model.on('rebuilt', (p: { id: string }) => seen.push(`rebuilt ${p.id}`));
  try {
    await s.fire('crossing', 'line', Date.now());
    s.manager.addCamera({ id: 'gate', url: CAR_VIDEO, enabled: false });
    assert.ok(s.model.point('gate'));
    s.manager.setRules('lot', [{ name: 'crossing', type: 'line', line: [[0, 0], [10, 10]], direction: 'any', classes: [], minConfidence: 0.25, cooldownMs: 0, dedupIoU: 0.7, dedupWindowMs: 5000, severity: 100, alarmHoldMs: 0 }]);
    const p = s.model.point('lot')!;
    assert.deepEqual(p.rules.map((r) => [r.name, r.severity, r.hitCount]), [['crossing', 100, 1]]);
    assert.deepEqual(p.zones, []);
    await s.manager.removeCamera('gate');
    assert.equal(s.model.point('gate'), undefined);
    // A running camera reports `stopped` while it is removed (after the manager dropped it).
    s.manager.addCamera({ id: 'live', url: CAR_VIDEO });
    await waitFor(() => s.model.point('live')?.state === 'starting' || s.model.point('live')?.state === 'streaming', 10000, 'the live camera to start');
    await s.manager.removeCamera('live');
    assert.equal(s.model.point('live'), undefined);
    assert.deepEqual(seen, ['added gate', 'rebuilt lot', 'removed gate', 'added live', 'removed live']);
  } finally {
    await s.close();
  }
});
