/**
 * `osprey bench server`: a perf_analyzer-like load generator for a KServe v2 server (Osprey or Triton).
 *
 * Per load step (a concurrency in closed-loop mode, or a request rate in open-loop mode): warm up for `warmupMs`,
 * then measure for `measurementIntervalMs` (or until `maxRequestsPerStep` requests completed). A request counts
 * in the step when it completes inside the measurement window (whenever it was sent: requests in flight at the
 * window's start would otherwise be lost, biasing slow steps low); its latency is client-side, send → full answer.
 * The server's own queue / compute split comes from the statistics endpoint (deltas over the window ÷ successes).
 * The sweep stops after the first step whose latency at `percentile` exceeds `latencyThresholdMs`, or when the
 * whole run reaches `maxDurationMs`.
 */
import { randomFillSync } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { OspreyError } from '../core/errors.js';
import { percentileSorted, round, SampleBuffer, sortedCopy, summarizeLatencies, type LatencySummaryMs } from './stats.js';
import type { ServerBenchResult, ServerBenchStep } from './result.js';
import type { InferTransport, PreparedRequest, RawInput, ServerModelMeta, ServerStatsSnapshot } from './transport.js';
import { HttpTransport } from './transport-http.js';
import { benchEnvironment } from './system.js';

/**
 * Parses perf_analyzer's `start:end:step` range. The step is additive (perf_analyzer's meaning: `1:8:2` → 1, 3,
 * 5, 7); written `x2` (or `*2`) it multiplies (`1:64:x2` → 1, 2, 4, … 64). `end` 0 means "until the latency
 * threshold" (needs `allowOpenEnd`), capped at `openEndCap`. A single number is one step.
 * @throws OspreyError `OSPREY_ERR_USAGE` for zero/negative/non-numeric values, end < start, or a step that does not advance.
 */
export function parseRange(spec: string, option: string, opts: { integer: boolean; allowOpenEnd?: boolean; openEndCap?: number } = { integer: true }): number[] {
  const parts = spec.split(':');
  const usage = (why: string) => new OspreyError('OSPREY_ERR_USAGE', `${option} ${JSON.stringify(spec)}: ${why}`, { option, value: spec });
  if (parts.length < 1 || parts.length > 3 || parts.some((p) => p.trim() === '')) throw usage('expected start[:end[:step]]');
  const num = (s: string, what: string, allowZero = false): number => {
    const v = Number(s);
    if (!Number.isFinite(v)) throw usage(`${what} ${JSON.stringify(s)} is not a number`);
    if (v < 0 || (v === 0 && !allowZero)) throw usage(`${what} must be > 0 (got ${v})`);
    if (opts.integer && !Number.isInteger(v)) throw usage(`${what} must be an integer (got ${v})`);
    return v;
  };
  const start = num(parts[0]!, 'start');
  if (parts.length === 1) return [start];
  let end = num(parts[1]!, 'end', opts.allowOpenEnd === true);
  if (end === 0) end = opts.openEndCap ?? 1024;
  if (end < start) throw usage(`end ${end} is below start ${start}`);
  const stepText = parts[2] ?? '1';
  const mult = /^[x*]/.test(stepText);
  const step = num(mult ? stepText.slice(1) : stepText, 'step');
  if (mult && step <= 1) throw usage('a multiplying step must be > 1');
  const out: number[] = [];
  for (let v = start; v <= end + 1e-9; v = mult ? v * step : v + step) {
    out.push(opts.integer ? Math.round(v) : round(v, 6));
    if (out.length > 10000) throw usage('more than 10000 steps');
  }
  return out;
}

