import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { findCudaLibraries, systemDiscoveryHost } from '../../src/cuda/discovery.js';
import { main } from '../../src/cli/main.js';

const MODEL = resolve(import.meta.dirname, '../../../shared/data/models/yolov8n.onnx');

test('osprey build --engine cuda without a GPU: lowers the model, then stops with the missing driver and its fix, writing nothing', async (t) => {
  if (findCudaLibraries(systemDiscoveryHost()).find((s) => s.spec.id === 'cuda')?.found) return t.skip('this machine has libcuda.so.1');
  const dir = mkdtempSync(join(tmpdir(), 'osprey-gpu-build-'));
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => (lines.push(String(s)), true)) as typeof process.stderr.write;
  try {
    await main(['node', 'osprey', 'build', '--engine', 'cuda', '--model', MODEL, '--out', join(dir, 'e'), '--max-batch', '8']);
  } finally {
    process.stderr.write = write;
  }
  assert.equal(process.exitCode, 2);
  process.exitCode = 0;
  assert.ok(lines.some((l) => /^osprey: OSPREY_ERR_CUDA_LIBRARY: libcuda\.so\.1 not found .*install the NVIDIA driver/.test(l)), lines.join(''));
  assert.ok(lines.some((l) => /build: fuse: 57 Conv\+bias\+SiLU/.test(l)), 'the pure passes ran and were logged');
  assert.deepEqual(readdirSync(dir), []);
  rmSync(dir, { recursive: true, force: true });
});

test('osprey build --engine with an unknown engine is a usage error', async () => {
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => (lines.push(String(s)), true)) as typeof process.stderr.write;
  try {
    await main(['node', 'osprey', 'build', '--engine', 'tensorrt', '--model', MODEL, '--out', '/tmp/x']);
  } finally {
    process.stderr.write = write;
  }
  assert.equal(process.exitCode, 2);
  process.exitCode = 0;
  assert.ok(lines.some((l) => /OSPREY_ERR_USAGE: --engine 'tensorrt': expected one of onnx, cuda/.test(l)), lines.join(''));
});
