/**
 * Every Grafana panel's and every rule's query against a real Prometheus (Debian's, on 127.0.0.1 with a temp
 * storage folder, 1 s scrape and evaluation) scraping two real `osprey serve` processes under a little load:
 * replica A serves the tiny model (swapped to a version that fails at run time, so it is rolled back), a model
 * that fails to load, and yolov8n with one camera (a looping video file at 2 fps); replica B serves the tiny model.
 * Each query goes through Prometheus' HTTP API: it must parse, and return series — except the GPU queries on a
 * host without a GPU, where Prometheus must still accept them (their series are absent there, not zero). For an
 * alert the check is on its signal (the compared series, src/deploy/prometheus.ts), since the alert itself returns
 * series only while firing.
 */
import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { alertingRules, prometheusConfig } from '../../src/deploy/prometheus.js';
import { tinyBrokenModelBytes } from '../support/stack.js';
import { MODEL_PATH, SHARED_DATA_DIR } from '../support/server.js';
import { committedDashboard, committedRules, dashboardExprs, isGpuQuery, ruleExprs, substituteGrafanaVariables, type ExtractedQuery } from './promql.js';
import { sleep, startLoad } from './load.js';
import { freePort, REPO_ROOT, startPrometheus, startReplica, tempDir, tinyRepository, which, type Daemon, type Replica } from '../support/processes.js';

const haveAll = which('prometheus') !== null && which('ffmpeg') !== null;
const haveGpu = which('nvidia-smi') !== null;
const VIDEO = join(SHARED_DATA_DIR, 'videos/car-detection.mp4');

type QueryResult = { status: string; error?: string; data?: { resultType: string; result: unknown[] } };

