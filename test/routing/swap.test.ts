/**
 * Zero-downtime swaps over the real stack (gRPC on 127.0.0.1, real yolov8n): a load under continuous traffic
 * loses no request and returns no error; a new version that loads but fails at run time is rolled back
 * automatically (logged, counted); 20 load/unload cycles leave process memory near where it was (RSS measured).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { addVersion, brokenAtRunModelBytes, busInputs, call, errorCode, makeRepo, MODEL_PATH, rawInfer, startStack, type Stack } from '../support/stack.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Probation settings of the swapped model (small for the test; docs/grpc-routing.md has the defaults). */
const SWAP_PARAMETERS = { swap_probation_seconds: '60', swap_min_requests: '3', swap_max_error_rate: '0.2' };

type InferResponse = { model_version: string };

let s: Stack;
let fp32: Float32Array;

const infer = (model = 'yolov8n') => call<InferResponse>(s.client, 'ModelInfer', rawInfer(model, { name: 'images', datatype: 'FP32', shape: [1, 3, 640, 640], data: fp32 }));

before(async () => {
  ({ fp32 } = await busInputs());
  const root = await makeRepo({
    yolov8n: { config: { parameters: SWAP_PARAMETERS }, versions: { 1: MODEL_PATH } },
    cycled: { versions: { 1: MODEL_PATH } },
  });
  s = await startStack(root);
});

after(async () => {
  await s?.close();
});

async function metricValue(name: string, labels: Record<string, string>): Promise<number> {
  const m = await s.metrics.registry.getSingleMetric(name)!.get();
  return m.values.find((x) => Object.entries(labels).every(([k, v]) => x.labels[k] === v))?.value ?? 0;
}

