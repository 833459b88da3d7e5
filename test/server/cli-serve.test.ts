/**
 * `osprey serve --model PATH` as a real process: it listens, serves, and on SIGTERM drains the request in flight
 * (answered 200), releases the sessions and exits 0. Usage errors exit 2 with the code.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BUS_JPG, MODEL_PATH, tempDir } from '../support/server.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
let tmp: { path: string; remove: () => Promise<void> };
let script: string;

before(async () => {
  tmp = await tempDir('osprey-cli-serve-');
  script = join(tmp.path, 'osprey.mts');
  await writeFile(script, `import { main } from ${JSON.stringify(MAIN)};\nawait main(process.argv);\n`);
});
after(async () => tmp?.remove());

function run(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, stderr: () => stderr };
}

describe('osprey serve (process)', () => {
  it('serves --model, then SIGTERM drains the request in flight and exits 0', async (t) => {
    const p = run(['serve', '--model', MODEL_PATH, '--http-port', '0', '--grpc-port', '0', '--host', '127.0.0.1', '--ep', 'cpu', '--log-level', 'info']);
    t.after(() => {
      if (p.child.exitCode === null) p.child.kill('SIGKILL');
    });
    let url: string | undefined;
    for (let i = 0; i < 600 && !url; i++) {
      url = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(p.stderr())?.[1];
      if (!url) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(url, `no listening line in: ${p.stderr()}`);
    assert.equal((await fetch(`${url}/v2/health/ready`)).status, 200);
    const meta = (await (await fetch(`${url}/v2/models/yolov8n`)).json()) as { name: string };
    assert.equal(meta.name, 'yolov8n');
    const inflight = fetch(`${url}/v2/models/yolov8n/detect`, { method: 'POST', body: await readFile(BUS_JPG), headers: { 'content-type': 'image/jpeg' } });
    await new Promise((r) => setTimeout(r, 100));
    p.child.kill('SIGTERM');
    const res = await inflight;
    assert.equal(res.status, 200);
    assert.ok(((await res.json()) as { results: Array<{ detections: unknown[] }> }).results[0]!.detections.length > 0);
    assert.equal(await p.exited, 0);
    assert.match(p.stderr(), /shut down: sessions released/);
  });

  for (const which of ['--grpc-port', '--http-port'] as const) {
    it(`a taken ${which} → exit 2 within seconds with one error line (OSPREY_ERR_ADDRESS_IN_USE), never half up`, async (t) => {
      const blocker = createNetServer();
      await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
      t.after(() => new Promise<void>((r) => blocker.close(() => r())));
      const taken = String((blocker.address() as { port: number }).port);
      const ports = which === '--grpc-port' ? ['--http-port', '0', '--grpc-port', taken] : ['--http-port', taken, '--grpc-port', '0'];
      const p = run(['serve', '--model', MODEL_PATH, ...ports, '--host', '127.0.0.1', '--ep', 'cpu', '--log-level', 'silent']);
      t.after(() => {
        if (p.child.exitCode === null) p.child.kill('SIGKILL');
      });
      // unref: a pending 60 s timer would keep this file's process alive a minute after its tests.
      const code = await Promise.race([p.exited, new Promise<string>((r) => setTimeout(() => r('still running after 60 s'), 60_000).unref())]);
      assert.equal(code, 2, p.stderr());
      const lines = p.stderr().trim().split('\n');
      assert.equal(lines.length, 1, p.stderr());
      assert.match(lines[0]!, new RegExp(`^osprey: OSPREY_ERR_ADDRESS_IN_USE: .*${which}`));
      assert.doesNotMatch(p.stderr(), /\n\s+at /);
    });
  }

  it('neither --model nor --model-repository → exit 2 with OSPREY_ERR_USAGE', async () => {
    const p = run(['serve', '--http-port', '0']);
    assert.equal(await p.exited, 2);
    assert.match(p.stderr(), /OSPREY_ERR_USAGE/);
  });
});
