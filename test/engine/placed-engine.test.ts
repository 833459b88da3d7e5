/**
 * `--gpus` for the commands that load a model on their own (bench engine, streams, detect): the real inventory of this
 * machine (no GPU) for the errors, and real ONNX Runtime sessions on the real yolov8n for placement. Where a test needs
 * GPUs to place on, it describes a 2-GPU host (`TWO_GPUS`): ONNX Runtime's CUDA EP then really fails to load here and
 * falls back to the CPU, so the instances are placed per GPU but honestly labelled CPU.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { OspreyError } from '../../src/core/errors.js';
import { Detector } from '../../src/engine/detector.js';
import { createPlacedEngine, isGpuEnginePath } from '../../src/engine/placed-engine.js';
import { readGpuInventory, type GpuInventory } from '../../src/gpu/inventory.js';
import { loadStreamsModel } from '../../src/streams/model.js';
import { tinyEngineFile } from '../compile/fixtures.js';
import { MODEL_PATH } from '../support/server.js';

const dir = mkdtempSync(join(tmpdir(), 'osprey-placed-'));
after(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'model.sm90.engine'), tinyEngineFile('9.0'));
const gpu = (index: number) => ({ index, name: `GPU-${index}`, computeCapability: '9.0', driverVersion: '580.159.04', memoryTotalBytes: 0, memoryUsedBytes: 0 });
const TWO_GPUS: GpuInventory = { source: 'nvidia-smi', note: 'described by the test', gpus: [gpu(0), gpu(1)] };
const isGpuNotFound = (re: RegExp) => (e: unknown) => e instanceof OspreyError && e.code === 'OSPREY_ERR_GPU_NOT_FOUND' && re.test(e.message);

test('isGpuEnginePath: *.engine files and folders holding model.sm<XY>.engine', async () => {
  assert.equal(await isGpuEnginePath(join(dir, 'model.sm90.engine')), true);
  assert.equal(await isGpuEnginePath(dir), true);
  assert.equal(await isGpuEnginePath(MODEL_PATH), false);
});

test('on this machine: --gpus naming any GPU, and a GPU engine, fail with OSPREY_ERR_GPU_NOT_FOUND (bench engine, detect, streams)', async (t) => {
  if ((await readGpuInventory()).gpus.length > 0) return t.skip('for machines without a GPU');
  await assert.rejects(createPlacedEngine({ modelPath: MODEL_PATH, executionProviders: ['cpu'], gpuIds: [0] }), isGpuNotFound(/--gpus: GPU 0 does not exist on this machine; GPUs found: none \(/));
  await assert.rejects(Detector.create({ modelPath: MODEL_PATH, executionProviders: ['cpu'], gpuIds: [1] }), isGpuNotFound(/GPU 1 does not exist/));
  await assert.rejects(Detector.create({ modelPath: join(dir, 'model.sm90.engine') }), isGpuNotFound(/backend osprey-cuda needs an NVIDIA GPU; GPUs found: none/));
  await assert.rejects(loadStreamsModel({ modelPath: dir }), isGpuNotFound(/backend osprey-cuda needs an NVIDIA GPU/));
  await assert.rejects(loadStreamsModel({ modelPath: MODEL_PATH, executionProviders: ['cpu'], gpuIds: [0, 1] }), isGpuNotFound(/GPU 0 does not exist/));
});

test('--gpus 0,1 × 2 instances on a (described) 2-GPU host: 4 real sessions, runs spread over them', async () => {
  const e = await createPlacedEngine({ modelPath: MODEL_PATH, executionProviders: ['cuda', 'cpu'], instances: 2, gpuIds: [0, 1], gpus: async () => TWO_GPUS, intraOpNumThreads: 1, warmup: 0 });
  try {
    assert.equal(e.info.instanceCount, 4);
    assert.equal(e.info.executionProvider, 'cpu'); // no CUDA EP libraries here: the real fallback
    assert.deepEqual(e.info.devices, [null, null, null, null]); // fell back, so not labelled with a GPU
    assert.match(e.info.fallbacks[0]?.reason ?? '', /^cuda: /);
    const zeros = () => ({ images: { type: 'float32' as const, dims: [1, 3, 640, 640], data: new Float32Array(3 * 640 * 640) } });
    await Promise.all(Array.from({ length: 4 }, () => e.run(zeros())));
    assert.deepEqual(e.pool.snapshot().map((s) => s.executions), [1, 1, 1, 1]);
  } finally {
    await e.close();
  }
  // CPU-only providers: placed once, not per GPU (ids still checked)
  const cpu = await createPlacedEngine({ modelPath: MODEL_PATH, executionProviders: ['cpu'], instances: 1, gpuIds: [0, 1], gpus: async () => TWO_GPUS, warmup: 0 });
  assert.equal(cpu.info.instanceCount, 1);
  await cpu.close();
  await assert.rejects(createPlacedEngine({ modelPath: MODEL_PATH, executionProviders: ['cpu'], gpuIds: [2], gpus: async () => TWO_GPUS }), isGpuNotFound(/GPU 2 does not exist on this machine; GPUs found: 0 \(GPU-0, cc 9\.0\), 1/));
});

test('an engine folder without an engine for a GPU’s compute capability is OSPREY_ERR_ENGINE_INCOMPATIBLE naming the GPU', async () => {
  const ampere: GpuInventory = { source: 'nvidia-smi', note: '', gpus: [{ ...gpu(0), name: 'NVIDIA A100', computeCapability: '8.0' }] };
  await assert.rejects(
    createPlacedEngine({ modelPath: dir, gpus: async () => ampere }),
    (e: unknown) => e instanceof OspreyError && e.code === 'OSPREY_ERR_ENGINE_INCOMPATIBLE' && /no engine for GPU 0 \(NVIDIA A100, compute capability 8\.0\); found cc 9\.0/.test(e.message),
  );
});
