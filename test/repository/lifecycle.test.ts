/**
 * Instance placement across GPUs (instanceGroup[].gpus, --gpus, ccModelFilenames per GPU, the osprey-cuda backend)
 * through the real repository, lifecycle, batcher and ONNX Runtime CPU sessions on the real yolov8n.
 *
 * This machine has no GPU. Errors for GPU ids are tested against the real inventory (nvidia-smi / libcuda: none).
 * Placement and spreading across GPUs cannot be caused without GPUs, so those tests give the repository a described
 * 2-GPU inventory and a factory that runs real ONNX Runtime CPU sessions and reports them as on the GPU they were
 * placed on (`labelled` below): the sessions, batcher, pool and metrics are real; only the device is a label.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OspreyError } from '../../src/core/errors.js';
import type { EngineFactory, EngineLoadOptions } from '../../src/engine/engine.js';
import { createOrtInstances } from '../../src/engine/ort-engine.js';
import { readGpuInventory, type GpuInventory } from '../../src/gpu/inventory.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { resolveModelConfig } from '../../src/repository/config.js';
import { placeInstances } from '../../src/repository/lifecycle.js';
import { ModelRepository } from '../../src/repository/repository.js';
import { tinyEngineFile } from '../compile/fixtures.js';
import { addModel, MODEL_PATH, SHARED_DATA_DIR, tempDir } from '../support/server.js';

const gpu = (index: number, computeCapability: string) => ({ index, name: `GPU-${index}`, computeCapability, driverVersion: '580.159.04', memoryTotalBytes: 0, memoryUsedBytes: 0 });
/** A described host with two GPUs of different architectures (see the file comment). */
const TWO_GPUS: GpuInventory = { source: 'nvidia-smi', note: 'described by the test', gpus: [gpu(0, '8.0'), gpu(1, '9.0')] };

let tmp: { path: string; remove: () => Promise<void> };
before(async () => {
  tmp = await tempDir('osprey-lifecycle-test-');
});
after(async () => tmp?.remove());

const groups = (file: unknown) => resolveModelConfig(file as never, 'm', undefined, 'm/config.json').instanceGroup;

describe('placeInstances (Triton placement: count instances on each listed GPU)', () => {
  it('gpus [0, 1] × count 2 → two calls of 2; no gpus → every GPU; --gpus replaces the config; KIND_CPU → one CPU call', () => {
    assert.deepEqual(
      placeInstances('m', groups({ instanceGroup: [{ kind: 'KIND_GPU', count: 2, gpus: [0, 1] }] }), 'onnxruntime', TWO_GPUS).map((p) => [p.gpu, p.count, p.gpuInfo?.computeCapability]),
      [[0, 2, '8.0'], [1, 2, '9.0']],
    );
    assert.deepEqual(placeInstances('m', groups({}), 'onnxruntime', TWO_GPUS).map((p) => p.gpu), [0, 1]);
    assert.deepEqual(placeInstances('m', groups({ instanceGroup: [{ gpus: [0] }] }), 'onnxruntime', TWO_GPUS, [1]).map((p) => p.gpu), [1]);
    assert.deepEqual(placeInstances('m', groups({ instanceGroup: [{ kind: 'KIND_CPU', count: 3 }, { gpus: [1] }] }), 'onnxruntime', TWO_GPUS).map((p) => [p.gpu, p.count]), [[null, 3], [1, 1]]);
    // CPU-only execution providers: placed once, not once per GPU
    assert.deepEqual(placeInstances('m', groups({}), 'onnxruntime', TWO_GPUS, undefined, () => true).map((p) => p.gpu), [null]);
  });

  it('an id that does not exist → OSPREY_ERR_GPU_NOT_FOUND naming the key, the id and the GPUs found', () => {
    assert.throws(
      () => placeInstances('m', groups({ instanceGroup: [{ kind: 'KIND_CPU' }, { gpus: [0, 2] }] }), 'onnxruntime', TWO_GPUS),
      (e: unknown) => e instanceof OspreyError && e.code === 'OSPREY_ERR_GPU_NOT_FOUND' && /^m: instanceGroup\[1\]\.gpus: GPU 2 does not exist on this machine; GPUs found: 0 \(GPU-0, cc 8\.0\), 1 \(GPU-1, cc 9\.0\)$/.test(e.message),
    );
    assert.throws(() => placeInstances('m', groups({}), 'onnxruntime', TWO_GPUS, [5]), /m: --gpus: GPU 5 does not exist/);
  });

  it('osprey-cuda: no GPU → OSPREY_ERR_GPU_NOT_FOUND; KIND_CPU → OSPREY_ERR_CONFIG', () => {
    const none: GpuInventory = { source: 'none', note: 'nvidia-smi not found', gpus: [] };
    assert.throws(() => placeInstances('m', groups({}), 'osprey-cuda', none), (e: unknown) => e instanceof OspreyError && e.code === 'OSPREY_ERR_GPU_NOT_FOUND' && /backend osprey-cuda needs an NVIDIA GPU; GPUs found: none/.test(e.message));
    assert.throws(() => placeInstances('m', groups({ instanceGroup: [{ kind: 'KIND_CPU' }] }), 'osprey-cuda', TWO_GPUS), (e: unknown) => e instanceof OspreyError && e.code === 'OSPREY_ERR_CONFIG');
    // without GPUs the onnxruntime backend keeps one call on device 0 (its execution providers decide)
    assert.deepEqual(placeInstances('m', groups({}), 'onnxruntime', none).map((p) => p.gpu), [0]);
  });

  it('config: gpus on a KIND_CPU group, a GPU listed twice, backend contradicting platform are OSPREY_ERR_CONFIG', () => {
    assert.throws(() => groups({ instanceGroup: [{ kind: 'KIND_CPU', gpus: [0] }] }), /instanceGroup\[0\]\.gpus: a KIND_CPU group runs on no GPU/);
    assert.throws(() => groups({ instanceGroup: [{ gpus: [1, 1] }] }), /instanceGroup\[0\]\.gpus: GPU 1 is listed twice/);
    assert.throws(() => resolveModelConfig({ backend: 'osprey-cuda', platform: 'onnxruntime_onnx' }, 'm', undefined, 'c'), /backend: 'osprey-cuda' contradicts platform 'onnxruntime_onnx'/);
    const c = resolveModelConfig({ platform: 'osprey_cuda_engine', ccModelFilenames: { '9.0': 'model.sm90.engine' } }, 'm', undefined, 'c');
    assert.equal(c.backend, 'osprey-cuda');
    assert.deepEqual(c.ccModelFilenames, { '9.0': 'model.sm90.engine' });
    assert.throws(() => resolveModelConfig({ ccModelFilenames: { '9.0': '../x.engine' } }, 'm', undefined, 'c'), (e: unknown) => e instanceof OspreyError && e.code === 'OSPREY_ERR_PATH_NOT_ALLOWED');
  });
});

