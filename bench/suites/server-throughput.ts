/**
 * `osprey serve` against the engine alone, measured in one run (a benchmark, not a test):
 *
 * 1. engine alone: `instances` ONNX Runtime sessions (worker_threads) each running batches of `batch` images back to
 *    back (the best the hardware does at that batch size and instance count);
 * 2. the server: the same model, `maxBatchSize = batch`, `preferredBatchSize [batch]`, `instanceGroup.count =
 *    instances`, fed by `2 × batch × instances` concurrent single-image KServe binary infer requests (Triton's
 *    max-throughput rule of thumb) from a load-generator worker thread, while a prober in that worker measures
 *    `GET /v2/health/ready` latency and the server's main thread measures its event-loop delay;
 * 3. repeated for `rounds` rounds, alternating which side goes first (this machine is shared: load drifts), the
 *    median of the per-round ratios is the result.
 *
 * Ratios printed: server images/s ÷ engine images/s (target ≥ 0.9 on CPU), event-loop delay p99 (target < 20 ms),
 * ready-probe latency p99 (target < 10 ms). The load generator shares the machine with the server (on a real
 * deployment clients are elsewhere), so the ratio is a lower bound.
 *
 *   npx tsx bench/run.ts server-throughput [--batch 4] [--instances 1] [--seconds 15] [--rounds 3] [--delay-us 2000] [--input fp32|uint8] [--intra-op N] [--out bench/results/<device>/server-throughput.json]
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { percentile as percentileOf, round } from '../../src/bench/stats.js';

const percentile = (xs: number[], q: number): number => (xs.length > 0 ? percentileOf(xs, q) : Number.NaN);
import { benchEnvironment } from '../../src/bench/system.js';
import type { Tensor } from '../../src/core/types.js';
import { decodeImage } from '../../src/image/decode.js';
import { allocateBatch, letterboxImageInto } from '../../src/image/letterbox.js';
import { dynamicBatch, readOnnxModel, topKOutput, uint8Input, writeOnnxModel } from '../../src/onnx/index.js';
import { createOrtInstances } from '../../src/engine/ort-engine.js';
import { startServer } from '../../src/server/server.js';
import { dataDir, resultsDir } from '../lib.js';

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    batch: { type: 'string', default: '4' },
    instances: { type: 'string', default: '1' },
    seconds: { type: 'string', default: '15' },
    rounds: { type: 'string', default: '3' },
    'warmup-seconds': { type: 'string', default: '4' },
    'delay-us': { type: 'string', default: '2000' },
    'intra-op': { type: 'string', default: '0' },
    input: { type: 'string', default: 'fp32' },
    /** 'raw': the model's [B,84,8400] output; 'topk': Osprey's top-K suffix ([B,300,6]), as `osprey build` makes. */
    output: { type: 'string', default: 'raw' },
    model: { type: 'string', default: join(dataDir(), 'models/yolov8n.onnx') },
    image: { type: 'string', default: join(dataDir(), 'images/bus.jpg') },
    out: { type: 'string', default: join(resultsDir('cpu'), 'server-throughput.json') },
  },
});
const B = Number(args.batch);
const I = Number(args.instances);
const seconds = Number(args.seconds);
const warmupSeconds = Number(args['warmup-seconds']);
const delayUs = Number(args['delay-us']);
const uint8 = args.input === 'uint8';
/** ORT intra-op threads per instance, for both sides; 0 = ORT's default (one per core). */
const intraOp = Number(args['intra-op']);
const log = (m: string) => process.stderr.write(`${m}\n`);

// ---- model (dynamic batch, optionally uint8 input) and one letterboxed image ----
const tmp = await mkdtemp(join(tmpdir(), 'osprey-bench-server-'));
const modelPath = join(tmp, 'model.onnx');
let model = dynamicBatch(readOnnxModel(args.model!), { maxBatch: B });
if (uint8) model = uint8Input(model);
const topk = args.output === 'topk';
if (topk) model = topKOutput(model, { k: 300 });
writeOnnxModel(model, modelPath);
const image = await decodeImage(args.image!);
const one = allocateBatch(uint8 ? 'uint8-nhwc' : 'float32-nchw', 1, 640, 640);
await letterboxImageInto(image, one, 0);
const perImage = one.data;
const dimsOf = (n: number) => (uint8 ? [n, 640, 640, 3] : [n, 3, 640, 640]);
const type = uint8 ? 'uint8' : 'float32';
const datatype = uint8 ? 'UINT8' : 'FP32';

// ---- engine alone (loaded once, measured in each round) ----
const engines = await createOrtInstances({ modelPath, executionProviders: ['cpu'], instances: I, deviceId: 0, ...(intraOp > 0 ? { intraOpNumThreads: intraOp } : {}) });
const batchData = uint8 ? new Uint8Array(perImage.length * B) : new Float32Array(perImage.length * B);
for (let i = 0; i < B; i++) (batchData as Float32Array).set(perImage as Float32Array, i * perImage.length);

