/** PriorityQueues: levels, queue policy (maxQueueSize, REJECT/DELAY timeouts) and batch formation, no engines. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isOspreyError } from '../../src/core/errors.js';
import { resolveModelConfig } from '../../src/repository/config.js';
import { PriorityQueues, type QueuedRequest } from '../../src/scheduler/priority-queues.js';

const db = (extra: Record<string, unknown> = {}) =>
  resolveModelConfig({ maxBatchSize: 8, input: [{ name: 'x', dataType: 'TYPE_FP32', dims: [4] }], output: [{ name: 'y', dataType: 'TYPE_FP32', dims: [4] }], dynamicBatching: { priorityLevels: 2, defaultPriorityLevel: 2, ...extra } }, 't').dynamicBatching!;
const req = (level: number, n = 1, shapeKey = 'x:4'): QueuedRequest<string> => ({ inputs: {}, n, shapeKey, level, enqueuedAt: performance.now(), state: 'queued', delayed: false, timer: undefined, handle: `L${level}` });

test('levels: 0 = default level, out of range refused; a higher level comes first in a batch', () => {
  const q = new PriorityQueues<string>('t', db(), () => undefined);
  assert.equal(q.levelOf(0), 1);
  assert.equal(q.levelOf(1), 0);
  assert.throws(() => q.levelOf(3), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_INVALID_ARGUMENT'));
  q.add(req(1), undefined);
  q.add(req(0), undefined);
  const { batch, total } = q.next(8);
  assert.deepEqual(batch.map((r) => r.handle), ['L0', 'L1']);
  assert.equal(total, 2);
  q.take(batch);
  assert.equal(q.size, 0);
});

test('a different shape or the size limit blocks the walk; preferred sizes cut it', () => {
  const q = new PriorityQueues<string>('t', db({ preferredBatchSize: [2] }), () => undefined);
  for (const r of [req(0), req(0), req(0), req(0, 1, 'x:5')]) q.add(r, undefined);
  const c = q.next(8, [2]);
  assert.equal(c.batch.length, 3);
  assert.equal(c.blocked, true);
  assert.equal(c.preferredCut, 2);
  assert.equal(q.next(2).batch.length, 2);
});

test('maxQueueSize → OSPREY_ERR_QUEUE_FULL; a REJECT timeout calls onExpired and drops the request', async () => {
  const expired: string[] = [];
  const q = new PriorityQueues<string>('t', db({ defaultQueuePolicy: { maxQueueSize: 1, allowTimeoutOverride: true } }), (r) => expired.push(r.handle));
  q.add(req(0), 5_000);
  assert.throws(() => q.add(req(0), undefined), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_QUEUE_FULL'));
  await new Promise((r) => setTimeout(r, 30));
  assert.deepEqual(expired, ['L0']);
  assert.equal(q.size, 0);
  assert.equal(q.next(8).batch.length, 0);
});

test('a DELAY timeout moves the request behind the undelayed ones of its level', async () => {
  const q = new PriorityQueues<string>('t', db({ defaultQueuePolicy: { timeoutAction: 'DELAY', allowTimeoutOverride: true } }), () => undefined);
  const first = { ...req(0), handle: 'first' };
  q.add(first, 1_000);
  await new Promise((r) => setTimeout(r, 20));
  q.add({ ...req(0), handle: 'second' }, undefined);
  assert.deepEqual(q.next(8).batch.map((r) => r.handle), ['second', 'first']);
});