describe('model loads on this machine (real inventory: no GPU)', () => {
  it('a GPU id in the config, or --gpus, is refused at load with OSPREY_ERR_GPU_NOT_FOUND; the other models load', async (t) => {
    const here = await readGpuInventory();
    const missing = here.gpus.length; // past the last GPU: absent on any machine
    const root = join(tmp.path, 'ids');
    await addModel(root, 'pinned', { config: { instanceGroup: [{ kind: 'KIND_GPU', gpus: [missing] }] } });
    await addModel(root, 'cpu', { config: { instanceGroup: [{ kind: 'KIND_CPU' }] } });
    const repo = await ModelRepository.open(root, { executionProviders: ['cpu'], allowedSymlinkTargets: [SHARED_DATA_DIR] });
    try {
      const rows = await repo.index();
      const pinned = rows.find((r) => r.name === 'pinned')!;
      assert.equal(pinned.state, 'UNAVAILABLE');
      assert.match(pinned.reason, new RegExp(`OSPREY_ERR_GPU_NOT_FOUND.*pinned: instanceGroup\\[0\\]\\.gpus: GPU ${missing} does not exist on this machine; GPUs found: `));
      assert.equal(rows.find((r) => r.name === 'cpu')!.state, 'READY');
    } finally {
      await repo.close();
    }
    if (here.gpus.length > 0) return t.skip('the --gpus part is for machines without a GPU');
    const repo2 = await ModelRepository.fromModelFile(MODEL_PATH, { executionProviders: ['cpu'], gpuIds: [0] }).catch((e: unknown) => e);
    // `--model PATH` with a model that cannot load: the one-model repository refuses to open
    assert.ok(repo2 instanceof OspreyError, String(repo2));
    assert.match(repo2.message, /GPU 0 does not exist on this machine; GPUs found: none/);
  });

  it('an engine folder from osprey build --engine cuda selects the osprey-cuda backend; without a GPU: OSPREY_ERR_GPU_NOT_FOUND', async (t) => {
    if ((await readGpuInventory()).gpus.length > 0) return t.skip('for machines without a GPU');
    const root = join(tmp.path, 'engines');
    const dir = join(root, 'gpu', '1');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'model.sm90.engine'), tinyEngineFile('9.0'));
    const repo = await ModelRepository.open(root, { executionProviders: ['cpu'] });
    try {
      const row = (await repo.index()).find((r) => r.name === 'gpu')!;
      assert.equal(row.state, 'UNAVAILABLE');
      assert.match(row.reason, /OSPREY_ERR_GPU_NOT_FOUND.*gpu: backend osprey-cuda needs an NVIDIA GPU; GPUs found: none/);
    } finally {
      await repo.close();
    }
    // `osprey serve --model DIR/model.sm90.engine`: the one-model repository picks the same backend
    const one = await ModelRepository.fromModelFile(join(dir, 'model.sm90.engine'), { executionProviders: ['cpu'] }).catch((e: unknown) => e);
    assert.ok(one instanceof OspreyError && /model: backend osprey-cuda needs an NVIDIA GPU/.test(one.message), String(one));
  });
});

