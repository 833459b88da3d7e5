/**
 * Osprey's gRPC server (grpc-js): KServe v2 `inference.GRPCInferenceService` as Triton speaks it, plus the gRPC
 * health protocol `grpc.health.v1.Health` (Kubernetes gRPC probes, grpc_health_probe). It runs on its own port
 * (Triton's `--grpc-port`, default 8001) beside the HTTP server, over the same inference service.
 *
 * Errors: every failure is an {@link OspreyError}; the call ends with the catalogue's gRPC status
 * (`OspreyError.grpcStatus`), the message as details, and the stable code in the trailing metadata key
 * `osprey-error-code`. A request that is not valid protobuf ends with INVALID_ARGUMENT /
 * `OSPREY_ERR_MALFORMED_REQUEST` (grpc-js alone would answer INTERNAL); a message over `maxReceiveMessageBytes`
 * ends with RESOURCE_EXHAUSTED (the catalogue's status of `OSPREY_ERR_PAYLOAD_TOO_LARGE`) before it is parsed.
 *
 * `ModelStreamInfer` answers each request of the stream as soon as it is done (requests run concurrently, answers
 * may come out of order; each carries the request `id`), reports a failed request in-band (`error_message`) and keeps
 * the stream open, as Triton does.
 */
import * as grpc from '@grpc/grpc-js';
import { OspreyError, toOspreyError } from '../../core/errors.js';
import { AccessPolicy, grpcApiGroup } from '../auth.js';
import type { KserveBackend } from './backend.js';
import { decodeInferRequest, encodeInferResponse, parameterValue, type InferParameterMessage, type ModelInferRequestMessage } from './codec.js';
import { loadGrpcDefinitions } from './proto.js';

/** Triton's default gRPC port. */
export const DEFAULT_GRPC_PORT = 8001;
/** Default largest request accepted, bytes (grpc-js's own default, 4 MiB, is below one FP32 640×640 image). */
export const DEFAULT_GRPC_MAX_RECEIVE_MESSAGE_BYTES = 64 * 1024 * 1024;
/** How often Watch re-reads readiness, ms. */
const HEALTH_WATCH_INTERVAL_MS = 500;
/** RPCs still answered during shutdown (probes must see NOT_SERVING / ready=false, not an error). */
const ANSWERED_WHILE_SHUTTING_DOWN = new Set(['ServerLive', 'ServerReady', 'Check']);
/** Service names Health answers for (plus "" = the whole server). */
export const INFERENCE_SERVICE_NAME = 'inference.GRPCInferenceService';

/** Minimal logger (pino's shape). */
export interface GrpcLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface GrpcServerOptions {
  /** Interface to bind. Default `0.0.0.0`. */
  host?: string;
  /** Port; 0 picks a free one (see `OspreyGrpcServer.port`). Default {@link DEFAULT_GRPC_PORT}. */
  port?: number;
  /** Largest request message, bytes. Default {@link DEFAULT_GRPC_MAX_RECEIVE_MESSAGE_BYTES}. */
  maxReceiveMessageBytes?: number;
  logger?: GrpcLogger;
  /** Which API groups need credentials (metadata `authorization: Bearer <token>`, or Triton's key=value). */
  accessPolicy?: AccessPolicy;
  /** Counts an accepted inference/repository call until it is answered (graceful shutdown waits for them). */
  beginRequest?: () => () => void;
  /** A connection idle (no call) for this long is closed, ms. Default 300000. */
  maxConnectionIdleMs?: number;
}

export interface OspreyGrpcServer {
  /** The bound port. */
  readonly port: number;
  /** From now on health is NOT_SERVING and new calls (but probes) end UNAVAILABLE `OSPREY_ERR_SHUTTING_DOWN`; the port stays open. */
  startDraining(): void;
  /** Marks health NOT_SERVING (probes fail first), then stops accepting, lets calls in flight finish, closes. */
  close(graceMs?: number): Promise<void>;
}

/** Marker set on requests that failed to parse (see `withSafeDeserializers`). */
const MALFORMED = Symbol('malformed');
type MaybeMalformed<T> = T & { [MALFORMED]?: string };

