/**
 * HTTP API and dashboard of the streams runtime, as a function that registers routes on a fastify instance — the
 * server's own (`osprey serve --cameras`) or a small one of its own (`osprey streams`).
 *
 * | method | path | what |
 * |---|---|---|
 * | GET | `/dashboard/` | the dashboard (static files from `web/`) |
 * | GET | `/api/cameras` | cameras with state, fps, latency, counters |
 * | POST | `/api/cameras` | add a camera (body: one camera of cameras.yaml) |
 * | GET / PUT / DELETE | `/api/cameras/:id` | read, replace (restarts only it), remove |
 * | POST | `/api/cameras/:id/restart` | restart one camera now (also from `failed`), with a fresh attempt count |
 * | PUT | `/api/cameras/:id/rules` | replace its rules (body: `{ rules: [...] }`), e.g. a zone drawn in the dashboard |
 * | GET | `/api/cameras/:id/frame.jpg` | latest annotated frame |
 * | GET | `/api/cameras/:id/mjpeg` | live annotated frames (`multipart/x-mixed-replace`) |
 * | GET | `/api/events` | events, newest first: `camera`, `class`, `kind`, `rule`, `since`, `until` (ISO 8601 or ms), `afterId`, `limit` |
 * | GET | `/api/events/:id/snapshot.jpg` | an event's snapshot |
 * | GET | `/api/streams/leases` | lease mode: every camera's holder replica, token, lease age, failovers, stored position; the live replicas |
 * | GET | `/api/cameras/:id/health` | the camera's state-change history from the event store (`limit`) |
 * | GET | `/api/cameras/:id/tracks` | tracks of the camera that fired rules: class, first / last event, count (`limit`) |
 * | GET | `/api/stream-events` | server-sent events: `event` (rule and state events) |
 * | GET | `/api/streams/stats` | runtime stats (frames, events, webhooks, memory, batcher) |
 *
 * Errors answer `{ error: { code, message } }` with the catalogue's HTTP status; messages are redacted
 * ({@link StreamManager.redact}) before they leave.
 *
 * {@link registerProbeRoutes} adds `GET /health` (liveness) and `GET /ready` (readiness) for Kubernetes probes.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { OspreyError, toOspreyError } from '../core/errors.js';
import { parseRule } from './config.js';
import type { EventQuery, StoredEvent } from './events.js';
import type { StreamManager } from './manager.js';

/** The repository's `web/` folder (works from src/ under tsx and from dist/src/). */
export function webRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'web', 'index.html')) && existsSync(join(dir, 'package.json'))) return join(dir, 'web');
    dir = dirname(dir);
  }
  return resolve(dirname(fileURLToPath(import.meta.url)), '../../web');
}

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon' };

function sendError(reply: FastifyReply, err: unknown, redact: (text: string) => string): FastifyReply {
  const e = toOspreyError(err);
  return reply.code(e.httpStatus).send({ error: { code: e.code, message: redact(e.message) } });
}

function parseTime(v: unknown, name: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const s = String(v);
  const n = /^\d+$/.test(s) ? Number(s) : Date.parse(s);
  if (!Number.isFinite(n)) throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `${name}: expected an ISO 8601 time or milliseconds since the epoch, got ${JSON.stringify(s)}`);
  return n;
}

