/**
 * gRPC transport for `osprey bench server --protocol grpc`: KServe v2 `inference.GRPCInferenceService`
 * (`ModelInfer` with `raw_input_contents`, `ModelMetadata`, `ModelConfig`, `ModelStatistics`), using the server's
 * own proto definitions (src/server/grpc/proto.ts) and @grpc/grpc-js. One channel; HTTP/2 multiplexes the
 * concurrent requests.
 */
import * as grpc from '@grpc/grpc-js';
import { OspreyError } from '../core/errors.js';
import { GrpcStatus } from '../core/errors.js';
import { loadGrpcDefinitions } from '../server/grpc/proto.js';
import {
  parseServerConfig,
  parseTritonStats,
  unreachable,
  type InferTransport,
  type PreparedRequest,
  type RawInput,
  type RequestOutcome,
  type ServerModelMeta,
  type ServerStatsSnapshot,
} from './transport.js';

export interface GrpcTransportOptions {
  /** `host:port`, `grpc://host:port` or `http://host:port`. */
  url: string;
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
}

type Unary = (req: unknown, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => grpc.ClientUnaryCall;

const CODE_FOR_STATUS: Record<number, string> = {
  [GrpcStatus.INVALID_ARGUMENT]: 'OSPREY_ERR_INVALID_ARGUMENT',
  [GrpcStatus.NOT_FOUND]: 'OSPREY_ERR_MODEL_NOT_FOUND',
  [GrpcStatus.RESOURCE_EXHAUSTED]: 'OSPREY_ERR_QUEUE_FULL',
  [GrpcStatus.DEADLINE_EXCEEDED]: 'OSPREY_ERR_TIMEOUT',
  [GrpcStatus.UNAVAILABLE]: 'OSPREY_ERR_UNREACHABLE',
};

export class GrpcTransport implements InferTransport {
  readonly protocol = 'grpc';
  readonly endpoint = 'ModelInfer';
  private readonly target: string;
  private readonly client: grpc.Client;
  private readonly connectTimeoutMs: number;
  private readonly requestTimeoutMs: number;

  /** @throws OspreyError `OSPREY_ERR_USAGE` for a URL without host:port. */
  constructor(opts: GrpcTransportOptions) {
    const target = opts.url.replace(/^(grpc|http):\/\//, '').replace(/\/+$/, '');
    if (!/^[^\s/:]+:\d+$/.test(target) && !/^\[[0-9a-f:]+\]:\d+$/i.test(target)) {
      throw new OspreyError('OSPREY_ERR_USAGE', `--url ${JSON.stringify(opts.url)}: the grpc protocol needs host:port (e.g. 127.0.0.1:8001)`, { url: opts.url });
    }
    this.target = target;
    const { InferenceClient } = loadGrpcDefinitions();
    this.client = new InferenceClient(target, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': 256 * 1024 * 1024,
      'grpc.max_send_message_length': 256 * 1024 * 1024,
    });
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 3000;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30000;
  }

  private call<T>(method: string, req: unknown, timeoutMs: number): Promise<T> {
    const fn = (this.client as unknown as Record<string, Unary>)[method]!.bind(this.client);
    return new Promise((resolve, reject) => {
      fn(req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res as T)));
    });
  }

  async connect(model: string, version?: string): Promise<ServerModelMeta> {
    try {
      await this.call('ServerLive', {}, this.connectTimeoutMs);
    } catch (err) {
      const e = err as grpc.ServiceError;
      throw unreachable(this.target, `gRPC ${grpc.status[e.code] ?? e.code}: ${e.details || e.message} (within ${this.connectTimeoutMs} ms)`);
    }
    let meta: { name: string; versions: string[]; inputs: Array<{ name: string; datatype: string; shape: number[] }>; outputs: Array<{ name: string; datatype: string; shape: number[] }> };
    try {
      meta = await this.call('ModelMetadata', { name: model, version: version ?? '' }, this.connectTimeoutMs);
    } catch (err) {
      const e = err as grpc.ServiceError;
      if (e.code === grpc.status.NOT_FOUND || e.code === grpc.status.INVALID_ARGUMENT) {
        throw new OspreyError('OSPREY_ERR_MODEL_NOT_FOUND', `the server at ${this.target} has no model ${JSON.stringify(model)}${version ? ` version ${version}` : ''} (${e.details})`, { model, version });
      }
      throw new OspreyError('OSPREY_ERR_MODEL_NOT_READY', `ModelMetadata failed: ${e.details || e.message}`, { model });
    }
    const out: ServerModelMeta = {
      name: meta.name || model,
      versions: meta.versions ?? [],
      inputs: (meta.inputs ?? []).map((i) => ({ name: i.name, datatype: i.datatype, shape: i.shape.map(Number) })),
      outputs: (meta.outputs ?? []).map((i) => ({ name: i.name, datatype: i.datatype, shape: i.shape.map(Number) })),
    };
    try {
      const cfg = await this.call<{ config?: unknown }>('ModelConfig', { name: model, version: version ?? '' }, this.connectTimeoutMs);
      const c = parseServerConfig(cfg);
      if (c) out.config = c;
    } catch {
      /* ModelConfig is an extension */
    }
    return out;
  }

  prepareInfer(model: string, version: string | undefined, inputs: ReadonlyArray<RawInput>, images: number, outputs: readonly string[]): PreparedRequest {
    return {
      images,
      payload: {
        model_name: model,
        model_version: version ?? '',
        inputs: inputs.map((i) => ({ name: i.name, datatype: i.datatype, shape: i.shape })),
        outputs: outputs.map((name) => ({ name })),
        raw_input_contents: inputs.map((i) => Buffer.from(i.data.buffer, i.data.byteOffset, i.data.byteLength)),
      },
    };
  }

  async send(req: PreparedRequest): Promise<RequestOutcome> {
    try {
      await this.call('ModelInfer', req.payload, this.requestTimeoutMs);
      return { ok: true };
    } catch (err) {
      const e = err as grpc.ServiceError;
      return { ok: false, code: CODE_FOR_STATUS[e.code] ?? `GRPC_${grpc.status[e.code] ?? e.code}`, message: e.details || e.message };
    }
  }

  async stats(model: string, version?: string): Promise<ServerStatsSnapshot | null> {
    try {
      const r = await this.call('ModelStatistics', { name: model, version: version ?? '' }, this.connectTimeoutMs);
      return parseTritonStats(r, model);
    } catch {
      return null;
    }
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
