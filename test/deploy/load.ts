/**
 * A small closed-loop load for the deploy tests: `concurrency` workers, each sending the next request when the
 * previous one is answered (HTTP KServe v2 JSON infer, or gRPC ModelInfer), checking every answer (`y = 2x` of the
 * tiny model) and recording latency, outcome and the phase it started in.
 */
import * as grpc from '@grpc/grpc-js';
import { loadGrpcDefinitions } from '../../src/server/grpc/proto.js';

export interface Sample {
  proto: 'http' | 'grpc';
  phase: string;
  startMs: number;
  latencyMs: number;
  ok: boolean;
  error?: string;
}

/** gRPC clients retry UNAVAILABLE (a draining replica) themselves: the service config of docs/operations.md. */
export const GRPC_RETRY_SERVICE_CONFIG = {
  methodConfig: [
    {
      name: [{ service: 'inference.GRPCInferenceService' }],
      retryPolicy: { maxAttempts: 5, initialBackoff: '0.05s', maxBackoff: '0.5s', backoffMultiplier: 2, retryableStatusCodes: ['UNAVAILABLE'] },
    },
  ],
};

export type GrpcClient = grpc.Client & Record<string, Function>;

export function grpcClient(target: string, retries = true): GrpcClient {
  const defs = loadGrpcDefinitions();
  const options: grpc.ChannelOptions = retries ? { 'grpc.service_config': JSON.stringify(GRPC_RETRY_SERVICE_CONFIG), 'grpc.enable_retries': 1 } : {};
  return new defs.InferenceClient(target, grpc.credentials.createInsecure(), options) as GrpcClient;
}

const X = [1, 2, 3, 4];
const BODY = JSON.stringify({ inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: X }] });

async function httpOnce(base: string): Promise<void> {
  const res = await fetch(`${base}/v2/models/tiny/infer`, { method: 'POST', body: BODY, headers: { 'content-type': 'application/json' } });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`);
  const y = (JSON.parse(text) as { outputs: Array<{ data: number[] }> }).outputs[0]!.data;
  if (y.join(',') !== X.map((v) => 2 * v).join(',')) throw new Error(`wrong answer ${y.join(',')}`);
}

function grpcOnce(client: GrpcClient): Promise<void> {
  const raw = Buffer.from(new Float32Array(X).buffer);
  const request = { model_name: 'tiny', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4] }], raw_input_contents: [raw] };
  return new Promise((resolve, reject) => {
    client.ModelInfer!(request, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, res: { raw_output_contents: Buffer[] }) => {
      if (err) return reject(new Error(`gRPC ${grpc.status[err.code]}: ${err.details}`));
      const b = res.raw_output_contents[0]!;
      const y = Array.from(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
      if (y.join(',') !== X.map((v) => 2 * v).join(',')) return reject(new Error(`wrong answer ${y.join(',')}`));
      resolve();
    });
  });
}

/** A running load; `stop()` waits for the requests in flight and returns every sample. */
export interface Load {
  phase: string;
  samples: Sample[];
  stop(): Promise<Sample[]>;
}

export function startLoad(options: { httpBase?: string; httpConcurrency?: number; grpc?: GrpcClient; grpcConcurrency?: number; phase?: string }): Load {
  const samples: Sample[] = [];
  let running = true;
  const load: Load = {
    phase: options.phase ?? 'start',
    samples,
    stop: async () => {
      running = false;
      await Promise.all(workers);
      return samples;
    },
  };
  const worker = async (proto: 'http' | 'grpc') => {
    while (running) {
      const phase = load.phase;
      const t0 = performance.now();
      try {
        if (proto === 'http') await httpOnce(options.httpBase!);
        else await grpcOnce(options.grpc!);
        samples.push({ proto, phase, startMs: t0, latencyMs: performance.now() - t0, ok: true });
      } catch (err) {
        samples.push({ proto, phase, startMs: t0, latencyMs: performance.now() - t0, ok: false, error: (err as Error).message });
      }
    }
  };
  const workers: Array<Promise<void>> = [];
  if (options.httpBase) for (let i = 0; i < (options.httpConcurrency ?? 4); i++) workers.push(worker('http'));
  if (options.grpc) for (let i = 0; i < (options.grpcConcurrency ?? 2); i++) workers.push(worker('grpc'));
  return load;
}

/** p-quantile (nearest rank) of latencies, ms. */
export function quantileMs(samples: readonly Sample[], q: number): number {
  const v = samples.map((s) => s.latencyMs).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  return v[Math.min(v.length - 1, Math.ceil(q * v.length) - 1)]!;
}

/** Requests, errors, p50/p99 and throughput of the samples of one phase. */
export function summarize(samples: readonly Sample[], durationMs: number): { requests: number; errors: number; p50Ms: number; p99Ms: number; requestsPerSecond: number; errorMessages: string[] } {
  const errors = samples.filter((s) => !s.ok);
  return {
    requests: samples.length,
    errors: errors.length,
    p50Ms: Math.round(quantileMs(samples, 0.5) * 10) / 10,
    p99Ms: Math.round(quantileMs(samples, 0.99) * 10) / 10,
    requestsPerSecond: Math.round((samples.length / (durationMs / 1000)) * 10) / 10,
    errorMessages: [...new Set(errors.map((e) => e.error ?? ''))].slice(0, 5),
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
