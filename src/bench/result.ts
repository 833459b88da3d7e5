/**
 * The JSON shapes `osprey bench` writes, and reading them back for `osprey plan` / `osprey bench report`.
 *
 * Three kinds, each with `schemaVersion: 1`:
 * - `osprey-bench-engine` (trtexec-like): one entry per configuration (batch × instances).
 * - `osprey-bench-server` (perf_analyzer-like): one entry per load step (concurrency or request rate).
 * - `osprey-bench-search` (Model Analyzer-like): one entry per server configuration (max batch size × instances ×
 *   max queue delay), each with its load steps, and the best configuration under the latency budget.
 *
 * Times are milliseconds unless the name says otherwise; throughput is images per second.
 */
import { OspreyError } from '../core/errors.js';
import type { LatencySummaryMs } from './stats.js';
import type { PlanPoint } from './planner.js';

export const BENCH_SCHEMA_VERSION = 1;

/** Where and with what a bench ran. */
export interface BenchEnvironment {
  /** CPU model string (e.g. "AMD EPYC 9454P 48-Core Processor"). */
  cpuModel: string;
  /** Logical CPUs visible to Node. */
  cpuCount: number;
  /** GPU name from nvidia-smi; absent when there is none. */
  gpuName?: string;
  /** 'gpu' when the execution provider runs on a GPU, else 'cpu'. */
  deviceKind: 'gpu' | 'cpu';
  /** The device in words (GPU name, else CPU model). */
  device: string;
  onnxRuntimeVersion: string;
  ospreyVersion: string;
  nodeVersion: string;
  platform: string;
  /** Host total memory, bytes. */
  totalMemoryBytes: number;
  /** 1, 5 and 15 minute load averages when the bench started (other work on the machine skews results). */
  loadAverage: number[];
  /** The command line that produced the file. */
  command: string;
  /** ISO time the bench started. */
  createdAt: string;
}

/** The model measured. */
export interface BenchModel {
  /** Model name (file name without extension, or the served model's name). */
  name: string;
  /** Path given (engine bench). */
  path?: string;
  /** sha256 of the model.onnx bytes (hex), when the file was read. */
  sha256?: string;
  /** Input tensor spec as the model declares it, e.g. [1, 3, 640, 640] or ['batch', 640, 640, 3]. */
  input?: { name: string; type: string; shape: readonly (number | string)[] };
  /** Precision as recorded in an engine manifest or guessed from the file (fp32 | fp16 | int8). */
  precision?: string;
}

/** Mean and p99 of one stage, milliseconds. */
export interface StageTimeMs {
  mean: number;
  p99: number;
}

export interface EngineBenchConfiguration {
  batchSize: number;
  instances: number;
  /** Batches in flight per instance loop (1 = serial pre → inference → post); absent in results from before pipelining (serial). */
  pipelineDepth?: number;
  /** Measured window (warm-up excluded), ms. */
  durationMs: number;
  /** Batches (inference calls) completed in the window. */
  batches: number;
  /** Images completed in the window (batches × batchSize). */
  images: number;
  imagesPerSecond: number;
  batchesPerSecond: number;
  /** End-to-end latency of one batch (pre-processing + queue + inference + post-processing), ms. */
  latencyMs: LatencySummaryMs;
  /**
   * The split into host pre-processing (decode + letterbox), queue (prepared, waiting for the loop's previous batch
   * to leave the engine: 0 at depth 1; absent in older results), inference (engine.run) and post-processing (decode + NMS).
   */
  stagesMs: { preprocess: StageTimeMs; queue?: StageTimeMs; inference: StageTimeMs; postprocess: StageTimeMs };
  memory: {
    /** Host RSS before the instances were created, bytes. */
    baselineRssBytes: number;
    /** Peak host RSS while measuring, bytes. */
    peakRssBytes: number;
    /** GPU memory used before the instances were created (nvidia-smi, every process on the GPUs), bytes; absent without a GPU. */
    baselineGpuMemoryBytes?: number;
    /** Peak GPU memory used while measuring (nvidia-smi, every process on the GPUs), bytes; absent without a GPU. */
    peakGpuMemoryBytes?: number;
  };
}

export interface EngineBenchResult {
  kind: 'osprey-bench-engine';
  schemaVersion: number;
  model: BenchModel;
  executionProvider: string;
  environment: BenchEnvironment;
  settings: { warmupMs: number; durationMs: number; image: string; pipelineDepth?: number; intraOpNumThreads?: number; intraOpSpinning?: boolean; /** `--gpus`: instances were placed on each of these GPUs. */ gpuIds?: number[] };
  configurations: EngineBenchConfiguration[];
  /** Configurations requested but not run, with the reason (e.g. a fixed-batch model). */
  skipped: Array<{ batchSize: number; instances: number; reason: string }>;
}

