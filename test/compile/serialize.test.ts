import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isOspreyError } from '../../src/core/errors.js';
import { compilePlan } from '../../src/compile/index.js';
import { checkEngineCompatible, engineFileName, readEngineFile, writeEngineFile, type EngineTarget } from '../../src/compile/serialize.js';
import { GpuEngine } from '../../src/engine/gpu-engine.js';
import { c2f, conv, detectHead, tinyModel } from './fixtures.js';

const H200: EngineTarget = { gpuName: 'NVIDIA H200', computeCapability: '9.0', driverVersion: '13.0', nvrtcVersion: '13.0', cudnnVersion: '9.19.0' };

function tinyEngine(): { bytes: Uint8Array; weights: Uint8Array; cubin: Uint8Array } {
  const t = tinyModel(32);
  detectHead(t, [{ x: c2f(t, conv(t, 'images', 3, 16, 3, 2), 16, 32, 1, true), c: 32, size: 16, stride: 2 }], 3, 4);
  const { plan, weightData } = compilePlan(t.model, { k: 10 });
  const cubin = new Uint8Array(5000).map((_, i) => (i * 31) & 255); // stands for the kernels' cubin: only its bytes matter here
  const bytes = writeEngineFile(
    { createdAt: '2026-12-04T00:00:00Z', osprey: 'test', source: { file: 'tiny.onnx', sha256: '0'.repeat(64) }, target: H200, plan, tactics: { 2: { kind: 'own', tile: [128, 64] } }, build: { autotuneMs: 1 } },
    weightData,
    cubin,
  );
  return { bytes, weights: weightData, cubin };
}

test('engine file: plan, tactics, weights and kernels round-trip with their sha256; blobs are 256-byte aligned', () => {
  const { bytes, weights, cubin } = tinyEngine();
  const r = readEngineFile(bytes);
  assert.equal(r.header.format, 'osprey-gpu-engine');
  assert.deepEqual(r.header.target, H200);
  assert.deepEqual(r.header.tactics, { 2: { kind: 'own', tile: [128, 64] } });
  assert.deepEqual(Array.from(r.weights), Array.from(weights));
  assert.deepEqual(Array.from(r.cubin), Array.from(cubin));
  assert.equal(r.header.blobs.weights.offset % 256, 0);
  assert.equal(r.header.blobs.cubin.offset % 256, 0);
  assert.ok(r.header.plan.layers.length > 5);
  assert.equal(engineFileName('9.0'), 'model.sm90.engine');
});

test('engine file: a damaged blob, a truncated file or another file are refused with OSPREY_ERR_ENGINE_INCOMPATIBLE saying to rebuild', () => {
  const { bytes } = tinyEngine();
  const r = readEngineFile(bytes);
  const damaged = bytes.slice();
  damaged[r.header.blobs.weights.offset + 10]! ^= 0xff;
  assert.throws(() => readEngineFile(damaged, 'm.engine'), (e) => isOspreyError(e, 'OSPREY_ERR_ENGINE_INCOMPATIBLE') && /weights blob's sha256 does not match/.test(e.message) && /rebuild/.test(e.message));
  assert.throws(() => readEngineFile(bytes.subarray(0, bytes.length - 100)), (e) => isOspreyError(e, 'OSPREY_ERR_ENGINE_INCOMPATIBLE') && /truncated/.test(e.message));
  assert.throws(() => readEngineFile(new TextEncoder().encode('\x08\x07ONNX model bytes')), (e) => isOspreyError(e, 'OSPREY_ERR_ENGINE_INCOMPATIBLE') && /bad magic/.test(e.message));
});

test('engine file: another GPU architecture, driver, NVRTC or cuDNN version is refused, naming what differs', () => {
  assert.doesNotThrow(() => checkEngineCompatible(H200, { ...H200, gpuName: 'NVIDIA H100 80GB HBM3' }), 'same architecture and versions: an H100 runs an H200 engine');
  const cases: Array<[Partial<EngineTarget>, RegExp]> = [
    [{ computeCapability: '8.9', gpuName: 'NVIDIA L4' }, /compute capability 9\.0 \(built on NVIDIA H200\) ≠ 8\.9 \(NVIDIA L4\)/],
    [{ driverVersion: '12.8' }, /CUDA driver 13\.0 ≠ 12\.8/],
    [{ nvrtcVersion: '12.9' }, /NVRTC 13\.0 ≠ 12\.9/],
    [{ cudnnVersion: '9.14.0' }, /cuDNN 9\.19\.0 ≠ 9\.14\.0/],
  ];
  for (const [here, re] of cases) {
    assert.throws(() => checkEngineCompatible(H200, { ...H200, ...here }, 'model.sm90.engine'), (e) => isOspreyError(e, 'OSPREY_ERR_ENGINE_INCOMPATIBLE') && re.test(e.message) && /osprey build --engine cuda/.test(e.message));
  }
  // an engine whose tactics use no cuDNN does not care which cuDNN is here
  assert.doesNotThrow(() => checkEngineCompatible({ ...H200, cudnnVersion: null }, { ...H200, cudnnVersion: null }));
});

test('GpuEngine.load on a machine without the CUDA driver: a clear error naming the missing library, and the worker is gone', async (t) => {
  const { findCudaLibraries, systemDiscoveryHost } = await import('../../src/cuda/discovery.js');
  if (findCudaLibraries(systemDiscoveryHost()).find((s) => s.spec.id === 'cuda')?.found) return t.skip('this machine has libcuda.so.1');
  const dir = mkdtempSync(join(tmpdir(), 'osprey-engine-'));
  try {
    const file = join(dir, 'model.sm90.engine');
    writeFileSync(file, tinyEngine().bytes);
    await assert.rejects(GpuEngine.load(file), (e) => isOspreyError(e, 'OSPREY_ERR_CUDA_LIBRARY') && /libcuda\.so\.1 not found/.test(e.message) && /install the NVIDIA driver/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
