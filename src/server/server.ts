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
import type { EngineFactory } from '../engine/engine.js';
import { ModelRepository, type ModelVersion } from '../repository/repository.js';
import { RoutedInferenceService } from '../routing/router.js';
import type { SwapPolicy } from '../routing/swap.js';
import { OspreyError } from '../core/errors.js';
import { AccessPolicy, describeRestrictions } from './auth.js';
import { startGrpcForService, type OspreyGrpcServer } from './grpc/index.js';
import { buildHttpApp, DEFAULT_MAX_BODY_BYTES, HTTP_TIMEOUT_DEFAULTS, limitConnectionsPerIp, type HttpTimeouts } from './http.js';
import type { InferenceService, ModelControlMode } from './service.js';

/** Default longest wait for in-flight requests at shutdown, ms (Kubernetes' default grace period is 30 s). */
export const DEFAULT_DRAIN_TIMEOUT_MS = 25_000;
/** Triton's default `--repository-poll-secs`. */
export const DEFAULT_REPOSITORY_POLL_SECONDS = 15;

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
  /** `--gpus`: CUDA device ordinals every non-CPU instance group is placed on (replaces `instanceGroup[].gpus`; checked at load). */
  gpuIds?: readonly number[];
  /** Largest gRPC request message, bytes (default: src/server/grpc DEFAULT_GRPC_MAX_RECEIVE_MESSAGE_BYTES). */
  grpcMaxReceiveMessageBytes?: number;
  /** Swap probation defaults (docs/grpc-routing.md); `false` = plain re-loads. */
  swap?: Partial<SwapPolicy> | false;
  /**
   * Triton's `--model-control-mode` (src/server/service.ts). Default `none`: every model loads at start and the
   * load/unload API answers `OSPREY_ERR_MODEL_CONTROL_DISABLED`.
   */
  modelControlMode?: ModelControlMode;
  /** `explicit` mode: models to load at start (`*` = all; Triton's `--load-model`). Default none. */
  loadModels?: readonly string[];
  /** `poll` mode: seconds between repository scans. Default {@link DEFAULT_REPOSITORY_POLL_SECONDS}. */
  repositoryPollSeconds?: number;
  /** Folders symlinks inside model folders may point into (src/repository/paths.ts). Default none. */
  allowedSymlinkTargets?: readonly string[];
  /** Which API groups need credentials (src/server/auth.ts), over HTTP and gRPC. Default: none restricted. */
  accessPolicy?: AccessPolicy;
  /** A different policy for gRPC (Triton's `--grpc-restricted-protocol`); default {@link accessPolicy}. */
  grpcAccessPolicy?: AccessPolicy;
  /**
   * Start even though `explicit` model control is reachable without credentials on a non-loopback address.
   * Default false: such a server refuses to start (`OSPREY_ERR_USAGE`), since anyone who reaches the port could
   * unload every model.
   */
  allowUnauthenticatedControl?: boolean;
  /** Infer-request JSON limit, bytes (src/server/http.ts DEFAULT_MAX_JSON_BYTES). */
  maxJsonBytes?: number;
  /** Per-request decoded-pixel budget of detect (src/image/pixel-budget.ts). */
  maxRequestPixels?: number;
  /** Process-wide decoded-pixel budget of detect (src/image/pixel-budget.ts). */
  maxDecodePixels?: number;
  /** Slow-client limits of the HTTP listener (src/server/http.ts HTTP_TIMEOUT_DEFAULTS). */
  httpTimeouts?: Partial<HttpTimeouts>;
  /** Longest wait for in-flight requests at shutdown, ms. Default {@link DEFAULT_DRAIN_TIMEOUT_MS}. */
  drainTimeoutMs?: number;
  /** Registers extra routes before the server listens (`osprey serve --cameras`: the streams API and dashboard, src/streams/attach.ts). */
  extendHttp?: (app: FastifyInstance, ctx: { resolve: (model: string) => ModelVersion; models: () => Promise<string[]>; registry: ServerMetrics['registry']; accessPolicy: AccessPolicy }) => Promise<void>;
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
   * Graceful shutdown: readiness goes false and new requests get 503 `OSPREY_ERR_SHUTTING_DOWN` while the listeners
   * stay open; once in-flight requests have finished (or `drainTimeoutMs` passed) the listeners close, then queued
   * work finishes and sessions and workers are released. Idempotent.
   */
  close(): Promise<void>;
}

