/**
 * Assembles `osprey serve`: metrics registry → model repository (engines in worker_threads, batchers) →
 * inference service → HTTP app (+ an optional separate metrics port, Triton's 8002), with graceful shutdown.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { ServerMetrics } from '../metrics/server-metrics.js';
import type { ModelConfigFile } from '../repository/config.js';
import { ModelRepository, type EngineFactory, type ModelVersion } from '../repository/repository.js';
import { RoutedInferenceService } from '../routing/router.js';
import type { SwapPolicy } from '../repository/swap.js';
import { startGrpcForService, type OspreyGrpcServer } from './grpc/index.js';
import { buildHttpApp, DEFAULT_MAX_BODY_BYTES } from './http.js';
import type { InferenceService } from './service.js';

export interface ServeOptions {
  /** A Triton-layout model repository folder… */
  modelRepository?: string;
  /** …or one model file served as a one-model repository (name = file name without extension). */
  model?: string;
  /** Config for `model` (a parsed config file). */
  modelConfig?: ModelConfigFile;
  /** Listen address. Default `0.0.0.0`. */
  host?: string;
  /** HTTP port; 0 = any free port. Default 8000. */
  httpPort?: number;
  /** gRPC port (KServe v2 GRPCInferenceService), when a gRPC front end is built in; null = no gRPC. */
  grpcPort?: number | null;
  /** Separate metrics port (also serves /metrics); null/undefined = only on the HTTP port. */
  metricsPort?: number | null;
  /** Execution providers for KIND_AUTO instance groups. Default: `defaultExecutionProviders()` (cuda,cpu where an NVIDIA GPU is present, else cpu). */
  executionProviders?: readonly string[];
  /** Body limit, bytes. Default {@link DEFAULT_MAX_BODY_BYTES}. */
  maxBodyBytes?: number;
  /** pino logger; default: a pino logger at `info` on stderr… */
  logger?: Logger;
  /** …or this level for the default logger (`silent` in tests). */
  logLevel?: string;
  /** Export GPU metrics from nvidia-smi when present. Default true. */
  gpuMetrics?: boolean;
  /** Engine factory override (default: ONNX Runtime in worker_threads). */
  engineFactory?: EngineFactory;
  /** Largest gRPC request message, bytes (default: src/server/grpc DEFAULT_GRPC_MAX_RECEIVE_MESSAGE_BYTES). */
  grpcMaxReceiveMessageBytes?: number;
  /** Swap probation defaults (docs/grpc-routing.md); `false` = plain re-loads. */
  swap?: Partial<SwapPolicy> | false;
  /** Registers extra routes before the server listens (`osprey serve --cameras`: the streams API and dashboard, src/streams/attach.ts). */
  extendHttp?: (app: FastifyInstance, ctx: { resolve: (model: string) => ModelVersion; models: () => Promise<string[]>; registry: ServerMetrics['registry'] }) => Promise<void>;
}

