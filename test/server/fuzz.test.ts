/**
 * Fuzz-style robustness of the HTTP and gRPC decoders: a few thousand requests, random and mutated from valid
 * ones (seeded, so a failure replays), against a real `osprey serve` on 127.0.0.1 with real ONNX Runtime (a tiny
 * `y = 2x` graph for /infer, the shared yolov8n for /detect). Every answer must be a success or a 4xx with a code —
 * never a 5xx, never a dropped server — and memory must stay flat.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import sharp from 'sharp';
import { loadGrpcDefinitions } from '../../src/server/grpc/proto.js';
import { startServer, type OspreyServer } from '../../src/server/server.js';
import { tinyModelBytes } from '../support/stack.js';
import { rng } from '../support/rng.js';
import { addModel, SHARED_DATA_DIR, tempDir } from '../support/server.js';

const HTTP_CASES = 2500;
const DETECT_CASES = 150;
const GRPC_CASES = 1500;

let tmp: { path: string; remove: () => Promise<void> };
let server: OspreyServer;
let smallPng: Buffer;

before(async () => {
  tmp = await tempDir('osprey-fuzz-');
  const root = join(tmp.path, 'repo');
  await mkdir(join(root, 'tiny', '1'), { recursive: true });
  await writeFile(join(root, 'tiny', '1', 'model.onnx'), tinyModelBytes(2));
  await writeFile(join(root, 'tiny', 'config.json'), JSON.stringify({ maxBatchSize: 4, instanceGroup: [{ count: 1, kind: 'KIND_CPU' }], dynamicBatching: {} }));
  await addModel(root, 'yolo', { config: { instanceGroup: [{ count: 1, kind: 'KIND_CPU' }] } });
  server = await startServer({
    modelRepository: root,
    host: '127.0.0.1',
    httpPort: 0,
    grpcPort: 0,
    executionProviders: ['cpu'],
    logLevel: 'silent',
    gpuMetrics: false,
    allowedSymlinkTargets: [SHARED_DATA_DIR],
    maxBodyBytes: 4 * 1024 * 1024,
  });
  smallPng = await sharp({ create: { width: 48, height: 32, channels: 3, background: { r: 200, g: 30, b: 90 } } }).png().toBuffer();
});
after(async () => {
  await server?.close();
  await tmp?.remove();
});

type R = () => number;
const pick = <T>(r: R, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const int = (r: R, n: number) => Math.floor(r() * n);

/** Mutations of a byte string: flips, truncation, insertion, duplication, deletion. */
function mutate(r: R, input: Buffer): Buffer {
  let b: Buffer = Buffer.from(input);
  const rounds = 1 + int(r, 4);
  for (let k = 0; k < rounds; k++) {
    const op = int(r, 6);
    if (b.length === 0) b = Buffer.from([int(r, 256)]);
    const at = int(r, b.length);
    if (op === 0) b[at] = int(r, 256);
    else if (op === 1) b = b.subarray(0, at);
    else if (op === 2) b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + int(r, 16) }, () => int(r, 256))), b.subarray(at)]);
    else if (op === 3) b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + 1 + int(r, 64)), b.subarray(at)]);
    else if (op === 4) b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(r, 32)))]);
    else b[at] = pick(r, [0x7b, 0x7d, 0x5b, 0x5d, 0x22, 0x2c, 0x3a, 0x30, 0x2d, 0x65]); // JSON punctuation
  }
  return b;
}

const tensorJson = (r: R) => ({
  name: pick(r, ['x', 'x', 'y', '', 'images']),
  shape: pick(r, [[1, 4], [2, 4], [4], [1, 5], [0, 4], [5, 4], [-1, 4]]),
  datatype: pick(r, ['FP32', 'FP32', 'UINT8', 'INT64', 'FP16', 'BOOL', 'NOPE']),
  data: pick(r, [[1, 2, 3, 4], [[1, 2, 3, 4]], [1, 2, 3], ['a', 1, 2, 3], [1e308, -1e308, 0, 1], [true, false, 1, 0], []]),
});

