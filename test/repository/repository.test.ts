/**
 * The model repository on disk with the real engine (ONNX Runtime worker) on the real model: version policy
 * (with the latest-policy fallback), a manifest mismatch refusing one version, per-model refusal, in-memory
 * one-model repository, warmup, unload/close. Manifests alone: manifest.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OspreyError } from '../../src/core/errors.js';
import { ModelRepository } from '../../src/repository/repository.js';
import { addModel, MODEL_PATH, SHARED_DATA_DIR, tempDir } from '../support/server.js';

let tmp: { path: string; remove: () => Promise<void> };
let sha: string;

before(async () => {
  tmp = await tempDir('osprey-repo-test-');
  sha = createHash('sha256').update(await readFile(MODEL_PATH)).digest('hex');
});
after(async () => tmp?.remove());

describe('ModelRepository (real engine)', () => {
  it('version policy latest 2 / specific; a hash mismatch refuses only that version; warmup runs; unload drains', async () => {
    const root = join(tmp.path, 'repo');
    const warmup = { modelWarmup: [{ name: 'rand', inputs: { images: { dataType: 'TYPE_FP32', dims: [1, 3, 640, 640], randomData: true } } }] };
    await addModel(root, 'two', { version: 1, config: { versionPolicy: { latest: { numVersions: 2 } }, instanceGroup: [{ count: 1, kind: 'KIND_CPU' }], ...warmup } });
    await addModel(root, 'two', { version: 2, manifest: { sha256: sha } });
    await addModel(root, 'two', { version: 3, manifest: { sha256: '0'.repeat(64) } });
    await addModel(root, 'pick', { version: 1, config: { versionPolicy: { specific: { versions: [1, 4] } } } });
    const repo = await ModelRepository.open(root, { executionProviders: ['cpu'], allowedSymlinkTargets: [SHARED_DATA_DIR] });
    try {
      const index = await repo.index();
      const rows = index.map((r) => `${r.name}:${r.version}:${r.state}`);
      // latest 2 = versions 2 and 3; 3 fails its hash → refused, and version 1 takes its place (Triton's `latest`
      // serves the newest 2 versions that load).
      assert.ok(rows.includes('two:2:READY'), rows.join(' '));
      assert.ok(rows.includes('two:3:UNAVAILABLE'), rows.join(' '));
      assert.ok(rows.includes('two:1:READY'), rows.join(' '));
      assert.match(index.find((r) => r.name === 'two' && r.version === '3')!.reason, /OSPREY_ERR_HASH_MISMATCH/);
      assert.ok(rows.includes('pick:1:READY'));
      assert.match(index.find((r) => r.name === 'pick' && r.version === '4')!.reason, /version 4 is not in the repository/);
      assert.equal(repo.get('two').version, 2);
      assert.throws(() => repo.get('two', 3), (e: unknown) => e instanceof OspreyError && e.code === 'OSPREY_ERR_MODEL_NOT_READY');
      assert.throws(() => repo.get('nope'), (e: unknown) => e instanceof OspreyError && e.code === 'OSPREY_ERR_MODEL_NOT_FOUND');
      assert.equal(repo.get('two').info.executionProvider, 'cpu');
      await repo.unload('pick');
      assert.throws(() => repo.get('pick'), (e: unknown) => e instanceof OspreyError && e.code === 'OSPREY_ERR_MODEL_NOT_READY');
    } finally {
      await repo.close();
    }
  });

  it('one-model repository from a file (name = file name without extension), config auto-completed', async () => {
    const repo = await ModelRepository.fromModelFile(MODEL_PATH, { executionProviders: ['cpu'] });
    try {
      const v = repo.get('yolov8n');
      assert.equal(v.version, 1);
      assert.equal(v.config.maxBatchSize, 0);
      assert.deepEqual(v.detectionSpec?.names.slice(0, 2), ['person', 'bicycle']);
      assert.deepEqual(await repo.index(), [{ name: 'yolov8n', version: '1', state: 'READY', reason: '' }]);
    } finally {
      await repo.close();
    }
  });

  it("load with pushed files (Triton's file:<version>/<name>) and a config; files without a config are refused", async () => {
    const root = join(tmp.path, 'empty-repo');
    await (await import('node:fs/promises')).mkdir(root, { recursive: true });
    const repo = await ModelRepository.open(root, { executionProviders: ['cpu'], allowedSymlinkTargets: [SHARED_DATA_DIR] });
    try {
      const bytes = new Uint8Array(await readFile(MODEL_PATH));
      await assert.rejects(repo.load('pushed', { files: { '1/model.onnx': bytes } }), (e: unknown) => e instanceof OspreyError && e.code === 'OSPREY_ERR_INVALID_ARGUMENT');
      await repo.load('pushed', { config: JSON.stringify({ detection: { conf: 0.4 } }), files: { '1/model.onnx': bytes } });
      const v = repo.get('pushed');
      assert.equal(v.version, 1);
      assert.equal(v.config.detection.conf, 0.4);
      assert.deepEqual((await repo.index()).find((r) => r.name === 'pushed'), { name: 'pushed', version: '1', state: 'READY', reason: '' });
    } finally {
      await repo.close();
    }
  });

  it('a missing repository folder is OSPREY_ERR_FILE_NOT_FOUND', async () => {
    await assert.rejects(ModelRepository.open(join(tmp.path, 'nowhere')), (e: unknown) => e instanceof OspreyError && e.code === 'OSPREY_ERR_FILE_NOT_FOUND');
  });
});
