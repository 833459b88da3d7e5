/**
 * `osprey serve`'s assembly (src/server/server.ts startServer) with gRPC on its own port beside HTTP: both
 * protocols over the same routed service — an alias answers the same arm for the same sticky key on HTTP and gRPC,
 * the HTTP stats endpoint and /metrics carry the per-arm numbers, and shutdown closes the gRPC port too.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { startServer, type OspreyServer } from '../../src/server/server.js';
import { loadGrpcDefinitions } from '../../src/server/grpc/proto.js';
import { call, makeRepo, rawInfer, SHARED_DATA_DIR, tinyModelBytes, type Stack } from '../support/stack.js';

let server: OspreyServer;
let client: Stack['client'];
let root: string;

before(async () => {
  root = await makeRepo(
    { tiny: { config: { maxBatchSize: 8, versionPolicy: { all: {} } }, versions: { 1: tinyModelBytes(2), 2: tinyModelBytes(3) } } },
    { ab: { arms: [{ name: 'a', model: 'tiny', version: 1, weight: 50 }, { name: 'b', model: 'tiny', version: 2, weight: 50 }] } },
  );
  server = await startServer({ modelRepository: root, host: '127.0.0.1', httpPort: 0, grpcPort: 0, executionProviders: ['cpu'], logLevel: 'silent', gpuMetrics: false, allowedSymlinkTargets: [SHARED_DATA_DIR] });
  const defs = loadGrpcDefinitions();
  client = new defs.InferenceClient(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure()) as Stack['client'];
});

after(async () => {
  client?.close();
  await server?.close();
});

test('gRPC and HTTP are both up on their own ports', async () => {
  assert.ok(server.grpcPort! > 0);
  assert.deepEqual((await call(client, 'ServerReady', {})).res, { ready: true });
  assert.equal((await fetch(`${server.url}/v2/health/ready`)).status, 200);
});

test('an alias picks the same arm for the same routing_key over HTTP and gRPC; HTTP answers carry routing_arm', async () => {
  for (const key of ['cam-1', 'cam-2', 'cam-3', 'cam-4', 'cam-5', 'cam-6']) {
    const g = await call<{ parameters: Record<string, { string_param: string }> }>(
      client,
      'ModelInfer',
      rawInfer('ab', { name: 'x', datatype: 'FP32', shape: [1, 4], data: Float32Array.of(1, 1, 1, 1) }, { parameters: { routing_key: { string_param: key } } }),
    );
    const h = await fetch(`${server.url}/v2/models/ab/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ parameters: { routing_key: key }, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 1, 1, 1] }] }),
    });
    assert.equal(h.status, 200);
    const body = (await h.json()) as { model_name: string; parameters: { routing_arm: string }; outputs: Array<{ data: number[] }> };
    assert.equal(body.model_name, 'ab');
    assert.equal(body.parameters.routing_arm, g.res!.parameters.routing_arm!.string_param, key);
    assert.deepEqual(body.outputs[0]!.data, body.parameters.routing_arm === 'a' ? [2, 2, 2, 2] : [3, 3, 3, 3]);
  }
});

test('the HTTP stats endpoint and /metrics report per-arm numbers', async () => {
  const stats = (await (await fetch(`${server.url}/v2/models/ab/stats`)).json()) as { model_stats: Array<{ name: string; version: string; inference_stats: { success: { count: number } } }> };
  const total = stats.model_stats.reduce((n, m) => n + m.inference_stats.success.count, 0);
  assert.equal(total, 12);
  assert.ok(stats.model_stats.every((m) => m.name === 'ab' && ['a', 'b'].includes(m.version)));
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(metrics, /osprey_route_requests_total\{alias="ab",arm="[ab]",role="primary",outcome="success"\} \d+/);
});

test('shutdown: a health Watch sees NOT_SERVING, then the gRPC port closes', async () => {
  const health = new (loadGrpcDefinitions().HealthClient)(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure()) as Stack['client'];
  const watch = health.Watch!({ service: '' }) as grpc.ClientReadableStream<{ status: string }>;
  const statuses: string[] = [];
  const ended = new Promise<void>((resolve) => {
    watch.on('data', (m: { status: string }) => statuses.push(m.status));
    watch.on('end', () => resolve());
    watch.on('error', () => resolve());
  });
  while (statuses.length === 0) await new Promise((r) => setTimeout(r, 10));
  await server.close();
  await ended;
  health.close();
  assert.deepEqual(statuses, ['SERVING', 'NOT_SERVING']);
  const r = await call(client, 'ServerLive', {}, { deadline: Date.now() + 2000 });
  assert.ok(r.err && [grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED].includes(r.err.code), `got ${r.err?.code}`);
});
