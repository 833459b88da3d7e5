/** InstancePool: the one owner of which instance runs next (no engine runs: the pool only counts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InstancePool } from '../../src/engine/instance-pool.js';

test('takeIdle hands out idle instances FIFO and none when all are busy; release returns them', () => {
  const pool = new InstancePool(['a', 'b']);
  assert.equal(pool.takeIdle(), 0);
  assert.equal(pool.takeIdle(), 1);
  assert.equal(pool.takeIdle(), undefined);
  pool.release(0, 1000);
  assert.equal(pool.hasIdle, true);
  assert.equal(pool.takeIdle(), 0);
  assert.deepEqual(pool.snapshot().map((s) => s.executions), [1, 0]);
});

test('takeLeastBusy picks the fewest in flight, skips dead instances, round-robins ties', () => {
  const pool = new InstancePool([{ alive: true }, { alive: true }, { alive: false }]);
  const picks = [pool.takeLeastBusy((e) => e.alive), pool.takeLeastBusy((e) => e.alive)];
  assert.deepEqual(picks.sort(), [0, 1]);
  pool.release(1, 5);
  assert.equal(pool.takeLeastBusy((e) => e.alive), 1); // 0 still has one in flight
  assert.equal(new InstancePool([{ alive: false }]).takeLeastBusy((e) => e.alive), undefined);
  assert.equal(pool.snapshot()[2]!.busy, false);
});

test('an empty pool is refused', () => {
  assert.throws(() => new InstancePool([]), /at least one/);
});
