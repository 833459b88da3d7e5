/**
 * `osprey serve --gpus` through the real CLI entry (a child process running src/cli/main.ts under tsx): a GPU that
 * does not exist on this machine makes the one-model server exit non-zero with the code and the GPUs found.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readGpuInventory } from '../../src/gpu/inventory.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MODEL = fileURLToPath(new URL('../../../shared/data/models/yolov8n.onnx', import.meta.url));
const ENTRY = `import(${JSON.stringify(new URL('../../src/cli/main.ts', import.meta.url).href)}).then((m) => m.main(['node', 'osprey', ...process.argv.slice(1)]))`;

function osprey(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', '-e', ENTRY, ...args], { cwd: ROOT, timeout: 120000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('osprey serve --model M --gpus N (no such GPU): exits non-zero with OSPREY_ERR_GPU_NOT_FOUND; a bad --gpus value is OSPREY_ERR_USAGE', async () => {
  const missing = (await readGpuInventory()).gpus.length;
  const [r, bad] = await Promise.all([
    osprey(['serve', '--model', MODEL, '--ep', 'cuda,cpu', '--gpus', String(missing), '--http-port', '0', '--grpc-port', '0', '--host', '127.0.0.1', '--log-level', 'silent']),
    osprey(['serve', '--model', MODEL, '--gpus', '0,x', '--http-port', '0']),
  ]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, new RegExp(`OSPREY_ERR_GPU_NOT_FOUND.*--gpus: GPU ${missing} does not exist on this machine; GPUs found: `));
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /OSPREY_ERR_USAGE.*--gpus "0,x": 'x' is not a GPU id/);
});
