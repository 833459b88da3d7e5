/**
 * `osprey serve`'s HTTP front end (fastify): KServe v2 core, Triton's binary tensor, model configuration,
 * statistics, repository and schedule-policy extensions, Osprey's `/detect`, and `/metrics`.
 * Every route is a thin adapter over {@link InferenceService}; errors are `{"error": "...", "code": "OSPREY_ERR_…"}`
 * with the catalogue's HTTP status (Triton's mapping).
 */
import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Socket } from 'node:net';
import { ERROR_CATALOGUE, OspreyError, toOspreyError, type ErrorCode } from '../core/errors.js';
import type { DetectOptions } from '../core/types.js';
import type { LoadRequest } from '../repository/repository.js';
import { AccessPolicy, httpApiGroup, type ApiGroup } from './auth.js';
import { JsonInferDecoder } from './json-decoder.js';
import { HEADER_INFERENCE_LENGTH, checkJsonDepth } from './kserve-http.js';
import type { DetectImage, InferenceService } from './service.js';

/** Default body limit: a 16-image uint8 640×640 batch is ~20 MB, FP32 ~79 MB (binary tensor extension). */
export const DEFAULT_MAX_BODY_BYTES = 128 * 1024 * 1024;
/**
 * Default limit of an infer request's JSON (a body without `Inference-Header-Content-Length`, or that header's
 * value): 32 MiB holds one 640×640 FP32 image as JSON numbers; larger tensors belong in the binary extension.
 */
export const DEFAULT_MAX_JSON_BYTES = 32 * 1024 * 1024;
/** Most images per multipart detect request. */
export const MAX_DETECT_FILES = 64;

/** Slow-client limits of an HTTP listener (all in ms but the connection cap). */
export interface HttpTimeouts {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnectionsPerIp: number;
}

/** Slow-client defaults (`osprey serve --headers-timeout-ms` ...). */
export const HTTP_TIMEOUT_DEFAULTS: Readonly<HttpTimeouts> = Object.freeze({
  /** Whole request header must arrive within this, ms (Node's `headersTimeout`). */
  headersTimeoutMs: 10_000,
  /** Whole request (headers + body) must arrive within this, ms (Node's `requestTimeout`). */
  requestTimeoutMs: 60_000,
  /** A connection with no bytes either way for this long is closed, ms (socket inactivity). */
  idleTimeoutMs: 30_000,
  /** An idle keep-alive connection between requests is kept this long, ms (above nginx's 60 s upstream default). */
  keepAliveTimeoutMs: 65_000,
  /** Open connections one client address may hold; more get 429 `OSPREY_ERR_TOO_MANY_CONNECTIONS`. */
  maxConnectionsPerIp: 512,
});

export interface HttpOptions {
  service: InferenceService;
  /** Body limit in bytes (→ 413 `OSPREY_ERR_PAYLOAD_TOO_LARGE`). Default {@link DEFAULT_MAX_BODY_BYTES}. */
  maxBodyBytes?: number;
  /** Infer-request JSON limit in bytes (→ 413). Default {@link DEFAULT_MAX_JSON_BYTES}. */
  maxJsonBytes?: number;
  /** pino logger; undefined = silent. */
  logger?: Logger;
  /** Serve `/metrics` on this app. Default true. */
  metricsRoute?: boolean;
  /** Which API groups need credentials (src/server/auth.ts). Default: none. */
  accessPolicy?: AccessPolicy;
  /** Slow-client limits, see {@link HTTP_TIMEOUT_DEFAULTS}. */
  timeouts?: Partial<HttpTimeouts>;
  /** Decoder of infer bodies (large JSON off the main thread). Default: a new one, closed with the app. */
  jsonDecoder?: JsonInferDecoder;
}

/** Groups still answered while the server drains (probes and scrapes must see the truth, not an error). */
const ANSWERED_WHILE_DRAINING: ReadonlySet<ApiGroup> = new Set(['health', 'metrics']);
/** Groups whose requests a graceful shutdown waits for. */
const TRACKED_GROUPS: ReadonlySet<ApiGroup> = new Set(['inference', 'model-repository']);

/** Multipart parser failures that mean the client sent a broken body (busboy's messages). */
const MULTIPART_CLIENT_ERRORS = /Part terminated early|Unexpected end of (form|multipart data)|Malformed part header|Boundary not found|Malformed urlencoded form|Multipart: /i;

type Params = { model: string; version?: string };