export interface ServerBenchOptions {
  url: string;
  model: string;
  version?: string;
  protocol: 'http' | 'grpc';
  /** Closed-loop concurrency steps, or … */
  concurrency?: number[];
  /** … open-loop request rates (requests/s). */
  requestRates?: number[];
  /** 'constant' or 'poisson' arrivals in request-rate mode. Default constant. */
  requestDistribution?: 'constant' | 'poisson';
  /** 'random' (infer with random tensors) or a directory of images (sent to /detect). */
  input: string;
  /** Images per infer request with random input (the batch axis of the request). Default 1. */
  batchSize?: number;
  percentile: number;
  latencyThresholdMs?: number;
  measurementIntervalMs: number;
  warmupMs: number;
  maxRequestsPerStep: number;
  /**
   * A window lasts at least `measurementIntervalMs` and until this many requests completed (perf_analyzer's
   * count window as a floor; slow servers still give samples), bounded by `maxDurationMs`. Default 1.
   */
  minRequestsPerStep?: number;
  maxDurationMs: number;
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Open-loop cap on requests in flight; over it, a due request is counted as an error (client overloaded). */
  maxOutstanding?: number;
  /** The command line, recorded in the result. */
  command: string;
  /** A transport to use instead of creating one (e.g. gRPC). */
  transport?: InferTransport;
  /** Called after each step (progress). */
  onStep?: (step: ServerBenchStep, index: number, total: number) => void;
}

const IMAGE_EXTS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.bmp']);
const CONTENT_TYPES: Record<string, string> = { '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png', '.webp': 'image/webp', '.tif': 'image/tiff', '.tiff': 'image/tiff', '.bmp': 'image/bmp' };
const BYTES_PER: Record<string, number> = { FP32: 4, FP16: 2, UINT8: 1, INT8: 1, INT32: 4, INT64: 8, FP64: 8, BOOL: 1 };

/** Random input tensors for an infer request, from the model metadata (−1 batch axis → batchSize). */
export function randomInputs(meta: ServerModelMeta, batchSize: number): RawInput[] {
  if (meta.inputs.length === 0) throw new OspreyError('OSPREY_ERR_INVALID_TENSOR', `model ${meta.name} declares no inputs`, {});
  return meta.inputs.map((inp) => {
    const shape = inp.shape.map((d, i) => {
      if (i === 0 && d < 0) return batchSize;
      if (i === 0 && d !== batchSize && batchSize !== 1) {
        throw new OspreyError('OSPREY_ERR_USAGE', `--batch-size ${batchSize}: input ${inp.name} has a fixed batch axis of ${d} (${JSON.stringify(inp.shape)})`, {});
      }
      if (d >= 0) return d;
      throw new OspreyError('OSPREY_ERR_INVALID_TENSOR', `input ${inp.name} has a variable axis ${i} (${JSON.stringify(inp.shape)}); random data needs fixed shapes — use --input IMAGE_DIR`, {});
    });
    const per = BYTES_PER[inp.datatype];
    if (per === undefined) throw new OspreyError('OSPREY_ERR_INVALID_TENSOR', `input ${inp.name}: datatype ${inp.datatype} is not supported for random data`, {});
    const count = shape.reduce((a, b) => a * b, 1);
    const data = new Uint8Array(count * per);
    if (inp.datatype === 'FP32') {
      const f = new Float32Array(data.buffer);
      const u = new Uint8Array(count);
      randomFillSync(u);
      for (let i = 0; i < count; i++) f[i] = u[i]! / 255; // values in [0, 1], like normalised pixels
    } else if (inp.datatype === 'FP16') {
      new Uint16Array(data.buffer).fill(0x3800); // 0.5
    } else {
      randomFillSync(data);
    }
    return { name: inp.name, datatype: inp.datatype, shape, data };
  });
}

async function listImages(dir: string): Promise<string[]> {
  let st;
  try {
    st = await stat(dir);
  } catch {
    throw new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `--input ${dir}: no such directory (use a directory of images or "random")`, { path: dir });
  }
  if (!st.isDirectory()) throw new OspreyError('OSPREY_ERR_USAGE', `--input ${dir} is not a directory (use a directory of images or "random")`, { path: dir });
  const files = (await readdir(dir)).filter((f) => IMAGE_EXTS.has(extname(f).toLowerCase())).sort();
  if (files.length === 0) throw new OspreyError('OSPREY_ERR_NO_IMAGES', `--input ${dir} holds no image files`, { path: dir });
  return files.map((f) => join(dir, f));
}

