/**
 * The gRPC server with a real grpc-js client over 127.0.0.1, the real yolov8n from ../shared/data and its uint8
 * variant (src/onnx `uint8Input` pass): every RPC, raw and typed contents, FP32 and UINT8 inputs, streaming with
 * several concurrent streams, health checks, and bad input answered with the catalogue's gRPC status.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { matchDetections } from '../../src/routing/agreement.js';
import { detectionsOfOutputs } from '../../src/routing/router.js';
import { busInputs, call, errorCode, makeRepo, MODEL_PATH, rawFloat32, rawInfer, startStack, tinyModelBytes, uint8ModelBytes, type Stack } from '../support/stack.js';

const MAX_RECEIVE = 16 * 1024 * 1024;
const FP32_SHAPE = [1, 3, 640, 640];
const UINT8_SHAPE = [1, 640, 640, 3];
/** Every config section that has a ModelConfig field (maps, oneofs, enums) must serialize. */
const FULL_CONFIG = {
  maxBatchSize: 4,
  instanceGroup: [{ count: 1, kind: 'KIND_CPU' }],
  versionPolicy: { latest: { numVersions: 1 } },
  dynamicBatching: {
    preferredBatchSize: [2, 4],
    maxQueueDelayMicroseconds: 100,
    priorityLevels: 2,
    defaultPriorityLevel: 2,
    defaultQueuePolicy: { timeoutAction: 'DELAY', defaultTimeoutMicroseconds: 5000, allowTimeoutOverride: true, maxQueueSize: 16 },
    priorityQueuePolicy: { '1': { maxQueueSize: 8 } },
  },
  modelWarmup: [{ name: 'zeros', batchSize: 1, inputs: { x: { dataType: 'TYPE_FP32', dims: [4], zeroData: true } } }],
  parameters: { intra_op_thread_count: '1' },
};

type InferResponse = {
  model_name: string;
  model_version: string;
  id: string;
  outputs: Array<{ name: string; datatype: string; shape: number[]; contents: { fp32_contents: number[] } | null }>;
  raw_output_contents: Buffer[];
};

let s: Stack;
let fp32: Float32Array;
let uint8: Uint8Array;

const fp32Request = (extra: Record<string, unknown> = {}) => rawInfer('yolov8n', { name: 'images', datatype: 'FP32', shape: FP32_SHAPE, data: fp32 }, extra);

function detectionsOfRaw(res: InferResponse) {
  const o = res.outputs[0]!;
  const data = o.contents?.fp32_contents?.length ? Float32Array.from(o.contents.fp32_contents) : rawFloat32(res.raw_output_contents[0]!);
  return detectionsOfOutputs([{ shape: o.shape.map(Number), data }])!;
}

before(async () => {
  ({ fp32, uint8 } = await busInputs());
  const root = await makeRepo({
    yolov8n: { versions: { 1: MODEL_PATH } },
    yolov8n_uint8: { versions: { 1: uint8ModelBytes() } },
    tiny_full_config: { config: FULL_CONFIG, versions: { 1: tinyModelBytes(2) } },
  });
  s = await startStack(root, { maxReceiveMessageBytes: MAX_RECEIVE });
});

after(async () => {
  await s?.close();
});

