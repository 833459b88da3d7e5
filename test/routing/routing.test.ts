/**
 * Aliases over the real server stack (repository → RoutedInferenceService → gRPC on 127.0.0.1) with a real grpc-js
 * client: a 90/10 split over 1,000 requests within its binomial 99.9% interval, sticky keys that never switch arms,
 * a shadow whose answers never reach clients and whose failures never fail a request, and shadow agreement on real
 * detections (yolov8n vs the shared dynamic-INT8 yolov8n) in /metrics and the stats endpoints.
 *
 * Volume tests use tiny ONNX graphs (`y = x × scale`, one per version, so each answer shows which version
 * computed it); the detection test uses the real models.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { BUS_JPG, busInputs, call, makeRepo, MODEL_PATH, rawFloat32, rawInfer, startStack, tinyBrokenModelBytes, tinyModelBytes, type Stack } from '../support/stack.js';

const INT8_MODEL_PATH = fileURLToPath(new URL('../../../shared/data/models/yolov8n_int8_dynamic.onnx', import.meta.url));
const TINY_CONFIG = { maxBatchSize: 8, versionPolicy: { all: {} } };

type InferResponse = { model_name: string; model_version: string; parameters: Record<string, { string_param?: string }>; raw_output_contents: Buffer[] };

let s: Stack;

before(async () => {
  const root = await makeRepo(
    {
      tiny: { config: TINY_CONFIG, versions: { 1: tinyModelBytes(2), 2: tinyModelBytes(3) } },
      tiny_broken: { config: { maxBatchSize: 8 }, versions: { 1: tinyBrokenModelBytes() } },
      yolov8n: { versions: { 1: MODEL_PATH } },
      yolov8n_int8: { versions: { 1: INT8_MODEL_PATH } },
    },
    {
      ab: { arms: [{ name: 'a', model: 'tiny', version: 1, weight: 90 }, { name: 'b', model: 'tiny', version: 2, weight: 10 }] },
      guarded: { arms: [{ name: 'main', model: 'tiny', version: 1, weight: 1 }], shadow: { name: 'broken', model: 'tiny_broken' } },
      mirrored: { arms: [{ name: 'main', model: 'tiny', version: 1, weight: 1 }], shadow: { name: 'v2', model: 'tiny', version: 2 } },
      det: { arms: [{ name: 'fp32', model: 'yolov8n', weight: 1 }], shadow: { name: 'int8', model: 'yolov8n_int8' } },
    },
  );
  s = await startStack(root);
});

after(async () => {
  await s?.close();
});

const tinyRequest = (model: string, x: number[], parameters: Record<string, unknown> = {}) =>
  rawInfer(model, { name: 'x', datatype: 'FP32', shape: [1, 4], data: Float32Array.from(x) }, { parameters });

async function inferTiny(model: string, x: number[], parameters: Record<string, unknown> = {}): Promise<{ arm: string; version: string; y: number[] }> {
  const { res, err } = await call<InferResponse>(s.client, 'ModelInfer', tinyRequest(model, x, parameters));
  if (err) throw err;
  return { arm: res!.parameters.routing_arm!.string_param!, version: res!.model_version, y: [...rawFloat32(res!.raw_output_contents[0]!)] };
}

/** Runs `n` calls, `concurrency` at a time. */
async function many<T>(n: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

/** Exact two-sided acceptance interval [lo, hi] of Binomial(n, p) with at most `alpha/2` in each tail. */
function binomialInterval(n: number, p: number, alpha: number): [number, number] {
  const logPmf = (k: number) => {
    let lc = 0;
    for (let i = 1; i <= k; i++) lc += Math.log((n - k + i) / i);
    return lc + k * Math.log(p) + (n - k) * Math.log(1 - p);
  };
  const pmf = Array.from({ length: n + 1 }, (_, k) => Math.exp(logPmf(k)));
  let lo = 0;
  for (let acc = 0; lo <= n && acc + pmf[lo]! <= alpha / 2; lo++) acc += pmf[lo]!;
  let hi = n;
  for (let acc = 0; hi >= 0 && acc + pmf[hi]! <= alpha / 2; hi--) acc += pmf[hi]!;
  return [lo, hi];
}

async function metricValue(name: string, labels: Record<string, string>): Promise<number> {
  const m = await s.metrics.registry.getSingleMetric(name)!.get();
  const v = m.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

describe('weighted A/B', () => {
  test('90/10 split over 1,000 requests: share within the exact binomial 99.9% interval; each answer from its arm', async () => {
    const N = 1000;
    const results = await many(N, 16, () => inferTiny('ab', [1, 2, 3, 4]));
    const a = results.filter((r) => r.arm === 'a').length;
    const [lo, hi] = binomialInterval(N, 0.9, 0.001);
    console.log(`# 90/10 split: arm a ${a}/${N} (99.9% interval [${lo}, ${hi}]), arm b ${N - a}`);
    assert.ok(a >= lo && a <= hi, `arm a got ${a} of ${N}, outside [${lo}, ${hi}]`);
    for (const r of results) {
      // Arm a is tiny v1 (×2), arm b is tiny v2 (×3): the answer comes from the arm it names.
      assert.deepEqual(r.y, r.arm === 'a' ? [2, 4, 6, 8] : [3, 6, 9, 12]);
      assert.equal(r.version, r.arm === 'a' ? '1' : '2');
    }
    // Per-arm counts in /metrics and in the stats endpoint (gRPC ModelStatistics on the alias).
    assert.equal(await metricValue('osprey_route_requests_total', { alias: 'ab', arm: 'a', role: 'primary', outcome: 'success' }), a);
    assert.equal(await metricValue('osprey_route_requests_total', { alias: 'ab', arm: 'b', role: 'primary', outcome: 'success' }), N - a);
    const stats = (await call<{ model_stats: Array<{ name: string; version: string; inference_stats: { success: { count: number; ns: number } } }> }>(s.client, 'ModelStatistics', { name: 'ab' })).res!;
    assert.deepEqual(Object.fromEntries(stats.model_stats.map((m) => [m.version, m.inference_stats.success.count])), { a, b: N - a });
    assert.ok(stats.model_stats.every((m) => m.inference_stats.success.ns > 0));
  });

  test('sticky keys: 200 keys × 3 requests never switch arms, and both arms get keys', async () => {
    const keys = Array.from({ length: 200 }, (_, i) => `camera-${i}`);
    const order = [...keys, ...keys, ...keys];
    const results = await many(order.length, 16, (i) => inferTiny('ab', [1, 1, 1, 1], { routing_key: { string_param: order[i] } }));
    const armOf = new Map<string, string>();
    results.forEach((r, i) => {
      const key = order[i]!;
      const prev = armOf.get(key);
      assert.ok(prev === undefined || prev === r.arm, `key ${key} switched from ${prev} to ${r.arm}`);
      armOf.set(key, r.arm);
      // The same arm the pure selection function gives (hash of alias + key).
      assert.equal(r.arm, s.service.chooseArm(s.service.aliases.get('ab')!, key).name);
    });
    const bKeys = [...armOf.values()].filter((a) => a === 'b').length;
    console.log(`# sticky: ${200 - bKeys} keys on arm a, ${bKeys} on arm b`);
    assert.ok(bKeys > 0 && bKeys < 200);
  });

  test('an alias called with a version → NOT_FOUND', async () => {
    const r = await call(s.client, 'ModelInfer', { ...tinyRequest('ab', [1, 2, 3, 4]), model_version: '1' });
    assert.equal(r.err?.code, 5);
  });

  test('alias metadata, readiness and the repository index', async () => {
    assert.deepEqual((await call(s.client, 'ModelReady', { name: 'ab' })).res, { ready: true });
    const md = (await call<{ name: string; inputs: Array<{ name: string }> }>(s.client, 'ModelMetadata', { name: 'ab' })).res!;
    assert.equal(md.name, 'ab');
    assert.equal(md.inputs[0]!.name, 'x');
    const { models } = (await call<{ models: Array<{ name: string; state: string; reason: string }> }>(s.client, 'RepositoryIndex', {})).res!;
    const ab = models.find((m) => m.name === 'ab')!;
    assert.equal(ab.state, 'READY');
    assert.match(ab.reason, /alias: a 90\.0%, b 10\.0%/);
  });
});

describe('shadow', () => {
  test("the shadow's answers never reach clients", async () => {
    const results = await many(20, 4, () => inferTiny('mirrored', [1, 2, 3, 4]));
    await s.service.drainShadows();
    for (const r of results) assert.deepEqual(r.y, [2, 4, 6, 8]); // tiny v1; the shadow (v2) would say [3, 6, 9, 12]
    assert.equal(await metricValue('osprey_route_requests_total', { alias: 'mirrored', arm: 'v2', role: 'shadow', outcome: 'success' }), 20);
  });

  test('a failing shadow never fails a request; its failures are counted and logged', async () => {
    const results = await many(20, 4, () => inferTiny('guarded', [1, 2, 3, 4]));
    await s.service.drainShadows();
    assert.equal(results.length, 20);
    for (const r of results) assert.deepEqual(r.y, [2, 4, 6, 8]);
    assert.equal(await metricValue('osprey_route_requests_total', { alias: 'guarded', arm: 'broken', role: 'shadow', outcome: 'failure' }), 20);
    assert.equal(await metricValue('osprey_route_requests_total', { alias: 'guarded', arm: 'main', role: 'primary', outcome: 'success' }), 20);
    assert.ok(s.logs.some((l) => l.level === 'warn' && /shadow request failed/.test(l.msg) && (l.obj as { code?: string }).code === 'OSPREY_ERR_INFERENCE_FAILED'));
  });

  test('agreement on real detections (yolov8n vs dynamic-INT8 yolov8n) in /metrics and the stats endpoints', async () => {
    const { fp32 } = await busInputs();
    const req = () => rawInfer('det', { name: 'images', datatype: 'FP32', shape: [1, 3, 640, 640], data: fp32 });
    const direct = await call<InferResponse>(s.client, 'ModelInfer', { ...req(), model_name: 'yolov8n' });
    const routed = await call<InferResponse>(s.client, 'ModelInfer', req());
    assert.equal(routed.err, undefined);
    assert.equal(routed.res!.model_name, 'det');
    assert.equal(routed.res!.parameters.routing_arm!.string_param, 'fp32');
    // The client gets the primary's exact answer.
    assert.ok(Buffer.compare(routed.res!.raw_output_contents[0]!, direct.res!.raw_output_contents[0]!) === 0);
    await s.service.drainShadows();
    const arms = s.service.routingMetrics.snapshot('det');
    const primary = arms.find((a) => a.role === 'primary')!;
    const shadow = arms.find((a) => a.role === 'shadow')!;
    console.log(`# det: fp32 ${primary.detectionsPerImage} detections/image, int8 ${shadow.detectionsPerImage}; agreement ${shadow.agreement} (${shadow.matchedBoxes}/${shadow.comparedBoxes} boxes)`);
    assert.ok(primary.detectionsPerImage >= 4);
    assert.ok(shadow.comparedBoxes! >= primary.detectionsPerImage);
    assert.ok(shadow.agreement! > 0.5 && shadow.agreement! <= 1, `agreement ${shadow.agreement}`);
    const text = await s.metrics.registry.metrics();
    assert.match(text, /osprey_route_shadow_agreement_ratio\{alias="det",arm="int8"\} 0\.\d+|osprey_route_shadow_agreement_ratio\{alias="det",arm="int8"\} 1/);
    assert.match(text, /osprey_route_detections_per_image_count\{alias="det",arm="fp32",role="primary"\} 1/);
    // The HTTP stats endpoint's data (service.stats) carries the same per-arm numbers.
    const stats = s.service.stats('det').model_stats;
    const routing = (v: string) => stats.find((m) => m.version === v)!.osprey!.routing as { agreement?: number; detections_per_image: number };
    assert.equal(routing('int8').agreement, shadow.agreement);
    assert.equal(routing('fp32').detections_per_image, primary.detectionsPerImage);
  });

  test('detect on an alias (encoded image, source pixels): the primary answers, the shadow is compared', async () => {
    const before = s.service.routingMetrics.snapshot('det').find((a) => a.role === 'shadow')!.comparedBoxes!;
    const bytes = await readFile(BUS_JPG);
    const res = await s.service.detect('det', undefined, { images: [{ name: 'bus.jpg', bytes }], parameters: { routing_key: 'cam-1' } });
    const direct = await s.service.detect('yolov8n', undefined, { images: [{ name: 'bus.jpg', bytes }] });
    assert.equal(res.modelName, 'det');
    assert.equal(res.routingArm, 'fp32');
    assert.deepEqual(res.results, direct.results);
    await s.service.drainShadows();
    const shadow = s.service.routingMetrics.snapshot('det').find((a) => a.role === 'shadow')!;
    assert.ok(shadow.comparedBoxes! > before, 'the shadow answer of the detect call was compared');
  });
});
