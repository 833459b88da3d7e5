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

// The GPU labels below are plain numbers given to the pool: this machine has no GPU, and the pool only reads the
// labels to count runs per device, so labelling is the only way to test placement here (no engine is faked).
test('takeIdle spreads batches across GPUs by queue depth: one per GPU before a second instance of a GPU', () => {
  // instances 0,1 on GPU 0 and 2,3 on GPU 1, in the order the lifecycle places them
  const pool = new InstancePool(['a0', 'b0', 'a1', 'b1'], [0, 0, 1, 1]);
  const first = pool.takeIdle()!;
  const second = pool.takeIdle()!;
  assert.deepEqual([pool.devices[first], pool.devices[second]], [0, 1]);
  assert.equal(pool.depthOf(0), 1);
  assert.equal(pool.depthOf(1), 1);
  const third = pool.takeIdle()!;
  const fourth = pool.takeIdle()!;
  assert.deepEqual([pool.devices[third], pool.devices[fourth]].sort(), [0, 1]);
  assert.equal(pool.takeIdle(), undefined);
  // GPU 1 finishes both: the next two batches go to GPU 1 while GPU 0 still has two in flight... then one each
  pool.release(second, 10);
  pool.release(fourth, 10);
  pool.release(first, 10);
  assert.equal(pool.depthOf(0), 1);
  assert.equal(pool.depthOf(1), 0);
  assert.equal(pool.devices[pool.takeIdle()!], 1); // GPU 1 is emptier although GPU 0's instance `first` idled longer
  assert.deepEqual(
    pool.snapshot().map((s) => s.gpu),
    [0, 0, 1, 1],
  );
});

test('takeLeastBusy breaks ties between instances by their GPU’s depth', () => {
  const pool = new InstancePool(['a0', 'b0', 'a1'], [0, 0, 1]);
  const picks = [pool.takeLeastBusy(), pool.takeLeastBusy(), pool.takeLeastBusy()];
  assert.deepEqual(picks.map((i) => pool.devices[i!]).sort(), [0, 0, 1]);
  // every instance has 1 in flight; GPU 1 has 1, GPU 0 has 2: the next run goes to GPU 1
  assert.equal(pool.devices[pool.takeLeastBusy()!], 1);
});

test('device labels must match the engines; CPU pools keep FIFO order', () => {
  assert.throws(() => new InstancePool(['a', 'b'], [0]), /2 engines but 1 device labels/);
  const cpu = new InstancePool(['a', 'b', 'c']);
  assert.deepEqual([cpu.takeIdle(), cpu.takeIdle(), cpu.takeIdle()], [0, 1, 2]);
  assert.equal(cpu.snapshot()[0]!.gpu, null);
});