/** Maps any thrown value to the catalogue (fastify's own errors included). */
export function toHttpError(err: unknown): OspreyError {
  if (err instanceof OspreyError) return err;
  const e = err as { code?: string; statusCode?: number; message?: string };
  const message = e?.message ?? String(err);
  if (e?.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || e?.code === 'FST_REQ_FILE_TOO_LARGE' || e?.statusCode === 413) {
    return new OspreyError('OSPREY_ERR_PAYLOAD_TOO_LARGE', `the request body is over the limit (${message})`, {}, { cause: err });
  }
  if (e?.code === 'FST_FILES_LIMIT' || e?.code === 'FST_PARTS_LIMIT') {
    return new OspreyError('OSPREY_ERR_PAYLOAD_TOO_LARGE', `too many parts in the multipart request (${message}); at most ${MAX_DETECT_FILES} images`, {}, { cause: err });
  }
  if (e?.code === 'FST_PROTO_VIOLATION' || e?.code === 'FST_INVALID_MULTIPART_CONTENT_TYPE' || (typeof message === 'string' && MULTIPART_CLIENT_ERRORS.test(message))) {
    return new OspreyError('OSPREY_ERR_MALFORMED_MULTIPART', `the multipart body is malformed (${message})`, {}, { cause: err });
  }
  if (err instanceof RangeError && /call stack/i.test(message)) {
    return new OspreyError('OSPREY_ERR_JSON_TOO_DEEP', 'the request nests too deeply to be read', {}, { cause: err });
  }
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new OspreyError('OSPREY_ERR_MALFORMED_REQUEST', message, { fastifyCode: e.code }, { cause: err });
  }
  return toOspreyError(err);
}

function sendError(reply: FastifyReply, err: OspreyError): FastifyReply {
  const status = ERROR_CATALOGUE[err.code as ErrorCode].http;
  if (err.code === 'OSPREY_ERR_UNAUTHENTICATED') reply.header('www-authenticate', 'Bearer');
  if (status === 429 || err.code === 'OSPREY_ERR_SHUTTING_DOWN') reply.header('retry-after', '1');
  return reply.code(status).type('application/json').send({ error: err.message, code: err.code });
}

/** The path of a request URL, without its query string. */
function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/**
 * Caps the connections one client address holds: past `max`, a new connection gets a 429 answer
 * (`OSPREY_ERR_TOO_MANY_CONNECTIONS`) and is closed before any request is parsed.
 */
