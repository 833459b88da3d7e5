/**
 * The swap controller's policy on a real repository (tiny ONNX models, real engines): a bad `swap_*` parameter is
 * refused before anything loads, a clean probation is confirmed when its window ends, probation 0 means none, and
 * the latency rule rolls back.
 *
 * Latencies for the latency rule are fed to `onCall` directly: a slow version cannot be made slow by a fixed,
 * machine-independent amount (and tests make no timing assertions), so this is the one synthetic input here —
 * the rollback it triggers is real (the repository re-loads the previous version).
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, test } from 'node:test';
import { Registry } from 'prom-client';
import { isOspreyError } from '../../src/core/errors.js';
import { ModelRepository } from '../../src/repository/repository.js';
import { SwapController } from '../../src/routing/swap.js';
import { RoutingMetrics } from '../../src/routing/metrics.js';
import { addVersion, makeRepo, SHARED_DATA_DIR, tinyModelBytes } from '../support/stack.js';

const cleanup: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function setup(parameters: Record<string, string>) {
  const root = await makeRepo({ tiny: { config: { maxBatchSize: 4, parameters }, versions: { 1: tinyModelBytes(2) } } });
  const repo = await ModelRepository.open(root, { executionProviders: ['cpu'], allowedSymlinkTargets: [SHARED_DATA_DIR] });
  const metrics = new RoutingMetrics(new Registry());
  const warnings: string[] = [];
  const log = { info: () => undefined, warn: (_o: object, m?: string) => void warnings.push(m ?? ''), error: (_o: object, m?: string) => void warnings.push(m ?? '') };
  const swaps = new SwapController(repo, { metrics, log });
  cleanup.push(async () => {
    swaps.close();
    await repo.close();
    await rm(root, { recursive: true, force: true });
  });
  return { root, repo, metrics, swaps, warnings };
}

const counter = async (metrics: RoutingMetrics, which: 'swaps' | 'rollbacks', labels: Record<string, string>) =>
  (await metrics[which].get()).values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k as keyof typeof v.labels] === x))?.value ?? 0;

test('a bad swap parameter → OSPREY_ERR_CONFIG naming it, before anything loads', async () => {
  const { root, repo, swaps } = await setup({ swap_max_error_rate: '2' });
  await addVersion(root, 'tiny', 2, tinyModelBytes(3));
  await assert.rejects(swaps.loadModel('tiny'), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_CONFIG') && e.details.keyPath === 'parameters.swap_max_error_rate');
  assert.deepEqual(repo.versionsOf('tiny').map((v) => v.version), [1]);
});

test('a clean probation is confirmed when its window ends; probation 0 means none', async () => {
  const { root, repo, metrics, swaps } = await setup({ swap_probation_seconds: '0.3', swap_min_requests: '2' });
  await addVersion(root, 'tiny', 2, tinyModelBytes(3));
  await swaps.loadModel('tiny');
  assert.equal(swaps.status('tiny')[0]!.state, 'probation');
  for (let i = 0; i < 3; i++) swaps.onCall('tiny', '2', true, 0.001);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(swaps.status('tiny')[0]!.state, 'confirmed');
  assert.equal(await counter(metrics, 'swaps', { model: 'tiny', outcome: 'confirmed' }), 1);
  assert.deepEqual(repo.versionsOf('tiny').map((v) => v.version), [2]);

  await swaps.loadModel('tiny', { config: { maxBatchSize: 4, parameters: { swap_probation_seconds: '0' }, versionPolicy: { specific: { versions: [1] } } } });
  assert.deepEqual(repo.versionsOf('tiny').map((v) => v.version), [1]);
  assert.deepEqual(swaps.status('tiny'), []);
});

test('p95 latency over swap_max_latency_ms → rollback to the previous version (reason latency)', async () => {
  const { root, repo, metrics, swaps, warnings } = await setup({ swap_min_requests: '5', swap_max_latency_ms: '50' });
  await addVersion(root, 'tiny', 2, tinyModelBytes(3));
  await swaps.loadModel('tiny');
  for (let i = 0; i < 4; i++) swaps.onCall('tiny', '2', true, 0.2);
  assert.equal(swaps.status('tiny')[0]!.state, 'probation', 'no decision before swap_min_requests');
  swaps.onCall('tiny', '1', true, 5); // another version's call does not count
  swaps.onCall('tiny', '2', true, 0.2);
  assert.equal(swaps.status('tiny')[0]!.state, 'rolling_back');
  const held = swaps.beforeCall('tiny');
  assert.ok(held, 'requests wait while the rollback runs');
  await held;
  const [st] = swaps.status('tiny');
  assert.equal(st!.state, 'rolled_back');
  assert.match(st!.reason!, /p95 latency 200\.0 ms > 50 ms/);
  assert.deepEqual(repo.versionsOf('tiny').map((v) => v.version), [1]);
  assert.equal(await counter(metrics, 'rollbacks', { model: 'tiny', reason: 'latency' }), 1);
  assert.ok(warnings.some((w) => /rolled back to the previous model version/.test(w)));
});
