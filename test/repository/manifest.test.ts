/** Version manifests (src/repository/manifest.ts): accepted shapes, verification, mismatch and broken files. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OspreyError } from '../../src/core/errors.js';
import { expectedHashes, verifyManifest } from '../../src/repository/manifest.js';
import { addModel, MODEL_PATH, SHARED_DATA_DIR, tempDir } from '../support/server.js';

let tmp: { path: string; remove: () => Promise<void> };
let sha: string;

before(async () => {
  tmp = await tempDir('osprey-manifest-test-');
  sha = createHash('sha256').update(await readFile(MODEL_PATH)).digest('hex');
});
after(async () => tmp?.remove());

describe('manifest', () => {
  it('reads the sha256 shapes it accepts', () => {
    assert.deepEqual([...expectedHashes({ sha256: sha }, 'model.onnx')], [['model.onnx', sha]]);
    assert.deepEqual([...expectedHashes({ files: [{ path: 'model.onnx', sha256: sha.toUpperCase() }] }, 'model.onnx')], [['model.onnx', sha]]);
    assert.deepEqual([...expectedHashes({ files: { 'model.onnx': sha } }, 'model.onnx')], [['model.onnx', sha]]);
    assert.equal(expectedHashes({ precision: 'fp32' }, 'model.onnx').size, 0);
  });

  it('a matching manifest verifies; a mismatch is OSPREY_ERR_HASH_MISMATCH naming the file and both hashes', async () => {
    const good = await addModel(tmp.path, 'm_good', { manifest: { files: { 'model.onnx': { sha256: sha } } } });
    const ctx = (dir: string) => ({ modelDir: join(dir, '..'), model: 'm', allowedTargets: [SHARED_DATA_DIR] });
    assert.deepEqual(await verifyManifest(good, 'model.onnx', ctx(good)), ['model.onnx']);
    const bad = await addModel(tmp.path, 'm_bad', { manifest: { sha256: 'f'.repeat(64) } });
    await assert.rejects(verifyManifest(bad, 'model.onnx', ctx(bad)), (e: unknown) => {
      assert.ok(e instanceof OspreyError);
      assert.equal(e.code, 'OSPREY_ERR_HASH_MISMATCH');
      assert.match(e.message, new RegExp(`${sha}.*${'f'.repeat(64)}`));
      return true;
    });
    const broken = await addModel(tmp.path, 'm_broken_manifest');
    await writeFile(join(broken, 'manifest.json'), '{ nope');
    await assert.rejects(verifyManifest(broken, 'model.onnx', ctx(broken)), (e: unknown) => e instanceof OspreyError && e.code === 'OSPREY_ERR_CONFIG');
  });
});
