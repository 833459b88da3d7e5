/**
 * The GPU inventory on this machine (real nvidia-smi / libcuda lookups: on a CPU-only machine both are absent, so the
 * list is empty), GPU id checks and `--gpus` parsing. On a GPU machine the first test checks the list is non-empty
 * and numbered from 0 instead.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OspreyError } from '../../src/core/errors.js';
import { checkGpuIds, describeGpus, gpuInventory, parseGpuList, readGpuInventory, type GpuInventory } from '../../src/gpu/inventory.js';

test('the inventory reads the real system: none here says why; on a GPU machine ordinals from 0', async () => {
  const inv = await readGpuInventory();
  if (inv.gpus.length === 0) {
    assert.equal(inv.source, 'none');
    assert.match(inv.note, /nvidia-smi/);
    assert.match(inv.note, /libcuda\.so\.1/);
    assert.match(describeGpus(inv), /^none \(/);
  } else {
    assert.deepEqual(inv.gpus.map((g) => g.index), inv.gpus.map((_g, i) => i));
    assert.ok(inv.gpus.every((g) => /^\d+\.\d+$/.test(g.computeCapability)));
  }
  assert.equal(await gpuInventory(), await gpuInventory()); // read once per process
});

test('checkGpuIds: an id that does not exist is OSPREY_ERR_GPU_NOT_FOUND naming it and the GPUs found', async () => {
  const here = await readGpuInventory();
  const missing = here.gpus.length; // the first ordinal past the last GPU: never present
  assert.throws(
    () => checkGpuIds([missing], here, 'yolo: instanceGroup[0].gpus'),
    (e: unknown) =>
      e instanceof OspreyError &&
      e.code === 'OSPREY_ERR_GPU_NOT_FOUND' &&
      e.message.startsWith(`yolo: instanceGroup[0].gpus: GPU ${missing} does not exist on this machine; GPUs found: `) &&
      e.details.gpu === missing,
  );
  // a host with GPUs 0 and 1 (a description of one, for the message: no GPU is used)
  const two: GpuInventory = {
    source: 'nvidia-smi',
    note: '',
    gpus: [0, 1].map((index) => ({ index, name: 'NVIDIA H100 80GB HBM3', computeCapability: '9.0', driverVersion: '580.159.04', memoryTotalBytes: 0, memoryUsedBytes: 0 })),
  };
  checkGpuIds([0, 1], two, '--gpus');
  assert.throws(() => checkGpuIds([0, 3], two, '--gpus'), /--gpus: GPU 3 does not exist on this machine; GPUs found: 0 \(NVIDIA H100 80GB HBM3, cc 9\.0\), 1 \(/);
});

test('parseGpuList: comma-separated ordinals; anything else is OSPREY_ERR_USAGE naming the bad part', () => {
  assert.deepEqual(parseGpuList('0,1'), [0, 1]);
  assert.deepEqual(parseGpuList(' 2 , 0,2'), [2, 0]);
  for (const bad of ['', '0,,1', '-1', 'a', '1.5', 'GPU-0']) {
    assert.throws(() => parseGpuList(bad), (e: unknown) => e instanceof OspreyError && e.code === 'OSPREY_ERR_USAGE' && /is not a GPU id/.test(e.message), bad);
  }
});
