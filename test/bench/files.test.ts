/**
 * Bench result files → plan (model checks), plots (SVG rendered by librsvg through sharp) and the HTML report.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { chromium } from 'playwright-core';
import { isOspreyError } from '../../src/core/errors.js';
import { loadPlanInputs } from '../../src/bench/plan-files.js';
import { loadBenchFile } from '../../src/bench/load.js';
import { computePlan } from '../../src/bench/planner.js';
import { plotResults, niceTicks, renderLatencyThroughputSvg } from '../../src/bench/plot.js';
import { renderReportHtml } from '../../src/bench/report.js';
import type { EngineBenchResult, ServerBenchResult } from '../../src/bench/result.js';
import { sha256File } from '../../src/bench/system.js';

const MODEL = fileURLToPath(new URL('../../../shared/data/models/yolov8n.onnx', import.meta.url));
const INT8 = fileURLToPath(new URL('../../../shared/data/models/yolov8n_int8_dynamic.onnx', import.meta.url));

const lat = (p99: number) => ({ min: p99 / 2, mean: p99 * 0.7, median: p99 * 0.7, p90: p99 * 0.9, p95: p99 * 0.95, p99, max: p99 * 1.1, std: 1, count: 100 });
function engineResult(name: string, sha256: string, configs: Array<[number, number, number, number]>): EngineBenchResult {
  return {
    kind: 'osprey-bench-engine',
    schemaVersion: 1,
    model: { name, sha256, precision: 'fp32' },
    executionProvider: 'cpu',
    environment: {
      cpuModel: 'test CPU', cpuCount: 2, deviceKind: 'cpu', device: 'test CPU', onnxRuntimeVersion: '1.29.0', ospreyVersion: '0.1.0',
      nodeVersion: 'v20', platform: 'linux-x64', totalMemoryBytes: 1, loadAverage: [0, 0, 0], command: 'osprey bench engine …', createdAt: '2026-01-01T00:00:00Z',
    },
    settings: { warmupMs: 1, durationMs: 1, image: 'x' },
    configurations: configs.map(([batchSize, instances, imagesPerSecond, p99]) => ({
      batchSize, instances, durationMs: 1000, batches: 10, images: 10 * batchSize, imagesPerSecond, batchesPerSecond: imagesPerSecond / batchSize,
      latencyMs: lat(p99),
      stagesMs: { preprocess: { mean: 1, p99: 2 }, inference: { mean: 5, p99: 6 }, postprocess: { mean: 1, p99: 1 } },
      memory: { baselineRssBytes: 100e6, peakRssBytes: 100e6 + instances * 200e6 },
    })),
    skipped: [],
  };
}

test('plan files: engine results become points; the plan picks the best under the SLO', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'osprey-bench-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const sha = await sha256File(MODEL);
  const f = join(dir, 'r.json');
  await writeFile(f, JSON.stringify(engineResult('yolov8n', sha, [[1, 1, 20, 60], [4, 1, 30, 150], [1, 2, 28, 80]])));
  const loaded = await loadPlanInputs([f], MODEL);
  assert.equal(loaded.unit, 'cpu');
  assert.equal(loaded.points.length, 3);
  assert.deepEqual(loaded.modelCheck, { model: MODEL, by: 'sha256', value: sha });
  const plan = computePlan({ qps: 100, sloP99Ms: 100, points: loaded.points, unit: loaded.unit });
  assert.equal(plan.selected?.label, 'batch 1 × 2 instances');
  assert.equal(plan.gpus, Math.ceil((100 / 28) * 1.5)); // 6
  assert.equal(plan.unitName, 'CPU node');
  // host memory per configuration = peak RSS − baseline
  assert.equal(loaded.points[2]!.memoryBytes, 400e6);
});

test('plan files: a bench file from another model → OSPREY_ERR_BENCH_FILE (sha256 and name)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'osprey-bench-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const f = join(dir, 'int8.json');
  await writeFile(f, JSON.stringify(engineResult('yolov8n_int8_dynamic', await sha256File(INT8), [[1, 1, 20, 60]])));
  await assert.rejects(loadPlanInputs([f], MODEL), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_BENCH_FILE') && /another model/.test(e.message));
  await assert.rejects(loadPlanInputs([f], 'yolov8s'), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_BENCH_FILE') && /"yolov8s"/.test(e.message));
  // two files of different models without --model
  const g = join(dir, 'fp32.json');
  await writeFile(g, JSON.stringify(engineResult('yolov8n', await sha256File(MODEL), [[1, 1, 20, 60]])));
  await assert.rejects(loadPlanInputs([f, g]), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_BENCH_FILE') && /one model at a time/.test(e.message));
});

test('plan files: not JSON, not a bench result, wrong schema → OSPREY_ERR_BENCH_FILE; missing → FILE_NOT_FOUND', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'osprey-bench-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cases: Array<[string, string]> = [
    ['garbage.json', '{not json'],
    ['other.json', JSON.stringify({ kind: 'something-else', schemaVersion: 1 })],
    ['schema.json', JSON.stringify({ ...engineResult('m', 'x', []), schemaVersion: 99 })],
    ['broken.json', JSON.stringify({ ...engineResult('m', 'x', [[1, 1, 1, 1]]), configurations: [{ batchSize: 1 }] })],
  ];
  for (const [name, text] of cases) {
    await writeFile(join(dir, name), text);
    await assert.rejects(loadBenchFile(join(dir, name)), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_BENCH_FILE'), name);
  }
  await assert.rejects(loadBenchFile(join(dir, 'absent.json')), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_FILE_NOT_FOUND'));
});

test('plot: SVG renders (librsvg) and has one series per instance count; ticks are nice', async () => {
  assert.deepEqual(niceTicks(9.3), [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(niceTicks(230), [0, 50, 100, 150, 200, 250]);
  const r = engineResult('yolov8n', 'abc', [[1, 1, 20, 60], [4, 1, 30, 150], [1, 2, 28, 80], [4, 2, 35, 190]]);
  const svg = plotResults([{ result: r }], 'yolov8n <cpu> & "test"', 100);
  assert.match(svg, /^<svg /);
  assert.equal((svg.match(/<polyline /g) ?? []).length, 2);
  assert.equal((svg.match(/<circle /g) ?? []).length, 4);
  assert.match(svg, /&lt;cpu&gt; &amp; &quot;test&quot;/);
  assert.match(svg, /target 100 ms/);
  const meta = await sharp(Buffer.from(svg)).metadata(); // librsvg parses it: well-formed XML
  assert.equal(meta.format, 'svg');
  const png = await sharp(Buffer.from(svg)).png().toBuffer();
  assert.ok(png.length > 1000);
  // empty series still renders
  await sharp(Buffer.from(renderLatencyThroughputSvg([], { title: 'empty' }))).png().toBuffer();
});

test('report: HTML page with one column per result and embedded plots', () => {
  const e = engineResult('yolov8n', 'abc', [[1, 1, 20, 60]]);
  const s: ServerBenchResult = {
    kind: 'osprey-bench-server',
    schemaVersion: 1,
    model: { name: 'yolov8n' },
    server: { url: 'http://127.0.0.1:8000', protocol: 'http', endpoint: 'infer' },
    environment: e.environment,
    settings: { mode: 'concurrency', range: [1, 2], percentile: 95, latencyThresholdMs: null, measurementIntervalMs: 1000, warmupMs: 100, maxRequestsPerStep: 10, maxDurationMs: 10, input: 'random' },
    steps: [1, 2].map((c) => ({ concurrency: c, durationMs: 1000, requests: 10, errors: 0, errorCodes: {}, requestsPerSecond: 10 * c, imagesPerSecond: 10 * c, latencyMs: lat(50 * c), percentileMs: 45 * c })),
    stoppedBecause: 'completed',
  };
  const html = renderReportHtml([{ name: 'engine.json', result: e }, { name: 'server.json', result: s }]);
  assert.match(html, /^<!doctype html>/);
  assert.equal((html.match(/<section class="col">/g) ?? []).length, 2);
  assert.equal((html.match(/<svg /g) ?? []).length, 3); // combined + one per column
  assert.match(html, /p95 ms/);
  assert.match(html, /engine\.json/);
});

test('report: the page renders in headless Chromium (columns side by side, plots laid out, no page errors)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'osprey-report-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const a = engineResult('yolov8n-fp32', 'aaa', [[1, 1, 2, 700], [4, 1, 2.5, 3000], [1, 2, 3, 900], [4, 2, 3.2, 3900]]);
  const b = engineResult('yolov8n-int8', 'bbb', [[1, 1, 4, 400], [4, 1, 5, 1600], [1, 2, 7, 500], [4, 2, 8, 1700]]);
  const file = join(dir, 'report.html');
  await writeFile(file, renderReportHtml([{ name: 'fp32.json', result: a }, { name: 'int8.json', result: b }]));
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`file://${file}`);
  // (Browser-side code as strings: this project's TS config has no DOM types.)
  const layout = (await page.evaluate(
    "({ cols: [...document.querySelectorAll('section.col')].map((c) => { const r = c.getBoundingClientRect(); return [r.left, r.top, r.width]; }), " +
      "svgs: [...document.querySelectorAll('svg')].map((s) => s.getBoundingClientRect().width), circles: document.querySelectorAll('circle').length })",
  )) as { cols: number[][]; svgs: number[]; circles: number };
  assert.deepEqual(errors, []);
  assert.equal(layout.cols.length, 2);
  assert.equal(layout.cols[0]![1], layout.cols[1]![1]); // same row: side by side
  assert.ok(layout.cols[1]![0]! > layout.cols[0]![0]! + layout.cols[0]![2]! - 1);
  assert.equal(layout.svgs.length, 3);
  assert.ok(layout.svgs.every((w) => w > 200));
  assert.equal(layout.circles, 16); // 8 points in the combined plot + 4 in each column
});
