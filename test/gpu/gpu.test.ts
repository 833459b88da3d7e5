import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isOspreyError } from '../../src/core/errors.js';
import { diagnoseExecutionProvider, doctor, formatDoctorReport } from '../../src/gpu/diagnose.js';
import { installGpuProviders, onnxRuntimeBinaryDir, PROVIDER_PACKAGES } from '../../src/gpu/providers.js';
import { selectModelFile } from '../../src/gpu/select.js';
import type { GpuInfo } from '../../src/gpu/system.js';
import { detectTensorrtVersion, tensorrtCacheDir, tensorrtEnvironment } from '../../src/gpu/tensorrt.js';
import { onnxRuntimeVersion } from '../../src/version.js';

const h100: GpuInfo = { index: 0, name: 'NVIDIA H100 80GB HBM3', computeCapability: '9.0', driverVersion: '580.159.04', memoryTotalBytes: 80 * 2 ** 30, memoryUsedBytes: 0 };

test('doctor on this machine: cpu loads; cuda and tensorrt say why not, naming the missing piece', async () => {
  const r = await doctor();
  assert.equal(r.onnxRuntimeVersion, onnxRuntimeVersion());
  const byEp = Object.fromEntries(r.executionProviders.map((s) => [s.executionProvider, s]));
  assert.equal(byEp.cpu!.loadable, true);
  if (r.gpus.length === 0) {
    for (const ep of ['cuda', 'tensorrt'] as const) {
      assert.equal(byEp[ep]!.loadable, false);
      assert.match(byEp[ep]!.reason, new RegExp(`^${ep}: .*(not installed|not found|no NVIDIA GPU)`));
    }
  }
  const text = formatDoctorReport(r);
  assert.match(text, /ONNX Runtime \d+\.\d+\.\d+/);
  assert.match(text, /cpu: built into onnxruntime-node/);
  if (r.gpus.length === 0) assert.match(text, /GPUs: none \(nvidia-smi not found or lists no GPU; libcuda\.so\.1 not found/);
  else assert.match(text, new RegExp(`GPUs: ${r.gpus.length}, from (nvidia-smi|cuda-driver)`));
});

test('doctor lists every GPU of a multi-GPU host with its id for --gpus (report formatting)', () => {
  // a report as doctor() returns it on a 2-GPU host (this machine has none): only the formatting is under test
  const g = (index: number) => ({ index, name: 'NVIDIA H200', computeCapability: '9.0', driverVersion: '580.159.04', memoryTotalBytes: 150_754_820_096, memoryUsedBytes: 0 });
  const text = formatDoctorReport({ onnxRuntimeVersion: '1.29.0', platform: 'linux-x64', gpus: [g(0), g(1)], gpuSource: 'nvidia-smi', gpuNote: '', executionProviders: [] });
  assert.match(text, /GPUs: 2, from nvidia-smi \(ids for --gpus and instanceGroup\[\]\.gpus: 0, 1\)/);
  assert.match(text, /GPU 0: NVIDIA H200, compute capability 9\.0, driver 580\.159\.04/);
  assert.match(text, /GPU 1: NVIDIA H200, compute capability 9\.0/);
});

test('diagnose: with the provider library absent, the reason says to run osprey gpu install', (t) => {
  const lib = join(onnxRuntimeBinaryDir(), 'libonnxruntime_providers_cuda.so');
  if (existsSync(lib)) return t.skip('CUDA provider installed here; covered by the doctor test');
  const s = diagnoseExecutionProvider('cuda', [h100]);
  assert.equal(s.loadable, false);
  assert.match(s.reason, /osprey gpu install/);
});

test('gpu install: a tarball path that does not exist is a clear OSPREY_ERR_GPU_INSTALL', () => {
  assert.throws(() => installGpuProviders({ from: '/nonexistent/providers.tgz' }), (e) => isOspreyError(e, 'OSPREY_ERR_GPU_INSTALL') && /not found/.test(e.message));
});

test('gpu install: a tampered package is refused on sha256 and nothing is copied', () => {
  const pkg = PROVIDER_PACKAGES[onnxRuntimeVersion()];
  assert.ok(pkg, 'the pinned onnxruntime-node has a known provider package');
  const dir = mkdtempSync(join(tmpdir(), 'osprey-gpu-test-'));
  try {
    const folder = join(dir, pkg.folder);
    mkdirSync(folder, { recursive: true });
    for (const name of Object.keys(pkg.files)) writeFileSync(join(folder, name), `not the real ${name}`);
    const tgz = join(dir, 'fake.tgz');
    assert.equal(spawnSync('tar', ['czf', tgz, '-C', dir, 'package']).status, 0);
    const before = Object.keys(pkg.files).map((n) => existsSync(join(onnxRuntimeBinaryDir(), n)));
    assert.throws(() => installGpuProviders({ from: tgz, force: true }), (e) => isOspreyError(e, 'OSPREY_ERR_GPU_INSTALL') && /sha256/.test(e.message));
    const after = Object.keys(pkg.files).map((n) => existsSync(join(onnxRuntimeBinaryDir(), n)));
    assert.deepEqual(after, before);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ccModelFilenames: the engine for the GPU compute capability, else the portable model, with the reason', () => {
  const cc = { '9.0': 'model.sm90.onnx', '8.9': 'model.sm89.onnx' };
  const all = () => true;
  assert.equal(selectModelFile({ ccModelFilenames: cc, gpus: [h100], exists: all }).file, 'model.sm90.onnx');
  const t4 = { ...h100, name: 'Tesla T4', computeCapability: '7.5' };
  const c = selectModelFile({ ccModelFilenames: cc, gpus: [t4], exists: all });
  assert.equal(c.file, 'model.onnx');
  assert.match(c.reason, /no engine listed for compute capability 7\.5/);
  assert.match(selectModelFile({ ccModelFilenames: cc, gpus: [h100], exists: () => false }).reason, /missing/);
  assert.match(selectModelFile({ ccModelFilenames: cc, gpus: [], exists: all }).reason, /no GPU/);
});

test('TensorRT: environment variables and an engine cache keyed by model × GPU × TensorRT version × precision', () => {
  const base = { modelSha256: 'a'.repeat(64), gpuName: h100.name, computeCapability: '9.0', tensorrtVersion: '10.13.0', cacheRoot: '/tmp/trt', fp16: true };
  const env = tensorrtEnvironment(base);
  assert.equal(env.ORT_TENSORRT_FP16_ENABLE, '1');
  assert.equal(env.ORT_TENSORRT_INT8_ENABLE, '0');
  assert.equal(env.ORT_TENSORRT_ENGINE_CACHE_ENABLE, '1');
  assert.equal(env.ORT_TENSORRT_CACHE_PATH, tensorrtCacheDir(base));
  const dirs = new Set([
    tensorrtCacheDir(base),
    tensorrtCacheDir({ ...base, modelSha256: 'b'.repeat(64) }),
    tensorrtCacheDir({ ...base, gpuName: 'Tesla T4', computeCapability: '7.5' }),
    tensorrtCacheDir({ ...base, tensorrtVersion: '10.14.1' }),
    tensorrtCacheDir({ ...base, fp16: false, int8: true }),
  ]);
  assert.equal(dirs.size, 5);
  assert.match(tensorrtCacheDir(base), /sm90-trt10\.13\.0-fp16/);
  assert.equal(detectTensorrtVersion(() => null), null);
  assert.equal(detectTensorrtVersion(() => '/usr/lib/libnvinfer.so.10', () => '/usr/lib/libnvinfer.so.10.13.0'), '10.13.0');
});