function httpCase(r: R): { path: string; method: string; body?: Uint8Array; headers: Record<string, string> } {
  const kind = int(r, 10);
  const headers: Record<string, string> = { 'content-type': pick(r, ['application/json', 'application/octet-stream', 'text/plain', 'multipart/form-data; boundary=zz']) };
  if (kind <= 3) {
    const body = Buffer.from(JSON.stringify({ id: 'f', inputs: [tensorJson(r)], ...(r() < 0.3 ? { parameters: { priority: pick(r, [0, 1, -1, 'x', 1.5]), timeout: pick(r, [0, 10, -5]) } } : {}), ...(r() < 0.3 ? { outputs: [{ name: pick(r, ['y', 'z']) }] } : {}) }));
    return { path: pick(r, ['/v2/models/tiny/infer', '/v2/models/tiny/versions/1/infer', '/v2/models/tiny/versions/9/infer']), method: 'POST', body: r() < 0.7 ? mutate(r, body) : body, headers };
  }
  if (kind <= 5) {
    const data = new Float32Array([1, 2, 3, 4]);
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: pick(r, [16, 16, 15, 0, -1, 1e9]) } }], outputs: [{ name: 'y', parameters: { binary_data: r() < 0.5 } }] }));
    let body: Buffer = Buffer.concat([header, Buffer.from(data.buffer)]);
    if (r() < 0.6) body = mutate(r, body);
    headers['inference-header-content-length'] = String(pick(r, [header.length, header.length, 0, body.length + 5, -3, 'abc' as unknown as number, header.length - 1]));
    return { path: '/v2/models/tiny/infer', method: 'POST', body, headers };
  }
  if (kind === 6) {
    const body = Buffer.from(JSON.stringify(pick(r, [{ ready: true }, { parameters: { config: '{' } }, { parameters: { 'file:../x': 'AAAA' } }, []])));
    return { path: pick(r, ['/v2/repository/index', '/v2/repository/models/tiny/load', '/v2/repository/models/tiny/unload', '/v2/repository/models/../load']), method: 'POST', body: r() < 0.5 ? mutate(r, body) : body, headers };
  }
  if (kind === 7) {
    return { path: pick(r, ['/v2', '/v2/models/tiny', '/v2/models/tiny/ready', '/v2/models/tiny/config', '/v2/models/tiny/stats', '/v2/models/nope', '/v2/models/tiny/versions/abc', '/v2/health/ready', '/metrics', '/%2e%2e/etc/passwd', '/v2/models/%00/infer']), method: pick(r, ['GET', 'GET', 'POST', 'DELETE', 'PUT']), headers };
  }
  // random bytes to random routes
  const body: Buffer = Buffer.from(Array.from({ length: int(r, 600) }, () => int(r, 256)));
  return { path: pick(r, ['/v2/models/tiny/infer', '/v2/models/tiny/detect', '/v2/repository/index']), method: 'POST', body, headers };
}

async function rssMiB(): Promise<number> {
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((r) => setTimeout(r, 50));
  return process.memoryUsage().rss / 2 ** 20;
}

