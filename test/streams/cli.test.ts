/**
 * `osprey streams` CLI in a child process (src/cli/main.ts through tsx, the code bin/osprey.js runs from dist/):
 * an invalid cameras.yaml exits 2 naming the key path; `--check` validates the example config and loads the model,
 * refuses URL-looking strings that are not URLs (with a suggestion, credentials hidden) and missing file sources.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { FIXTURES } from './helpers.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const ENTRY = 'import("./src/cli/main.ts").then((m) => m.main(["node", "osprey", ...process.argv.slice(1)]))';

function osprey(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(process.execPath, ['--import', 'tsx', '-e', ENTRY, ...args], { cwd: ROOT }, (err, stdout, stderr) => {
      res({ code: err ? (typeof err.code === 'number' ? err.code : 99) : 0, stdout, stderr });
    });
  });
}

test('osprey streams with an invalid cameras.yaml exits 2 with OSPREY_ERR_CONFIG and the key path', async () => {
  const r = await osprey(['streams', '--config', join(FIXTURES, 'invalid-fps.yaml')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /OSPREY_ERR_CONFIG: .*invalid-fps\.yaml: cameras\[1\]\.fps: must be > 0, got 0/);
});

test('osprey streams --check validates the example config and loads the model', async () => {
  const r = await osprey(['streams', '--config', join(FIXTURES, 'cameras.yaml'), '--check', '--ep', 'cpu']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /2 cameras OK \(lot, hall\); model .*yolov8n\.onnx: 640×640 float32-nchw, 80 classes/);
});

test('osprey streams --check refuses a URL-looking string such as rtsp//host/x with a suggestion, and a missing file source', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'osprey-check-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const typo = join(dir, 'typo.yaml');
  writeFileSync(typo, 'cameras:\n  - id: door\n    url: rtsp//admin:Ch3ckSecret@10.0.0.5/stream1\n');
  const r = await osprey(['streams', '--config', typo, '--check']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /OSPREY_ERR_CONFIG: .*typo\.yaml: cameras\[0\]\.url: "rtsp\/\/admin:\*\*\*@10\.0\.0\.5\/stream1" looks like a URL .* did you mean "rtsp:\/\/admin:\*\*\*@10\.0\.0\.5\/stream1"\?/);
  assert.doesNotMatch(r.stderr + r.stdout, /Ch3ckSecret/);
  const missing = join(dir, 'missing.yaml');
  writeFileSync(missing, 'cameras:\n  - id: hall\n    url: ./no-such-video.mp4\n');
  const m = await osprey(['streams', '--config', missing, '--check']);
  assert.equal(m.code, 2);
  assert.match(m.stderr, /OSPREY_ERR_FILE_NOT_FOUND: .*missing\.yaml: cameras\[0\]\.url: ".*no-such-video\.mp4" is read as a file path and cannot be read \(no such file\)/);
});

test('osprey streams --store with an unreachable PostgreSQL exits 2 with OSPREY_ERR_EVENT_STORE, the password hidden; --store with a bad URL names the flag', async () => {
  const r = await osprey(['streams', '--config', join(FIXTURES, 'cameras.yaml'), '--store', 'postgres://osprey:S3cretPgPass@127.0.0.1:1/osprey', '--replica-id', 'r1']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /OSPREY_ERR_EVENT_STORE: event store postgres:\/\/osprey:\*\*\*@127\.0\.0\.1:1\/osprey: cannot connect/);
  assert.doesNotMatch(r.stderr + r.stdout, /S3cretPgPass/);
  const bad = await osprey(['streams', '--config', join(FIXTURES, 'cameras.yaml'), '--store', 'mysql://u:S3cretPgPass@h/db']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /OSPREY_ERR_CONFIG: --store\.url: expected a postgres:\/\/ URL .*got "mysql:\/\/u:\*\*\*@h\/db"/);
  assert.doesNotMatch(bad.stderr, /S3cretPgPass/);
});