describe('health and metadata RPCs', () => {
  test('ServerLive, ServerReady, ServerMetadata', async () => {
    assert.deepEqual((await call(s.client, 'ServerLive', {})).res, { live: true });
    assert.deepEqual((await call(s.client, 'ServerReady', {})).res, { ready: true });
    const md = (await call<{ name: string; extensions: string[] }>(s.client, 'ServerMetadata', {})).res!;
    assert.equal(md.name, 'osprey');
    for (const ext of ['model_repository', 'statistics', 'model_configuration']) assert.ok(md.extensions.includes(ext), ext);
  });

  test('ModelReady: true for a loaded model, false for an unknown one (as Triton)', async () => {
    assert.deepEqual((await call(s.client, 'ModelReady', { name: 'yolov8n', version: '' })).res, { ready: true });
    assert.deepEqual((await call(s.client, 'ModelReady', { name: 'yolov8n', version: '1' })).res, { ready: true });
    assert.deepEqual((await call(s.client, 'ModelReady', { name: 'no_such_model', version: '' })).res, { ready: false });
  });

  test('ModelMetadata: KServe tensors read from the model', async () => {
    const md = (await call<{ name: string; versions: string[]; inputs: Array<{ name: string; datatype: string; shape: number[] }>; outputs: Array<{ name: string; shape: number[] }> }>(s.client, 'ModelMetadata', { name: 'yolov8n' })).res!;
    assert.equal(md.name, 'yolov8n');
    assert.deepEqual(md.versions, ['1']);
    assert.deepEqual(md.inputs, [{ name: 'images', datatype: 'FP32', shape: FP32_SHAPE }]);
    assert.deepEqual(md.outputs[0]!.shape, [1, 84, 8400]);
    const u = (await call<{ inputs: Array<{ datatype: string; shape: number[] }> }>(s.client, 'ModelMetadata', { name: 'yolov8n_uint8' })).res!;
    assert.deepEqual(u.inputs[0], { name: 'images', datatype: 'UINT8', shape: UINT8_SHAPE });
  });

  test("ModelConfig: Triton's ModelConfig message with the metadata Ultralytics' client reads", async () => {
    const { config } = (await call<{ config: Record<string, any> }>(s.client, 'ModelConfig', { name: 'yolov8n' })).res!;
    assert.equal(config.name, 'yolov8n');
    assert.equal(config.platform, 'onnxruntime_onnx');
    assert.equal(config.input[0].data_type, 'TYPE_FP32');
    assert.equal(config.output[0].name, 'output0');
    assert.match(config.parameters.metadata.string_value, /'names': \{0: 'person'.*5: 'bus'/);
  });

  test('ModelConfig: dynamic batching (priority queue policies), warmup, version policy and instance groups serialize', async () => {
    const { config } = (await call<{ config: Record<string, any> }>(s.client, 'ModelConfig', { name: 'tiny_full_config' })).res!;
    assert.equal(config.max_batch_size, 4);
    assert.deepEqual(config.version_policy.latest, { num_versions: 1 });
    assert.equal(config.instance_group[0].kind, 'KIND_CPU');
    const db = config.dynamic_batching;
    assert.deepEqual(db.preferred_batch_size, [2, 4]);
    assert.equal(db.max_queue_delay_microseconds, 100);
    assert.equal(db.default_queue_policy.timeout_action, 'DELAY');
    assert.equal(db.priority_queue_policy['1'].max_queue_size, 8);
    assert.equal(config.model_warmup[0].inputs.x.zero_data, true);
    assert.equal(config.parameters.intra_op_thread_count.string_value, '1');
  });

  test('grpc.health.v1 Check: SERVING for the server and the inference service, NOT_FOUND for an unknown service', async () => {
    assert.deepEqual((await call(s.health, 'Check', { service: '' })).res, { status: 'SERVING' });
    assert.deepEqual((await call(s.health, 'Check', { service: 'inference.GRPCInferenceService' })).res, { status: 'SERVING' });
    const bad = await call(s.health, 'Check', { service: 'not.a.Service' });
    assert.equal(bad.err?.code, grpc.status.NOT_FOUND);
  });

  test('grpc.health.v1 Watch: the current status first', async () => {
    const stream = s.health.Watch!({ service: '' }) as grpc.ClientReadableStream<{ status: string }>;
    const first = await new Promise<{ status: string }>((resolve, reject) => {
      stream.once('data', resolve);
      stream.once('error', reject);
    });
    assert.equal(first.status, 'SERVING');
    stream.cancel();
  });
});

describe('ModelInfer', () => {
  let rawDetections: ReturnType<typeof detectionsOfRaw>;

  test('raw FP32 input, raw output: bus.jpg gives a bus and people', async () => {
    const { res, err } = await call<InferResponse>(s.client, 'ModelInfer', fp32Request({ id: 'req-1' }));
    assert.equal(err, undefined);
    assert.equal(res!.id, 'req-1');
    assert.equal(res!.model_name, 'yolov8n');
    assert.equal(res!.model_version, '1');
    assert.deepEqual(res!.outputs.map((o) => [o.name, o.datatype, o.shape]), [['output0', 'FP32', [1, 84, 8400]]]);
    assert.equal(res!.raw_output_contents[0]!.byteLength, 84 * 8400 * 4);
    rawDetections = detectionsOfRaw(res!);
    const classes = rawDetections[0]!.map((d) => d.classId);
    assert.ok(classes.includes(5), `a bus (class 5) in ${classes}`);
    assert.ok(classes.filter((c) => c === 0).length >= 3, `at least 3 people in ${classes}`);
  });

  test('typed FP32 contents in and out (binary_data_output: false) give the same answer', async () => {
    const req = {
      model_name: 'yolov8n',
      inputs: [{ name: 'images', datatype: 'FP32', shape: FP32_SHAPE, contents: { fp32_contents: Array.from(fp32) } }],
      parameters: { binary_data_output: { bool_param: false } },
    };
    const { res, err } = await call<InferResponse>(s.client, 'ModelInfer', req);
    assert.equal(err, undefined);
    assert.equal(res!.raw_output_contents.length, 0);
    assert.equal(res!.outputs[0]!.contents!.fp32_contents.length, 84 * 8400);
    const m = matchDetections(rawDetections[0]!, detectionsOfRaw(res!)[0]!);
    assert.equal(m.agreement, 1, `typed and raw paths agree: ${JSON.stringify(m)}`);
  });

  test('UINT8 input (raw and uint_contents) on the uint8-prefix model matches the FP32 answer', async () => {
    const raw = await call<InferResponse>(s.client, 'ModelInfer', rawInfer('yolov8n_uint8', { name: 'images', datatype: 'UINT8', shape: UINT8_SHAPE, data: uint8 }));
    assert.equal(raw.err, undefined);
    const typed = await call<InferResponse>(s.client, 'ModelInfer', {
      model_name: 'yolov8n_uint8',
      inputs: [{ name: 'images', datatype: 'UINT8', shape: UINT8_SHAPE, contents: { uint_contents: Array.from(uint8) } }],
    });
    assert.equal(typed.err, undefined);
    for (const r of [raw.res!, typed.res!]) {
      const m = matchDetections(rawDetections[0]!, detectionsOfRaw(r)[0]!);
      assert.ok(m.agreement >= 0.9, `uint8 vs fp32 agreement ${JSON.stringify(m)}`);
    }
  });

  test('ModelStreamInfer: 3 concurrent streams, each answered with its own ids; a bad request is answered in-band', async () => {
    const runStream = (k: number) =>
      new Promise<Array<{ error_message: string; infer_response: InferResponse }>>((resolve, reject) => {
        const stream = s.client.ModelStreamInfer!() as grpc.ClientDuplexStream<object, { error_message: string; infer_response: InferResponse }>;
        const got: Array<{ error_message: string; infer_response: InferResponse }> = [];
        stream.on('data', (m) => got.push(m));
        stream.on('error', reject);
        stream.on('end', () => resolve(got));
        for (let i = 0; i < 2; i++) stream.write(fp32Request({ id: `s${k}-${i}` }));
        if (k === 0) stream.write({ ...fp32Request({ id: 's0-bad' }), model_name: 'no_such_model' });
        stream.end();
      });
    const results = await Promise.all([0, 1, 2].map(runStream));
    results.forEach((got, k) => {
      const ok = got.filter((m) => m.error_message === '');
      assert.deepEqual(ok.map((m) => m.infer_response.id).sort(), [`s${k}-0`, `s${k}-1`]);
      for (const m of ok) assert.deepEqual(detectionsOfRaw(m.infer_response)[0]!.map((d) => d.classId), rawDetections[0]!.map((d) => d.classId));
    });
    const bad = results[0]!.find((m) => m.error_message !== '');
    assert.ok(bad, 'the bad request got an in-band answer');
    assert.match(bad.error_message, /^OSPREY_ERR_MODEL_NOT_FOUND: /);
    assert.equal(bad.infer_response.id, 's0-bad');
  });

  test('ModelStreamInfer: a client that cancels mid-stream does not disturb the server', async () => {
    const stream = s.client.ModelStreamInfer!() as grpc.ClientDuplexStream<object, unknown>;
    stream.on('error', () => undefined); // CANCELLED, expected
    stream.write(rawInfer('tiny_full_config', { name: 'x', datatype: 'FP32', shape: [1, 4], data: Float32Array.of(1, 2, 3, 4) }));
    stream.cancel();
    const { res, err } = await call<InferResponse>(s.client, 'ModelInfer', rawInfer('tiny_full_config', { name: 'x', datatype: 'FP32', shape: [1, 4], data: Float32Array.of(1, 2, 3, 4) }));
    assert.equal(err, undefined);
    assert.deepEqual([...rawFloat32(res!.raw_output_contents[0]!)], [2, 4, 6, 8]);
  });

  test('ModelStatistics: counts of this model, and every model with an empty name', async () => {
    const one = (await call<{ model_stats: Array<{ name: string; version: string; inference_count: number; inference_stats: { success: { count: number; ns: number } } }> }>(s.client, 'ModelStatistics', { name: 'yolov8n' })).res!;
    assert.equal(one.model_stats.length, 1);
    assert.equal(one.model_stats[0]!.version, '1');
    assert.ok(one.model_stats[0]!.inference_stats.success.count >= 8, `success count ${one.model_stats[0]!.inference_stats.success.count}`);
    assert.ok(one.model_stats[0]!.inference_stats.success.ns > 0);
    const all = (await call<{ model_stats: Array<{ name: string }> }>(s.client, 'ModelStatistics', {})).res!;
    assert.deepEqual([...new Set(all.model_stats.map((m) => m.name))].sort(), ['tiny_full_config', 'yolov8n', 'yolov8n_uint8']);
    const unknown = await call(s.client, 'ModelStatistics', { name: 'no_such_model' });
    assert.equal(unknown.err?.code, grpc.status.NOT_FOUND);
  });
});

describe('repository RPCs', () => {
  test('RepositoryIndex lists versions and states', async () => {
    const { models } = (await call<{ models: Array<{ name: string; version: string; state: string }> }>(s.client, 'RepositoryIndex', {})).res!;
    assert.deepEqual(
      models.filter((m) => m.name.startsWith('yolov8n')).map((m) => [m.name, m.version, m.state]),
      [['yolov8n', '1', 'READY'], ['yolov8n_uint8', '1', 'READY']],
    );
  });

  test('RepositoryModelUnload → not ready (UNAVAILABLE on infer) → RepositoryModelLoad → serving again', async () => {
    assert.equal((await call(s.client, 'RepositoryModelUnload', { model_name: 'yolov8n_uint8' })).err, undefined);
    assert.deepEqual((await call(s.client, 'ModelReady', { name: 'yolov8n_uint8' })).res, { ready: false });
    const r = await call(s.client, 'ModelInfer', rawInfer('yolov8n_uint8', { name: 'images', datatype: 'UINT8', shape: UINT8_SHAPE, data: uint8 }));
    assert.equal(r.err?.code, grpc.status.UNAVAILABLE);
    assert.equal(errorCode(r.err), 'OSPREY_ERR_MODEL_NOT_READY');
    assert.equal((await call(s.client, 'RepositoryModelLoad', { model_name: 'yolov8n_uint8' })).err, undefined);
    assert.deepEqual((await call(s.client, 'ModelReady', { name: 'yolov8n_uint8' })).res, { ready: true });
  });

  test("RepositoryModelLoad with pushed model bytes (Triton's config + file:<version>/<name> parameters)", async () => {
    const load = await call(s.client, 'RepositoryModelLoad', {
      model_name: 'pushed_tiny',
      parameters: { config: { string_param: JSON.stringify({ maxBatchSize: 4 }) }, 'file:1/model.onnx': { bytes_param: Buffer.from(tinyModelBytes(2)) } },
    });
    assert.equal(load.err, undefined);
    const { res } = await call<InferResponse>(s.client, 'ModelInfer', rawInfer('pushed_tiny', { name: 'x', datatype: 'FP32', shape: [1, 4], data: Float32Array.of(1, 2, 3, 4) }));
    assert.deepEqual([...rawFloat32(res!.raw_output_contents[0]!)], [2, 4, 6, 8]);
    const noConfig = await call(s.client, 'RepositoryModelLoad', { model_name: 'pushed_tiny', parameters: { 'file:1/model.onnx': { bytes_param: Buffer.from(tinyModelBytes(2)) } } });
    assert.equal(noConfig.err?.code, grpc.status.INVALID_ARGUMENT);
  });

  test('RepositoryModelLoad of an unknown model: NOT_FOUND', async () => {
    const r = await call(s.client, 'RepositoryModelLoad', { model_name: 'no_such_model' });
    assert.equal(r.err?.code, grpc.status.NOT_FOUND);
    assert.equal(errorCode(r.err), 'OSPREY_ERR_MODEL_NOT_FOUND');
  });
});

describe('bad input: the catalogue status, and the server keeps serving', () => {
  test('unknown model → NOT_FOUND (OSPREY_ERR_MODEL_NOT_FOUND)', async () => {
    const r = await call(s.client, 'ModelInfer', { ...fp32Request(), model_name: 'no_such_model' });
    assert.equal(r.err?.code, grpc.status.NOT_FOUND);
    assert.equal(errorCode(r.err), 'OSPREY_ERR_MODEL_NOT_FOUND');
    const md = await call(s.client, 'ModelMetadata', { name: 'no_such_model' });
    assert.equal(md.err?.code, grpc.status.NOT_FOUND);
  });

  test('wrong input name → INVALID_ARGUMENT (OSPREY_ERR_INVALID_TENSOR)', async () => {
    const r = await call(s.client, 'ModelInfer', rawInfer('yolov8n', { name: 'pixels', datatype: 'FP32', shape: FP32_SHAPE, data: fp32 }));
    assert.equal(r.err?.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(errorCode(r.err), 'OSPREY_ERR_INVALID_TENSOR');
    assert.match(r.err!.details, /'pixels'/);
  });

  test('raw_input_contents count differs from inputs → INVALID_ARGUMENT (OSPREY_ERR_INVALID_TENSOR)', async () => {
    const req = fp32Request();
    (req.raw_input_contents as Buffer[]).push(Buffer.alloc(16));
    const r = await call(s.client, 'ModelInfer', req);
    assert.equal(r.err?.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(errorCode(r.err), 'OSPREY_ERR_INVALID_TENSOR');
    assert.match(r.err!.details, /2 entries but the request lists 1 inputs/);
  });

  test('raw_input_contents byte size does not match the shape → INVALID_ARGUMENT (OSPREY_ERR_INVALID_TENSOR)', async () => {
    const r = await call(s.client, 'ModelInfer', rawInfer('yolov8n', { name: 'images', datatype: 'FP32', shape: FP32_SHAPE, data: fp32.subarray(0, fp32.length - 1) }));
    assert.equal(r.err?.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(errorCode(r.err), 'OSPREY_ERR_INVALID_TENSOR');
    assert.match(r.err!.details, /4915196 bytes but shape \[1, 3, 640, 640\] of FP32 needs 4915200/);
  });

  test('typed contents with the wrong element count, or in the wrong field → INVALID_ARGUMENT (OSPREY_ERR_INVALID_TENSOR)', async () => {
    const short = await call(s.client, 'ModelInfer', { model_name: 'yolov8n', inputs: [{ name: 'images', datatype: 'FP32', shape: FP32_SHAPE, contents: { fp32_contents: [1, 2, 3] } }] });
    assert.equal(short.err?.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(errorCode(short.err), 'OSPREY_ERR_INVALID_TENSOR');
    const wrongField = await call(s.client, 'ModelInfer', { model_name: 'yolov8n', inputs: [{ name: 'images', datatype: 'FP32', shape: [1, 3], contents: { int_contents: [1, 2, 3] } }] });
    assert.equal(errorCode(wrongField.err), 'OSPREY_ERR_INVALID_TENSOR');
  });

  test('a datatype the model does not take → INVALID_ARGUMENT (OSPREY_ERR_INVALID_TENSOR)', async () => {
    const r = await call(s.client, 'ModelInfer', rawInfer('yolov8n', { name: 'images', datatype: 'UINT8', shape: FP32_SHAPE, data: new Uint8Array(3 * 640 * 640) }));
    assert.equal(r.err?.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(errorCode(r.err), 'OSPREY_ERR_INVALID_TENSOR');
  });

  test('malformed protobuf (raw bytes through a generic client call) → INVALID_ARGUMENT (OSPREY_ERR_MALFORMED_REQUEST)', async () => {
    // Field 1 (model_name), wire type 2, declared length 100, only 2 bytes follow.
    const garbage = Buffer.from([0x0a, 100, 0x41, 0x42]);
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      s.client.makeUnaryRequest('/inference.GRPCInferenceService/ModelInfer', (b: Buffer) => b, (b: Buffer) => b, garbage, (e) => resolve(e));
    });
    assert.equal(err?.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(errorCode(err ?? undefined), 'OSPREY_ERR_MALFORMED_REQUEST');
  });

  test('a message over the configured max receive size → RESOURCE_EXHAUSTED', async () => {
    const big = new Float32Array(MAX_RECEIVE / 4 + 1024);
    const r = await call(s.client, 'ModelInfer', rawInfer('yolov8n', { name: 'images', datatype: 'FP32', shape: [big.length], data: big }));
    assert.equal(r.err?.code, grpc.status.RESOURCE_EXHAUSTED);
  });

  test('after all of that the server still serves', async () => {
    assert.deepEqual((await call(s.client, 'ServerReady', {})).res, { ready: true });
    const { err } = await call(s.client, 'ModelInfer', fp32Request());
    assert.equal(err, undefined);
  });
});
