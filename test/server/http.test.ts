/**
 * `osprey serve` over real HTTP on 127.0.0.1 (port 0), with the real engine (ONNX Runtime in worker_threads) on the
 * real model from ../shared/data, in a temporary Triton-layout repository:
 * - yolo:        the shared yolov8n.onnx as it comes (batch 1 baked in → maxBatchSize 0), config.yaml
 * - yolo_dyn:    dynamic-batch variant (Osprey's dynamicBatch pass), maxBatchSize 8, 100 ms max queue delay, 2 priority levels
 * - yolo_u8:     dynamic-batch + uint8 NHWC input variant (uint8Input pass), maxBatchSize 2
 * - yolo_policy: yolo with a queue policy (maxQueueSize 2, request timeouts allowed)
 * - bad_config:  a config with a wrong key → refused, the others load
 * - bad_hash:    a manifest whose sha256 does not match → version refused
 */
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { after, before, describe, it } from 'node:test';
import { decodeImage } from '../../src/image/decode.js';
import { allocateBatch, letterboxImageInto } from '../../src/image/letterbox.js';
import { queryGpus } from '../../src/metrics/gpu.js';
import type { EngineFactory } from '../../src/engine/engine.js';
import { createOrtInstances } from '../../src/engine/ort-engine.js';
import { startServer, type OspreyServer } from '../../src/server/server.js';
import { addModel, binaryBody, buildVariants, BUS_JPG, json, readBinaryResponse, SHARED_DATA_DIR, tempDir, ZIDANE_JPG } from '../support/server.js';

const MAX_BODY = 8 * 1024 * 1024;
setFlagsFromString('--expose-gc');
/** A real full GC, for the memory measurement (the test runner does not pass --expose-gc). */
const gc = runInNewContext('gc') as () => void;
const golden = JSON.parse(await readFile(new URL('../fixtures/golden/reference-boxes.json', import.meta.url), 'utf8')) as {
  results: Array<{ image: string; width: number; height: number; detections: Array<{ classId: number; score: number; box: number[] }> }>;
};

let server: OspreyServer;
let base: string;
let tmp: { path: string; remove: () => Promise<void> };
let busNchw: Float32Array;
let busNhwc: Uint8Array;
let busJpg: Buffer;
let zidaneJpg: Buffer;

const post = (path: string, body: string | Uint8Array | FormData | undefined, headers: Record<string, string> = {}) => fetch(base + path, { method: 'POST', body, headers });
const postJson = (path: string, body: unknown) => post(path, JSON.stringify(body), { 'content-type': 'application/json' });

async function expectError(res: Response, status: number, code: string): Promise<{ error: string; code: string }> {
  const body = await json(res);
  assert.equal(res.status, status, `status for ${code}: ${JSON.stringify(body)}`);
  assert.equal(body.code, code);
  assert.equal(typeof body.error, 'string');
  assert.ok(body.error.length > 0);
  return body;
}

function fp32Request(model: string, data: Float32Array, params: Record<string, unknown> = {}, outputs = true) {
  const { body, headers } = binaryBody(
    {
      inputs: [{ name: 'images', shape: [1, 3, 640, 640], datatype: 'FP32', parameters: { binary_data_size: data.byteLength } }],
      ...(outputs ? { outputs: [{ name: 'output0', parameters: { binary_data: true } }] } : {}),
      parameters: params,
    },
    [data],
  );
  return post(`/v2/models/${model}/infer`, body, headers);
}

/**
 * The real ONNX Runtime backend, with one test hook: while {@link holdEngine}'s hold is on, yolo_dyn's runs wait before
 * they start (a slow engine, which the priority test needs to know the queue's order on any machine and cannot cause
 * otherwise). Every other model, and yolo_dyn outside that test, runs untouched.
 */
