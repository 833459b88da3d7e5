/**
 * `osprey bench server` bad inputs that need no model server: unreachable URLs (closed port; a socket that
 * accepts and never answers), zero/negative rates and malformed ranges.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { isOspreyError } from '../../src/core/errors.js';
import { parseRange, runServerBench, type ServerBenchOptions } from '../../src/bench/server-bench.js';
import { parseTritonStats, parseServerConfig } from '../../src/bench/transport.js';

const base = (url: string): ServerBenchOptions => ({
  url,
  model: 'yolov8n',
  protocol: 'http',
  concurrency: [1],
  input: 'random',
  percentile: 99,
  measurementIntervalMs: 500,
  warmupMs: 100,
  maxRequestsPerStep: 100,
  maxDurationMs: 5000,
  connectTimeoutMs: 500,
  command: 'test',
});

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('bench server: unreachable server (closed port) → OSPREY_ERR_UNREACHABLE quickly', async () => {
  const port = await freePort();
  const t0 = performance.now();
  await assert.rejects(runServerBench(base(`http://127.0.0.1:${port}`)), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_UNREACHABLE') && /ECONNREFUSED/.test(e.message));
  assert.ok(performance.now() - t0 < 3000);
});

test('bench server: a server that accepts and never answers → OSPREY_ERR_UNREACHABLE after the connect timeout, no hang', async (t) => {
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((s) => sockets.add(s)); // a real socket that never writes: the fault we need
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const port = (silent.address() as net.AddressInfo).port;
  await assert.rejects(runServerBench(base(`http://127.0.0.1:${port}`)), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_UNREACHABLE') && /500 ms/.test(e.message));
});

test('bench server: zero or negative rates and concurrency → OSPREY_ERR_USAGE', async () => {
  const usage = (e: unknown) => isOspreyError(e, 'OSPREY_ERR_USAGE');
  assert.throws(() => parseRange('0:8', '--concurrency-range'), usage);
  assert.throws(() => parseRange('-2', '--request-rate-range', { integer: false }), usage);
  assert.throws(() => parseRange('1:8:0', '--concurrency-range'), usage);
  assert.throws(() => parseRange('8:1', '--concurrency-range'), usage);
  assert.throws(() => parseRange('1:abc', '--concurrency-range'), usage);
  assert.throws(() => parseRange('1:0', '--concurrency-range'), usage); // open end without a threshold
  assert.throws(() => parseRange('1:8:x1', '--concurrency-range'), usage);
  await assert.rejects(runServerBench({ ...base('http://127.0.0.1:1'), concurrency: undefined, requestRates: [0] }), usage);
  await assert.rejects(runServerBench({ ...base('http://127.0.0.1:1'), concurrency: undefined, requestRates: [-5] }), usage);
  await assert.rejects(runServerBench({ ...base('http://127.0.0.1:1'), concurrency: [0] }), usage);
  await assert.rejects(runServerBench({ ...base('not a url') }), usage);
  await assert.rejects(runServerBench({ ...base('http://127.0.0.1:1'), percentile: 0 }), usage);
});

test('bench server: ranges follow perf_analyzer (additive step), x2 multiplies, end 0 runs to the cap', () => {
  assert.deepEqual(parseRange('1:8:2', '--concurrency-range'), [1, 3, 5, 7]);
  assert.deepEqual(parseRange('1:64:x2', '--concurrency-range'), [1, 2, 4, 8, 16, 32, 64]);
  assert.deepEqual(parseRange('4', '--concurrency-range'), [4]);
  assert.deepEqual(parseRange('2:4', '--concurrency-range'), [2, 3, 4]);
  assert.deepEqual(parseRange('0.5:1.5:0.5', '--request-rate-range', { integer: false }), [0.5, 1, 1.5]);
  assert.equal(parseRange('1:0:x2', '--concurrency-range', { integer: true, allowOpenEnd: true, openEndCap: 16 }).at(-1), 16);
});

test('bench server: Triton statistics and config JSON are read (snake_case and camelCase)', () => {
  const stats = {
    model_stats: [
      { name: 'm', version: '1', execution_count: 3, inference_stats: { success: { count: 10, ns: 1e9 }, queue: { count: 10, ns: 2e6 }, compute_input: { count: 10, ns: 1e6 }, compute_infer: { count: 10, ns: 5e8 }, compute_output: { count: 10, ns: 3e6 } } },
      { name: 'm', version: '2', execution_count: '2', inference_stats: { success: { count: '5', ns: '1' }, queue: { count: 5, ns: 1e6 } } },
    ],
  };
  assert.deepEqual(parseTritonStats(stats, 'm'), { successCount: 15, executionCount: 5, queueNs: 3e6, computeInputNs: 1e6, computeInferNs: 5e8, computeOutputNs: 3e6 });
  assert.equal(parseTritonStats(stats, 'other'), null);
  assert.equal(parseTritonStats({}, 'm'), null);
  assert.deepEqual(parseServerConfig({ max_batch_size: 8, instance_group: [{ count: 2 }, { count: 1 }], dynamic_batching: { max_queue_delay_microseconds: 500 } }), { maxBatchSize: 8, instances: 3, maxQueueDelayMicroseconds: 500 });
  assert.deepEqual(parseServerConfig({ config: { maxBatchSize: 4, instanceGroup: [{ count: 2 }], dynamicBatching: {} } }), { maxBatchSize: 4, instances: 2, maxQueueDelayMicroseconds: 0 });
});

test('bench server: --input that is not a directory → OSPREY_ERR_FILE_NOT_FOUND; a directory with no images → OSPREY_ERR_NO_IMAGES', async (t) => {
  const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'osprey-bench-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'notes.txt'), 'not an image');
  await assert.rejects(runServerBench({ ...base('http://127.0.0.1:1'), input: join(dir, 'absent') }), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_FILE_NOT_FOUND'));
  await assert.rejects(runServerBench({ ...base('http://127.0.0.1:1'), input: dir }), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_NO_IMAGES'));
});

test('bench search: a zero latency budget → OSPREY_ERR_USAGE (before anything loads)', async () => {
  const { runSearch } = await import('../../src/bench/search.js');
  await assert.rejects(
    runSearch({ model: 'unused.onnx', latencyBudgetMs: 0, concurrency: [1], percentile: 99, measurementIntervalMs: 100, warmupMs: 0, input: 'random', maxDurationMs: 100, command: 'test' }),
    (e: unknown) => isOspreyError(e, 'OSPREY_ERR_USAGE'),
  );
});