/** Wraps each method's request deserializer so a parse error reaches the handler instead of becoming INTERNAL. */
function withSafeDeserializers(def: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(def)) {
    const m = method as grpc.MethodDefinition<unknown, unknown>;
    out[name] = {
      ...m,
      requestDeserialize: (buf: Buffer) => {
        try {
          return m.requestDeserialize(buf);
        } catch (err) {
          return { [MALFORMED]: `${name}: the request is not a valid protobuf message (${(err as Error).message})` };
        }
      },
    };
  }
  return out as grpc.ServiceDefinition;
}

function checkParsed<T extends object>(req: MaybeMalformed<T>): T {
  const bad = req[MALFORMED];
  if (bad !== undefined) throw new OspreyError('OSPREY_ERR_MALFORMED_REQUEST', bad);
  return req;
}

/** A grpc-js status object for an error. */
export function toGrpcError(err: unknown): Partial<grpc.StatusObject> {
  const e = toOspreyError(err);
  const metadata = new grpc.Metadata();
  metadata.set('osprey-error-code', e.code);
  return { code: e.grpcStatus as grpc.status, details: `${e.code}: ${e.message}`, metadata };
}

type UnaryHandler<Req, Res> = (req: Req) => Promise<Res> | Res;

/**
 * Starts the gRPC server.
 * @throws OspreyError `OSPREY_ERR_ADDRESS_IN_USE` when the port cannot be bound (in use, no permission).
 */
