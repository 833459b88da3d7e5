/**
 * The server metrics rules and dashboards read (issue 15): `osprey_requests_total{outcome}` with every outcome at 0
 * from a version's first request, 4xx/5xx split by the error catalogue; `osprey_model_ready` for every model the
 * repository knows (a model that failed to load included); `osprey_server_ready` and `osprey_inflight_requests`
 * through a drain (scrapes are answered while draining). On a real server (tiny ONNX model, ONNX Runtime, HTTP on 127.0.0.1).
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { failureOutcome } from '../../src/metrics/server-metrics.js';
import { startServer, type OspreyServer } from '../../src/server/server.js';
import { tempDir, tinyRepository } from '../support/processes.js';

/** The value of one series in a Prometheus text exposition, or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

describe('server metrics for rules and dashboards', () => {
  let tmp: { path: string; remove: () => Promise<void> };
  let server: OspreyServer;
  before(async () => {
    tmp = await tempDir('osprey-metrics-');
    const root = await tinyRepository(join(tmp.path, 'repo'), 100);
    await mkdir(join(root, 'unloadable', '1'), { recursive: true });
    await writeFile(join(root, 'unloadable', '1', 'model.onnx'), 'not an onnx model');
    server = await startServer({ modelRepository: root, host: '127.0.0.1', httpPort: 0, grpcPort: null, executionProviders: ['cpu'], logLevel: 'silent', gpuMetrics: false, drainTimeoutMs: 5000 });
  });
  after(async () => {
    await server?.close();
    await tmp?.remove();
  });
  const metrics = async () => (await fetch(`${server.url}/metrics`)).text();
  const infer = (data: number[], shape = [1, 4]) =>
    fetch(`${server.url}/v2/models/tiny/infer`, { method: 'POST', body: JSON.stringify({ inputs: [{ name: 'x', shape, datatype: 'FP32', data }] }), headers: { 'content-type': 'application/json' } });

  it('failureOutcome: 4xx codes are client errors, 5xx and unknown codes server errors', () => {
    assert.equal(failureOutcome('OSPREY_ERR_INVALID_TENSOR'), 'client_error');
    assert.equal(failureOutcome('OSPREY_ERR_INFERENCE_FAILED'), 'server_error');
    assert.equal(failureOutcome('OSPREY_ERR_SHUTTING_DOWN'), 'server_error');
    assert.equal(failureOutcome('NOT_A_CODE'), 'server_error');
    assert.equal(failureOutcome(undefined), 'server_error');
  });

  it('osprey_requests_total: all three outcomes exist from the first request; a bad shape counts as client_error', async () => {
    assert.equal((await infer([1, 2, 3, 4])).status, 200);
    let text = await metrics();
    assert.equal(sample(text, 'osprey_requests_total', { model: 'tiny', outcome: 'success' }), 1);
    assert.equal(sample(text, 'osprey_requests_total', { model: 'tiny', outcome: 'client_error' }), 0);
    assert.equal(sample(text, 'osprey_requests_total', { model: 'tiny', outcome: 'server_error' }), 0);
    assert.equal((await infer([1, 2, 3], [1, 3])).status, 400);
    text = await metrics();
    assert.equal(sample(text, 'osprey_requests_total', { model: 'tiny', outcome: 'client_error' }), 1);
    assert.equal(sample(text, 'osprey_requests_total', { model: 'tiny', outcome: 'server_error' }), 0);
  });

  it('osprey_model_ready: 1 for the loaded model, 0 for the one that failed to load', async () => {
    const text = await metrics();
    assert.equal(sample(text, 'osprey_model_ready', { model: 'tiny' }), 1);
    assert.equal(sample(text, 'osprey_model_ready', { model: 'unloadable' }), 0);
    assert.equal(sample(text, 'osprey_server_ready'), 1);
    assert.equal(sample(text, 'osprey_inflight_requests'), 0);
  });

  it('osprey_inflight_requests counts what a drain waits for; osprey_server_ready is 0 while draining', async () => {
    // beginRequest() is what the HTTP and gRPC front ends call for each tracked request (src/server/http.ts).
    const done = server.service.beginRequest();
    let text = await metrics();
    assert.equal(sample(text, 'osprey_inflight_requests'), 1);
    server.service.startDraining();
    text = await metrics();
    assert.equal(sample(text, 'osprey_server_ready'), 0, 'readiness goes false at the start of the drain');
    assert.equal(sample(text, 'osprey_inflight_requests'), 1);
    done();
    assert.equal(sample(await metrics(), 'osprey_inflight_requests'), 0);
  });
});