/** True for addresses only this machine can reach. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** A listen error as the catalogue's `OSPREY_ERR_ADDRESS_IN_USE`, naming the address and the flag. */
function listenError(err: unknown, what: string, host: string, port: number, flag: string): OspreyError {
  if (err instanceof OspreyError) return err;
  const e = err as NodeJS.ErrnoException;
  const why = e?.code === 'EADDRINUSE' ? 'the port is in use' : e?.code === 'EACCES' ? 'permission denied' : (e?.message ?? String(err));
  return new OspreyError('OSPREY_ERR_ADDRESS_IN_USE', `cannot listen for ${what} on ${host}:${port}: ${why} (choose another ${flag})`, { host, port }, { cause: err });
}

/**
 * Starts the server and resolves once it listens (models loaded; a model that failed to load is reported in the
 * log and the repository index, and the server still starts). If any listener cannot start, everything opened so
 * far is closed before the error is thrown: never half up.
 * @throws OspreyError `OSPREY_ERR_USAGE` (neither or both of modelRepository/model; explicit model control open to
 *   the network without credentials), `OSPREY_ERR_FILE_NOT_FOUND` (repository folder), `OSPREY_ERR_ADDRESS_IN_USE`
 *   (a port taken or not permitted), the model's load error for `model`.
 */
