/**
 * Execution-provider defaults: CUDA is tried by default only where an NVIDIA GPU is present, so a CPU-only machine
 * runs without a fallback warning, while an explicit `--ep cuda` still says why CUDA did not load.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CPU_EXECUTION_PROVIDERS, defaultExecutionProviders, detectNvidiaGpu, GPU_EXECUTION_PROVIDERS } from '../../src/engine/execution-providers.js';
import { BUS_JPG, MODEL_PATH, REPO_ROOT } from '../support/images.js';

/** A directory tree standing in for `/` (real files; the probe reads nothing else). */
function fakeRoot(files: string[]): string {
  const root = mkdtempSync(join(tmpdir(), 'osprey-gpu-probe-'));
  for (const f of files) {
    mkdirSync(join(root, f, '..'), { recursive: true });
    writeFileSync(join(root, f), '');
  }
  return root;
}

test('detectNvidiaGpu: device nodes, driver entries, nvidia-smi on PATH, CUDA_VISIBLE_DEVICES', () => {
  const cases: Array<{ files: string[]; env?: NodeJS.ProcessEnv; present: boolean; evidence: RegExp }> = [
    { files: [], present: false, evidence: /^no \/dev\/nvidia/ },
    { files: ['dev/nvidiactl', 'dev/nvidia-uvm'], present: false, evidence: /^no / }, // control nodes without a GPU node
    { files: ['dev/nvidia0'], present: true, evidence: /^\/dev\/nvidia0$/ },
    { files: ['dev/nvidia3'], present: true, evidence: /^\/dev\/nvidia3$/ },
    { files: ['proc/driver/nvidia/gpus/0000:01:00.0/information'], present: true, evidence: /gpus \(1 GPU\)/ },
    { files: ['usr/bin/nvidia-smi'], env: { PATH: '/usr/local/bin:/usr/bin' }, present: true, evidence: /nvidia-smi on PATH \(\/usr\/bin\/nvidia-smi\)/ },
    { files: ['dev/nvidia0'], env: { CUDA_VISIBLE_DEVICES: '-1' }, present: false, evidence: /CUDA_VISIBLE_DEVICES=-1/ },
    { files: ['dev/nvidia0'], env: { CUDA_VISIBLE_DEVICES: '' }, present: false, evidence: /CUDA_VISIBLE_DEVICES=/ },
    { files: ['dev/nvidia0'], env: { CUDA_VISIBLE_DEVICES: '0' }, present: true, evidence: /nvidia0/ },
  ];
  for (const c of cases) {
    const root = fakeRoot(c.files);
    try {
      if (c.files.some((f) => f.endsWith('nvidia-smi'))) chmodSync(join(root, 'usr/bin/nvidia-smi'), 0o755);
      const r = detectNvidiaGpu({ root, env: c.env ?? { PATH: '' } });
      assert.equal(r.present, c.present, JSON.stringify(c));
      assert.match(r.evidence, c.evidence, JSON.stringify(c));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
});

test('defaultExecutionProviders follows the GPU probe of this machine', () => {
  const gpu = detectNvidiaGpu();
  assert.deepEqual(defaultExecutionProviders(), gpu.present ? GPU_EXECUTION_PROVIDERS : CPU_EXECUTION_PROVIDERS, gpu.evidence);
});

/** The CLI module run directly (`node src/cli/main.ts …` through tsx, as `node dist/src/cli/main.js` runs it). */
function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: REPO_ROOT, maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 99) : 0, stdout, stderr });
    });
  });
}

test('the CLI module runs when invoked directly, and a CPU-only machine gets no CUDA fallback warning by default', async () => {
  const version = await cli(['--version']);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^\d+\.\d+\.\d+/);
  const r = await cli(['detect', BUS_JPG, '--model', MODEL_PATH, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as Array<{ detections: unknown[] }>)[0]!.detections.length > 0, true);
  if (!detectNvidiaGpu().present) assert.doesNotMatch(r.stderr, /fallback|cuda/i, r.stderr);
});

test('an explicit --ep cuda,cpu still explains why CUDA did not load (where it cannot)', async (t) => {
  const r = await cli(['detect', BUS_JPG, '--model', MODEL_PATH, '--ep', 'cuda,cpu', '--json']);
  assert.equal(r.code, 0, r.stderr);
  if (/fallback/.test(r.stderr) || !detectNvidiaGpu().present) {
    assert.match(r.stderr, /execution provider fallback: cuda: \S+/);
  } else {
    t.diagnostic('CUDA loaded on this machine: no fallback to explain');
  }
});
