/**
 * `osprey bench server` against a real Osprey server started in-process on 127.0.0.1 with the real yolov8n
 * (CPU EP), and `osprey bench search` on it (two configurations, small windows), and the model-name error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isOspreyError } from '../../src/core/errors.js';
import { startInProcessServer } from '../../src/bench/inprocess-server.js';
import { runServerBench, type ServerBenchOptions } from '../../src/bench/server-bench.js';
import { runSearch } from '../../src/bench/search.js';
import { parseBenchResult, planPoints } from '../../src/bench/result.js';

const data = (p: string) => fileURLToPath(new URL(`../../../shared/data/${p}`, import.meta.url));
const MODEL = data('models/yolov8n.onnx');

const opts = (url: string, o: Partial<ServerBenchOptions> = {}): ServerBenchOptions => ({
  url,
  model: 'yolov8n',
  protocol: 'http',
  concurrency: [1, 2],
  input: 'random',
  percentile: 99,
  measurementIntervalMs: 1500,
  warmupMs: 300,
  maxRequestsPerStep: 10000,
  maxDurationMs: 30000,
  command: 'test',
  ...o,
});

test('bench server: against a real in-process osprey server (yolov8n, CPU)', async (t) => {
  const server = await startInProcessServer({ modelPath: MODEL, name: 'yolov8n', config: { maxBatchSize: 1, instanceGroup: [{ count: 1 }] }, grpc: true });
  t.after(() => server.close());

  await t.test('random binary tensors to /infer, concurrency 1 and 2: well-formed and plausible', async () => {
    const r = await runServerBench(opts(server.url));
    parseBenchResult(JSON.parse(JSON.stringify(r)), 'in-memory');
    assert.equal(r.steps.length, 2);
    assert.equal(r.server.endpoint, 'infer');
    assert.deepEqual(r.model.input?.shape.slice(1), [3, 640, 640]); // [-1, 3, 640, 640] with maxBatchSize 1 (Triton's view)
    assert.deepEqual(r.settings.serverConfig?.maxBatchSize, 1);
    assert.equal(r.settings.serverConfig?.instances, 1);
    for (const s of r.steps) {
      assert.ok(s.requests > 0 && s.errors === 0, JSON.stringify(s));
      const l = s.latencyMs;
      assert.ok(l.min <= l.median && l.median <= l.p99 && l.p99 <= l.max);
      assert.equal(s.percentileMs, l.p99);
      assert.ok(s.server, 'the stats endpoint split is read');
      assert.ok(s.server!.requests > 0 && s.server!.computeInferUs > 0);
      // the client waits at least the server's inference (per request, averaged over the same window ± edges)
      assert.ok(l.max * 1000 >= s.server!.computeInferUs * 0.5, `${l.max} ms vs ${s.server!.computeInferUs} µs`);
    }
    // Closed loop, concurrency 1: throughput ≈ 1 / mean latency, within max/W + 2% (same bound as the engine bench).
    const c1 = r.steps[0]!;
    const tol = c1.latencyMs.max / c1.durationMs + 0.02;
    const ratio = (c1.imagesPerSecond * c1.latencyMs.mean) / 1000;
    assert.ok(Math.abs(ratio - 1) <= tol, `throughput·mean = ${ratio}, tolerance ${tol}`);
    // one instance, two clients: the second waits in the server queue
    assert.ok(r.steps[1]!.server!.queueUs > r.steps[0]!.server!.queueUs);
    assert.equal(planPoints(r, 'x').length, 2);
  });

  await t.test('images to /detect, with a latency threshold that stops the sweep', async () => {
    const r = await runServerBench(opts(server.url, { input: data('images'), concurrency: [1, 2, 4], latencyThresholdMs: 0.001, measurementIntervalMs: 1000 }));
    assert.equal(r.server.endpoint, 'detect');
    assert.equal(r.steps.length, 1);
    assert.equal(r.stoppedBecause, 'latency-threshold');
    assert.ok(r.steps[0]!.requests > 0 && r.steps[0]!.errors === 0);
  });

  await t.test('open loop: request rate 2/s, Poisson arrivals', async () => {
    const r = await runServerBench(opts(server.url, { concurrency: undefined, requestRates: [2], requestDistribution: 'poisson', measurementIntervalMs: 1500, minRequestsPerStep: 1 }));
    assert.equal(r.settings.mode, 'request-rate');
    assert.equal(r.steps.length, 1);
    assert.equal(r.steps[0]!.requestRate, 2);
    assert.ok(r.steps[0]!.requests >= 1 && r.steps[0]!.errors === 0, JSON.stringify(r.steps[0]));
  });

  await t.test('gRPC (KServe v2 ModelInfer with raw_input_contents): well-formed, server split read through ModelStatistics', async () => {
    const r = await runServerBench(opts(server.grpcUrl!, { protocol: 'grpc', concurrency: [1], measurementIntervalMs: 1000 }));
    assert.equal(r.server.protocol, 'grpc');
    assert.equal(r.steps.length, 1);
    const s = r.steps[0]!;
    assert.ok(s.requests > 0 && s.errors === 0, JSON.stringify(s));
    assert.ok(s.server && s.server.computeInferUs > 0);
    assert.equal(r.settings.serverConfig?.maxBatchSize, 1);
    await assert.rejects(runServerBench(opts(server.grpcUrl!, { protocol: 'grpc', model: 'nope' })), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_MODEL_NOT_FOUND'));
    await assert.rejects(runServerBench(opts(server.grpcUrl!, { protocol: 'grpc', input: data('images') })), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_USAGE'));
  });

  await t.test('a model name the server does not have → OSPREY_ERR_MODEL_NOT_FOUND listing the models', async () => {
    await assert.rejects(runServerBench(opts(server.url, { model: 'yolov9000' })), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_MODEL_NOT_FOUND') && /yolov9000/.test(e.message));
  });
});

test('bench search: two configurations on a real in-process server; best written into the repository config', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'osprey-search-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'yolov8n', '1'), { recursive: true });
  await symlink(MODEL, join(dir, 'yolov8n', '1', 'model.onnx'));
  await writeFile(join(dir, 'yolov8n', 'config.json'), JSON.stringify({ detection: { conf: 0.3 } }));
  const r = await runSearch({
    model: join(dir, 'yolov8n'),
    latencyBudgetMs: 60000,
    instanceCounts: [1, 2],
    concurrency: [1],
    percentile: 99,
    measurementIntervalMs: 1000,
    warmupMs: 200,
    input: 'random',
    maxDurationMs: 60000,
    command: 'test',
  });
  assert.equal(r.points.length, 2); // fixed batch 1: delay 0 only, max batch 1
  assert.deepEqual(r.settings.maxBatchSizes, [1]);
  assert.ok(r.best);
  assert.equal(r.writtenConfig, join(dir, 'yolov8n', 'config.json'));
  const cfg = JSON.parse(await readFile(r.writtenConfig!, 'utf8'));
  assert.equal(cfg.detection.conf, 0.3); // other keys kept
  assert.equal(cfg.maxBatchSize, 1);
  assert.equal(cfg.instanceGroup[0].count, r.best!.instances);
  assert.equal(cfg.dynamicBatching.maxQueueDelayMicroseconds, 0);
  assert.equal(planPoints(r, 'x').length, r.points.reduce((n, p) => n + p.steps.length, 0));
  await assert.rejects(
    runSearch({ model: MODEL, latencyBudgetMs: 50, maxBatchSizes: [4], concurrency: [1], percentile: 99, measurementIntervalMs: 100, warmupMs: 0, input: 'random', maxDurationMs: 1000, command: 'test' }),
    (e: unknown) => isOspreyError(e, 'OSPREY_ERR_USAGE') && /fixed batch size of 1/.test(e.message),
  );
});