/** Server-side split of one load step, from the stats endpoint (deltas over the step), microseconds per request. */
export interface ServerSideSplit {
  /** Successful inferences counted by the server in the step. */
  requests: number;
  /** Model executions (batches) in the step, when reported. */
  executions?: number;
  queueUs: number;
  computeInputUs: number;
  computeInferUs: number;
  computeOutputUs: number;
}

export interface ServerBenchStep {
  /** Concurrency of the step (closed loop), or absent in request-rate mode. */
  concurrency?: number;
  /** Target request rate of the step, requests/s (open loop), or absent in concurrency mode. */
  requestRate?: number;
  durationMs: number;
  /** Requests completed (with or without error) in the measurement window. */
  requests: number;
  errors: number;
  /** Error codes seen, with counts. */
  errorCodes: Record<string, number>;
  /** Successful requests per second (= inferences/s; images/s when each request carries one image). */
  requestsPerSecond: number;
  imagesPerSecond: number;
  latencyMs: LatencySummaryMs;
  /** The latency at --percentile (the one compared with --latency-threshold-ms). */
  percentileMs: number;
  server?: ServerSideSplit;
}

export interface ServerBenchResult {
  kind: 'osprey-bench-server';
  schemaVersion: number;
  model: BenchModel & { version?: string };
  server: { url: string; protocol: string; endpoint: string };
  /** The client machine (the server's device is not visible through KServe v2). */
  environment: BenchEnvironment;
  settings: {
    mode: 'concurrency' | 'request-rate';
    range: number[];
    percentile: number;
    latencyThresholdMs: number | null;
    measurementIntervalMs: number;
    warmupMs: number;
    maxRequestsPerStep: number;
    maxDurationMs: number;
    input: string;
    /** Batch / instance settings the server reported (config), when readable. */
    serverConfig?: { maxBatchSize?: number; instances?: number; maxQueueDelayMicroseconds?: number; /** Distinct GPUs the model's instances are placed on (instance_group[].gpus). */ gpus?: number };
  };
  steps: ServerBenchStep[];
  /** Why the sweep ended: 'completed' | 'latency-threshold' | 'max-duration'. */
  stoppedBecause: string;
}

export interface SearchPoint {
  maxBatchSize: number;
  instances: number;
  maxQueueDelayMicroseconds: number;
  steps: ServerBenchStep[];
  /** Best step with percentileMs ≤ budget, or null. */
  best: ServerBenchStep | null;
  peakRssBytes: number;
  /** Why the configuration could not be measured (it failed to load or every request failed); the search goes on. */
  error?: { code: string; message: string };
}

export interface SearchResult {
  kind: 'osprey-bench-search';
  schemaVersion: number;
  model: BenchModel;
  environment: BenchEnvironment;
  executionProvider: string;
  settings: {
    latencyBudgetMs: number;
    percentile: number;
    maxBatchSizes: number[];
    instanceCounts: number[];
    maxQueueDelaysMicroseconds: number[];
    concurrencyRange: number[];
    measurementIntervalMs: number;
  };
  points: SearchPoint[];
  best: { maxBatchSize: number; instances: number; maxQueueDelayMicroseconds: number; concurrency?: number; imagesPerSecond: number; percentileMs: number } | null;
  /** Config file written with the best configuration, when any. */
  writtenConfig?: string;
}

export type AnyBenchResult = EngineBenchResult | ServerBenchResult | SearchResult;

function bad(file: string, why: string): OspreyError {
  return new OspreyError('OSPREY_ERR_BENCH_FILE', `${file}: ${why}`, { file });
}

/**
 * Validates parsed JSON as a bench result (structure only, enough for plan/report).
 * @throws OspreyError `OSPREY_ERR_BENCH_FILE` naming the file and what is wrong.
 */