async function engineAlone(label: string): Promise<number> {
  // Completions inside a fixed window after the warmup, as for the server.
  let images = 0;
  const measureFrom = performance.now() + warmupSeconds * 1000;
  const stopAt = measureFrom + seconds * 1000;
  const loops = engines.instances.map(async (engine) => {
    while (performance.now() < stopAt) {
      const feeds: Record<string, Tensor> = { images: { type, dims: dimsOf(B), data: batchData.slice() } };
      await engine.run(feeds);
      const now = performance.now();
      if (now >= measureFrom && now <= stopAt) images += B;
    }
  });
  await Promise.all(loops);
  const ips = images / seconds;
  log(`engine alone (${label}): ${ips.toFixed(2)} images/s at batch ${B} × ${I} instance(s)`);
  return ips;
}

// ---- 2: the server ----
const LOAD_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { url, model, header, body, concurrency, warmupMs, durationMs, probeIntervalMs } = workerData;
// A lean client (node:http, keep-alive, one prebuilt body sent as is), like perf_analyzer's C++ client: fetch()
// clones every request body, which on this 2-core machine costs the server CPU it would otherwise have.
const payload = Buffer.from(body);
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency + 1 });
const target = new URL(url);
const post = (path, headers, data) =>
  new Promise((resolve, reject) => {
    const req = http.request({ host: target.hostname, port: target.port, path, method: data ? 'POST' : 'GET', headers, agent }, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve(res.statusCode));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
const headers = { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header), 'content-length': String(payload.length) };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const start = performance.now();
const measureFrom = start + warmupMs;
const end = measureFrom + durationMs;
let images = 0, errors = 0;
const latencies = [], probes = [];
async function client() {
  while (performance.now() < end) {
    const t = performance.now();
    try {
      const status = await post('/v2/models/' + model + '/infer', headers, payload);
      const now = performance.now();
      if (status !== 200) { errors++; continue; }
      if (now >= measureFrom && now <= end) { images++; latencies.push(now - t); }
    } catch { errors++; }
  }
}
async function prober() {
  await sleep(warmupMs);
  while (performance.now() < end) {
    const t = performance.now();
    const status = await post('/v2/health/ready', {});
    if (status === 200) probes.push(performance.now() - t);
    await sleep(probeIntervalMs);
  }
}
Promise.all([...Array.from({ length: concurrency }, client), prober()]).then(() => {
  agent.destroy();
  parentPort.postMessage({ images, errors, seconds: durationMs / 1000, latencies, probes });
});
`;

const repo = join(tmp, 'repo');
await mkdir(join(repo, 'm', '1'), { recursive: true });
await symlink(modelPath, join(repo, 'm', '1', 'model.onnx'));
await writeFile(
  join(repo, 'm', 'config.json'),
  JSON.stringify({
    maxBatchSize: B,
    instanceGroup: [{ count: I, kind: 'KIND_CPU' }],
    dynamicBatching: { preferredBatchSize: [B], maxQueueDelayMicroseconds: delayUs },
    ...(intraOp > 0 ? { parameters: { intra_op_thread_count: String(intraOp) } } : {}),
  }),
);
const srv = await startServer({ modelRepository: repo, host: '127.0.0.1', httpPort: 0, grpcPort: null, logLevel: 'warn', gpuMetrics: false, allowedSymlinkTargets: [dirname(resolve(modelPath))] });
const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'images', shape: dimsOf(1), datatype, parameters: { binary_data_size: perImage.byteLength } }], outputs: [{ name: 'output0', parameters: { binary_data: true } }] }));
const body = Buffer.concat([header, Buffer.from(perImage.buffer, perImage.byteOffset, perImage.byteLength)]);
const concurrency = 2 * B * I;
/** Server event-loop delay, one monitor per server phase (its p50/p99/max). */
const phaseDelays: Array<{ p50: number; p99: number; max: number }> = [];
const IDLE_WORKER = `
const { parentPort } = require('node:worker_threads');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const h = monitorEventLoopDelay({ resolution: 1 });
h.enable();
parentPort.once('message', () => { h.disable(); parentPort.postMessage({ p50: h.percentile(50), p99: h.percentile(99), max: h.max, count: h.count }); });
`;
const probesAll: number[] = [];
const latenciesAll: number[] = [];
let execCount = 0;
let inferCount = 0;
let errorsAll = 0;
const idleP99s: number[] = [];

async function server(label: string): Promise<number> {
  const worker = new Worker(LOAD_WORKER, {
    eval: true,
    workerData: { url: srv.url, model: 'm', header: header.length, body, concurrency, warmupMs: warmupSeconds * 1000, durationMs: seconds * 1000, probeIntervalMs: 20 },
  });
  const statsOf = () => srv.service.stats('m').model_stats[0] as { execution_count: number; inference_count: number };
  let before = statsOf();
  const phase = monitorEventLoopDelay({ resolution: 1 });
  let idle: Worker | undefined;
  const timer = setTimeout(() => {
    phase.enable();
    idle = new Worker(IDLE_WORKER, { eval: true });
    before = statsOf();
  }, warmupSeconds * 1000);
  const result = await new Promise<{ images: number; errors: number; seconds: number; latencies: number[]; probes: number[] }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  clearTimeout(timer);
  phase.disable();
  phaseDelays.push({ p50: phase.percentile(50) / 1e6, p99: phase.percentile(99) / 1e6, max: phase.max / 1e6 });
  if (idle) {
    const w = idle;
    const r = await new Promise<{ p50: number; p99: number; max: number }>((resolve) => {
      w.once('message', resolve);
      w.postMessage('stop');
    });
    idleP99s.push(r.p99 / 1e6);
    await w.terminate();
  }
  const after = statsOf();
  await worker.terminate();
  execCount += after.execution_count - before.execution_count;
  inferCount += after.inference_count - before.inference_count;
  errorsAll += result.errors;
  probesAll.push(...result.probes);
  latenciesAll.push(...result.latencies);
  const ips = result.images / result.seconds;
  log(`server (${label}): ${ips.toFixed(2)} images/s (${concurrency} concurrent clients), ready p99 so far ${percentile(probesAll, 0.99).toFixed(2)} ms, event-loop p99 ${phaseDelays.at(-1)!.p99.toFixed(2)} ms (idle thread ${idleP99s.at(-1)?.toFixed(2)} ms), ${result.errors} errors`);
  return ips;
}

const env = await benchEnvironment('cpu', `npx tsx bench/run.ts server-throughput ${process.argv.slice(2).join(' ')}`.trim());
const roundsN = Number(args.rounds);
const rounds: Array<{ engine: number; server: number; ratio: number }> = [];
for (let r = 1; r <= roundsN; r++) {
  // Alternate the order so a drift in machine load does not favour one side.
  const first = r % 2 === 1 ? await engineAlone(`round ${r}`) : await server(`round ${r}`);
  const second = r % 2 === 1 ? await server(`round ${r}`) : await engineAlone(`round ${r}`);
  const engineIps = r % 2 === 1 ? first : second;
  const serverIps = r % 2 === 1 ? second : first;
  rounds.push({ engine: round(engineIps, 3), server: round(serverIps, 3), ratio: round(serverIps / engineIps, 3) });
}
await srv.close();
await engines.close();
await rm(tmp, { recursive: true, force: true });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ratio = median(rounds.map((r) => r.ratio));
const engineIps = median(rounds.map((r) => r.engine));
const serverIps = median(rounds.map((r) => r.server));
const eventLoopP99Ms = median(phaseDelays.map((d) => d.p99));
const readyP99Ms = percentile(probesAll, 0.99);
const result = {
  bench: 'server-throughput',
  environment: env,
  configuration: { batch: B, instances: I, intraOpThreads: intraOp || 'ORT default', rounds: roundsN, secondsPerPhase: seconds, warmupSeconds, maxQueueDelayMicroseconds: delayUs, input: datatype, concurrency, model: 'yolov8n (dynamicBatch pass)' },
  rounds,
  engine: { imagesPerSecondMedian: round(engineIps, 3) },
  server: {
    imagesPerSecondMedian: round(serverIps, 3),
    meanBatchSize: round(inferCount / Math.max(1, execCount), 3),
    requestLatencyMs: { p50: round(percentile(latenciesAll, 0.5), 2), p99: round(percentile(latenciesAll, 0.99), 2) },
    /** Median over the server phases of each phase's p99; every phase's p50/p99/max. */
    eventLoopDelayMs: { p99: round(eventLoopP99Ms, 3), perPhase: phaseDelays.map((d) => ({ p50: round(d.p50, 3), p99: round(d.p99, 3), max: round(d.max, 3) })) },
    /** p99 event-loop delay of an idle worker thread during each server phase: the machine's scheduling noise alone. */
    idleThreadEventLoopDelayP99Ms: idleP99s.map((v) => round(v, 3)),
    readyLatencyMs: { p50: round(percentile(probesAll, 0.5), 3), p99: round(readyP99Ms, 3), probes: probesAll.length },
    errors: errorsAll,
  },
  ratios: { serverOverEngineMedian: round(ratio, 3), perRound: rounds.map((r) => r.ratio) },
  targets: {
    serverOverEngine: { target: '>= 0.9', met: ratio >= 0.9 },
    eventLoopDelayP99Ms: { target: '< 20', met: eventLoopP99Ms < 20 },
    readyLatencyP99Ms: { target: '< 10', met: readyP99Ms < 10 },
  },
};
await mkdir(dirname(args.out!), { recursive: true });
await writeFile(args.out!, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(
  `server/engine throughput ratio ${ratio.toFixed(3)} (median of ${roundsN} rounds: ${rounds.map((r) => r.ratio).join(', ')}; target ≥ 0.9) | ` +
    `event-loop delay p99 ${eventLoopP99Ms.toFixed(2)} ms (target < 20; an idle thread meanwhile: ${idleP99s.map((v) => v.toFixed(1)).join(', ')} ms) | /v2/health/ready p99 ${readyP99Ms.toFixed(2)} ms (target < 10) | ` +
    `load average at start ${env.loadAverage.join(' ')}\nwrote ${args.out}\n`,
);
