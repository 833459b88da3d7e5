/**
 * The client side of `osprey bench server`: a transport sends one prepared inference request and reads the
 * server's model metadata and statistics. HTTP (KServe v2 + binary tensors, and Osprey's /detect) is built in;
 * a gRPC transport plugs in through the same interface ({@link InferTransport}).
 */
import { OspreyError } from '../core/errors.js';

/** One input of the model as the server declares it (KServe v2 model metadata). */
export interface ServerTensorMeta {
  name: string;
  datatype: string;
  /** −1 marks a variable dimension. */
  shape: number[];
}

export interface ServerModelMeta {
  name: string;
  versions: string[];
  inputs: ServerTensorMeta[];
  outputs: ServerTensorMeta[];
  /** From the model configuration, when the server exposes it. */
  config?: { maxBatchSize?: number; instances?: number; maxQueueDelayMicroseconds?: number; gpus?: number };
}

/** Cumulative server counters for one model (Triton's statistics extension), nanoseconds. */
export interface ServerStatsSnapshot {
  successCount: number;
  executionCount?: number;
  queueNs: number;
  computeInputNs: number;
  computeInferNs: number;
  computeOutputNs: number;
}

/** One input tensor as raw little-endian bytes. */
export interface RawInput {
  name: string;
  /** KServe v2 datatype, e.g. FP32, UINT8. */
  datatype: string;
  shape: number[];
  data: Uint8Array;
}

/** A request ready to send many times (the body is built once, like perf_analyzer's pre-generated data). */
export interface PreparedRequest {
  /** Images the request carries (its throughput weight). */
  images: number;
  /** Transport-specific payload. */
  payload: unknown;
}

/** Outcome of one request: ok, or the failure's code (an Osprey code, or e.g. "HTTP_500"). */
export type RequestOutcome = { ok: true } | { ok: false; code: string; message: string };

export interface InferTransport {
  readonly protocol: string;
  /** Endpoint used for requests, e.g. "infer" or "detect". */
  readonly endpoint: string;
  /**
   * Checks that the server answers and has the model; returns its metadata.
   * @throws OspreyError `OSPREY_ERR_UNREACHABLE` (no answer within the connect timeout),
   *   `OSPREY_ERR_MODEL_NOT_FOUND` (the server does not have the model).
   */
  connect(model: string, version?: string): Promise<ServerModelMeta>;
  /**
   * Builds an infer request with raw tensor bytes (binary tensors over HTTP, `raw_input_contents` over gRPC).
   * @param images images the request carries (its batch), counted into throughput.
   */
  prepareInfer(model: string, version: string | undefined, inputs: ReadonlyArray<RawInput>, images: number, outputs: readonly string[]): PreparedRequest;
  /** Builds a request carrying one encoded image for Osprey's detect endpoint (HTTP only). */
  prepareDetect?(model: string, image: Buffer, contentType: string): PreparedRequest;
  /** Sends one request; never throws for server-side failures (returns the outcome). */
  send(req: PreparedRequest): Promise<RequestOutcome>;
  /** Reads the model's cumulative statistics, or null when the server has no statistics endpoint. */
  stats(model: string, version?: string): Promise<ServerStatsSnapshot | null>;
  close(): Promise<void>;
}

/** Parses Triton's statistics JSON (`{"model_stats":[{inference_stats:{success,queue,compute_*:{count,ns}}}]}`), summing versions. */
export function parseTritonStats(json: unknown, model: string): ServerStatsSnapshot | null {
  const stats = (json as { model_stats?: unknown })?.model_stats;
  if (!Array.isArray(stats)) return null;
  const n = (v: unknown): number => (typeof v === 'number' ? v : typeof v === 'string' && v !== '' ? Number(v) : 0);
  const snap: ServerStatsSnapshot = { successCount: 0, queueNs: 0, computeInputNs: 0, computeInferNs: 0, computeOutputNs: 0 };
  let exec = 0;
  let hasExec = false;
  let found = false;
  for (const s of stats as Array<Record<string, unknown>>) {
    if (s.name !== undefined && s.name !== model) continue;
    found = true;
    const is = (s.inference_stats ?? {}) as Record<string, { count?: unknown; ns?: unknown } | undefined>;
    snap.successCount += n(is.success?.count);
    snap.queueNs += n(is.queue?.ns);
    snap.computeInputNs += n(is.compute_input?.ns);
    snap.computeInferNs += n(is.compute_infer?.ns);
    snap.computeOutputNs += n(is.compute_output?.ns);
    if (s.execution_count !== undefined) {
      hasExec = true;
      exec += n(s.execution_count);
    }
  }
  if (!found) return null;
  if (hasExec) snap.executionCount = exec;
  return snap;
}

/** Model configuration fields the bench records (Triton snake_case JSON or Osprey camelCase). */
export function parseServerConfig(json: unknown): ServerModelMeta['config'] {
  const c = ((json as { config?: unknown })?.config ?? json) as Record<string, unknown> | null;
  if (!c || typeof c !== 'object') return undefined;
  const out: NonNullable<ServerModelMeta['config']> = {};
  const mbs = c.maxBatchSize ?? c.max_batch_size;
  if (typeof mbs === 'number') out.maxBatchSize = mbs;
  const groups = (c.instanceGroup ?? c.instance_group) as Array<{ count?: number; gpus?: unknown }> | undefined;
  if (Array.isArray(groups)) {
    // Triton's placement: `count` instances on each listed GPU
    const gpusOf = (g: { gpus?: unknown }) => (Array.isArray(g.gpus) ? g.gpus.filter((x): x is number => typeof x === 'number') : []);
    out.instances = groups.reduce((s, g) => s + (typeof g.count === 'number' ? g.count : 1) * Math.max(1, gpusOf(g).length), 0);
    const gpus = new Set(groups.flatMap(gpusOf));
    if (gpus.size > 0) out.gpus = gpus.size;
  }
  const db = (c.dynamicBatching ?? c.dynamic_batching) as Record<string, unknown> | undefined;
  if (db && typeof db === 'object') {
    const d = db.maxQueueDelayMicroseconds ?? db.max_queue_delay_microseconds;
    out.maxQueueDelayMicroseconds = typeof d === 'number' ? d : typeof d === 'string' ? Number(d) : 0;
  }
  return out;
}

/** Maps an HTTP error status to the Osprey code a server answers with (Triton's mapping), when the body has none. */
export function codeForHttpStatus(status: number): string {
  switch (status) {
    case 400:
      return 'OSPREY_ERR_INVALID_ARGUMENT';
    case 404:
      return 'OSPREY_ERR_MODEL_NOT_FOUND';
    case 413:
      return 'OSPREY_ERR_PAYLOAD_TOO_LARGE';
    case 429:
      return 'OSPREY_ERR_QUEUE_FULL';
    case 503:
      return 'OSPREY_ERR_MODEL_NOT_READY';
    case 504:
      return 'OSPREY_ERR_TIMEOUT';
    default:
      return `HTTP_${status}`;
  }
}

export function unreachable(url: string, why: string): OspreyError {
  return new OspreyError('OSPREY_ERR_UNREACHABLE', `cannot reach the server at ${url}: ${why}`, { url });
}
