import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { configError, joinKeyPath, pointerToKeyPath, ROOT_KEY_PATH } from '../../src/core/config-errors.js';
import { OspreyError } from '../../src/core/errors.js';
import { validateModelConfig } from '../../src/repository/config.js';
import { resolveAliases } from '../../src/routing/alias.js';
import { loadStreamsConfig, parseStreamsConfig } from '../../src/streams/config.js';

function caught(fn: () => unknown): OspreyError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof OspreyError, String(err));
    return err;
  }
  assert.fail('expected an OspreyError');
}

describe('config errors: one spelling of key paths and details for every config file', () => {
  it('key paths in JavaScript notation, the root as (root)', () => {
    assert.equal(joinKeyPath('', 'model'), 'model');
    assert.equal(joinKeyPath('cameras', 1), 'cameras[1]');
    assert.equal(joinKeyPath('cameras[1]', 'url'), 'cameras[1].url');
    assert.equal(pointerToKeyPath('/cameras/1/rules/0/zone'), 'cameras[1].rules[0].zone');
    assert.equal(pointerToKeyPath('/a~1b/c~0d'), 'a/b.c~d');
    assert.equal(pointerToKeyPath(''), ROOT_KEY_PATH);
    const e = configError('f.yaml', 'x.y', 'bad');
    assert.equal(e.message, 'f.yaml: x.y: bad');
    assert.deepEqual(e.details, { file: 'f.yaml', keyPath: 'x.y' });
  });

  it('model config, aliases file and cameras.yaml report { file, keyPath } the same way', () => {
    const model = caught(() => validateModelConfig({ maxBatchSize: -1 }, 'models/m/config.json'));
    assert.equal(model.code, 'OSPREY_ERR_CONFIG');
    assert.deepEqual(Object.keys(model.details).sort(), ['file', 'keyPath']);
    assert.equal(model.details.keyPath, 'maxBatchSize');
    assert.match(model.message, /^models\/m\/config\.json: maxBatchSize: /);

    const unknown = caught(() => validateModelConfig({ max_batch_size: 4 }, 'models/m/config.json'));
    assert.equal(unknown.details.keyPath, 'max_batch_size');
    assert.match(unknown.message, /did you mean 'maxBatchSize'/);

    const alias = caught(() => resolveAliases({ det: { arms: [{ model: 'a', weight: 'x' }] } }, 'aliases.yaml'));
    assert.equal(alias.details.file, 'aliases.yaml');
    assert.match(String(alias.details.keyPath), /^det\.arms\[0\]/);

    const root = caught(() => parseStreamsConfig('just a string'));
    assert.equal(root.details.keyPath, ROOT_KEY_PATH);
    assert.match(root.message, /^\(root\): /);

    const dir = mkdtempSync(join(tmpdir(), 'osprey-config-errors-'));
    try {
      const file = join(dir, 'cameras.yaml');
      writeFileSync(file, 'cameras:\n  - id: a\n    url: rtsp://127.0.0.1/x\n    fps: -3\n');
      const cam = caught(() => loadStreamsConfig(file));
      assert.equal(cam.code, 'OSPREY_ERR_CONFIG');
      assert.equal(cam.details.file, file);
      assert.equal(cam.details.keyPath, 'cameras[0].fps');
      assert.ok(cam.message.startsWith(`${file}: cameras[0].fps: `), cam.message);
      writeFileSync(file, 'cameras: [\n');
      const yaml = caught(() => loadStreamsConfig(file));
      assert.deepEqual(yaml.details, { file, keyPath: ROOT_KEY_PATH });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
