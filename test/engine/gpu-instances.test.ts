/**
 * The osprey-cuda backend on a machine without a GPU: a real engine file (tiny graph, test/compile/fixtures.ts) goes
 * through the real factory and the real GpuEngine worker, which stops at the CUDA driver with OSPREY_ERR_CUDA_LIBRARY.
 * The GPU the factory is given is a description (`gpu` below): there is no GPU here to read one from, and the factory
 * only compares its compute capability with the file's.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { OspreyError } from '../../src/core/errors.js';
import { createGpuInstances, readEngineHeader } from '../../src/engine/gpu-instances.js';
import type { GpuInfo } from '../../src/gpu/system.js';
import { tinyEngineFile } from '../compile/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'osprey-gpu-instances-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const engine90 = join(dir, 'model.sm90.engine');
writeFileSync(engine90, tinyEngineFile('9.0'));
const h100: GpuInfo = { index: 1, name: 'NVIDIA H100 80GB HBM3', computeCapability: '9.0', driverVersion: '580.159.04', memoryTotalBytes: 0, memoryUsedBytes: 0 };
const a100: GpuInfo = { ...h100, index: 0, name: 'NVIDIA A100-SXM4-80GB', computeCapability: '8.0' };
const load = (o: Partial<Parameters<typeof createGpuInstances>[0]>) =>
  createGpuInstances({ modelPath: engine90, executionProviders: ['osprey-cuda'], instances: 1, deviceId: 1, ...o });

test('readEngineHeader reads the target without the blobs; a file that is not an engine is ENGINE_INCOMPATIBLE', async () => {
  const h = await readEngineHeader(engine90);
  assert.equal(h.target.computeCapability, '9.0');
  assert.equal(h.format, 'osprey-gpu-engine');
  assert.equal(typeof h.plan.profiles?.max, 'number'); // the factory reports it as the engine's maxBatchSize
  const junk = join(dir, 'junk.engine');
  writeFileSync(junk, 'not an engine at all');
  await assert.rejects(readEngineHeader(junk), (e: unknown) => e instanceof OspreyError && e.code === 'OSPREY_ERR_ENGINE_INCOMPATIBLE' && /bad magic/.test(e.message));
  await assert.rejects(readEngineHeader(join(dir, 'absent.engine')), (e: unknown) => e instanceof OspreyError && e.code === 'OSPREY_ERR_MODEL_NOT_FOUND_FILE');
});

test('no GPU known for the device: OSPREY_ERR_GPU_NOT_FOUND before any worker starts', async () => {
  await assert.rejects(load({}), (e: unknown) => e instanceof OspreyError && e.code === 'OSPREY_ERR_GPU_NOT_FOUND' && /osprey-cuda backend needs an NVIDIA GPU: GPU 1/.test(e.message));
});

test('an engine built for another compute capability is refused naming the GPU and the file to build', async () => {
  await assert.rejects(
    load({ deviceId: 0, gpu: a100 }),
    (e: unknown) =>
      e instanceof OspreyError &&
      e.code === 'OSPREY_ERR_ENGINE_INCOMPATIBLE' &&
      /model\.sm90\.engine was built for compute capability 9\.0, but GPU 0 \(NVIDIA A100-SXM4-80GB\) is 8\.0: build model\.sm80\.engine/.test(e.message),
  );
});

test('a matching engine on a machine without the CUDA driver: the real worker stops with OSPREY_ERR_CUDA_LIBRARY', async (t) => {
  const { findCudaLibraries, systemDiscoveryHost } = await import('../../src/cuda/discovery.js');
  if (findCudaLibraries(systemDiscoveryHost()).find((s) => s.spec.id === 'cuda')?.found) return t.skip('libcuda.so.1 is present: this test is for machines without the driver');
  await assert.rejects(load({ gpu: h100 }), (e: unknown) => e instanceof OspreyError && e.code === 'OSPREY_ERR_CUDA_LIBRARY' && /libcuda\.so\.1/.test(e.message));
});