let engineHold: Promise<void> | undefined;
function holdEngine(): () => void {
  let open!: () => void;
  engineHold = new Promise((r) => (open = r));
  return () => {
    engineHold = undefined;
    open();
  };
}
const heldEngineFactory: EngineFactory = async (options) => {
  const loaded = await createOrtInstances(options);
  if (!options.modelPath.includes('yolo_dyn')) return loaded;
  return {
    info: loaded.info,
    close: () => loaded.close(),
    instances: loaded.instances.map((e) => ({
      info: e.info,
      run: async (feeds, runOptions) => {
        while (engineHold) await engineHold;
        return e.run(feeds, runOptions);
      },
      close: () => e.close(),
    })),
  };
};

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function asFloat32(buf: Buffer): Float32Array {
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** Every golden detection with score ≥ 0.3 has a match in `dets` (same class, corners within 3 px). */
function assertMatchesGolden(image: string, dets: Array<{ classId: number; box: number[] }>): void {
  const ref = golden.results.find((r) => r.image === image)!;
  for (const g of ref.detections.filter((d) => d.score >= 0.3)) {
    const m = dets.find((d) => d.classId === g.classId && d.box.every((v, i) => Math.abs(v - g.box[i]!) < 3));
    assert.ok(m, `${image}: no detection matches golden class ${g.classId} box ${g.box}`);
  }
}

before(async () => {
  tmp = await tempDir('osprey-serve-test-');
  const built = join(tmp.path, 'built');
  await mkdir(built);
  const variants = buildVariants(built);
  const repo = join(tmp.path, 'repo');
  await addModel(repo, 'yolo', { config: 'detection:\n  conf: 0.25\n  iou: 0.7\n', configName: 'config.yaml' });
  await addModel(repo, 'yolo_dyn', {
    modelFile: variants.dynamic,
    config: { maxBatchSize: 8, dynamicBatching: { maxQueueDelayMicroseconds: 100_000, priorityLevels: 2, defaultPriorityLevel: 2 } },
  });
  await addModel(repo, 'yolo_u8', { modelFile: variants.uint8, config: { maxBatchSize: 2 } });
  await addModel(repo, 'yolo_policy', { config: { dynamicBatching: { defaultQueuePolicy: { maxQueueSize: 2, allowTimeoutOverride: true } } } });
  await addModel(repo, 'bad_config', { config: { maxBatchSize: 1, dynamicBatching: { maxQueueDelayMicroseconds: 'soon' } } });
  await addModel(repo, 'bad_hash', { manifest: { files: { 'model.onnx': { sha256: '0'.repeat(64) } } } });
  server = await startServer({ modelRepository: repo, host: '127.0.0.1', httpPort: 0, metricsPort: 0, executionProviders: ['cpu'], engineFactory: heldEngineFactory, logLevel: 'silent', maxBodyBytes: MAX_BODY, modelControlMode: 'explicit', loadModels: ['*'], allowedSymlinkTargets: [SHARED_DATA_DIR, built] });
  base = server.url;

  busJpg = await readFile(BUS_JPG);
  zidaneJpg = await readFile(ZIDANE_JPG);
  const img = await decodeImage(busJpg, { name: 'bus.jpg' });
  const f = allocateBatch('float32-nchw', 1, 640, 640);
  await letterboxImageInto(img, f, 0);
  busNchw = f.data as Float32Array;
  const u = allocateBatch('uint8-nhwc', 1, 640, 640);
  await letterboxImageInto(img, u, 0);
  busNhwc = u.data as Uint8Array;
});

after(async () => {
  await server?.close();
  await tmp?.remove();
});

describe('osprey serve: KServe v2 core endpoints', () => {
  it('health live/ready, server metadata with extensions', async () => {
    assert.equal((await fetch(`${base}/v2/health/live`)).status, 200);
    assert.equal((await fetch(`${base}/v2/health/ready`)).status, 200);
    const meta = await json(await fetch(`${base}/v2`));
    assert.equal(meta.name, 'osprey');
    for (const ext of ['binary_tensor_data', 'model_configuration', 'model_repository', 'schedule_policy', 'statistics']) assert.ok(meta.extensions.includes(ext), ext);
  });

  it('model metadata, with and without a version; −1 marks the batch axis of a batching model', async () => {
    const m = await json(await fetch(`${base}/v2/models/yolo`));
    assert.deepEqual(m.inputs, [{ name: 'images', datatype: 'FP32', shape: [1, 3, 640, 640] }]);
    assert.deepEqual(m.outputs, [{ name: 'output0', datatype: 'FP32', shape: [1, 84, 8400] }]);
    assert.deepEqual(m.versions, ['1']);
    assert.equal(m.platform, 'onnxruntime_onnx');
    const d = await json(await fetch(`${base}/v2/models/yolo_dyn/versions/1`));
    assert.deepEqual(d.inputs[0].shape, [-1, 3, 640, 640]);
    const u = await json(await fetch(`${base}/v2/models/yolo_u8`));
    assert.deepEqual(u.inputs[0], { name: 'images', datatype: 'UINT8', shape: [-1, 640, 640, 3] });
  });

  it('model ready, with and without a version', async () => {
    assert.equal((await fetch(`${base}/v2/models/yolo/ready`)).status, 200);
    assert.equal((await fetch(`${base}/v2/models/yolo/versions/1/ready`)).status, 200);
  });

  it("model config in Triton's JSON form with Ultralytics' parameters.metadata", async () => {
    const c = await json(await fetch(`${base}/v2/models/yolo_dyn/config`));
    assert.equal(c.max_batch_size, 8);
    assert.deepEqual(c.input, [{ name: 'images', data_type: 'TYPE_FP32', dims: [3, 640, 640] }]);
    assert.equal(c.output[0].name, 'output0');
    assert.equal(c.dynamic_batching.max_queue_delay_microseconds, 100_000);
    assert.equal(c.dynamic_batching.priority_levels, 2);
    const meta: string = c.parameters.metadata.string_value;
    assert.match(meta, /^\{'names': \{0: 'person', 1: 'bicycle', .*79: 'toothbrush'\}, 'stride': 32, 'imgsz': \[640, 640\], 'task': 'detect', 'batch': 8\}$/);
    const v = await json(await fetch(`${base}/v2/models/yolo/versions/1/config`));
    assert.equal(v.max_batch_size, 0);
    assert.deepEqual(v.input[0].dims, [1, 3, 640, 640]);
  });
});

describe('osprey serve: infer (JSON and binary tensors)', () => {
  it('FP32 binary input, binary output: [1, 84, 8400] float32, detections of bus.jpg', async () => {
    const res = await fp32Request('yolo', busNchw);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/octet-stream');
    const { header, binary } = await readBinaryResponse(res);
    assert.equal(header.model_name, 'yolo');
    assert.equal(header.model_version, '1');
    assert.deepEqual(header.outputs, [{ name: 'output0', datatype: 'FP32', shape: [1, 84, 8400], parameters: { binary_data_size: 84 * 8400 * 4 } }]);
    assert.equal(binary.length, 84 * 8400 * 4);
    // The same pixels through the dynamic-batch variant give the same output.
    const dyn = await readBinaryResponse(await fp32Request('yolo_dyn', busNchw));
    assert.ok(maxAbsDiff(asFloat32(binary), asFloat32(dyn.binary)) < 1e-3);
  });

  it('FP32 JSON input, JSON output (binary_data_output false) equals the binary path', async () => {
    const data = new Float32Array(3 * 640 * 640).fill(0.5);
    const res = await postJson('/v2/models/yolo/infer', { id: 'req-1', inputs: [{ name: 'images', shape: [1, 3, 640, 640], datatype: 'FP32', data: Array.from(data) }] });
    assert.equal(res.status, 200);
    const body = await json(res);
    assert.equal(body.id, 'req-1');
    assert.equal(body.outputs[0].shape.join(','), '1,84,8400');
    assert.equal(body.outputs[0].data.length, 84 * 8400);
    const bin = await readBinaryResponse(await fp32Request('yolo', data, { binary_data_output: true }, false));
    assert.ok(maxAbsDiff(Float32Array.from(body.outputs[0].data), asFloat32(bin.binary)) < 1e-6);
  });

  it('UINT8 NHWC inputs, binary and JSON, match the FP32 model on the same pixels', async () => {
    const { body, headers } = binaryBody(
      { inputs: [{ name: 'images', shape: [1, 640, 640, 3], datatype: 'UINT8', parameters: { binary_data_size: busNhwc.byteLength } }], parameters: { binary_data_output: true } },
      [busNhwc],
    );
    const u8 = await readBinaryResponse(await post('/v2/models/yolo_u8/infer', body, headers));
    assert.deepEqual(u8.header.outputs[0]!.shape, [1, 84, 8400]);
    const fp = await readBinaryResponse(await fp32Request('yolo_dyn', busNchw));
    assert.ok(maxAbsDiff(asFloat32(u8.binary), asFloat32(fp.binary)) < 1e-3);

    const res = await postJson('/v2/models/yolo_u8/infer', {
      inputs: [{ name: 'images', shape: [1, 640, 640, 3], datatype: 'UINT8', data: Array.from(busNhwc) }],
      outputs: [{ name: 'output0', parameters: { binary_data: true } }],
    });
    assert.equal(res.status, 200);
    const viaJson = await readBinaryResponse(res);
    assert.ok(maxAbsDiff(asFloat32(viaJson.binary), asFloat32(u8.binary)) === 0);
    // /detect on the uint8 model: letterbox straight into uint8 NHWC, same boxes as the reference.
    const det = await json(await post('/v2/models/yolo_u8/detect', busJpg, { 'content-type': 'image/jpeg' }));
    assertMatchesGolden('bus.jpg', det.results[0].detections);
  });
});

describe('osprey serve: detect', () => {
  it('raw JPEG body of bus.jpg → detections in source pixels matching the golden reference', async () => {
    const res = await post('/v2/models/yolo/detect', busJpg, { 'content-type': 'image/jpeg' });
    assert.equal(res.status, 200);
    const body = await json(res);
    assert.equal(body.model_name, 'yolo');
    const [r] = body.results;
    assert.equal(r.width, 810);
    assert.equal(r.height, 1080);
    assert.ok(r.detections.some((d: { className: string }) => d.className === 'bus'));
    for (const d of r.detections) assert.ok(d.box[0] >= 0 && d.box[2] <= 810 && d.box[1] >= 0 && d.box[3] <= 1080);
    assertMatchesGolden('bus.jpg', r.detections);
  });

  it('multipart with several images (one broken) → one entry per image, the broken one with its code', async () => {
    const form = new FormData();
    form.append('a', new Blob([busJpg], { type: 'image/jpeg' }), 'bus.jpg');
    form.append('b', new Blob([Buffer.from('not an image')], { type: 'image/jpeg' }), 'broken.jpg');
    form.append('c', new Blob([zidaneJpg], { type: 'image/jpeg' }), 'zidane.jpg');
    const res = await fetch(`${base}/v2/models/yolo_dyn/detect?conf=0.3`, { method: 'POST', body: form });
    assert.equal(res.status, 200);
    const { results } = await json(res);
    assert.deepEqual(results.map((r: { image: string }) => r.image), ['bus.jpg', 'broken.jpg', 'zidane.jpg']);
    assert.equal(results[1].error.code, 'OSPREY_ERR_INVALID_IMAGE');
    assert.equal(results[2].width, 1280);
    assertMatchesGolden('zidane.jpg', results[2].detections);
    assert.ok(results[0].detections.every((d: { score: number }) => d.score >= 0.3));
  });
});

describe('osprey serve: dynamic batching and priorities (real engine)', () => {
  it('16 concurrent single-image detect requests (two image sizes) run in batches > 1, each answer its own', async () => {
    const before = (await json(await fetch(`${base}/v2/models/yolo_dyn/stats`))).model_stats[0];
    const results = await Promise.all(
      Array.from({ length: 16 }, (_v, i) =>
        post(`/v2/models/yolo_dyn/detect?name=img${i}`, i % 2 === 0 ? busJpg : zidaneJpg, { 'content-type': 'image/jpeg' }).then(async (r) => ({ i, status: r.status, body: await json(r) })),
      ),
    );
    for (const r of results) {
      assert.equal(r.status, 200);
      const entry = r.body.results[0];
      assert.equal(entry.image, `img${r.i}`);
      const expected = r.i % 2 === 0 ? 'bus.jpg' : 'zidane.jpg';
      assert.equal(entry.width, expected === 'bus.jpg' ? 810 : 1280);
      assertMatchesGolden(expected, entry.detections);
    }
    const stats = (await json(await fetch(`${base}/v2/models/yolo_dyn/stats`))).model_stats[0];
    const executions = stats.execution_count - before.execution_count;
    assert.equal(stats.inference_count - before.inference_count, 16);
    assert.ok(executions < 16, `${executions} executions for 16 requests`);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const sum = Number(/osprey_batch_size_sum\{model="yolo_dyn",version="1"\} (\d+)/.exec(metrics)?.[1]);
    const count = Number(/osprey_batch_size_count\{model="yolo_dyn",version="1"\} (\d+)/.exec(metrics)?.[1]);
    assert.ok(sum / count > 1, `mean batch size ${sum / count}`);
    console.log(`batching: ${executions} executions for 16 detect requests; batch sizes so far ${JSON.stringify(stats.batch_stats.map((b: { batch_size: number; compute_infer: { count: number } }) => [b.batch_size, b.compute_infer.count]))}`);
  });

  it('a priority-1 request overtakes queued priority-2 requests', async () => {
    // The yolo_dyn engine is held (see heldEngineFactory) while the requests queue, so the order of arrival is known
    // on any machine: 8 low-priority requests execute (held), 24 wait, then the priority-1 request arrives.
    const done: string[] = [];
    const LOW = 32;
    const osprey = async () => (await json(await fetch(`${base}/v2/models/yolo_dyn/stats`))).model_stats[0].osprey as { pending_requests: number; inflight_requests: number };
    const waitFor = async (what: string, ok: (s: { pending_requests: number; inflight_requests: number }) => boolean) => {
      for (let k = 0; k < 3000; k++) {
        const s = await osprey();
        if (ok(s)) return s;
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.fail(`${what}: ${JSON.stringify(await osprey())}`);
    };
    const release = holdEngine();
    let high: Promise<number> | undefined;
    let low: Array<Promise<number>> = [];
    try {
      low = Array.from({ length: LOW }, (_v, i) =>
        fp32Request('yolo_dyn', busNchw).then(async (r) => {
          await r.arrayBuffer();
          done.push(`low${i}`);
          return r.status;
        }),
      );
      await waitFor(`the ${LOW} low-priority requests were never all queued (one batch of 8 held in the engine)`, (s) => s.inflight_requests === 8 && s.pending_requests === LOW - 8);
      high = fp32Request('yolo_dyn', busNchw, { priority: 1 }).then(async (r) => {
        await r.arrayBuffer();
        done.push('high');
        return r.status;
      });
      await waitFor('the priority-1 request never was queued', (s) => s.pending_requests === LOW - 8 + 1);
    } finally {
      release();
    }
    assert.deepEqual(new Set(await Promise.all(low)), new Set([200]));
    assert.equal(await high, 200);
    // FIFO would finish it last. Priority puts it into the next batch (with 7 low-priority requests): the 16 of the
    // two batches after it finish after it; its 7 batch mates answer in any order around it (so 16 to 24 after it),
    // and the 8 held ones before it.
    const lowsAfterHigh = done.length - 1 - done.indexOf('high');
    assert.ok(lowsAfterHigh >= 16 && lowsAfterHigh <= 24, `completion order ${done.join(' ')}`);
    assert.ok(done.indexOf('high') >= 8, `the 8 held requests finish first: ${done.join(' ')}`);
  });

  it('priority outside 1..priorityLevels → 400 OSPREY_ERR_INVALID_ARGUMENT', async () => {
    const e = await expectError(await fp32Request('yolo_dyn', new Float32Array(3 * 640 * 640), { priority: 9 }), 400, 'OSPREY_ERR_INVALID_ARGUMENT');
    assert.match(e.error, /priority 9 is outside 1\.\.2/);
    await expectError(await fp32Request('yolo_dyn', new Float32Array(3 * 640 * 640), { timeout: -5 }), 400, 'OSPREY_ERR_INVALID_ARGUMENT');
  });
});

describe('osprey serve: statistics, metrics, repository', () => {
  it("stats for all models, one model and one version (Triton's shape)", async () => {
    const all = await json(await fetch(`${base}/v2/models/stats`));
    assert.ok(all.model_stats.length >= 4);
    const one = await json(await fetch(`${base}/v2/models/yolo/versions/1/stats`));
    const s = one.model_stats[0];
    assert.equal(s.name, 'yolo');
    assert.ok(s.inference_stats.success.count >= 1);
    assert.ok(s.inference_stats.compute_infer.ns > 0);
    assert.ok(Array.isArray(s.batch_stats));
  });

  it('/metrics: nv_inference_* and osprey_* per model/version, process metrics, GPU metrics only with a GPU', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    for (const name of [
      'nv_inference_request_success{model="yolo",version="1"}',
      'nv_inference_count{model="yolo",version="1"}',
      'nv_inference_exec_count{model="yolo",version="1"}',
      'nv_inference_pending_request_count{model="yolo",version="1"}',
      'nv_inference_queue_duration_us{model="yolo",version="1"}',
      'nv_inference_compute_infer_duration_us{model="yolo",version="1"}',
      'osprey_batch_size_bucket',
      'osprey_queue_duration_seconds_bucket',
      'osprey_compute_duration_seconds_bucket{le="0.0005",model="yolo",version="1",phase="infer"}',
      'osprey_instance_busy_seconds_total{model="yolo",version="1",instance="0"}',
      'osprey_images_total{model="yolo",version="1"}',
      'process_resident_memory_bytes',
      'process_cpu_seconds_total',
    ]) {
      assert.ok(text.includes(name), `missing ${name}`);
    }
    const gpus = await queryGpus();
    assert.equal(text.includes('nv_gpu_utilization'), gpus !== null);
    // The same registry on the separate metrics port (Triton's 8002).
    assert.ok(server.metricsUrl);
    const other = await fetch(`${server.metricsUrl}/metrics`);
    assert.equal(other.status, 200);
    assert.ok((await other.text()).includes('nv_inference_request_success{model="yolo",version="1"}'));
  });

  it('repository index lists every model with state and reason (bad config and hash mismatch refused, others READY)', async () => {
    const index = await json(await postJson('/v2/repository/index', {}));
    const byName = new Map(index.map((e: { name: string }) => [e.name, e]));
    for (const n of ['yolo', 'yolo_dyn', 'yolo_u8', 'yolo_policy']) assert.equal((byName.get(n) as { state: string }).state, 'READY', n);
    const bad = byName.get('bad_config') as { state: string; reason: string };
    assert.equal(bad.state, 'UNAVAILABLE');
    assert.match(bad.reason, /OSPREY_ERR_CONFIG.*dynamicBatching\.maxQueueDelayMicroseconds/);
    const hash = byName.get('bad_hash') as { state: string; reason: string; version: string };
    assert.equal(hash.state, 'UNAVAILABLE');
    assert.match(hash.reason, /OSPREY_ERR_HASH_MISMATCH/);
    const ready = await json(await postJson('/v2/repository/index', { ready: true }));
    assert.ok(ready.every((e: { state: string }) => e.state === 'READY'));
  });

  it('load a new version while serving: in-flight requests finish on the old one; a failed load keeps the new one serving', async () => {
    const repo = join(tmp.path, 'repo');
    // Version 2 appears next to version 1 (versionPolicy latest 1 → 2 replaces 1).
    await addModel(repo, 'yolo', { version: 2 });
    const inflight = post('/v2/models/yolo/versions/1/detect', busJpg, { 'content-type': 'image/jpeg' });
    await new Promise((r) => setTimeout(r, 50));
    const load = await postJson('/v2/repository/models/yolo/load', {});
    assert.equal(load.status, 200);
    const old = await inflight;
    assert.equal(old.status, 200);
    assert.equal((await json(old)).model_version, '1');
    const m = await json(await fetch(`${base}/v2/models/yolo`));
    assert.deepEqual(m.versions, ['2']);
    await expectError(await fetch(`${base}/v2/models/yolo/versions/1`), 404, 'OSPREY_ERR_MODEL_NOT_FOUND'); // retired by versionPolicy
    // A broken version 3: the load fails, version 2 keeps serving.
    await mkdir(join(repo, 'yolo', '3'), { recursive: true });
    await writeFile(join(repo, 'yolo', '3', 'model.onnx'), 'this is not an onnx model');
    const failed = await postJson('/v2/repository/models/yolo/load', {});
    const err = await json(failed);
    assert.equal(failed.status, 400);
    assert.equal(err.code, 'OSPREY_ERR_INVALID_MODEL');
    assert.match(err.error, /previous version keeps serving/);
    const still = await post('/v2/models/yolo/detect', busJpg, { 'content-type': 'image/jpeg' });
    assert.equal(still.status, 200);
    assert.equal((await json(still)).model_version, '2');
  });

  it('load with a config override (Triton parameters.config) and unload → 503 afterwards', async () => {
    const res = await postJson('/v2/repository/models/yolo_dyn/load', { parameters: { config: JSON.stringify({ maxBatchSize: 4, detection: { conf: 0.5 } }) } });
    assert.equal(res.status, 200);
    assert.equal((await json(await fetch(`${base}/v2/models/yolo_dyn/config`))).max_batch_size, 4);
    const det = await json(await post('/v2/models/yolo_dyn/detect', busJpg, { 'content-type': 'image/jpeg' }));
    assert.ok(det.results[0].detections.every((d: { score: number }) => d.score >= 0.5));
    assert.equal((await postJson('/v2/repository/models/yolo_u8/unload', {})).status, 200);
    await expectError(await fp32Request('yolo_u8', busNchw), 503, 'OSPREY_ERR_MODEL_NOT_READY');
    await expectError(await fetch(`${base}/v2/models/yolo_u8/ready`), 503, 'OSPREY_ERR_MODEL_NOT_READY');
    const index = await json(await postJson('/v2/repository/index', {}));
    assert.equal(index.find((e: { name: string }) => e.name === 'yolo_u8').state, 'UNAVAILABLE');
    // A bad config override is refused with the key path; the model keeps its previous config.
    const bad = await postJson('/v2/repository/models/yolo_dyn/load', { parameters: { config: JSON.stringify({ max_batch_size: 4 }) } });
    const body = await expectError(bad, 400, 'OSPREY_ERR_CONFIG');
    assert.match(body.error, /max_batch_size.*did you mean 'maxBatchSize'/);
    assert.equal((await fetch(`${base}/v2/models/yolo_dyn/ready`)).status, 200);
    assert.equal((await json(await fetch(`${base}/v2/models/yolo_dyn/config`))).max_batch_size, 4);
  });
});

describe('osprey serve: bad input (each answered with its code; the server keeps serving)', () => {
  const small = new Float32Array(4);
  it('malformed JSON → 400 OSPREY_ERR_MALFORMED_REQUEST', async () => {
    await expectError(await post('/v2/models/yolo/infer', '{"inputs": [', { 'content-type': 'application/json' }), 400, 'OSPREY_ERR_MALFORMED_REQUEST');
    await expectError(await post('/v2/repository/index', 'nope', { 'content-type': 'application/json' }), 400, 'OSPREY_ERR_MALFORMED_REQUEST');
  });

  it('wrong tensor name → 400 OSPREY_ERR_INVALID_TENSOR', async () => {
    const body = await expectError(await postJson('/v2/models/yolo/infer', { inputs: [{ name: 'pixels', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }), 400, 'OSPREY_ERR_INVALID_TENSOR');
    assert.match(body.error, /unexpected input 'pixels'.*'images'/);
  });

  it('wrong tensor shape → 400 OSPREY_ERR_INVALID_TENSOR', async () => {
    const body = await expectError(await postJson('/v2/models/yolo/infer', { inputs: [{ name: 'images', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }), 400, 'OSPREY_ERR_INVALID_TENSOR');
    assert.match(body.error, /shape \[1, 4\] does not match the model's \[1, 3, 640, 640\]/);
    // Batch over maxBatchSize on a batching model.
    const { body: b, headers } = binaryBody({ inputs: [{ name: 'images', shape: [9, 3, 640, 640], datatype: 'FP32', parameters: { binary_data_size: 9 * 4 } }] }, [new Float32Array(9)]);
    await expectError(await post('/v2/models/yolo_dyn/infer', b, headers), 400, 'OSPREY_ERR_INVALID_TENSOR');
  });

  it('wrong tensor datatype → 400 OSPREY_ERR_INVALID_TENSOR', async () => {
    const { body, headers } = binaryBody({ inputs: [{ name: 'images', shape: [1, 3, 640, 640], datatype: 'UINT8', parameters: { binary_data_size: 3 * 640 * 640 } }] }, [new Uint8Array(3 * 640 * 640)]);
    const e = await expectError(await post('/v2/models/yolo/infer', body, headers), 400, 'OSPREY_ERR_INVALID_TENSOR');
    assert.match(e.error, /datatype UINT8 but the model expects FP32/);
    await expectError(await postJson('/v2/models/yolo/infer', { inputs: [{ name: 'images', shape: [1], datatype: 'STRING', data: [1] }] }), 400, 'OSPREY_ERR_INVALID_TENSOR');
  });

  it('data that does not fill the shape → 400 OSPREY_ERR_INVALID_TENSOR', async () => {
    await expectError(await postJson('/v2/models/yolo/infer', { inputs: [{ name: 'images', shape: [1, 3, 640, 640], datatype: 'FP32', data: [1, 2] }] }), 400, 'OSPREY_ERR_INVALID_TENSOR');
  });

  it('binary sizes that do not add up → 400 OSPREY_ERR_MALFORMED_REQUEST', async () => {
    // Declares more bytes than the body carries.
    const a = binaryBody({ inputs: [{ name: 'images', shape: [1, 3, 640, 640], datatype: 'FP32', parameters: { binary_data_size: 3 * 640 * 640 * 4 } }] }, [small]);
    await expectError(await post('/v2/models/yolo/infer', a.body, a.headers), 400, 'OSPREY_ERR_MALFORMED_REQUEST');
    // Trailing bytes nobody declared.
    const b = binaryBody({ inputs: [{ name: 'images', shape: [1, 2], datatype: 'FP32', parameters: { binary_data_size: 8 } }] }, [small]);
    await expectError(await post('/v2/models/yolo/infer', b.body, b.headers), 400, 'OSPREY_ERR_MALFORMED_REQUEST');
    // Header length beyond the body.
    await expectError(await post('/v2/models/yolo/infer', Buffer.from('{}'), { 'inference-header-content-length': '99' }), 400, 'OSPREY_ERR_MALFORMED_REQUEST');
  });

  it('body over the configured limit → 413 OSPREY_ERR_PAYLOAD_TOO_LARGE (infer and multipart detect)', async () => {
    const big = Buffer.alloc(MAX_BODY + 1024);
    await expectError(await post('/v2/models/yolo/infer', big, { 'content-type': 'application/octet-stream', 'inference-header-content-length': '2' }), 413, 'OSPREY_ERR_PAYLOAD_TOO_LARGE');
    await expectError(await post('/v2/models/yolo/detect', big, { 'content-type': 'image/jpeg' }), 413, 'OSPREY_ERR_PAYLOAD_TOO_LARGE');
  });

  it('undecodable image → 400 OSPREY_ERR_INVALID_IMAGE; empty image → 400 OSPREY_ERR_EMPTY_IMAGE', async () => {
    const e = await expectError(await post('/v2/models/yolo/detect', busJpg.subarray(0, 200), { 'content-type': 'image/jpeg' }), 400, 'OSPREY_ERR_INVALID_IMAGE');
    assert.match(e.error, /body/);
    await expectError(await post('/v2/models/yolo/detect', Buffer.from('GIF89a garbage'), { 'content-type': 'image/gif' }), 400, 'OSPREY_ERR_INVALID_IMAGE');
    await expectError(await post('/v2/models/yolo/detect', Buffer.alloc(0), { 'content-type': 'image/jpeg' }), 400, 'OSPREY_ERR_EMPTY_IMAGE');
  });

  it('unknown model or version → 404 OSPREY_ERR_MODEL_NOT_FOUND', async () => {
    await expectError(await fetch(`${base}/v2/models/nope`), 404, 'OSPREY_ERR_MODEL_NOT_FOUND');
    await expectError(await fetch(`${base}/v2/models/yolo/versions/7`), 404, 'OSPREY_ERR_MODEL_NOT_FOUND');
    await expectError(await fetch(`${base}/v2/models/yolo/versions/x1/ready`), 404, 'OSPREY_ERR_MODEL_NOT_FOUND');
    await expectError(await fp32Request('nope', small), 404, 'OSPREY_ERR_MODEL_NOT_FOUND');
    await expectError(await post('/v2/models/nope/detect', busJpg, { 'content-type': 'image/jpeg' }), 404, 'OSPREY_ERR_MODEL_NOT_FOUND');
    await expectError(await postJson('/v2/repository/models/nope/unload', {}), 404, 'OSPREY_ERR_MODEL_NOT_FOUND');
    await expectError(await fetch(`${base}/v2/nowhere`), 404, 'OSPREY_ERR_NO_ROUTE');
  });

  it('model not ready (refused config / hash mismatch) → 503 OSPREY_ERR_MODEL_NOT_READY', async () => {
    await expectError(await fp32Request('bad_config', small), 503, 'OSPREY_ERR_MODEL_NOT_READY');
    await expectError(await post('/v2/models/bad_hash/detect', busJpg, { 'content-type': 'image/jpeg' }), 503, 'OSPREY_ERR_MODEL_NOT_READY');
  });

  it('queue full → 429 OSPREY_ERR_QUEUE_FULL (maxQueueSize 2), the accepted requests still answered', async () => {
    const all = await Promise.all(Array.from({ length: 6 }, () => fp32Request('yolo_policy', busNchw)));
    const statuses = all.map((r) => r.status);
    const full = all.filter((r) => r.status === 429);
    assert.ok(full.length >= 1, `statuses ${statuses}`);
    for (const r of full) await expectError(r, 429, 'OSPREY_ERR_QUEUE_FULL');
    assert.ok(statuses.filter((s) => s === 200).length >= 3, `statuses ${statuses}`);
    for (const r of all.filter((x) => x.status === 200)) await r.arrayBuffer();
  });

  it('request timeout in the queue → 504 OSPREY_ERR_TIMEOUT (schedule-policy timeout parameter)', async () => {
    const all = await Promise.all(Array.from({ length: 3 }, () => fp32Request('yolo_policy', busNchw, { timeout: 1000 })));
    const statuses = all.map((r) => r.status);
    const timedOut = all.filter((r) => r.status === 504);
    assert.ok(timedOut.length >= 1, `statuses ${statuses}`);
    for (const r of timedOut) await expectError(r, 504, 'OSPREY_ERR_TIMEOUT');
    for (const r of all.filter((x) => x.status === 200)) await r.arrayBuffer();
  });

  it('thousands of bad requests leave RSS flat, and the server still serves', async () => {
    const bad = [
      () => post('/v2/models/yolo/infer', '{"inputs": [', { 'content-type': 'application/json' }),
      () => postJson('/v2/models/yolo/infer', { inputs: [{ name: 'pixels', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }),
      () => post('/v2/models/yolo/infer', binaryBody({ inputs: [{ name: 'images', shape: [1, 3, 640, 640], datatype: 'FP32', parameters: { binary_data_size: 16 } }] }, [small]).body, { 'inference-header-content-length': '120' }),
      () => fetch(`${base}/v2/models/nope/versions/3`),
      () => post('/v2/models/yolo/detect', busJpg.subarray(0, 300), { 'content-type': 'image/jpeg' }),
    ];
    const round = async (n: number) => {
      for (let i = 0; i < n; i += 20) {
        await Promise.all(Array.from({ length: 20 }, (_v, k) => bad[(i + k) % bad.length]!().then((r) => r.arrayBuffer())));
      }
    };
    await round(300); // warm up allocators, JIT and fastify's caches
    const mib = (n: number) => (n / 1048576).toFixed(1);
    gc();
    const m0 = process.memoryUsage();
    await round(1000);
    gc();
    const m1 = process.memoryUsage();
    await round(1000);
    gc();
    const m2 = process.memoryUsage();
    console.log(
      `RSS over 2 × 1000 bad requests: ${mib(m0.rss)} → ${mib(m1.rss)} → ${mib(m2.rss)} MiB; ` +
        `JS heap ${mib(m0.heapUsed)} → ${mib(m1.heapUsed)} → ${mib(m2.heapUsed)} MiB; array buffers ${mib(m0.arrayBuffers)} → ${mib(m2.arrayBuffers)} MiB`,
    );
    // Generous bounds (RSS moves by ±10 MiB with allocator noise on this machine); a per-request leak shows as a
    // steady climb, in the JS heap first.
    assert.ok(m2.rss - m0.rss < 64 * 1048576, `RSS grew ${mib(m2.rss - m0.rss)} MiB over 2000 bad requests`);
    assert.ok(m2.heapUsed - m1.heapUsed < 8 * 1048576, `JS heap grew ${mib(m2.heapUsed - m1.heapUsed)} MiB over the second 1000 bad requests`);
    assert.ok(m2.arrayBuffers - m0.arrayBuffers < 16 * 1048576, `array buffers grew ${mib(m2.arrayBuffers - m0.arrayBuffers)} MiB`);
    assert.equal((await fetch(`${base}/v2/health/ready`)).status, 200);
    const ok = await post('/v2/models/yolo/detect', busJpg, { 'content-type': 'image/jpeg' });
    assert.equal(ok.status, 200);
    const stats = (await json(await fetch(`${base}/v2/models/yolo/stats`))).model_stats[0];
    assert.ok(stats.inference_stats.fail.count > 0);
  });
});
