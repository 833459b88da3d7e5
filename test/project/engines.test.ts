/**
 * A clean first run: every installed package supports the Node versions Osprey declares (`npm ci` would warn
 * EBADENGINE otherwise), and npm reads the project's configuration without "Unknown project config" warnings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import semver from 'semver';

const root = fileURLToPath(new URL('../../', import.meta.url));
const own = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } };
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; engines?: { node?: string } | string[] }> };

test("every package in the lock file, as installed, accepts Osprey's own engines.node range", () => {
  const oldest = semver.minVersion(own.engines.node)!.version; // '>=20.9' → 20.9.0
  const versions = [oldest, process.version];
  const bad: string[] = [];
  let checked = 0;
  for (const path of Object.keys(lock.packages)) {
    if (path === '') continue;
    const file = join(root, path, 'package.json');
    if (!existsSync(file)) continue; // an optional dependency for another platform
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string; engines?: { node?: string } };
    checked++;
    const range = pkg.engines?.node;
    if (!range) continue;
    for (const v of versions) if (!semver.satisfies(v, range)) bad.push(`${path} ${pkg.version}: engines.node ${JSON.stringify(range)} excludes Node ${v}`);
  }
  assert.ok(checked > 100, `checked ${checked} installed packages`); // the real tree, not an empty one
  assert.deepEqual(bad, [], `packages whose engines exclude Osprey's engines.node ${own.engines.node}:\n${bad.join('\n')}`);
});

test('npm reads the project config without warnings (no unknown keys such as onnxruntime-node-install)', async () => {
  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
    execFile('npm', ['pkg', 'get', 'name'], { cwd: root, timeout: 30_000 }, (err, stdout, stderr) => (err ? reject(err) : resolve({ stdout, stderr }))),
  );
  assert.equal(stdout.trim(), '"osprey"');
  assert.doesNotMatch(stderr, /npm warn/i, stderr);
});

test("onnxruntime-node's CUDA download stays skipped: denied in allowScripts and by setup.sh's environment", () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> };
  assert.equal(pkg.allowScripts?.['onnxruntime-node'], false);
  // npm versions without allowScripts (npm 10, Node 20's default) run the script, which reads this variable
  assert.match(readFileSync(join(root, 'scripts/setup.sh'), 'utf8'), /^export ONNXRUNTIME_NODE_INSTALL=skip$/m);
  // and the script itself honours it (onnxruntime-node's install-utils parseInstallFlag)
  const utils = readFileSync(join(root, 'node_modules/onnxruntime-node/script/install-utils.js'), 'utf8');
  assert.match(utils, /process\.env\.ONNXRUNTIME_NODE_INSTALL/);
  assert.match(utils, /case 'skip':\s*return false;/);
});