function diffStats(a: ServerStatsSnapshot | null, b: ServerStatsSnapshot | null): ServerBenchStep['server'] | undefined {
  if (!a || !b) return undefined;
  const n = b.successCount - a.successCount;
  const per = (x: number) => (n > 0 ? round(x / n / 1000, 1) : 0);
  const out: NonNullable<ServerBenchStep['server']> = {
    requests: n,
    queueUs: per(b.queueNs - a.queueNs),
    computeInputUs: per(b.computeInputNs - a.computeInputNs),
    computeInferUs: per(b.computeInferNs - a.computeInferNs),
    computeOutputUs: per(b.computeOutputNs - a.computeOutputNs),
  };
  if (a.executionCount !== undefined && b.executionCount !== undefined) out.executions = b.executionCount - a.executionCount;
  return out;
}

const now = () => performance.now();

interface Window {
  t0: number;
  t1: number;
  lat: SampleBuffer;
  images: number;
  requests: number;
  errors: number;
  errorCodes: Record<string, number>;
  firstError?: string;
}

/**
 * One load step. Closed loop: `concurrency` workers each send the next request when the previous one answered.
 * Open loop: requests are sent at `rate`/s (constant spacing or Poisson) whatever the answers.
 */
async function runStep(
  transport: InferTransport,
  requests: PreparedRequest[],
  load: { concurrency?: number; rate?: number; distribution: 'constant' | 'poisson' },
  o: ServerBenchOptions,
  deadline: number,
  stats: () => Promise<ServerStatsSnapshot | null>,
): Promise<{ step: ServerBenchStep; firstError?: string }> {
  const w: Window = { t0: Infinity, t1: Infinity, lat: new SampleBuffer(4096), images: 0, requests: 0, errors: 0, errorCodes: {} };
  let next = 0;
  let stop = false;
  const start = now();
  const measureFrom = start + o.warmupMs;
  let before: ServerStatsSnapshot | null = null;
  let after: ServerStatsSnapshot | null = null;
  let windowOpened = false;
  let timeUp = false;
  const minRequests = o.minRequestsPerStep ?? 1;
  let windowClosed: Promise<void> | null = null;
  let resolveClosed!: () => void;
  windowClosed = new Promise<void>((r) => (resolveClosed = r));

  const closeWindow = async () => {
    if (w.t1 !== Infinity) return;
    w.t1 = now();
    stop = true;
    after = await stats();
    resolveClosed();
  };
  const openWindow = async () => {
    windowOpened = true;
    before = await stats();
    w.t0 = now();
    const remaining = Math.max(0, Math.min(o.measurementIntervalMs, deadline - w.t0));
    setTimeout(() => {
      timeUp = true;
      if (w.requests >= minRequests) void closeWindow();
    }, remaining).unref();
    // count-window fallback: never past the sweep's deadline
    setTimeout(() => void closeWindow(), Math.max(remaining, deadline - now())).unref();
  };
  const warmTimer = setTimeout(() => void openWindow(), Math.max(0, measureFrom - now()));
  warmTimer.unref();

  const one = async (): Promise<void> => {
    const req = requests[next++ % requests.length]!;
    const t = now();
    const out = await transport.send(req);
    const done = now();
    if (done >= w.t0 && done <= w.t1) {
      w.requests++;
      if (out.ok) {
        w.lat.push(done - t);
        w.images += req.images;
      } else {
        w.errors++;
        w.errorCodes[out.code] = (w.errorCodes[out.code] ?? 0) + 1;
        w.firstError ??= `${out.code}: ${out.message}`;
      }
      if (w.requests >= o.maxRequestsPerStep || (timeUp && w.requests >= minRequests)) void closeWindow();
    }
  };

  const inflight = new Set<Promise<void>>();
  if (load.concurrency !== undefined) {
    const worker = async () => {
      while (!stop) await one();
    };
    const workers = Array.from({ length: load.concurrency }, worker);
    await windowClosed;
    await Promise.all(workers);
  } else {
    const rate = load.rate!;
    const cap = o.maxOutstanding ?? 1024;
    let due = now();
    while (!stop) {
      const gap = load.distribution === 'poisson' ? -Math.log(1 - Math.random()) / rate : 1 / rate;
      due += gap * 1000;
      const wait = due - now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      if (stop) break;
      if (inflight.size >= cap) {
        const t = now();
        if (t >= w.t0 && t <= w.t1) {
          w.requests++;
          w.errors++;
          w.errorCodes.CLIENT_OVERLOADED = (w.errorCodes.CLIENT_OVERLOADED ?? 0) + 1;
        }
        continue;
      }
      const p = one().finally(() => inflight.delete(p));
      inflight.add(p);
    }
    await windowClosed;
    await Promise.all(inflight);
  }
  clearTimeout(warmTimer);
  if (!windowOpened) await windowClosed;

  const durationMs = w.t1 - w.t0;
  const ok = w.lat.length;
  const sorted = sortedCopy(w.lat.values());
  const latencyMs =
    ok > 0
      ? summarizeLatencies(sorted)
      : { min: NaN, mean: NaN, median: NaN, p90: NaN, p95: NaN, p99: NaN, max: NaN, std: NaN, count: 0 };
  const step: ServerBenchStep = {
    ...(load.concurrency !== undefined ? { concurrency: load.concurrency } : { requestRate: load.rate! }),
    durationMs: round(durationMs, 1),
    requests: w.requests,
    errors: w.errors,
    errorCodes: w.errorCodes,
    requestsPerSecond: round((ok / durationMs) * 1000, 2),
    imagesPerSecond: round((w.images / durationMs) * 1000, 2),
    latencyMs: roundSummary(latencyMs),
    percentileMs: ok > 0 ? round(percentileSorted(sorted, o.percentile), 3) : NaN,
  };
  const server = diffStats(before, after);
  if (server) step.server = server;
  return w.firstError !== undefined ? { step, firstError: w.firstError } : { step };
}