export async function startServer(options: ServeOptions): Promise<OspreyServer> {
  if ((options.modelRepository === undefined) === (options.model === undefined)) {
    throw new OspreyError('OSPREY_ERR_USAGE', 'give exactly one of --model-repository DIR or --model PATH');
  }
  const host = options.host ?? '0.0.0.0';
  const mode = options.modelControlMode ?? 'none';
  const policy = options.accessPolicy ?? new AccessPolicy();
  if (mode !== 'explicit' && options.loadModels && options.loadModels.length > 0) {
    throw new OspreyError('OSPREY_ERR_USAGE', `--load-model goes with --model-control-mode explicit (mode '${mode}' loads every model)`);
  }
  const grpcOpen = options.grpcPort !== null && options.grpcPort !== undefined && !(options.grpcAccessPolicy ?? policy).isRestricted('model-repository');
  if (mode === 'explicit' && (!policy.isRestricted('model-repository') || grpcOpen) && !isLoopback(host) && !options.allowUnauthenticatedControl) {
    throw new OspreyError(
      'OSPREY_ERR_USAGE',
      `--model-control-mode explicit on ${host} would let anyone who reaches the port load and unload models: give credentials (--auth-token-file FILE or OSPREY_AUTH_TOKEN), listen on 127.0.0.1, or pass --allow-unauthenticated-control`,
    );
  }
  const logger = options.logger ?? pino({ level: options.logLevel ?? 'info', base: { service: 'osprey-serve' }, redact: { paths: ['req.headers.authorization', 'headers.authorization'], censor: '[redacted]' } }, pino.destination(2));
  const metrics = new ServerMetrics({ gpuMetrics: options.gpuMetrics ?? true });
  const repoOptions = {
    ...(options.executionProviders ? { executionProviders: options.executionProviders } : {}),
    ...(options.engineFactory ? { engineFactory: options.engineFactory } : {}),
    ...(options.gpuIds ? { gpuIds: options.gpuIds } : {}),
    ...(options.allowedSymlinkTargets ? { allowedSymlinkTargets: options.allowedSymlinkTargets } : {}),
    startupModels: mode === 'explicit' ? (options.loadModels?.includes('*') ? ('*' as const) : (options.loadModels ?? [])) : ('*' as const),
    observers: (model: string, version: number) => metrics.observer(model, version),
    log: (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => logger[level](fields ?? {}, message),
  };
  const repository = options.modelRepository
    ? await ModelRepository.open(options.modelRepository, repoOptions)
    : await ModelRepository.fromModelFile(options.model!, { ...repoOptions, ...(options.modelConfig ? { config: options.modelConfig } : {}) });
  // Aliases (A/B, shadow) and swap probation/rollback for HTTP and gRPC alike (src/routing, docs/grpc-routing.md).
  const service: InferenceService = new RoutedInferenceService({
    repository,
    metrics,
    log: logger,
    modelControlMode: mode,
    ...(options.maxRequestPixels !== undefined ? { maxRequestPixels: options.maxRequestPixels } : {}),
    ...(options.maxDecodePixels !== undefined ? { maxDecodePixels: options.maxDecodePixels } : {}),
    ...(options.swap !== undefined ? { swap: options.swap } : {}),
  });
  let app: FastifyInstance | undefined;
  let metricsServer: Server | undefined;
  let grpcServer: OspreyGrpcServer | undefined;
  const httpPort = options.httpPort ?? 8000;
  try {
    app = await buildHttpApp({
      service,
      maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
      ...(options.maxJsonBytes !== undefined ? { maxJsonBytes: options.maxJsonBytes } : {}),
      ...(options.httpTimeouts ? { timeouts: options.httpTimeouts } : {}),
      accessPolicy: policy,
      logger,
    });
    await options.extendHttp?.(app, { resolve: (m) => service.resolve(m), models: async () => (await repository.index(true)).map((e) => e.name), registry: metrics.registry, accessPolicy: policy });
    await app.listen({ host, port: httpPort }).catch((err: unknown) => {
      throw listenError(err, 'HTTP', host, httpPort, '--http-port');
    });
    if (options.metricsPort !== undefined && options.metricsPort !== null) {
      const ms = createServer((req, res) => {
        if (req.method === 'GET' && (req.url ?? '').split('?')[0] === '/metrics') {
          try {
            policy.check('metrics', req.headers);
          } catch (err) {
            const e = err as OspreyError;
            res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' }).end(JSON.stringify({ error: e.message, code: e.code }));
            return;
          }
          metrics.render().then(
            ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
            (err: Error) => res.writeHead(500).end(err.message),
          );
        } else res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'only GET /metrics here', code: 'OSPREY_ERR_NO_ROUTE' }));
      });
      ms.headersTimeout = HTTP_TIMEOUT_DEFAULTS.headersTimeoutMs;
      ms.requestTimeout = HTTP_TIMEOUT_DEFAULTS.requestTimeoutMs;
      limitConnectionsPerIp(ms, HTTP_TIMEOUT_DEFAULTS.maxConnectionsPerIp);
      metricsServer = ms;
      await new Promise<void>((resolve, reject) => {
        ms.once('error', (err) => reject(listenError(err, 'metrics', host, options.metricsPort!, '--metrics-port')));
        ms.listen(options.metricsPort!, host, () => resolve());
      });
    }
    if (options.grpcPort !== undefined && options.grpcPort !== null) {
      grpcServer = await startGrpcForService(service, {
        host,
        port: options.grpcPort,
        logger,
        accessPolicy: options.grpcAccessPolicy ?? policy,
        beginRequest: () => service.beginRequest(),
        ...(options.grpcMaxReceiveMessageBytes !== undefined ? { maxReceiveMessageBytes: options.grpcMaxReceiveMessageBytes } : {}),
      });
    }
  } catch (err) {
    // Never half up: close whatever was opened, then fail.
    await grpcServer?.close(1000).catch(() => undefined);
    if (metricsServer?.listening) await new Promise<void>((r) => metricsServer!.close(() => r()));
    await app?.close().catch(() => undefined);
    await service.shutdown().catch(() => undefined);
    throw err;
  }
  if (mode === 'poll') service.startPolling(Math.max(1, options.repositoryPollSeconds ?? DEFAULT_REPOSITORY_POLL_SECONDS) * 1000);
  if (mode === 'explicit' && !policy.isRestricted('model-repository')) {
    logger.warn({ host }, 'model control is explicit and unauthenticated: anyone who reaches the port can load and unload models');
  }
  const addr = app.server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${shownHost === '0.0.0.0' ? '127.0.0.1' : shownHost}:${addr.port}`;
  let metricsUrl: string | undefined;
  if (metricsServer) {
    const m = metricsServer.address() as AddressInfo;
    metricsUrl = `http://${m.address === '0.0.0.0' ? '127.0.0.1' : m.address}:${m.port}`;
  }
  logger.info({ url, metricsUrl, modelControlMode: mode, restricted: describeRestrictions(policy), models: await repository.index() }, 'osprey serve is listening');

  const httpApp = app;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      service.startDraining();
      grpcServer?.startDraining();
      logger.info({ inFlight: service.inFlightRequests }, 'shutting down: new requests get 503 while in-flight requests finish');
      const drained = await service.drained(options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS);
      if (!drained) logger.warn({ inFlight: service.inFlightRequests }, 'drain timeout: closing with requests still in flight');
      await Promise.all([httpApp.close(), grpcServer?.close()]);
      if (metricsServer) await new Promise<void>((r) => metricsServer!.close(() => r()));
      await service.shutdown();
      logger.info('shut down: sessions released');
    })();
    return closing;
  };
  return { app: httpApp, service, repository, metrics, logger, url, metricsUrl, grpcPort: grpcServer?.port ?? null, close };
}
