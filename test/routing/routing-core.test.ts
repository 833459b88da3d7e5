/**
 * Pure routing pieces: alias file validation, arm selection by unit and by sticky key, detection matching.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isOspreyError } from '../../src/core/errors.js';
import { matchDetections } from '../../src/routing/agreement.js';
import { resolveAliases } from '../../src/routing/alias.js';
import { pickByUnit, stickyUnit } from '../../src/routing/select.js';
import { isServerSideFailure } from '../../src/routing/router.js';

describe('aliases file', () => {
  test('weights are normalised, names and defaults filled in', () => {
    const a = resolveAliases({ det: { arms: [{ model: 'm', version: 1, weight: 9 }, { model: 'm', version: '2', weight: 1 }], shadow: { model: 'q' } } }, 'aliases.yaml').get('det')!;
    assert.deepEqual(
      a.arms.map((x) => [x.name, x.model, x.version, x.weight]),
      [['m:1', 'm', '1', 0.9], ['m:2', 'm', '2', 0.1]],
    );
    assert.equal(a.stickyParameter, 'routing_key');
    assert.deepEqual(a.shadow, { name: 'shadow:q', model: 'q', version: '', fraction: 1 });
    assert.equal(a.agreementIouThreshold, 0.5);
    assert.equal(resolveAliases({ x: { arms: [{ model: 'm', weight: 1 }], sticky: false } }, 'f').get('x')!.stickyParameter, null);
    assert.equal(resolveAliases({ x: { arms: [{ model: 'm', weight: 1 }], sticky: { parameter: 'camera_id' } } }, 'f').get('x')!.stickyParameter, 'camera_id');
  });

  test('weights summing to 0 → OSPREY_ERR_CONFIG naming the key path', () => {
    assert.throws(
      () => resolveAliases({ det: { arms: [{ model: 'm', weight: 0 }] } }, 'aliases.yaml'),
      (e: unknown) => isOspreyError(e, 'OSPREY_ERR_CONFIG') && e.details.keyPath === 'det.arms' && /sum to 0/.test(e.message),
    );
  });

  test('a negative weight, an unknown key, a duplicate arm name, a self-reference → OSPREY_ERR_CONFIG', () => {
    const bad: unknown[] = [
      { det: { arms: [{ model: 'm', weight: -1 }] } },
      { det: { arms: [{ model: 'm', weight: 1, wieght: 2 }] } },
      { det: { arms: [{ model: 'm', weight: 1 }, { model: 'm', weight: 1 }] } },
      { det: { arms: [{ model: 'det', weight: 1 }] } },
    ];
    for (const raw of bad) assert.throws(() => resolveAliases(raw, 'aliases.yaml'), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_CONFIG'), JSON.stringify(raw));
  });
});

describe('arm selection', () => {
  test('pickByUnit: cumulative boundaries, zero weights never chosen', () => {
    const w = [0.9, 0, 0.1];
    assert.equal(pickByUnit(w, 0), 0);
    assert.equal(pickByUnit(w, 0.8999), 0);
    assert.equal(pickByUnit(w, 0.9), 2);
    assert.equal(pickByUnit(w, 0.99999), 2);
    assert.equal(pickByUnit(w, 1), 2);
  });

  test('stickyUnit: deterministic, in [0, 1), salted by the alias, uniform enough (10 000 keys)', () => {
    assert.equal(stickyUnit('det', 'cam-17'), stickyUnit('det', 'cam-17'));
    assert.notEqual(stickyUnit('det', 'cam-17'), stickyUnit('other', 'cam-17'));
    let below = 0;
    for (let i = 0; i < 10_000; i++) {
      const u = stickyUnit('det', `cam-${i}`);
      assert.ok(u >= 0 && u < 1);
      if (u < 0.9) below++;
    }
    // Binomial(10000, 0.9): sd = 30; ±5 sd.
    assert.ok(Math.abs(below - 9000) < 150, `${below} of 10000 keys below 0.9`);
  });
});

describe('agreement (matched boxes by IoU ≥ 0.5, same class)', () => {
  const d = (classId: number, score: number, box: [number, number, number, number]) => ({ classId, score, box });

  test('identical answers → 1; both empty → 1; one side empty → 0', () => {
    const p = [d(0, 0.9, [0, 0, 10, 10]), d(1, 0.8, [20, 20, 40, 40])];
    assert.deepEqual(matchDetections(p, p), { matched: 2, total: 2, agreement: 1 });
    assert.deepEqual(matchDetections([], []), { matched: 0, total: 0, agreement: 1 });
    assert.deepEqual(matchDetections(p, []), { matched: 0, total: 2, agreement: 0 });
  });

  test('a different class or an IoU under the threshold does not match; extra boxes lower the agreement', () => {
    const p = [d(0, 0.9, [0, 0, 10, 10]), d(1, 0.8, [20, 20, 40, 40])];
    const s = [
      d(0, 0.7, [1, 0, 11, 10]), // IoU 9/11 ≈ 0.82 with p[0]: match
      d(2, 0.9, [20, 20, 40, 40]), // same box as p[1], other class: no match
      d(0, 0.5, [100, 100, 110, 110]), // extra
    ];
    assert.deepEqual(matchDetections(p, s), { matched: 1, total: 4, agreement: 0.25 });
    // IoU exactly 1/3 < 0.5: no match.
    assert.equal(matchDetections([d(0, 1, [0, 0, 10, 10])], [d(0, 1, [5, 0, 15, 10])]).matched, 0);
  });

  test('greedy by primary score: the highest-scoring primary box takes the best shadow box', () => {
    const p = [d(0, 0.6, [0, 0, 10, 10]), d(0, 0.9, [1, 0, 11, 10])];
    const s = [d(0, 0.8, [1, 0, 11, 10])];
    assert.deepEqual(matchDetections(p, s), { matched: 1, total: 2, agreement: 0.5 });
  });
});

describe('probation accounting', () => {
  test('server-side failures count against a new version, clients\' bad input does not', () => {
    for (const code of ['OSPREY_ERR_INFERENCE_FAILED', 'OSPREY_ERR_ENGINE_CLOSED', 'OSPREY_ERR_INTERNAL', 'OSPREY_ERR_TIMEOUT', 'OSPREY_ERR_QUEUE_FULL']) assert.ok(isServerSideFailure(code), code);
    for (const code of ['OSPREY_ERR_INVALID_TENSOR', 'OSPREY_ERR_MALFORMED_REQUEST', 'OSPREY_ERR_INVALID_ARGUMENT', 'OSPREY_ERR_INVALID_IMAGE']) assert.ok(!isServerSideFailure(code), code);
  });
});