/** Rounds every figure of a latency summary to microseconds (keeps result files small). */
export function roundSummary(s: LatencySummaryMs): LatencySummaryMs {
  const r = (v: number) => round(v, 3);
  return { min: r(s.min), mean: r(s.mean), median: r(s.median), p90: r(s.p90), p95: r(s.p95), p99: r(s.p99), max: r(s.max), std: r(s.std), count: s.count };
}

/**
 * Runs the sweep and returns the result (the caller writes JSON / plots).
 * @throws OspreyError `OSPREY_ERR_UNREACHABLE`, `OSPREY_ERR_MODEL_NOT_FOUND`, `OSPREY_ERR_USAGE`, `OSPREY_ERR_NO_IMAGES`,
 *   and `OSPREY_ERR_UNREACHABLE` again when every request of the first step failed to connect.
 */
export async function runServerBench(o: ServerBenchOptions): Promise<ServerBenchResult> {
  const loads = o.concurrency ?? o.requestRates;
  if (!loads || loads.length === 0 || (o.concurrency && o.requestRates)) {
    throw new OspreyError('OSPREY_ERR_USAGE', 'give one of --concurrency-range or --request-rate-range', {});
  }
  for (const v of loads) if (!(v > 0)) throw new OspreyError('OSPREY_ERR_USAGE', `load values must be > 0, got ${v}`, { value: v });
  if (!(o.percentile > 0 && o.percentile <= 100)) throw new OspreyError('OSPREY_ERR_USAGE', `--percentile must be in (0, 100], got ${o.percentile}`, {});
  if (!(o.measurementIntervalMs > 0)) throw new OspreyError('OSPREY_ERR_USAGE', `--measurement-interval-ms must be > 0, got ${o.measurementIntervalMs}`, {});
  if (o.latencyThresholdMs !== undefined && !(o.latencyThresholdMs > 0)) throw new OspreyError('OSPREY_ERR_USAGE', `--latency-threshold-ms must be > 0, got ${o.latencyThresholdMs}`, {});
  const batchSize = o.batchSize ?? 1;
  if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new OspreyError('OSPREY_ERR_USAGE', `--batch-size must be a positive integer, got ${batchSize}`, {});

  const useImages = o.input !== 'random';
  const images = useImages ? await listImages(o.input) : [];
  const maxConc = o.concurrency ? Math.max(...o.concurrency) : (o.maxOutstanding ?? 1024);
  let transport = o.transport;
  if (!transport) {
    if (o.protocol === 'grpc') {
      const { GrpcTransport } = await import('./transport-grpc.js');
      transport = new GrpcTransport({
        url: o.url,
        ...(o.requestTimeoutMs !== undefined ? { requestTimeoutMs: o.requestTimeoutMs } : {}),
        ...(o.connectTimeoutMs !== undefined ? { connectTimeoutMs: o.connectTimeoutMs } : {}),
      });
    } else transport = new HttpTransport({
      url: o.url,
      endpoint: useImages ? 'detect' : 'infer',
      maxSockets: maxConc,
      ...(o.requestTimeoutMs !== undefined ? { requestTimeoutMs: o.requestTimeoutMs } : {}),
      ...(o.connectTimeoutMs !== undefined ? { connectTimeoutMs: o.connectTimeoutMs } : {}),
    });
  }
  try {
    const meta = await transport.connect(o.model, o.version);
    const requests: PreparedRequest[] = [];
    if (useImages) {
      const t = transport;
      if (!t.prepareDetect) {
        throw new OspreyError('OSPREY_ERR_USAGE', `--input ${o.input}: images go to Osprey's /detect route, which only the http protocol has; use --input random with --protocol ${t.protocol}`, {});
      }
      for (const f of images) requests.push(t.prepareDetect(o.model, await readFile(f), CONTENT_TYPES[extname(f).toLowerCase()] ?? 'application/octet-stream'));
    } else {
      requests.push(transport.prepareInfer(o.model, o.version, randomInputs(meta, batchSize), batchSize, meta.outputs.map((x) => x.name)));
    }
    const environment = await benchEnvironment('client', o.command);
    const t0 = now();
    const deadline = t0 + o.maxDurationMs;
    const steps: ServerBenchStep[] = [];
    let stoppedBecause = 'completed';
    const stats = () => transport.stats(o.model, o.version);
    for (let i = 0; i < loads.length; i++) {
      if (now() + o.warmupMs >= deadline) {
        stoppedBecause = 'max-duration';
        break;
      }
      const load = o.concurrency ? { concurrency: loads[i]!, distribution: 'constant' as const } : { rate: loads[i]!, distribution: o.requestDistribution ?? 'constant' };
      const { step, firstError } = await runStep(transport, requests, load, o, deadline, stats);
      if (i === 0 && step.requests > 0 && step.errors === step.requests) {
        const codes = Object.keys(step.errorCodes);
        const code = codes.includes('OSPREY_ERR_UNREACHABLE') ? 'OSPREY_ERR_UNREACHABLE' : 'OSPREY_ERR_INFERENCE_FAILED';
        throw new OspreyError(code, `every request of the first step failed (${step.errors}); first error: ${firstError}`, { errorCodes: step.errorCodes });
      }
      steps.push(step);
      o.onStep?.(step, i, loads.length);
      if (o.latencyThresholdMs !== undefined && !(step.percentileMs <= o.latencyThresholdMs)) {
        stoppedBecause = 'latency-threshold';
        break;
      }
      if (now() >= deadline) {
        stoppedBecause = 'max-duration';
        break;
      }
    }
    const inputMeta = meta.inputs[0];
    return {
      kind: 'osprey-bench-server',
      schemaVersion: 1,
      model: {
        name: o.model,
        ...(o.version ? { version: o.version } : {}),
        ...(inputMeta ? { input: { name: inputMeta.name, type: inputMeta.datatype, shape: inputMeta.shape } } : {}),
      },
      server: { url: o.url, protocol: transport.protocol, endpoint: transport.endpoint },
      environment,
      settings: {
        mode: o.concurrency ? 'concurrency' : 'request-rate',
        range: loads,
        percentile: o.percentile,
        latencyThresholdMs: o.latencyThresholdMs ?? null,
        measurementIntervalMs: o.measurementIntervalMs,
        warmupMs: o.warmupMs,
        maxRequestsPerStep: o.maxRequestsPerStep,
        maxDurationMs: o.maxDurationMs,
        input: useImages ? `${o.input} (${images.length} images → /detect)` : `random (batch ${batchSize} → /infer, binary tensors)`,
        ...(meta.config ? { serverConfig: meta.config } : {}),
      },
      steps,
      stoppedBecause,
    };
  } finally {
    if (!o.transport) await transport.close();
  }
}
