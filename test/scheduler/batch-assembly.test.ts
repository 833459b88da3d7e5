/** BatchAssembler: concatenation with zero padding, buffer reuse, per-request split views. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Tensor } from '../../src/core/types.js';
import { BatchAssembler } from '../../src/scheduler/batch-assembly.js';

const t = (values: number[], n = 1): Record<string, Tensor> => ({ x: { type: 'float32', dims: [n, values.length / n], data: Float32Array.from(values) } });

test('two requests padded to 4 rows: rows in order, padding zero; a recycled buffer is reused and re-zeroed', async () => {
  const a = new BatchAssembler('t', 2);
  const feeds = await a.assemble([t([1, 2]), t([3, 4])], 2, 4);
  assert.deepEqual(feeds.x!.dims, [4, 2]);
  assert.deepEqual([...(feeds.x!.data as Float32Array)], [1, 2, 3, 4, 0, 0, 0, 0]);
  assert.ok(a.owns(feeds));
  (feeds.x!.data as Float32Array).fill(9);
  const buffer = feeds.x!.data.buffer;
  a.recycle(feeds);
  const again = await a.assemble([t([5, 6])], 1, 4);
  assert.equal(again.x!.data.buffer, buffer);
  assert.deepEqual([...(again.x!.data as Float32Array)], [5, 6, 0, 0, 0, 0, 0, 0]);
});

test('one request that owns its buffer is handed over as is; a view into a bigger buffer is copied', async () => {
  const a = new BatchAssembler('t', 2);
  const own = t([1, 2]);
  assert.equal((await a.assemble([own], 1, 1)).x, own.x);
  const body = new Float32Array([0, 1, 2, 3]);
  const view = { x: { type: 'float32' as const, dims: [1, 2], data: body.subarray(2) } };
  const f = await a.assemble([view], 1, 1);
  assert.notEqual(f.x!.data.buffer, body.buffer);
  assert.deepEqual([...(f.x!.data as Float32Array)], [2, 3]);
});

test('split gives each request its rows as views; too few rows is OSPREY_ERR_INFERENCE_FAILED', () => {
  const a = new BatchAssembler('t', 2);
  const out = { y: { type: 'float32' as const, dims: [4, 1], data: Float32Array.from([10, 20, 30, 40]) } };
  const parts = a.split(out, [1, 2], 3);
  assert.deepEqual(parts.map((p) => [...(p.y!.data as Float32Array)]), [[10], [20, 30]]);
  assert.deepEqual(parts[1]!.y!.dims, [2, 1]);
  assert.throws(() => a.split(out, [3, 2], 5), /4 rows on its first axis for a batch of 5/);
});
