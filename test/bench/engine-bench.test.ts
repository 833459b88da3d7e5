/**
 * `osprey bench engine` on the real yolov8n (CPU EP) for ~2 s, plus its bad inputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { runEngineBench, resolveModelPath, checkBatchSizes } from '../../src/bench/engine-bench.js';
import { isOspreyError } from '../../src/core/errors.js';
import { parseBenchResult } from '../../src/bench/result.js';

const data = (p: string) => fileURLToPath(new URL(`../../../shared/data/${p}`, import.meta.url));
const MODEL = data('models/yolov8n.onnx');
const BUS = data('images/bus.jpg');

test('bench engine: yolov8n batch 1 × 1 instance, serial loop (--pipeline-depth 1) for 2 s, is well-formed and plausible', async () => {
  const r = await runEngineBench({ model: MODEL, batchSizes: [1], instanceCounts: [1], warmupMs: 300, durationMs: 2000, image: BUS, pipelineDepth: 1, command: 'test' });
  parseBenchResult(JSON.parse(JSON.stringify(r)), 'in-memory'); // round-trips as a valid bench file
  assert.equal(r.kind, 'osprey-bench-engine');
  assert.equal(r.executionProvider, 'cpu');
  assert.match(r.model.sha256 ?? '', /^[0-9a-f]{64}$/);
  assert.deepEqual(r.model.input?.shape, [1, 3, 640, 640]);
  assert.equal(r.environment.onnxRuntimeVersion, '1.29.0');
  assert.ok(r.environment.cpuModel.length > 0);
  assert.equal(r.environment.gpuName, undefined); // no GPU here: absent, not faked
  assert.equal(r.configurations.length, 1);
  const c = r.configurations[0]!;
  assert.equal(c.batchSize, 1);
  assert.equal(r.settings.pipelineDepth, 1);
  assert.equal(r.settings.intraOpSpinning, undefined, 'depth 1: ORT\'s own spinning');
  assert.equal(c.pipelineDepth, 1);
  assert.ok(c.batches >= 1 && c.images === c.batches);
  const l = c.latencyMs;
  assert.ok(l.min <= l.median && l.median <= l.p90 && l.p90 <= l.p95 && l.p95 <= l.p99 && l.p99 <= l.max, JSON.stringify(l));
  assert.equal(l.count, c.batches);
  // The stages partition each batch's latency, so their means add up to the latency mean (3-decimal rounding);
  // serial: nothing waits for the engine.
  const stages = c.stagesMs.preprocess.mean + c.stagesMs.queue!.mean + c.stagesMs.inference.mean + c.stagesMs.postprocess.mean;
  assert.ok(Math.abs(stages - l.mean) < 0.01, `${stages} vs ${l.mean}`);
  // (the mean, not p99: one garbage-collection pause between pre-processing and the run, seen at 5.7 ms once in
  // ~30 batches, is not a batch waiting for the engine)
  assert.ok(c.stagesMs.queue!.mean < 1, `queue mean ${c.stagesMs.queue!.mean} ms (p99 ${c.stagesMs.queue!.p99})`);
  assert.ok(c.stagesMs.inference.mean > 0 && c.stagesMs.preprocess.mean > 0);
  // Throughput ≈ batch / latency for one serial loop. Tolerance: the window W runs from the first batch's start to
  // the last one's end, so the loop's batches cover W but for the gaps between iterations, and the last batch may
  // start just before W's nominal end: |throughput · mean / batch − 1| ≤ max / W, plus 2% for the gaps; against
  // the median add the measured |median − mean| / mean (the distribution's skew in this very run).
  const tol = l.max / c.durationMs + 0.02;
  const byMean = (c.imagesPerSecond * l.mean) / 1000 / c.batchSize;
  assert.ok(Math.abs(byMean - 1) <= tol, `throughput·mean/batch = ${byMean}, tolerance ${tol}`);
  const byMedian = (c.imagesPerSecond * l.median) / 1000 / c.batchSize;
  const tolMedian = tol + Math.abs(l.median - l.mean) / l.mean;
  assert.ok(Math.abs(byMedian - 1) <= tolMedian, `throughput·median/batch = ${byMedian}, tolerance ${tolMedian}`);
  assert.ok(c.memory.peakRssBytes >= c.memory.baselineRssBytes && c.memory.peakRssBytes > 0);
  assert.equal(c.memory.peakGpuMemoryBytes, undefined);
});

test('bench engine: default pipeline depth 2 — N+1 pre-processed while N runs; latency includes the queueing (Little\'s law)', async () => {
  const r = await runEngineBench({ model: MODEL, batchSizes: [1], instanceCounts: [1], warmupMs: 200, durationMs: 1500, image: BUS, command: 'test' });
  assert.equal(r.settings.pipelineDepth, 2);
  assert.equal(r.settings.intraOpSpinning, false, 'depth 2 on CPU: intra-op threads sleep, the host stages get the cores');
  const c = r.configurations[0]!;
  assert.equal(c.pipelineDepth, 2);
  const l = c.latencyMs;
  const stages = c.stagesMs.preprocess.mean + c.stagesMs.queue!.mean + c.stagesMs.inference.mean + c.stagesMs.postprocess.mean;
  assert.ok(Math.abs(stages - l.mean) < 0.01, `${stages} vs ${l.mean}`);
  // Mean batches in flight = throughput × mean latency (Little's law): above 1 when the stages overlap, at most 2.
  const inFlight = (c.batchesPerSecond * l.mean) / 1000;
  assert.ok(inFlight > 1.2 && inFlight <= 2.02, `mean batches in flight ${inFlight}`);
});

test('bench engine: a batch size the fixed-batch model cannot take → OSPREY_ERR_USAGE naming the fix', async () => {
  await assert.rejects(
    runEngineBench({ model: MODEL, batchSizes: [1, 4], instanceCounts: [1], warmupMs: 0, durationMs: 100, command: 'test' }),
    (e: unknown) => isOspreyError(e, 'OSPREY_ERR_USAGE') && /fixed batch size of 1/.test(e.message) && /osprey build/.test(e.message),
  );
  assert.throws(() => checkBatchSizes(1, [8], 'm.onnx', [1, 3, 640, 640]), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_USAGE'));
  checkBatchSizes(null, [1, 8, 32], 'dyn.onnx', ['batch', 3, 640, 640]); // dynamic: anything goes
});

test('bench engine: zero/negative batch, instances, duration or pipeline depth → OSPREY_ERR_USAGE', async () => {
  for (const bad of [{ batchSizes: [0] }, { instanceCounts: [-1] }, { durationMs: 0 }, { batchSizes: [1.5] }, { pipelineDepth: 0 }]) {
    await assert.rejects(
      runEngineBench({ model: MODEL, batchSizes: [1], instanceCounts: [1], warmupMs: 0, durationMs: 100, command: 'test', ...bad }),
      (e: unknown) => isOspreyError(e, 'OSPREY_ERR_USAGE'),
      JSON.stringify(bad),
    );
  }
});

test('bench engine: a missing model → OSPREY_ERR_MODEL_NOT_FOUND_FILE', async () => {
  await assert.rejects(resolveModelPath(data('models/no-such-model.onnx')), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_MODEL_NOT_FOUND_FILE'));
  await assert.rejects(resolveModelPath(data('images')), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_MODEL_NOT_FOUND_FILE'));
});

test('bench engine: an unreadable --image → OSPREY_ERR_FILE_NOT_FOUND; a file that is not an image → OSPREY_ERR_INVALID_IMAGE', async () => {
  await assert.rejects(
    runEngineBench({ model: MODEL, batchSizes: [1], instanceCounts: [1], warmupMs: 0, durationMs: 100, image: data('images/absent.jpg'), command: 'test' }),
    (e: unknown) => isOspreyError(e, 'OSPREY_ERR_FILE_NOT_FOUND'),
  );
  await assert.rejects(
    runEngineBench({ model: MODEL, batchSizes: [1], instanceCounts: [1], warmupMs: 0, durationMs: 100, image: data('SOURCES.md'), command: 'test' }),
    (e: unknown) => isOspreyError(e, 'OSPREY_ERR_INVALID_IMAGE'),
  );
});