describe('zero-downtime swap', () => {
  test('loading version 2 under continuous traffic: no request lost, no error, traffic moves to v2', async () => {
    const outcomes: Array<{ ok: boolean; version?: string; code?: string }> = [];
    let stop = false;
    let sent = 0;
    const loop = async () => {
      while (!stop) {
        sent++;
        const r = await infer();
        outcomes.push(r.err ? { ok: false, code: errorCode(r.err) ?? String(r.err.code) } : { ok: true, version: r.res!.model_version });
      }
    };
    const loops = [loop(), loop()];
    while (outcomes.length < 2) await new Promise((r) => setTimeout(r, 20));
    await addVersion(s.root, 'yolov8n', 2, MODEL_PATH);
    // Health probes during the swap: the server must stay SERVING (a probe failure would pull it from a balancer).
    const probes: string[] = [];
    let loading = true;
    const prober = (async () => {
      while (loading) {
        const h = await call<{ status: string }>(s.health, 'Check', { service: '' });
        probes.push(h.res?.status ?? `error ${h.err?.code}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    const load = await call(s.client, 'RepositoryModelLoad', { model_name: 'yolov8n' });
    loading = false;
    await prober;
    assert.equal(load.err, undefined);
    assert.ok(probes.length > 0);
    assert.deepEqual([...new Set(probes)], ['SERVING'], `health during the swap: ${probes.join(', ')}`);
    const atSwitch = outcomes.length;
    while (outcomes.filter((o, i) => i >= atSwitch && o.version === '2').length < 2) await new Promise((r) => setTimeout(r, 20));
    stop = true;
    await Promise.all(loops);
    console.log(`# swap under traffic: ${outcomes.length} requests (${outcomes.filter((o) => o.version === '1').length} on v1, ${outcomes.filter((o) => o.version === '2').length} on v2)`);
    assert.equal(outcomes.length, sent, 'every request was answered');
    assert.deepEqual(outcomes.filter((o) => !o.ok), [], 'no request failed');
    assert.ok(outcomes.some((o) => o.version === '1') && outcomes.some((o) => o.version === '2'));
    // After the switch, v1 is drained and freed: only v2 is loaded and answers.
    assert.deepEqual(s.repo.versionsOf('yolov8n').map((v) => v.version), [2]);
    assert.equal((await infer()).res!.model_version, '2');
    assert.equal(await metricValue('osprey_model_swaps_total', { model: 'yolov8n', outcome: 'switched' }), 1);
    assert.deepEqual(
      s.service.swaps!.status('yolov8n').map((x) => [x.state, x.fromVersion, x.toVersion]),
      [['probation', 1, 2]],
    );
    // Clients' bad requests are not held against the new version (no rollback from them).
    for (let i = 0; i < 4; i++) {
      const bad = await call(s.client, 'ModelInfer', rawInfer('yolov8n', { name: 'pixels', datatype: 'FP32', shape: [1, 3, 640, 640], data: fp32 }));
      assert.equal(errorCode(bad.err), 'OSPREY_ERR_INVALID_TENSOR');
    }
    const [status] = s.service.swaps!.status('yolov8n');
    assert.equal(status!.state, 'probation');
    assert.equal(status!.errors, 0);
  });

  test('a new version that loads but fails at run time is rolled back automatically, logged and counted', async () => {
    await addVersion(s.root, 'yolov8n', 3, brokenAtRunModelBytes());
    const load = await call(s.client, 'RepositoryModelLoad', { model_name: 'yolov8n' });
    assert.equal(load.err, undefined, 'the broken version loads (its zero-input warmup passes)');
    assert.deepEqual(s.repo.versionsOf('yolov8n').map((v) => v.version), [3]);
    const outcomes: Array<{ ok: boolean; version?: string; code?: string }> = [];
    for (let i = 0; i < 6; i++) {
      const r = await infer();
      outcomes.push(r.err ? { ok: false, code: errorCode(r.err) } : { ok: true, version: r.res!.model_version });
    }
    console.log(`# rollback: ${outcomes.map((o) => (o.ok ? `v${o.version}` : o.code)).join(', ')}`);
    // swap_min_requests = 3 failures on v3 trigger the rollback; the requests after it wait for v2 and succeed.
    assert.deepEqual(outcomes.slice(0, 3).map((o) => o.code), ['OSPREY_ERR_INFERENCE_FAILED', 'OSPREY_ERR_INFERENCE_FAILED', 'OSPREY_ERR_INFERENCE_FAILED']);
    assert.deepEqual(outcomes.slice(3).map((o) => o.version), ['2', '2', '2']);
    await s.service.swaps!.settle();
    const [status] = s.service.swaps!.status('yolov8n');
    assert.equal(status!.state, 'rolled_back');
    assert.match(status!.reason!, /error rate 100\.0% over 3 requests > 20\.0%/);
    assert.deepEqual(s.repo.versionsOf('yolov8n').map((v) => v.version), [2]);
    assert.equal(await metricValue('osprey_model_rollbacks_total', { model: 'yolov8n', reason: 'error_rate' }), 1);
    assert.equal(await metricValue('osprey_model_swaps_total', { model: 'yolov8n', outcome: 'rolled_back' }), 1);
    assert.ok(s.logs.some((l) => l.level === 'warn' && /rolled back to the previous model version/.test(l.msg)));
    const { models } = (await call<{ models: Array<{ name: string; version: string; state: string }> }>(s.client, 'RepositoryIndex', {})).res!;
    assert.deepEqual(models.filter((m) => m.name === 'yolov8n').map((m) => [m.version, m.state]), [['2', 'READY']]);
  });
});

describe('memory over load/unload cycles', () => {
  test('20 RepositoryModelUnload/RepositoryModelLoad cycles of yolov8n: RSS returns near its previous level', async () => {
    const cycle = async () => {
      assert.equal((await call(s.client, 'RepositoryModelUnload', { model_name: 'cycled' })).err, undefined);
      assert.equal((await call(s.client, 'RepositoryModelLoad', { model_name: 'cycled' })).err, undefined);
    };
    const rss = () => {
      gc();
      return process.memoryUsage().rss;
    };
    await cycle(); // allocator and ORT warm-up
    assert.equal((await call(s.client, 'RepositoryModelUnload', { model_name: 'cycled' })).err, undefined);
    const unloaded = rss();
    assert.equal((await call(s.client, 'RepositoryModelLoad', { model_name: 'cycled' })).err, undefined);
    const before = rss();
    const samples: number[] = [];
    for (let i = 0; i < 20; i++) {
      await cycle();
      if (i % 5 === 4) samples.push(rss());
    }
    const afterRss = rss();
    const mb = (n: number) => (n / 1048576).toFixed(1);
    console.log(`# one loaded yolov8n version adds ${mb(before - unloaded)} MB of RSS`);
    console.log(`# RSS before ${mb(before)} MB; after 5/10/15/20 cycles ${samples.map(mb).join(' / ')} MB; growth ${mb(afterRss - before)} MB`);
    assert.equal((await infer('cycled')).err, undefined);
    // A generous bound: allocator noise passes, a session (worker + ORT arena) kept alive per cycle would not.
    assert.ok(afterRss - before < 150 * 1048576, `RSS grew by ${mb(afterRss - before)} MB over 20 cycles`);
  });
});
