/**
 * `osprey bench engine --model A --model B`: the interleaved comparison on the real yolov8n FP32 and its
 * dynamically quantized INT8 file (CPU EP, ~3 s), its pure helpers, the host CPU sampler, and its bad inputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { comparisonEngineResults, formatComparisonResult, roundFigures, roundOrder, runEngineComparison, summarizeRatios } from '../../src/bench/engine-compare.js';
import { loadBenchFile, loadBenchResults } from '../../src/bench/load.js';
import { parseBenchResult } from '../../src/bench/result.js';
import { HostCpuSampler } from '../../src/bench/system.js';
import { isOspreyError } from '../../src/core/errors.js';

const data = (p: string) => fileURLToPath(new URL(`../../../shared/data/${p}`, import.meta.url));
const FP32 = data('models/yolov8n.onnx');
const INT8 = data('models/yolov8n_int8_dynamic.onnx');
const BUS = data('images/bus.jpg');

test('roundOrder is a palindrome (A B B A in every round); roundFigures pools a round\'s windows; summarizeRatios gives min / median / max / mean', () => {
  assert.deepEqual(roundOrder(2), [0, 1, 1, 0]);
  assert.deepEqual(roundOrder(3), [0, 1, 2, 2, 1, 0]);
  const w = (round: number, engine: number, images: number, durationMs: number, inferenceMeanMs: number) => ({
    round, engine, order: 0, durationMs, batches: images, images, imagesPerSecond: (images * 1000) / durationMs, medianLatencyMs: 1, inferenceMeanMs, otherProcessesCores: 0, stealCores: 0, loadAverage1m: 0,
  });
  // 10 images in 1 s at 50 ms, then 30 in 1 s at 30 ms: 20 images/s, inference 35 ms weighted by batches
  const f = roundFigures([w(0, 0, 10, 1000, 50), w(0, 1, 99, 1000, 1), w(0, 0, 30, 1000, 30), w(1, 0, 1, 1000, 1)], 0, 0);
  assert.ok(Math.abs(f.imagesPerSecond - 20) < 1e-9 && Math.abs(f.inferenceMeanMs - 35) < 1e-9);
  assert.throws(() => roundFigures([], 0, 0), RangeError);
  const s = summarizeRatios([2.1, 1.9, 2.4, 2.0]);
  assert.deepEqual([s.min, s.median, s.max, s.mean], [1.9, 2.05, 2.4, 2.1]);
  assert.deepEqual(s.perRound, [2.1, 1.9, 2.4, 2]);
  assert.throws(() => summarizeRatios([]), RangeError);
});

test('HostCpuSampler: this process busy on one core for 300 ms shows ≈ 1 own core; other processes are ≥ 0', () => {
  const sampler = new HostCpuSampler();
  const before = sampler.read();
  const end = performance.now() + 300;
  let x = 0;
  while (performance.now() < end) x += Math.sqrt(x + 1);
  const u = sampler.since(before);
  assert.ok(x > 0);
  assert.ok(u, '/proc/stat is readable on Linux');
  assert.ok(u.ownCores > 0.6 && u.ownCores < 1.3, `own ${u.ownCores}`);
  assert.ok(u.otherProcessesCores >= 0 && u.stealCores >= 0);
});

test('comparison: FP32 vs INT8 interleaved, 2 rounds; windows, per-round ratios and per-engine figures agree', async () => {
  const r = await runEngineComparison({ models: [FP32, INT8], batchSizes: [1], instanceCounts: [1], rounds: 2, warmupMs: 100, durationMs: 500, image: BUS, command: 'test' });
  assert.equal(r.kind, 'osprey-bench-engine-comparison');
  assert.equal(r.settings.pipelineDepth, 2, 'the default: pre-processing of batch N+1 overlaps inference of N');
  assert.equal(r.settings.intraOpSpinning, false, 'and, with it, intra-op threads that sleep');
  assert.deepEqual(r.engines.map((e) => e.name), ['yolov8n', 'yolov8n_int8_dynamic']);
  assert.deepEqual(r.engines.map((e) => e.precision), ['fp32', 'int8']);
  assert.ok(r.engines.every((e) => e.executionProvider === 'cpu' && /^[0-9a-f]{64}$/.test(e.sha256 ?? '')));
  const c = r.configurations[0]!;
  assert.equal(r.settings.order, 'ABBA-within-round');
  assert.equal(c.windows.length, 8);
  assert.deepEqual(c.windows.map((w) => [w.round, w.engine]), [[0, 0], [0, 1], [0, 1], [0, 0], [1, 0], [1, 1], [1, 1], [1, 0]], 'A B B A in every round');
  for (const w of c.windows) {
    assert.ok(w.batches >= 1 && w.images === w.batches);
    assert.ok(w.durationMs >= 250, 'a window (half the duration) ends after the last batch it started');
    assert.ok(Math.abs(w.imagesPerSecond - (w.images * 1000) / w.durationMs) < 0.01 * w.imagesPerSecond + 0.01);
    assert.ok(w.inferenceMeanMs > 0 && w.medianLatencyMs >= w.inferenceMeanMs * 0.5);
    assert.ok(w.otherProcessesCores !== null && w.otherProcessesCores >= 0);
  }
  const ratio = c.ratios[0]!;
  assert.equal(ratio.engine, 1);
  assert.equal(ratio.label, 'yolov8n_int8_dynamic / yolov8n');
  for (let k = 0; k < 2; k++) {
    // the round's ratio pools both windows of each engine: Σ images ÷ Σ time
    const pooled = (e: number) => {
      const ws = c.windows.filter((w) => w.round === k && w.engine === e);
      return ws.reduce((s, w) => s + w.images, 0) / ws.reduce((s, w) => s + w.durationMs, 0);
    };
    assert.ok(Math.abs(ratio.throughputRatio.perRound[k]! - pooled(1) / pooled(0)) < 1e-3);
  }
  const t = ratio.throughputRatio;
  assert.ok(t.min <= t.median && t.median <= t.max);
  assert.equal(c.perEngine.length, 2);
  for (let k = 0; k < 2; k++) {
    const e = c.perEngine[k]!;
    const ws = c.windows.filter((w) => w.engine === k);
    assert.equal(e.batches, ws.reduce((s, w) => s + w.batches, 0));
    assert.equal(e.latencyMs.count, e.batches);
    assert.equal(e.pipelineDepth, 2);
    const stages = e.stagesMs.preprocess.mean + e.stagesMs.queue!.mean + e.stagesMs.inference.mean + e.stagesMs.postprocess.mean;
    assert.ok(Math.abs(stages - e.latencyMs.mean) < 0.01, 'the stages, queue included, partition the latency');
  }
  // each engine reads back as a valid single-engine result; the text table has the ratio line
  for (const e of comparisonEngineResults(r)) parseBenchResult(JSON.parse(JSON.stringify(e)), 'in-memory');
  assert.match(formatComparisonResult(r), /yolov8n_int8_dynamic \/ yolov8n: throughput ×\d+\.\d\d median \(min \d+\.\d\d, max \d+\.\d\d\) over 2 rounds/);
  // a comparison file: the report reads each engine, plan refuses it with a clear reason
  const dir = mkdtempSync(join(tmpdir(), 'osprey-compare-'));
  try {
    const f = join(dir, 'cmp.json');
    writeFileSync(f, JSON.stringify(r));
    const loaded = await loadBenchResults(f, 'cmp.json');
    assert.deepEqual(loaded.map((l) => l.name), ['cmp.json: yolov8n', 'cmp.json: yolov8n_int8_dynamic']);
    await assert.rejects(loadBenchFile(f), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_BENCH_FILE') && /several models/.test((e as Error).message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('comparison: one model, zero rounds, zero duration → OSPREY_ERR_USAGE; a missing model → OSPREY_ERR_MODEL_NOT_FOUND_FILE', async () => {
  const base = { models: [FP32, INT8], batchSizes: [1], instanceCounts: [1], rounds: 1, warmupMs: 0, durationMs: 100, command: 'test' };
  for (const bad of [{ models: [FP32] }, { rounds: 0 }, { durationMs: 0 }, { batchSizes: [4] }, { pipelineDepth: 0 }]) {
    await assert.rejects(runEngineComparison({ ...base, ...bad }), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_USAGE'), JSON.stringify(bad));
  }
  await assert.rejects(runEngineComparison({ ...base, models: [FP32, data('models/absent.onnx')] }), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_MODEL_NOT_FOUND_FILE'));
});