describe('placement across (described) GPUs with real CPU sessions', () => {
  it('count 2 on gpus [0, 1]: 4 instances, ccModelFilenames picked per GPU, batches spread, per-GPU metrics', async () => {
    const root = join(tmp.path, 'spread');
    const dir = await addModel(root, 'm', {
      config: { instanceGroup: [{ kind: 'KIND_GPU', count: 2, gpus: [0, 1] }], ccModelFilenames: { '9.0': 'model.sm90.onnx', '7.5': 'model.sm75.onnx' }, dynamicBatching: {} },
    });
    await copyFile(MODEL_PATH, join(dir, 'model.sm90.onnx')); // a file of its own (model.onnx is a link to the shared yolov8n.onnx)
    const calls: EngineLoadOptions[] = [];
    const labelled: EngineFactory = async (o) => {
      calls.push(o);
      const real = await createOrtInstances({ ...o, executionProviders: ['cpu'], intraOpNumThreads: 1 });
      return { ...real, info: { ...real.info, executionProvider: 'cuda' } }; // the label: see the file comment
    };
    const repo = await ModelRepository.open(root, { engineFactory: labelled, gpus: async () => TWO_GPUS, executionProviders: ['cuda', 'cpu'], allowedSymlinkTargets: [SHARED_DATA_DIR] });
    try {
      assert.deepEqual(calls.map((c) => [c.deviceId, c.instances, c.modelPath.split('/').pop(), c.gpu?.computeCapability]), [
        [0, 2, 'yolov8n.onnx', '8.0'], // no file listed for 8.0: the portable model.onnx (a link to yolov8n.onnx)
        [1, 2, 'model.sm90.onnx', '9.0'],
      ]);
      const v = repo.get('m');
      assert.deepEqual(v.batcher.stats().instances.map((i) => i.gpu), [0, 0, 1, 1]);
      assert.deepEqual(v.config.instanceGroup[0]!.gpus, [0, 1]); // GET …/config reports where the instances went
      const zeros = () => ({ images: { type: 'float32' as const, dims: [1, 3, 640, 640], data: new Float32Array(3 * 640 * 640) } });
      await Promise.all(Array.from({ length: 8 }, () => v.batcher.submit(zeros())));
      const perGpu = new Map<number, number>();
      for (const i of v.batcher.stats().instances) perGpu.set(i.gpu!, (perGpu.get(i.gpu!) ?? 0) + i.executions);
      assert.equal((perGpu.get(0) ?? 0) + (perGpu.get(1) ?? 0), 8); // batch-1 model: 8 batches (warmup runs are not counted)
      // the first four batches find all instances idle and go two per GPU; each GPU runs at least those
      assert.ok((perGpu.get(0) ?? 0) >= 2 && (perGpu.get(1) ?? 0) >= 2, `both GPUs ran batches: ${JSON.stringify([...perGpu])}`);
      const metrics = new ServerMetrics({ processMetrics: false, gpuMetrics: false });
      metrics.attach({ versions: () => repo.allVersions().map((x) => ({ model: x.model, version: x.version, state: x.state, pendingRequests: 0, instances: x.batcher.stats().instances })) });
      const text = await metrics.registry.metrics();
      for (const g of [0, 1]) {
        assert.match(text, new RegExp(`osprey_gpu_executions_total\\{model="m",version="1",gpu="${g}"\\} ${perGpu.get(g)}\\n`));
        assert.match(text, new RegExp(`osprey_gpu_busy_seconds_total\\{model="m",version="1",gpu="${g}"\\} [0-9.e-]+\\n`));
      }
      assert.match(text, /osprey_instance_busy_seconds_total\{model="m",version="1",instance="3",gpu="1"\}/);
    } finally {
      await repo.close();
    }
  });
});