export interface OspreyServer {
  app: FastifyInstance;
  service: InferenceService;
  repository: ModelRepository;
  metrics: ServerMetrics;
  logger: Logger;
  /** `http://host:port` of the HTTP endpoint. */
  url: string;
  /** `http://host:port` of the metrics endpoint when on its own port. */
  metricsUrl: string | undefined;
  /** The bound gRPC port (null without gRPC). */
  grpcPort: number | null;
  /**
   * Graceful shutdown: readiness goes false and new requests get 503, the listener closes, queued and in-flight
   * requests finish, sessions and workers are released. Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Starts the server and resolves once it listens (models loaded; a model that failed to load is reported in the
 * log and the repository index, and the server still starts).
 * @throws OspreyError `OSPREY_ERR_USAGE` (neither or both of modelRepository/model), `OSPREY_ERR_FILE_NOT_FOUND`
 *   (repository folder), the model's load error for `model`.
 */
export async function startServer(options: ServeOptions): Promise<OspreyServer> {
  const { OspreyError } = await import('../core/errors.js');
  if ((options.modelRepository === undefined) === (options.model === undefined)) {
    throw new OspreyError('OSPREY_ERR_USAGE', 'give exactly one of --model-repository DIR or --model PATH');
  }
  const logger = options.logger ?? pino({ level: options.logLevel ?? 'info', base: { service: 'osprey-serve' } }, pino.destination(2));
  const metrics = new ServerMetrics({ gpuMetrics: options.gpuMetrics ?? true });
  const repoOptions = {
    ...(options.executionProviders ? { executionProviders: options.executionProviders } : {}),
    ...(options.engineFactory ? { engineFactory: options.engineFactory } : {}),
    observers: (model: string, version: number) => metrics.observer(model, version),
    log: (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => logger[level](fields ?? {}, message),
  };
  const repository = options.modelRepository
    ? await ModelRepository.open(options.modelRepository, repoOptions)
    : await ModelRepository.fromModelFile(options.model!, { ...repoOptions, ...(options.modelConfig ? { config: options.modelConfig } : {}) });
  // Aliases (A/B, shadow) and swap probation/rollback for HTTP and gRPC alike (src/routing, docs/grpc-routing.md).
  const service: InferenceService = new RoutedInferenceService({ repository, metrics, log: logger, ...(options.swap !== undefined ? { swap: options.swap } : {}) });
  let app: FastifyInstance;
  let metricsServer: Server | undefined;
  let grpcServer: OspreyGrpcServer | undefined;
  try {
    app = await buildHttpApp({ service, maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, logger });
    await options.extendHttp?.(app, { resolve: (m) => service.resolve(m), models: async () => (await repository.index(true)).map((e) => e.name), registry: metrics.registry });
    await app.listen({ host: options.host ?? '0.0.0.0', port: options.httpPort ?? 8000 });
    if (options.metricsPort !== undefined && options.metricsPort !== null) {
      metricsServer = createServer((req, res) => {
        if (req.method === 'GET' && (req.url ?? '').split('?')[0] === '/metrics') {
          metrics.render().then(
            ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
            (err: Error) => res.writeHead(500).end(err.message),
          );
        } else res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'only GET /metrics here', code: 'OSPREY_ERR_NOT_IMPLEMENTED' }));
      });
      await new Promise<void>((resolve, reject) => {
        metricsServer!.once('error', reject);
        metricsServer!.listen(options.metricsPort!, options.host ?? '0.0.0.0', () => resolve());
      });
    }
    if (options.grpcPort !== undefined && options.grpcPort !== null) {
      grpcServer = await startGrpcForService(service, {
        host: options.host ?? '0.0.0.0',
        port: options.grpcPort,
        logger,
        ...(options.grpcMaxReceiveMessageBytes !== undefined ? { maxReceiveMessageBytes: options.grpcMaxReceiveMessageBytes } : {}),
      });
    }
  } catch (err) {
    await grpcServer?.close();
    await repository.close();
    throw err;
  }
  const addr = app.server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${addr.port}`;
  let metricsUrl: string | undefined;
  if (metricsServer) {
    const m = metricsServer.address() as AddressInfo;
    metricsUrl = `http://${m.address === '0.0.0.0' ? '127.0.0.1' : m.address}:${m.port}`;
  }
  logger.info({ url, metricsUrl, models: await repository.index() }, 'osprey serve is listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      service.startDraining();
      logger.info('shutting down: draining in-flight requests');
      await Promise.all([app.close(), grpcServer?.close()]);
      if (metricsServer) await new Promise<void>((r) => metricsServer!.close(() => r()));
      await service.shutdown();
      logger.info('shut down: sessions released');
    })();
    return closing;
  };
  return { app, service, repository, metrics, logger, url, metricsUrl, grpcPort: grpcServer?.port ?? null, close };
}
