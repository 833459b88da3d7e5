/** Path confinement (src/repository/paths.ts) on real folders and links in a temp directory. */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isOspreyError } from '../../src/core/errors.js';
import { checkRelativePath, isInside, readBoundedFile, realAllowedTargets, resolveInModelFolder } from '../../src/repository/paths.js';

let dir: string;
const ctx = { model: 'm', keyPath: 'defaultModelFilename' };
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'osprey-paths-'));
  await mkdir(join(dir, 'm', '1'), { recursive: true });
  await mkdir(join(dir, 'shared'));
  await writeFile(join(dir, 'm', '1', 'model.onnx'), 'x');
  await writeFile(join(dir, 'shared', 'big.onnx'), 'y');
  await symlink(join(dir, 'shared', 'big.onnx'), join(dir, 'm', '1', 'linked.onnx'));
  await symlink('../1/model.onnx', join(dir, 'm', '1', 'inner.onnx'));
});
after(() => rm(dir, { recursive: true, force: true }));

test('lexical: absolute, .., ., empty segments, backslashes and NUL are refused before any lookup', () => {
  for (const bad of ['/etc/passwd', '../x', 'a/../../x', './x', 'a//b', 'a\\b', 'a\0b', '', 'a/']) {
    assert.throws(() => checkRelativePath(bad, ctx), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_PATH_NOT_ALLOWED'), JSON.stringify(bad));
  }
  assert.deepEqual(checkRelativePath('sub/model.fp16.onnx', ctx), ['sub', 'model.fp16.onnx']);
});

test('after symlinks: a link inside the folder is fine, one that leaves it needs an allowed target; messages are relative', async () => {
  const md = join(dir, 'm');
  assert.equal((await resolveInModelFolder(md, join(md, '1'), 'inner.onnx', ctx)).display, '1/inner.onnx');
  await assert.rejects(resolveInModelFolder(md, join(md, '1'), 'linked.onnx', ctx), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_PATH_NOT_ALLOWED') && !e.message.includes(dir));
  const allowed = await realAllowedTargets([join(dir, 'shared'), join(dir, 'missing')]);
  assert.equal(allowed.length, 1);
  assert.ok((await resolveInModelFolder(md, join(md, '1'), 'linked.onnx', ctx, allowed)).path.endsWith('big.onnx'));
  await assert.rejects(resolveInModelFolder(md, join(md, '1'), 'nope.onnx', ctx), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_MODEL_NOT_FOUND_FILE') && /'1\/nope.onnx'/.test(e.message));
});

test('isInside compares whole segments', () => {
  assert.ok(isInside('/a/b', '/a/b/c'));
  assert.ok(isInside('/a/b', '/a/b'));
  assert.ok(!isInside('/a/b', '/a/bc'));
  assert.ok(!isInside('/a/b', '/a'));
});

test('readBoundedFile: exact size, at most a size, and never a non-regular file', async () => {
  const p = join(dir, 'm', '1', 'model.onnx');
  assert.equal((await readBoundedFile(p, '1/model.onnx', ctx, { expectedBytes: 1 })).toString(), 'x');
  await assert.rejects(readBoundedFile(p, '1/model.onnx', ctx, { expectedBytes: 2 }), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_CONFIG') && /1 bytes, expected exactly 2/.test(e.message));
  await assert.rejects(readBoundedFile(join(dir, 'm'), 'm', ctx, { maxBytes: 10 }), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_PATH_NOT_ALLOWED'));
});
