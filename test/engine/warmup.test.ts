/** Warmup shapes and samples (src/engine/warmup.ts) with a recording stand-in engine (no model needed to check which shapes run). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Tensor } from '../../src/core/types.js';
import type { Engine } from '../../src/engine/engine.js';
import { bucketWarmupSamples, warmupDims, warmupInstances, zeroFeeds } from '../../src/engine/warmup.js';

test('warmupDims: a dynamic batch axis takes the batch size; another dynamic axis cannot be guessed', () => {
  assert.deepEqual(warmupDims(['batch', 3, 640, 640], 4), [4, 3, 640, 640]);
  assert.equal(warmupDims([1, 'h', 640], 1), null);
  assert.equal(zeroFeeds([{ name: 'x', type: 'float32', shape: [1, 'w'] }], 1), null);
});

test('warmupInstances runs every sample count times on every instance, in order', async () => {
  const seen: string[] = [];
  const engine = (id: string): Engine => ({
    info: { inputs: [], outputs: [], executionProvider: 'cpu', fallbacks: [], metadata: {} },
    run: async (feeds: Record<string, Tensor>) => {
      seen.push(`${id}:${feeds.x!.dims[0]}`);
      return {};
    },
    close: async () => undefined,
  });
  const inputs = [{ name: 'x', type: 'uint8' as const, shape: ['batch', 2] as Array<number | string> }];
  await warmupInstances([engine('a'), engine('b')], [{ name: 'twice', feeds: () => zeroFeeds(inputs, 1)!, count: 2 }, ...bucketWarmupSamples(inputs, [2, 4])]);
  assert.deepEqual(seen, ['a:1', 'a:1', 'a:2', 'a:4', 'b:1', 'b:1', 'b:2', 'b:4']);
});