export async function startGrpcServer(backend: KserveBackend, options: GrpcServerOptions = {}): Promise<OspreyGrpcServer> {
  const defs = loadGrpcDefinitions();
  const log = options.logger;
  // grpc-js writes its own diagnostics to stderr ("E No address added ..."); they belong in the server's log, where
  // failures are already reported with their code.
  grpc.setLogger({ error: (...args: unknown[]) => (log as { debug?: (o: object, m: string) => void } | undefined)?.debug?.({ component: 'grpc-js' }, args.map(String).join(' ')) } as Partial<Console>);
  const maxReceive = options.maxReceiveMessageBytes ?? DEFAULT_GRPC_MAX_RECEIVE_MESSAGE_BYTES;
  const server = new grpc.Server({
    'grpc.max_receive_message_length': maxReceive,
    'grpc.max_send_message_length': -1,
    'grpc.max_connection_idle_ms': options.maxConnectionIdleMs ?? 300_000,
  });
  let shuttingDown = false;
  const policy = options.accessPolicy ?? new AccessPolicy();
  const TRACKED = new Set(['inference', 'model-repository']);
  /** Checks credentials of a call (metadata keys are lower case, as HTTP/2 headers). */
  const authorize = (method: string, metadata: grpc.Metadata): void => policy.check(grpcApiGroup(method), metadata.getMap() as Record<string, string | Buffer>);

  const unary = <Req extends object, Res>(method: string, fn: UnaryHandler<Req, Res>) =>
    (call: grpc.ServerUnaryCall<MaybeMalformed<Req>, Res>, callback: grpc.sendUnaryData<Res>): void => {
      void (async () => {
        const done = TRACKED.has(grpcApiGroup(method)) && !shuttingDown ? options.beginRequest?.() : undefined;
        try {
          if (shuttingDown && !ANSWERED_WHILE_SHUTTING_DOWN.has(method)) {
            throw new OspreyError('OSPREY_ERR_SHUTTING_DOWN', 'the server is shutting down');
          }
          authorize(method, call.metadata);
          const req = checkParsed(call.request);
          callback(null, await fn(req));
        } catch (err) {
          const status = toGrpcError(err);
          if (status.code === grpc.status.INTERNAL || status.code === grpc.status.UNKNOWN) log?.error({ err, method }, 'gRPC call failed');
          callback(status, null);
        } finally {
          done?.();
        }
      })();
    };

  const repoParam = (params: Record<string, { parameter_choice?: string; bool_param?: boolean; string_param?: string; bytes_param?: Uint8Array; int64_param?: number }> | undefined) =>
    params ?? {};

  const inferOnce = async (msg: ModelInferRequestMessage) => {
    const request = decodeInferRequest(msg);
    const result = await backend.infer(request);
    return encodeInferResponse(
      { modelName: result.modelName, modelVersion: result.modelVersion, id: result.id || request.id, parameters: result.parameters },
      result.outputs,
      request.rawOutputs,
    );
  };

  const handlers: grpc.UntypedServiceImplementation = {
    ServerLive: unary('ServerLive', async () => ({ live: await backend.isLive() })),
    ServerReady: unary('ServerReady', async () => ({ ready: !shuttingDown && (await backend.isReady()) })),
    ModelReady: unary('ModelReady', async (r: { name: string; version: string }) => {
      if (!r.name) throw new OspreyError('OSPREY_ERR_MALFORMED_REQUEST', 'ModelReadyRequest.name is empty');
      return { ready: await backend.modelReady(r.name, r.version ?? '') };
    }),
    ServerMetadata: unary('ServerMetadata', () => backend.serverMetadata()),
    ModelMetadata: unary('ModelMetadata', (r: { name: string; version: string }) => {
      if (!r.name) throw new OspreyError('OSPREY_ERR_MALFORMED_REQUEST', 'ModelMetadataRequest.name is empty');
      return backend.modelMetadata(r.name, r.version ?? '');
    }),
    ModelConfig: unary('ModelConfig', async (r: { name: string; version: string }) => {
      if (!r.name) throw new OspreyError('OSPREY_ERR_MALFORMED_REQUEST', 'ModelConfigRequest.name is empty');
      return { config: await backend.modelConfig(r.name, r.version ?? '') };
    }),
    ModelStatistics: unary('ModelStatistics', async (r: { name: string; version: string }) => ({
      model_stats: await backend.modelStatistics(r.name ?? '', r.version ?? ''),
    })),
    RepositoryIndex: unary('RepositoryIndex', async (r: { ready: boolean }) => ({
      models: (await backend.repositoryIndex(Boolean(r.ready))).map((m) => ({ name: m.name, version: m.version ?? '', state: m.state ?? '', reason: m.reason ?? '' })),
    })),
    RepositoryModelLoad: unary('RepositoryModelLoad', async (r: { model_name: string; parameters?: Record<string, InferParameterMessage & { bytes_param?: Uint8Array }> }) => {
      if (!r.model_name) throw new OspreyError('OSPREY_ERR_MALFORMED_REQUEST', 'RepositoryModelLoadRequest.model_name is empty');
      let config: string | undefined;
      const files: Record<string, Uint8Array> = {};
      for (const [key, p] of Object.entries(repoParam(r.parameters))) {
        if (key === 'config') {
          if (p.parameter_choice !== 'string_param') throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', "load parameter 'config' must be a string (JSON text)");
          config = p.string_param;
        } else if (key.startsWith('file:')) {
          if (p.parameter_choice !== 'bytes_param' || !p.bytes_param) throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `load parameter '${key}' must be bytes`);
          files[key.slice(5)] = p.bytes_param;
        }
      }
      if (Object.keys(files).length > 0 && config === undefined) {
        throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', "load parameters 'file:<version>/<name>' need a 'config' parameter too (Triton's rule)");
      }
      await backend.loadModel(r.model_name, { ...(config !== undefined ? { config } : {}), ...(Object.keys(files).length ? { files } : {}) });
      return {};
    }),
    RepositoryModelUnload: unary('RepositoryModelUnload', async (r: { model_name: string; parameters?: Record<string, InferParameterMessage> }) => {
      if (!r.model_name) throw new OspreyError('OSPREY_ERR_MALFORMED_REQUEST', 'RepositoryModelUnloadRequest.model_name is empty');
      const unloadDependents = parameterValue(r.parameters?.unload_dependents) === true;
      await backend.unloadModel(r.model_name, { unloadDependents });
      return {};
    }),
    ModelInfer: unary('ModelInfer', (r: ModelInferRequestMessage) => inferOnce(r)),
    ModelStreamInfer: (call: grpc.ServerDuplexStream<MaybeMalformed<ModelInferRequestMessage>, unknown>) => {
      try {
        authorize('ModelStreamInfer', call.metadata);
      } catch (err) {
        call.emit('error', toGrpcError(err));
        return;
      }
      let inFlight = 0;
      let ended = false;
      let closed = false;
      const finish = (): void => {
        if (ended && inFlight === 0 && !closed) {
          closed = true;
          call.end();
        }
      };
      call.on('data', (msg: MaybeMalformed<ModelInferRequestMessage>) => {
        inFlight++;
        const done = shuttingDown ? undefined : options.beginRequest?.();
        void (async () => {
          let reply: object;
          try {
            if (shuttingDown) throw new OspreyError('OSPREY_ERR_SHUTTING_DOWN', 'the server is shutting down');
            reply = { error_message: '', infer_response: await inferOnce(checkParsed(msg)) };
          } catch (err) {
            const e = toOspreyError(err);
            if (e.code === 'OSPREY_ERR_INTERNAL') log?.error({ err }, 'stream inference failed');
            // In-band error, as Triton: the stream stays open for the next requests.
            reply = { error_message: `${e.code}: ${e.message}`, infer_response: { model_name: msg.model_name ?? '', model_version: msg.model_version ?? '', id: msg.id ?? '' } };
          }
          inFlight--;
          done?.();
          if (!call.cancelled && !closed) call.write(reply);
          finish();
        })();
      });
      call.on('end', () => {
        ended = true;
        finish();
      });
      call.on('error', () => {
        ended = true;
        closed = true;
      });
      call.on('cancelled', () => {
        ended = true;
        closed = true;
      });
    },
  };

  // ---- grpc.health.v1.Health ----
  const healthStatus = async (service: string): Promise<'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN'> => {
    if (service !== '' && service !== INFERENCE_SERVICE_NAME) return 'SERVICE_UNKNOWN';
    if (shuttingDown) return 'NOT_SERVING';
    return (await backend.isReady()) ? 'SERVING' : 'NOT_SERVING';
  };
  const healthHandlers: grpc.UntypedServiceImplementation = {
    Check: unary('Check', async (r: { service: string }) => {
      const status = await healthStatus(r.service ?? '');
      if (status === 'SERVICE_UNKNOWN') {
        throw new OspreyError('OSPREY_ERR_MODEL_NOT_FOUND', `unknown service '${r.service}' (known: '', '${INFERENCE_SERVICE_NAME}')`);
      }
      return { status };
    }),
    Watch: (call: grpc.ServerWritableStream<MaybeMalformed<{ service: string }>, unknown>) => {
      let last: string | undefined;
      let timer: NodeJS.Timeout | undefined;
      const stop = (): void => {
        if (timer) clearInterval(timer);
        timer = undefined;
      };
      const push = async (): Promise<void> => {
        try {
          const status = await healthStatus(call.request.service ?? '');
          if (status !== last && !call.cancelled) {
            last = status;
            call.write({ status });
          }
          if (shuttingDown) {
            stop();
            call.end();
          }
        } catch (err) {
          stop();
          call.emit('error', toGrpcError(err));
        }
      };
      if (call.request[MALFORMED] !== undefined) {
        call.emit('error', toGrpcError(new OspreyError('OSPREY_ERR_MALFORMED_REQUEST', call.request[MALFORMED]!)));
        return;
      }
      try {
        authorize('Watch', call.metadata);
      } catch (err) {
        call.emit('error', toGrpcError(err));
        return;
      }
      void push();
      timer = setInterval(() => void push(), HEALTH_WATCH_INTERVAL_MS);
      timer.unref();
      call.on('cancelled', stop);
      call.on('close', stop);
    },
  };

  server.addService(withSafeDeserializers(defs.inference), handlers);
  server.addService(withSafeDeserializers(defs.health), healthHandlers);

  const host = options.host ?? '0.0.0.0';
  const requested = options.port ?? DEFAULT_GRPC_PORT;
  const address = host.includes(':') ? `[${host}]:${requested}` : `${host}:${requested}`;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, bound) => {
      const why = err ? (/EADDRINUSE/.test(err.message) ? 'the port is in use' : /EACCES/.test(err.message) ? 'permission denied' : err.message) : '';
      if (err) reject(new OspreyError('OSPREY_ERR_ADDRESS_IN_USE', `cannot listen for gRPC on ${address}: ${why} (choose another --grpc-port)`, { address }, { cause: err }));
      else resolve(bound);
    });
  });
  log?.info({ port, host, maxReceiveMessageBytes: maxReceive }, 'gRPC server listening');

  let closing: Promise<void> | undefined;
  return {
    port,
    startDraining() {
      shuttingDown = true;
    },
    close(graceMs = 10_000) {
      closing ??= (async () => {
        shuttingDown = true;
        await new Promise<void>((resolve) => {
          const force = setTimeout(() => {
            server.forceShutdown();
            resolve();
          }, graceMs);
          force.unref();
          server.tryShutdown(() => {
            clearTimeout(force);
            resolve();
          });
        });
      })();
      return closing;
    },
  };
}