describe('fuzzed requests: success or 4xx, never 5xx, the server keeps serving, memory flat', () => {
  it(`HTTP: ${HTTP_CASES} random and mutated KServe v2 requests (seed 1729)`, async () => {
    const r = rng(1729);
    const statuses = new Map<number, number>();
    const before = await rssMiB();
    const batch = 8;
    for (let i = 0; i < HTTP_CASES; i += batch) {
      await Promise.all(
        Array.from({ length: Math.min(batch, HTTP_CASES - i) }, async (_, j) => {
          const c = httpCase(r);
          const res = await fetch(server.url + c.path, { method: c.method, headers: c.headers, ...(c.body && c.method !== 'GET' ? { body: new Uint8Array(c.body) } : {}) });
          const text = await res.text();
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          assert.ok(res.status < 500, `case ${i + j}: ${c.method} ${c.path} → ${res.status} ${text.slice(0, 300)}`);
          if (res.status >= 400 && res.status !== 404 && c.path !== '/metrics') assert.match(text, /"code":"OSPREY_ERR_[A-Z_]+"/, `case ${i + j}: ${text.slice(0, 200)}`);
        }),
      );
    }
    const grown = (await rssMiB()) - before;
    console.log(`HTTP fuzz statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}; RSS ${grown >= 0 ? '+' : ''}${grown.toFixed(0)} MiB`);
    assert.ok((statuses.get(200) ?? 0) > 50, 'some mutated requests must still succeed (the generator reaches inference)');
    assert.ok(grown < 150, `RSS grew ${grown.toFixed(0)} MiB`);
    assert.equal((await fetch(`${server.url}/v2/health/ready`)).status, 200);
  });

  it(`HTTP /detect: ${DETECT_CASES} mutated PNG bodies and multipart forms (seed 7)`, async () => {
    const r = rng(7);
    const statuses = new Map<number, number>();
    for (let i = 0; i < DETECT_CASES; i++) {
      let res: Response;
      if (r() < 0.5) {
        res = await fetch(`${server.url}/v2/models/yolo/detect?conf=${pick(r, ['0.25', '2', 'x', ''])}`, { method: 'POST', body: mutate(r, smallPng), headers: { 'content-type': 'image/png' } });
      } else {
        const boundary = 'b0undary';
        const part = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n`), smallPng, Buffer.from(`\r\n--${boundary}--\r\n`)]);
        res = await fetch(`${server.url}/v2/models/yolo/detect`, { method: 'POST', body: r() < 0.8 ? mutate(r, part) : part, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } });
      }
      const text = await res.text();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      assert.ok(res.status < 500, `detect case ${i} → ${res.status} ${text.slice(0, 300)}`);
    }
    console.log(`detect fuzz statuses: ${JSON.stringify(Object.fromEntries(statuses))}`);
    assert.ok((statuses.get(200) ?? 0) > 0);
  });

  it(`gRPC: ${GRPC_CASES} mutated ModelInferRequest / RepositoryIndex protobufs (seed 4242): no INTERNAL, UNKNOWN or crash`, async () => {
    const r = rng(4242);
    const defs = loadGrpcDefinitions();
    const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
    const infer = defs.inference.ModelInfer!;
    const valid = (): Buffer =>
      infer.requestSerialize({
        model_name: pick(r, ['tiny', 'tiny', 'nope', '']),
        model_version: pick(r, ['', '1', '7']),
        inputs: [{ name: pick(r, ['x', 'q']), datatype: pick(r, ['FP32', 'UINT8', 'BYTES']), shape: pick(r, [[1, 4], [2, 4], [4]]) }],
        raw_input_contents: [Buffer.from(new Float32Array(pick(r, [4, 8, 3])).buffer)],
        parameters: r() < 0.3 ? { priority: { int64_param: pick(r, [0, 1, 99]) } } : {},
      });
    const codes = new Map<number, number>();
    const before = await rssMiB();
    try {
      for (let i = 0; i < GRPC_CASES; i += 8) {
        await Promise.all(
          Array.from({ length: Math.min(8, GRPC_CASES - i) }, async () => {
            const method = r() < 0.85 ? '/inference.GRPCInferenceService/ModelInfer' : '/inference.GRPCInferenceService/RepositoryIndex';
            const bytes = r() < 0.15 ? Buffer.from(Array.from({ length: int(r, 200) }, () => int(r, 256))) : r() < 0.3 ? valid() : mutate(r, valid());
            const code = await new Promise<number>((resolve) => {
              client.makeUnaryRequest(method, (b: Buffer) => b, (b: Buffer) => b, bytes, (err) => resolve(err ? err.code : 0));
            });
            codes.set(code, (codes.get(code) ?? 0) + 1);
            assert.ok(![grpc.status.INTERNAL, grpc.status.UNKNOWN, grpc.status.DATA_LOSS, grpc.status.UNAVAILABLE].includes(code), `gRPC status ${code} for ${method}`);
          }),
        );
      }
    } finally {
      client.close();
    }
    const grown = (await rssMiB()) - before;
    console.log(`gRPC fuzz codes: ${JSON.stringify(Object.fromEntries(codes))}; RSS ${grown >= 0 ? '+' : ''}${grown.toFixed(0)} MiB`);
    assert.ok((codes.get(0) ?? 0) > 20, 'some mutated requests must still succeed');
    assert.ok(grown < 150, `RSS grew ${grown.toFixed(0)} MiB`);
  });
});