export function parseBenchResult(json: unknown, file: string): AnyBenchResult {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad(file, 'not a JSON object');
  const o = json as Record<string, unknown>;
  if (o.kind === 'osprey-bench-engine-comparison') {
    throw bad(file, 'an interleaved engine comparison (osprey bench engine with several --model) holds several models; osprey plan takes one model: run osprey bench engine with that one --model (osprey bench report reads comparisons)');
  }
  if (o.kind !== 'osprey-bench-engine' && o.kind !== 'osprey-bench-server' && o.kind !== 'osprey-bench-search') {
    throw bad(file, `not an osprey bench result (kind ${JSON.stringify(o.kind)}; expected osprey-bench-engine, -server or -search)`);
  }
  if (o.schemaVersion !== BENCH_SCHEMA_VERSION) throw bad(file, `schemaVersion ${JSON.stringify(o.schemaVersion)} is not ${BENCH_SCHEMA_VERSION}`);
  if (typeof o.model !== 'object' || o.model === null || typeof (o.model as { name?: unknown }).name !== 'string') throw bad(file, 'model.name is missing');
  const num = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);
  if (o.kind === 'osprey-bench-engine') {
    if (!Array.isArray(o.configurations)) throw bad(file, 'configurations is not an array');
    o.configurations.forEach((c: Record<string, unknown>, i: number) => {
      if (!num(c.batchSize) || !num(c.instances) || !num(c.imagesPerSecond) || !num((c.latencyMs as Record<string, unknown> | undefined)?.p99)) {
        throw bad(file, `configurations[${i}] lacks batchSize/instances/imagesPerSecond/latencyMs.p99`);
      }
    });
  } else if (o.kind === 'osprey-bench-server') {
    if (!Array.isArray(o.steps)) throw bad(file, 'steps is not an array');
    o.steps.forEach((s: Record<string, unknown>, i: number) => {
      if (!num(s.imagesPerSecond) || !num((s.latencyMs as Record<string, unknown> | undefined)?.p99)) throw bad(file, `steps[${i}] lacks imagesPerSecond/latencyMs.p99`);
    });
  } else {
    if (!Array.isArray(o.points)) throw bad(file, 'points is not an array');
  }
  return json as AnyBenchResult;
}

/**
 * The unit a result was measured on: from the execution provider for engine and search results; null for server
 * results (the client does not know the server's device; `environment` describes the client machine there).
 */
export function resultUnit(r: AnyBenchResult): 'gpu' | 'cpu' | null {
  if (r.kind === 'osprey-bench-server') return null;
  return r.environment?.deviceKind === 'gpu' ? 'gpu' : 'cpu';
}

function memoryOf(m: EngineBenchConfiguration['memory']): Pick<PlanPoint, 'memoryBytes' | 'memoryKind'> {
  if (m.peakGpuMemoryBytes !== undefined) return { memoryBytes: Math.max(0, m.peakGpuMemoryBytes - (m.baselineGpuMemoryBytes ?? 0)), memoryKind: 'gpu' };
  return { memoryBytes: Math.max(0, m.peakRssBytes - m.baselineRssBytes), memoryKind: 'host' };
}

/**
 * The operating points a plan can choose from: engine configurations, server load steps, search steps.
 * Server/search steps use the server's configured batch/instances when known (else 1).
 */
export function planPoints(r: AnyBenchResult, source: string): PlanPoint[] {
  if (r.kind === 'osprey-bench-engine') {
    return r.configurations.map((c) => ({
      label: `batch ${c.batchSize} × ${c.instances} instance${c.instances === 1 ? '' : 's'}`,
      source,
      batchSize: c.batchSize,
      instances: c.instances,
      imagesPerSecond: c.imagesPerSecond,
      p99Ms: c.latencyMs.p99,
      ...memoryOf(c.memory),
      ...((r.settings.gpuIds?.length ?? 0) > 1 ? { gpus: r.settings.gpuIds!.length, label: `batch ${c.batchSize} × ${c.instances} instance${c.instances === 1 ? '' : 's'} on each of ${r.settings.gpuIds!.length} GPUs` } : {}),
    }));
  }
  if (r.kind === 'osprey-bench-server') {
    const cfg = r.settings.serverConfig ?? {};
    return r.steps
      .filter((s) => s.requests > s.errors)
      .map((s) => ({
        label: s.concurrency !== undefined ? `concurrency ${s.concurrency}` : `rate ${s.requestRate}/s`,
        source,
        batchSize: cfg.maxBatchSize ?? 1,
        instances: cfg.instances ?? 1,
        ...(cfg.maxQueueDelayMicroseconds !== undefined ? { maxQueueDelayMicroseconds: cfg.maxQueueDelayMicroseconds } : {}),
        ...(s.concurrency !== undefined ? { concurrency: s.concurrency } : {}),
        imagesPerSecond: s.imagesPerSecond,
        p99Ms: s.latencyMs.p99,
        ...((cfg.gpus ?? 0) > 1 ? { gpus: cfg.gpus! } : {}),
      }));
  }
  const out: PlanPoint[] = [];
  for (const p of r.points) {
    for (const s of p.steps) {
      if (s.requests <= s.errors) continue;
      out.push({
        label: `max batch ${p.maxBatchSize} × ${p.instances} inst, delay ${p.maxQueueDelayMicroseconds} µs, concurrency ${s.concurrency ?? '-'}`,
        source,
        batchSize: p.maxBatchSize,
        instances: p.instances,
        maxQueueDelayMicroseconds: p.maxQueueDelayMicroseconds,
        ...(s.concurrency !== undefined ? { concurrency: s.concurrency } : {}),
        imagesPerSecond: s.imagesPerSecond,
        p99Ms: s.latencyMs.p99,
      });
    }
  }
  return out;
}
