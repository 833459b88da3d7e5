/**
 * The README's one command (deploy/local/up.ts) for real: 2 replicas + nginx + Prometheus on 127.0.0.1, an inference
 * through the balancer, both replicas scraped, then SIGINT stops everything (replicas drain, exit 0, ports closed).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { sleep } from './load.js';
import { freePort, REPO_ROOT, tempDir, tinyRepository, which } from '../support/processes.js';

const portFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

/** A base port P with P, P+1, P+10, P+11 free (the script's replica layout). */
async function baseForReplicas(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const p = await freePort();
    if (p + 11 < 65536 && (await Promise.all([p, p + 1, p + 10, p + 11].map(portFree))).every(Boolean)) return p;
  }
  throw new Error('no free port block');
}

let tmp: { path: string; remove: () => Promise<void> };
before(async () => {
  tmp = await tempDir('osprey-local-up-');
});
after(async () => tmp?.remove());

it('deploy/local/up.ts brings up replicas + nginx + Prometheus, and Ctrl-C stops them all', { skip: which('nginx') && which('prometheus') ? false : 'nginx/prometheus not installed (bash scripts/setup.sh)' }, async (t) => {
  const t0 = performance.now();
  const repo = await tinyRepository(join(tmp.path, "models"), 1000);
  const base = await baseForReplicas();
  const [lb, lbGrpc, prom] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'deploy/local/up.ts'), '--model-repository', repo, '--replicas', '2', '--dir', join(tmp.path, 'run'), '--http-port', String(base), '--lb-http-port', String(lb), '--lb-grpc-port', String(lbGrpc), '--prometheus-port', String(prom), '--scrape-interval', '1s'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d));
  child.stderr.on('data', (d: Buffer) => (log += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const body = JSON.stringify({ inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
  let answered = false;
  for (let i = 0; i < 240 && !answered; i++) {
    const ok = await Promise.all([
      fetch(`http://127.0.0.1:${lb}/v2/models/tiny/infer`, { method: 'POST', body, headers: { 'content-type': 'application/json' } }).then((r) => r.status === 200, () => false),
      fetch(`http://127.0.0.1:${base}/v2/health/ready`).then((r) => r.status === 200, () => false),
      fetch(`http://127.0.0.1:${base + 10}/v2/health/ready`).then((r) => r.status === 200, () => false),
    ]);
    answered = ok.every(Boolean);
    if (!answered) await sleep(250);
  }
  assert.ok(answered, `the balancer and both replicas did not answer:\n${log}`);
  let targets: Array<{ health: string }> = [];
  for (let i = 0; i < 60; i++) {
    const r = (await fetch(`http://127.0.0.1:${prom}/api/v1/targets`).then((x) => x.json(), () => ({}))) as { data?: { activeTargets: Array<{ health: string }> } };
    targets = r.data?.activeTargets ?? [];
    if (targets.length === 2 && targets.every((x) => x.health === 'up')) break;
    await sleep(500);
  }
  assert.deepEqual(targets.map((x) => x.health), ['up', 'up'], 'Prometheus scrapes both replicas');
  const rules = (await (await fetch(`http://127.0.0.1:${prom}/api/v1/rules`)).json()) as { data: { groups: Array<{ rules: unknown[] }> } };
  assert.ok(rules.data.groups[0]!.rules.length >= 20, 'the rules of deploy/prometheus are loaded');
  t.diagnostic(`up after ${Math.round(performance.now() - t0)} ms`);
  child.kill("SIGINT");
  const tStop = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([exited, new Promise<string>((r) => (timer = setTimeout(() => r('still running after 30 s'), 30_000)))]);
  clearTimeout(timer);
  t.diagnostic(`stopped in ${Math.round(performance.now() - tStop)} ms`);
  assert.equal(code, 0, log);
  for (const port of [base, base + 1, base + 10, base + 11, lb, lbGrpc, prom]) assert.ok(await portFree(port), `port ${port} released`);
});