describe('every panel and rule query on a real Prometheus scraping real replicas', { skip: haveAll ? false : 'prometheus or ffmpeg is not installed (bash scripts/setup.sh)' }, () => {
  let tmp: { path: string; remove: () => Promise<void> };
  const replicas: Replica[] = [];
  let prom: (Daemon & { url: string }) | undefined;

  const query = async (expr: string): Promise<QueryResult> => {
    const res = await fetch(`${prom!.url}/api/v1/query`, { method: 'POST', body: new URLSearchParams({ query: expr }) });
    return (await res.json()) as QueryResult;
  };
  const seriesOf = async (expr: string) => {
    const r = await query(expr);
    assert.equal(r.status, 'success', `${expr}: ${r.error}`);
    return r.data!.result;
  };

  before(async () => {
    tmp = await tempDir('osprey-prom-');
    // Replica A: tiny (swap parameters for a quick rollback), a model that cannot load, yolov8n + one camera.
    const repoA = await tinyRepository(join(tmp.path, 'repo-a'), 2000);
    await writeFile(
      join(repoA, 'tiny', 'config.json'),
      JSON.stringify({ maxBatchSize: 8, dynamicBatching: { maxQueueDelayMicroseconds: 2000 }, instanceGroup: [{ count: 1, kind: 'KIND_CPU' }], parameters: { swap_probation_seconds: '60', swap_min_requests: '3', swap_max_error_rate: '0.2' } }),
    );
    await mkdir(join(repoA, 'unloadable', '1'), { recursive: true });
    await writeFile(join(repoA, 'unloadable', '1', 'model.onnx'), 'not an onnx model');
    await mkdir(join(repoA, 'yolov8n', '1'), { recursive: true });
    await symlink(MODEL_PATH, join(repoA, 'yolov8n', '1', 'model.onnx'));
    const cameras = join(tmp.path, 'cameras.yaml');
    await writeFile(cameras, stringify({ previewFps: 1, cameras: [{ id: 'lot', url: VIDEO, fps: 2, loop: true, realtime: true }] }));
    const repoB = await tinyRepository(join(tmp.path, 'repo-b'), 2000);
    const ports = [];
    for (let i = 0; i < 2; i++) ports.push({ httpPort: await freePort(), grpcPort: await freePort() });
    replicas.push(
      ...(await Promise.all([
        startReplica({
          dir: tmp.path,
          ...ports[0]!,
          args: ['--model-repository', repoA, '--model-control-mode', 'explicit', '--load-model', '*', '--allow-symlink-target', SHARED_DATA_DIR, '--cameras', cameras, '--cameras-model', 'yolov8n'],
        }),
        startReplica({ dir: tmp.path, ...ports[1]!, args: ['--model-repository', repoB] }),
      ])),
    );
    const configPath = join(tmp.path, 'prometheus.yml');
    const config = prometheusConfig({
      targets: replicas.map((r, i) => ({ address: `127.0.0.1:${r.httpPort}`, labels: { replica: `r${i}` } })),
      ruleFiles: [join(REPO_ROOT, 'deploy/prometheus/osprey-rules.yml')],
      scrapeInterval: '1s',
    });
    await writeFile(configPath, stringify(config));
    prom = await startPrometheus(configPath, join(tmp.path, 'tsdb'), await freePort());

    // A little load on both replicas, a few client errors, and a swap to a version that fails at run time.
    const load = startLoad({ httpBase: replicas[0]!.url, httpConcurrency: 1 });
    const loadB = startLoad({ httpBase: replicas[1]!.url, httpConcurrency: 1 });
    for (let i = 0; i < 3; i++) {
      const bad = await fetch(`${replicas[0]!.url}/v2/models/tiny/infer`, { method: 'POST', body: JSON.stringify({ inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] }), headers: { 'content-type': 'application/json' } });
      assert.equal(bad.status, 400);
    }
    await sleep(3000);
    await mkdir(join(repoA, 'tiny', '2'), { recursive: true });
    await writeFile(join(repoA, 'tiny', '2', 'model.onnx'), tinyBrokenModelBytes());
    const swap = await fetch(`${replicas[0]!.url}/v2/repository/models/tiny/load`, { method: 'POST' });
    assert.equal(swap.status, 200, await swap.text());
    // The load loop's requests (x ≥ 1) now fail on version 2 until the rollback.
    await sleep(6000);
    const samples = [...(await load.stop()), ...(await loadB.stop())];
    assert.ok(samples.some((s) => !s.ok), 'version 2 failed some requests (then it was rolled back)');
    assert.ok(samples.filter((s) => s.ok).length > 20, 'the replicas served the load');
    // The recording rules have evaluated over the load (at least one camera frame processed, too).
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const ready = await Promise.all(['model:osprey_request_duration_seconds:p99_5m', 'camera:osprey_stream_frames_dropped:ratio_rate5m', 'sum(increase(osprey_model_swaps_total{outcome="rolled_back"}[1m]))'].map((q) => query(q)));
      if (ready.every((r) => r.status === 'success' && (r.data?.result.length ?? 0) > 0)) break;
      await sleep(500);
    }
  });

  after(async () => {
    await prom?.stop();
    await Promise.all(replicas.map((r) => r.stop('SIGKILL')));
    await tmp?.remove();
  });

  const check = async (queries: readonly ExtractedQuery[], t: { diagnostic(msg: string): void }, mustReturn: (q: ExtractedQuery) => boolean, what = 'GPU queries without a GPU') => {
    const failures: string[] = [];
    let returned = 0;
    let skipped = 0;
    for (const q of queries) {
      const r = await query(q.expr);
      if (r.status !== 'success') {
        failures.push(`${q.source}: does not parse/evaluate: ${r.error} — ${q.expr}`);
        continue;
      }
      const n = r.data!.result.length;
      if (n > 0) returned++;
      else if (!mustReturn(q)) skipped++;
      else failures.push(`${q.source}: returned no series — ${q.expr}`);
    }
    t.diagnostic(`${queries.length} queries: ${returned} returned series, ${skipped} parsed and allowed to return none (${what}; GPU on this host: ${haveGpu})`);
    assert.deepEqual(failures, []);
  };

  it('every Grafana panel query (and variable selector) parses and returns series', async (t) => {
    const queries = dashboardExprs(await committedDashboard()).map((q) => ({ ...q, expr: substituteGrafanaVariables(q.expr, { job: 'osprey' }) }));
    assert.ok(queries.length >= 25, `found ${queries.length} queries`);
    await check(queries, t, (q) => haveGpu || !isGpuQuery(q.expr));
  });

  it('every recording rule parses and returns series; every alert expression parses', async (t) => {
    const rules = ruleExprs(await committedRules());
    const records = rules.filter((r) => r.source.startsWith('record:'));
    const alerts = rules.filter((r) => r.source.startsWith('alert:'));
    assert.ok(records.length >= 10 && alerts.length >= 12);
    await check(records, t, (q) => haveGpu || !isGpuQuery(q.expr));
    // An alert's expression returns series only while it fires: here it must be accepted by Prometheus.
    await check(alerts, t, () => false, 'alerts not firing');
  });

  it("every alert's signal returns series (the metrics each alert needs are scraped)", async (t) => {
    const alerts = alertingRules().rules;
    const fromFile = new Set(ruleExprs(await committedRules()).filter((r) => r.source.startsWith('alert:')).map((r) => r.source.slice('alert: '.length)));
    assert.deepEqual(new Set(alerts.map((a) => a.alert)), fromFile, 'the generator and the committed rule file list the same alerts');
    await check(
      alerts.map((a) => ({ source: `signal of ${a.alert}`, expr: a.signal })),
      t,
      (q) => haveGpu || !alerts.find((a) => `signal of ${a.alert}` === q.source)!.gpu,
    );
  });

  it('the load shows up where operators look: a rollback, server errors, a model not ready, a streaming camera, both replicas up', async () => {
    const rolled = await seriesOf('sum by (model) (osprey_model_swaps_total{job="osprey", outcome="rolled_back"})');
    assert.deepEqual((rolled as Array<{ metric: { model: string }; value: [number, string] }>).map((s) => [s.metric.model, s.value[1]]), [['tiny', '1']]);
    const outcomes = (await seriesOf('sum by (outcome) (osprey_requests_total{job="osprey", model="tiny"})')) as Array<{ metric: { outcome: string }; value: [number, string] }>;
    const byOutcome = Object.fromEntries(outcomes.map((s) => [s.metric.outcome, Number(s.value[1])]));
    assert.ok(byOutcome.client_error! >= 3, `client errors counted: ${JSON.stringify(byOutcome)}`);
    assert.ok(byOutcome.server_error! >= 3, `version 2's failures counted as server errors: ${JSON.stringify(byOutcome)}`);
    const notReady = (await seriesOf('max by (model) (osprey_model_ready{job="osprey"}) == 0')) as Array<{ metric: { model: string } }>;
    assert.deepEqual(notReady.map((s) => s.metric.model), ['unloadable']);
    const streaming = (await seriesOf('osprey_stream_camera_state{job="osprey", state="streaming"} == 1')) as Array<{ metric: { camera: string } }>;
    assert.deepEqual(streaming.map((s) => s.metric.camera), ['lot']);
    const up = (await seriesOf('up{job="osprey"} == 1')) as unknown[];
    assert.equal(up.length, 2);
  });
});