function parseIntParam(v: unknown, name: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `${name}: expected a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

export interface StreamsRoutesOptions {
  /** Extra stats merged into `/api/streams/stats` (e.g. the batcher's). */
  extraStats?: () => Record<string, unknown>;
  /** Folder of the dashboard files. Default {@link webRoot}. */
  webDir?: string;
}

/** Registers the streams API and the dashboard on `app`. */
export function registerStreamsRoutes(app: FastifyInstance, manager: StreamManager, options: StreamsRoutesOptions = {}): void {
  const web = options.webDir ?? webRoot();
  const redact = (text: string): string => manager.redact(text);
  // Long-lived responses (MJPEG, server-sent events) end when the server closes, so app.close() never waits on them.
  const open = new Set<import('node:http').ServerResponse>();
  app.addHook('preClose', async () => {
    for (const r of open) r.end();
    open.clear();
  });
  const wrap =
    <R extends FastifyRequest>(fn: (req: R, reply: FastifyReply) => unknown) =>
    async (req: R, reply: FastifyReply) => {
      try {
        return await fn(req, reply);
      } catch (err) {
        return sendError(reply, err, redact);
      }
    };

  app.get('/dashboard', (_req, reply) => reply.redirect('/dashboard/'));
  app.get<{ Params: { '*': string } }>('/dashboard/*', async (req, reply) => {
    const rel = req.params['*'] || 'index.html';
    const file = resolve(web, rel);
    if (!file.startsWith(resolve(web) + sep)) return sendError(reply, new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `no such file: ${rel}`), redact);
    try {
      const body = await readFile(file);
      return reply.type(TYPES[extname(file)] ?? 'application/octet-stream').header('cache-control', 'no-cache').send(body);
    } catch {
      return sendError(reply, new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `no such file: ${rel}`), redact);
    }
  });

  app.get('/api/cameras', wrap(() => ({ cameras: manager.list() })));
  app.post('/api/cameras', wrap(async (req, reply) => {
    const cam = manager.addCamera(req.body);
    return reply.code(201).send(cam.toJSON());
  }));
  app.get<{ Params: { id: string } }>('/api/cameras/:id', wrap((req) => manager.camera(req.params.id).toJSON()));
  app.put<{ Params: { id: string } }>('/api/cameras/:id', wrap(async (req) => (await manager.updateCamera(req.params.id, req.body)).toJSON()));
  app.delete<{ Params: { id: string } }>('/api/cameras/:id', wrap(async (req, reply) => {
    await manager.removeCamera(req.params.id);
    return reply.code(204).send();
  }));
  app.post<{ Params: { id: string } }>('/api/cameras/:id/restart', wrap(async (req) => (await manager.restartCamera(req.params.id)).toJSON()));
  app.put<{ Params: { id: string } }>('/api/cameras/:id/rules', wrap((req) => {
    manager.camera(req.params.id);
    const body = req.body as { rules?: unknown } | unknown[] | null;
    const raw = Array.isArray(body) ? body : body && typeof body === 'object' ? (body as { rules?: unknown }).rules : undefined;
    if (!Array.isArray(raw)) throw new OspreyError('OSPREY_ERR_CONFIG', 'rules: expected a list of rules (body { "rules": [...] })', { keyPath: 'rules' });
    const rules = raw.map((r, i) => parseRule(r, `rules[${i}]`));
    const names = new Set<string>();
    rules.forEach((r, i) => {
      if (names.has(r.name)) throw new OspreyError('OSPREY_ERR_CONFIG', `rules[${i}].name: duplicate rule name ${JSON.stringify(r.name)}`, { keyPath: `rules[${i}].name` });
      names.add(r.name);
    });
    manager.setRules(req.params.id, rules);
    return { rules };
  }));
  app.get<{ Params: { id: string } }>('/api/cameras/:id/frame.jpg', wrap((req, reply) => {
    const { jpeg } = manager.preview(req.params.id);
    if (!jpeg) return reply.code(204).send();
    return reply.type('image/jpeg').header('cache-control', 'no-store').send(jpeg);
  }));
  app.get<{ Params: { id: string } }>('/api/cameras/:id/mjpeg', wrap((req, reply) => {
    const id = req.params.id;
    const first = manager.preview(id);
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { 'content-type': 'multipart/x-mixed-replace; boundary=ospreyframe', 'cache-control': 'no-store', connection: 'close' });
    const write = (jpeg: Buffer): void => {
      raw.write(`--ospreyframe\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`);
      raw.write(jpeg);
      raw.write('\r\n');
    };
    if (first.jpeg) write(first.jpeg);
    const onPreview = (p: { camera: string; jpeg: Buffer }): void => {
      if (p.camera === id && raw.writableLength < 4 * 1024 * 1024) write(p.jpeg); // skip frames for slow clients
    };
    manager.on('preview', onPreview);
    open.add(raw);
    const done = (): void => {
      open.delete(raw);
      manager.off('preview', onPreview);
    };
    req.raw.on('close', done);
    raw.on('close', done);
  }));

  app.get<{ Querystring: Record<string, string | undefined> }>('/api/events', wrap(async (req) => {
    const q = req.query;
    const kind = q['kind'];
    if (kind !== undefined && kind !== 'rule' && kind !== 'state') throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `kind: expected rule or state, got ${JSON.stringify(kind)}`);
    const query: EventQuery = {};
    if (q['camera']) query.camera = q['camera'];
    if (q['class']) query.className = q['class'];
    if (kind) query.kind = kind;
    if (q['rule']) query.rule = q['rule'];
    const since = parseTime(q['since'], 'since');
    const until = parseTime(q['until'], 'until');
    const afterId = parseIntParam(q['afterId'], 'afterId');
    const limit = parseIntParam(q['limit'], 'limit');
    if (since !== undefined) query.sinceMs = since;
    if (until !== undefined) query.untilMs = until;
    if (afterId !== undefined) query.afterId = afterId;
    if (limit !== undefined) query.limit = limit;
    return { events: await manager.store.query(query) };
  }));
  app.get<{ Params: { id: string } }>('/api/events/:id/snapshot.jpg', wrap(async (req, reply) => {
    const id = parseIntParam(req.params.id, 'id')!;
    const ev = await manager.store.get(id);
    const abs = ev?.snapshot ? manager.store.resolveSnapshot(ev.snapshot) : null;
    if (!abs) throw new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `event ${id} has no snapshot`);
    try {
      return reply.type('image/jpeg').send(await readFile(abs));
    } catch {
      throw new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `event ${id}: snapshot not written (yet) or removed by retention`);
    }
  }));
  app.get('/api/stream-events', (req, reply) => {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    raw.write(': osprey streams\n\n');
    const onEvent = (e: StoredEvent): void => {
      raw.write(`event: event\ndata: ${JSON.stringify(e)}\n\n`);
    };
    manager.on('event', onEvent);
    const ping = setInterval(() => raw.write(': ping\n\n'), 15000);
    open.add(raw);
    const done = (): void => {
      open.delete(raw);
      clearInterval(ping);
      manager.off('event', onEvent);
    };
    req.raw.on('close', done);
    raw.on('close', done);
  });
  app.get('/api/streams/stats', wrap(async () => ({ ...(await manager.stats()), ...(options.extraStats?.() ?? {}) })));
  app.get('/api/streams/leases', wrap(async () => (await manager.leaseTable()) ?? { replica: null, leases: [], replicas: [], failovers: 0, lastError: null }));
  app.get<{ Params: { id: string }; Querystring: Record<string, string | undefined> }>('/api/cameras/:id/health', wrap(async (req) => {
    const limit = parseIntParam(req.query['limit'], 'limit') ?? 100;
    return { camera: req.params.id, history: await manager.store.healthHistory(req.params.id, Math.max(1, Math.min(1000, limit))) };
  }));
  app.get<{ Params: { id: string }; Querystring: Record<string, string | undefined> }>('/api/cameras/:id/tracks', wrap(async (req) => {
    const limit = parseIntParam(req.query['limit'], 'limit') ?? 100;
    return { camera: req.params.id, tracks: await manager.store.tracks(req.params.id, Math.max(1, Math.min(1000, limit))) };
  }));
}

/**
 * Kubernetes probes on the streams port:
 * - `GET /health` — liveness: 200 `{ "status": "ok" }` whenever the process's event loop answers. Cameras being down
 *   never fail it (restarting the process does not bring a camera back).
 * - `GET /ready` — readiness: 200 once the model is loaded, the event database is open and the cameras are started;
 *   503 before that and from the moment shutdown begins (SIGTERM), so traffic drains first. The body lists the checks
 *   and how many cameras are in each state.
 */
export function registerProbeRoutes(app: FastifyInstance, manager: StreamManager, extraChecks: () => Record<string, boolean> = () => ({})): void {
  app.get('/health', async (_req, reply) => reply.header('cache-control', 'no-store').send({ status: 'ok' }));
  app.get('/ready', async (_req, reply) => {
    const r = manager.readiness();
    const checks = { ...r.checks, ...extraChecks() };
    const ready = Object.values(checks).every(Boolean);
    return reply.code(ready ? 200 : 503).header('cache-control', 'no-store').send({ status: ready ? 'ready' : 'not ready', checks, cameras: r.cameras });
  });
}