export function limitConnectionsPerIp(server: { on(event: 'connection', fn: (socket: Socket) => void): unknown }, max: number): void {
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const ip = socket.remoteAddress ?? '';
    const n = (open.get(ip) ?? 0) + 1;
    if (n > max) {
      const body = JSON.stringify({ error: `this client address already holds ${max} connections (the per-address limit)`, code: 'OSPREY_ERR_TOO_MANY_CONNECTIONS' });
      socket.end(`HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nconnection: close\r\nretry-after: 1\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      socket.destroySoon?.();
      return;
    }
    open.set(ip, n);
    socket.once('close', () => {
      const left = (open.get(ip) ?? 1) - 1;
      if (left <= 0) open.delete(ip);
      else open.set(ip, left);
    });
  });
}

/**
 * Builds the fastify app (not listening). Routes:
 * `GET /v2/health/live|ready`, `GET /v2`, `GET /v2/models/{m}[/versions/{v}]`, `.../ready`, `.../config`,
 * `POST .../infer`, `POST .../detect`, `GET /v2/models[/{m}[/versions/{v}]]/stats`, `POST /v2/repository/index`,
 * `POST /v2/repository/models/{m}/load|unload`, `GET /metrics`.
 */
export async function buildHttpApp(options: HttpOptions): Promise<FastifyInstance> {
  const { service } = options;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const maxJsonBytes = Math.min(options.maxJsonBytes ?? DEFAULT_MAX_JSON_BYTES, maxBodyBytes);
  const policy = options.accessPolicy ?? new AccessPolicy();
  const t = { ...HTTP_TIMEOUT_DEFAULTS, ...options.timeouts };
  const decoder = options.jsonDecoder ?? new JsonInferDecoder();
  const app = Fastify({
    bodyLimit: maxBodyBytes,
    // Per-request logs (fastify's at info) would cost more than a health check: fastify logs at warn and above.
    ...(options.logger ? { loggerInstance: options.logger.child({ component: 'http' }, { level: options.logger.isLevelEnabled('debug') ? 'debug' : 'warn' }) } : { logger: false }),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    keepAliveTimeout: t.keepAliveTimeoutMs,
    connectionTimeout: t.idleTimeoutMs,
    requestTimeout: t.requestTimeoutMs,
    // Node checks header/request deadlines on this interval (default 30 s: far too coarse for a 10 s deadline).
    http: { headersTimeout: t.headersTimeoutMs, requestTimeout: t.requestTimeoutMs, connectionsCheckingInterval: Math.max(250, Math.min(1000, t.headersTimeoutMs / 4)) },
  });
  app.server.headersTimeout = t.headersTimeoutMs;
  limitConnectionsPerIp(app.server, t.maxConnectionsPerIp);
  if (!options.jsonDecoder) app.addHook('onClose', async () => decoder.close());
  // Every body arrives as a Buffer: the infer route parses JSON / binary itself (the binary extension is JSON +
  // raw bytes under any content type), detect takes raw image bytes. Multipart is parsed by @fastify/multipart.
  app.removeAllContentTypeParsers();
  await app.register(multipart, { limits: { fileSize: maxBodyBytes, files: MAX_DETECT_FILES, parts: MAX_DETECT_FILES * 2, fields: MAX_DETECT_FILES, fieldSize: 64 * 1024, headerPairs: 100 } });
  app.addContentTypeParser('*', (req, payload, done) => {
    // A JSON-only infer body has the (lower) JSON limit; the binary extension and other routes the body limit.
    const jsonInfer = req.headers[HEADER_INFERENCE_LENGTH] === undefined && /\/infer$/.test(pathOf(req.url));
    readBody(req, payload, jsonInfer ? maxJsonBytes : maxBodyBytes, done, jsonInfer ? 'JSON infer request' : 'request body');
  });

  // ---- access control, draining, in-flight tracking (before any body is read) ----
  app.addHook('onRequest', async (req, reply) => {
    const group = httpApiGroup(req.method, pathOf(req.url));
    if (service.isDraining && !ANSWERED_WHILE_DRAINING.has(group)) {
      reply.header('connection', 'close');
      throw new OspreyError('OSPREY_ERR_SHUTTING_DOWN', 'the server is shutting down (draining in-flight requests); retry on another replica');
    }
    policy.check(group, req.headers);
    // The response's 'close' fires once: when it is sent, or when the client goes away first.
    if (TRACKED_GROUPS.has(group)) reply.raw.once('close', service.beginRequest());
  });

  // While draining, answers close their keep-alive connection, so close() does not wait for idle clients.
  app.addHook('onSend', async (_req, reply) => {
    if (service.isDraining) reply.header('connection', 'close');
  });

  app.setErrorHandler((err, req, reply) => {
    const e = toHttpError(err);
    const status = ERROR_CATALOGUE[e.code].http;
    if (status >= 500) req.log.warn({ code: e.code, url: req.url }, e.message);
    return sendError(reply, e);
  });
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, new OspreyError('OSPREY_ERR_NO_ROUTE', `no route ${req.method} ${req.url.split('?')[0]!.slice(0, 200)} (see GET /v2 for the extensions)`)),
  );

  // ---- health / server ----
  app.get('/v2/health/live', async (_req, reply) => reply.code(service.isLive() ? 200 : 503).send());
  app.get('/v2/health/ready', async (_req, reply) => reply.code(service.isReady() ? 200 : 503).send());
  app.get('/v2', async () => service.serverMetadata());

  // ---- models ----
  const both = (suffix: string) => [`/v2/models/:model${suffix}`, `/v2/models/:model/versions/:version${suffix}`];
  for (const path of both('')) {
    app.get<{ Params: Params }>(path, async (req) => service.modelMetadata(req.params.model, req.params.version));
  }
  for (const path of both('/ready')) {
    app.get<{ Params: Params }>(path, async (req, reply) => {
      if (service.modelReady(req.params.model, req.params.version)) return reply.code(200).send();
      return sendError(reply, new OspreyError('OSPREY_ERR_MODEL_NOT_READY', `model '${req.params.model}' is not ready`));
    });
  }
  for (const path of both('/config')) {
    app.get<{ Params: Params }>(path, async (req) => service.modelConfig(req.params.model, req.params.version));
  }
  app.get('/v2/models/stats', async () => service.stats());
  for (const path of both('/stats')) {
    app.get<{ Params: Params }>(path, async (req) => service.stats(req.params.model, req.params.version));
  }

  // ---- infer ----
  for (const path of both('/infer')) {
    app.post<{ Params: Params }>(path, async (req, reply) => {
      service.resolve(req.params.model, req.params.version); // unknown/unready model answers 404/503 before the body is examined
      const body = bodyBuffer(req);
      const headerLength = req.headers[HEADER_INFERENCE_LENGTH];
      const hl = Array.isArray(headerLength) ? headerLength[0] : headerLength;
      if (hl !== undefined && Number(hl) > maxJsonBytes) {
        throw new OspreyError('OSPREY_ERR_PAYLOAD_TOO_LARGE', `the JSON header (${hl} bytes) is over the limit of ${maxJsonBytes} bytes`);
      }
      const { request, binaryOutputs } = await decoder.decode(body, hl);
      const res = await service.infer(req.params.model, req.params.version, request);
      const encoded = await decoder.encode(res, binaryOutputs);
      if (encoded.headerLength !== undefined) {
        return reply.header('Inference-Header-Content-Length', String(encoded.headerLength)).type('application/octet-stream').send(encoded.body);
      }
      return reply.type('application/json').send(encoded.body);
    });
  }

  // ---- detect ----
  for (const path of both('/detect')) {
    app.post<{ Params: Params; Querystring: Record<string, string | undefined> }>(path, async (req) => {
      const q = req.query;
      service.resolve(req.params.model, req.params.version);
      const images: DetectImage[] = [];
      if (req.isMultipart()) {
        for await (const part of req.parts()) {
          if (part.type === 'file') images.push({ name: part.filename || part.fieldname, bytes: await part.toBuffer() });
        }
      } else {
        const body = req.body === undefined || req.body === null ? Buffer.alloc(0) : bodyBuffer(req);
        images.push({ name: typeof q.name === 'string' && q.name ? q.name : 'body', bytes: body });
      }
      const options: Partial<DetectOptions> = {};
      const conf = queryNumber(q, 'conf');
      const iou = queryNumber(q, 'iou');
      const maxDet = queryNumber(q, 'max_det') ?? queryNumber(q, 'maxDet');
      if (conf !== undefined) options.confThreshold = conf;
      if (iou !== undefined) options.iouThreshold = iou;
      if (maxDet !== undefined) options.maxDetections = maxDet;
      if (q.classes !== undefined && q.classes !== '') {
        const classes = q.classes.split(',').map((s) => Number(s.trim()));
        if (!classes.every((c) => Number.isInteger(c) && c >= 0)) throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `query 'classes' must be a comma-separated list of class ids, got '${q.classes}'`);
        options.classes = classes;
      }
      if (q.agnostic !== undefined) options.agnostic = q.agnostic === 'true' || q.agnostic === '1';
      const priority = queryNumber(q, 'priority');
      const timeout = queryNumber(q, 'timeout');
      const res = await service.detect(req.params.model, req.params.version, {
        images,
        options,
        ...(priority !== undefined ? { priority } : {}),
        ...(timeout !== undefined ? { timeoutMicroseconds: timeout } : {}),
        parameters: Object.fromEntries(Object.entries(q).filter((e): e is [string, string] => typeof e[1] === 'string')),
      });
      return { model_name: res.modelName, model_version: res.modelVersion, ...(res.routingArm !== undefined ? { routing_arm: res.routingArm } : {}), results: res.results };
    });
  }

  // ---- repository extension ----
  app.post('/v2/repository/index', async (req) => {
    const body = optionalJson(req);
    return service.repositoryIndex(body?.ready === true);
  });
  app.post<{ Params: { model: string } }>('/v2/repository/models/:model/load', async (req, reply) => {
    const body = optionalJson(req);
    const params = (body?.parameters ?? {}) as Record<string, unknown>;
    const load: LoadRequest = {};
    if (params.config !== undefined) {
      if (typeof params.config !== 'string' && (typeof params.config !== 'object' || params.config === null)) {
        throw new OspreyError('OSPREY_ERR_MALFORMED_REQUEST', "parameter 'config' must be a JSON string (Triton) or an object");
      }
      load.config = params.config as string | Record<string, unknown>;
    }
    for (const [k, v] of Object.entries(params)) {
      if (!k.startsWith('file:')) continue;
      if (typeof v !== 'string') throw new OspreyError('OSPREY_ERR_MALFORMED_REQUEST', `parameter '${k}' must be base64 file content`);
      (load.files ??= {})[k.slice(5)] = Buffer.from(v, 'base64');
    }
    await service.loadModel(req.params.model, load);
    return reply.code(200).send();
  });
  app.post<{ Params: { model: string } }>('/v2/repository/models/:model/unload', async (req, reply) => {
    optionalJson(req);
    await service.unloadModel(req.params.model);
    return reply.code(200).send();
  });

  // ---- metrics ----
  if ((options.metricsRoute ?? true) && service.metrics) {
    const metrics = service.metrics;
    app.get('/metrics', async (_req, reply) => {
      const { contentType, body } = await metrics.render();
      return reply.type(contentType).send(body);
    });
  }
  return app as unknown as FastifyInstance;
}

/** Alignment of the binary part of a binary-extension body (the widest element, INT64/FP64). */
const BINARY_ALIGNMENT = 8;

/**
 * Reads a body into one Buffer, refusing it past `limit` bytes (413). For a binary-extension request the body is
 * placed so that its binary part (after `Inference-Header-Content-Length` bytes of JSON) starts 8-byte aligned:
 * tensors are then typed-array views of the body, with no per-request copy on the main thread.
 */
function readBody(req: FastifyRequest, payload: NodeJS.ReadableStream, limit: number, done: (err: Error | null, body?: Buffer) => void, what = 'request body'): void {
  const declared = Number(req.headers['content-length']);
  const hint = what === 'JSON infer request' ? ' (send large tensors with the binary tensor extension, or raise --max-json-bytes)' : '';
  if (Number.isFinite(declared) && declared > limit) {
    done(new OspreyError('OSPREY_ERR_PAYLOAD_TOO_LARGE', `the ${what} (${declared} bytes) is over the limit of ${limit} bytes${hint}`));
    payload.resume();
    return;
  }
  const headerLength = Number(req.headers[HEADER_INFERENCE_LENGTH]);
  const pad = Number.isInteger(headerLength) && headerLength >= 0 ? (BINARY_ALIGNMENT - (headerLength % BINARY_ALIGNMENT)) % BINARY_ALIGNMENT : 0;
  const chunks: Buffer[] = [];
  let size = 0;
  let failed = false;
  payload.on('data', (chunk: Buffer) => {
    if (failed) return;
    size += chunk.length;
    if (size > limit) {
      failed = true;
      done(new OspreyError('OSPREY_ERR_PAYLOAD_TOO_LARGE', `the ${what} is over the limit of ${limit} bytes${hint}`));
      return;
    }
    chunks.push(chunk);
  });
  payload.on('error', (err: Error) => {
    if (!failed) {
      failed = true;
      done(err);
    }
  });
  payload.on('end', () => {
    if (failed) return;
    if (Number.isFinite(declared) && declared !== size) {
      failed = true;
      done(new OspreyError('OSPREY_ERR_MALFORMED_REQUEST', `the body has ${size} bytes but Content-Length says ${declared}`));
      return;
    }
    const backing = Buffer.allocUnsafe(size + pad); // pool slices are 8-byte aligned; big bodies get their own ArrayBuffer
    let offset = pad;
    for (const c of chunks) {
      c.copy(backing, offset);
      offset += c.length;
    }
    done(null, backing.subarray(pad));
  });
}

function bodyBuffer(req: FastifyRequest): Buffer {
  const b = req.body;
  if (Buffer.isBuffer(b)) return b;
  if (b === undefined || b === null) throw new OspreyError('OSPREY_ERR_MALFORMED_REQUEST', 'the request has no body');
  throw new OspreyError('OSPREY_ERR_MALFORMED_REQUEST', 'unexpected body type');
}

function optionalJson(req: FastifyRequest): Record<string, unknown> | undefined {
  const b = req.body;
  if (!Buffer.isBuffer(b) || b.length === 0) return undefined;
  checkJsonDepth(b);
  let parsed: unknown;
  try {
    parsed = JSON.parse(b.toString('utf8'));
  } catch (err) {
    throw new OspreyError('OSPREY_ERR_MALFORMED_REQUEST', `the request is not valid JSON (${(err as Error).message})`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new OspreyError('OSPREY_ERR_MALFORMED_REQUEST', 'the request body must be a JSON object');
  return parsed as Record<string, unknown>;
}

function queryNumber(q: Record<string, string | undefined>, key: string): number | undefined {
  const v = q[key];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `query '${key}' must be a number, got '${v}'`);
  return n;
}
