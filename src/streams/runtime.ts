/**
 * `osprey streams` in one call: model (engine → dynamic batcher), {@link StreamManager}, and a fastify server with
 * the streams API, the dashboard and `/metrics`. Used by the CLI, the tests and the benchmark.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { OspreyError } from '../core/errors.js';
import { AccessPolicy, httpApiGroup } from '../server/auth.js';
import type { StreamsConfig } from './config.js';
import { openEventStore } from './pg-store.js';
import { StreamManager, type StreamsLog } from './manager.js';
import { loadStreamsModel, type StreamsModel, type StreamsModelOptions } from './model.js';
import { registerProbeRoutes, registerStreamsRoutes } from './routes.js';
import { startScada, type Scada } from './scada.js';

export interface StreamsRuntimeOptions {
  config: StreamsConfig;
  /** Model options; `modelPath` defaults to `config.model`. `null` = no model (sources and supervision only). */
  model?: Partial<StreamsModelOptions> | null;
  host?: string;
  /** 0 = any free port. Default 8080. */
  port?: number;
  /** Skip the HTTP server (benchmarks). */
  http?: boolean;
  log?: StreamsLog;
  /**
   * Which API groups need credentials (src/server/auth.ts): with a bearer token, the routes that change cameras and
   * rules (`camera-control`) by default. Default: none restricted.
   */
  accessPolicy?: AccessPolicy;
  /**
   * Replica id (outbox claims). With a PostgreSQL store it also turns on camera leases: the cameras of the config are
   * shared with the other replicas (leases.ts). Default `<host>:<pid>`, no leases.
   */
  replicaId?: string;
}

export interface StreamsRuntime {
  manager: StreamManager;
  model: StreamsModel | null;
  app: FastifyInstance | null;
  /** `http://host:port` when the server listens. */
  url: string | null;
  registry: Registry;
  /** The OPC UA server and Sparkplug B edge nodes configured in cameras.yaml (docs/scada.md). */
  scada: Scada;
  close(): Promise<void>;
}

export async function startStreamsRuntime(o: StreamsRuntimeOptions): Promise<StreamsRuntime> {
  // The store first: an unreachable PostgreSQL fails the start before the model is loaded.
  const store = await openEventStore(o.config);
  let model: StreamsModel | null = null;
  let manager: StreamManager;
  const registry = new Registry();
  try {
    if (o.model !== null) {
      const modelPath = o.model?.modelPath ?? o.config.model;
      if (!modelPath) throw new OspreyError('OSPREY_ERR_USAGE', 'no model: pass --model or set `model:` in cameras.yaml');
      const maxPriority = Math.max(1, ...o.config.cameras.map((c) => c.priority));
      model = await loadStreamsModel({ priorityLevels: Math.max(3, maxPriority), ...(o.model ?? {}), modelPath });
    }
    collectDefaultMetrics({ register: registry, prefix: 'osprey_streams_process_' });
    manager = new StreamManager({ config: o.config, inferer: model?.inferer ?? null, registry, store, ...(o.replicaId ? { replicaId: o.replicaId, leases: o.config.store.kind === 'postgres' } : {}), ...(model ? { measuredFramesPerSecond: measuredRate(model, o.model?.instances ?? 1) } : {}), ...(o.log ? { log: o.log } : {}) });
  } catch (err) {
    await model?.close();
    await store.close();
    throw err;
  }
  let app: FastifyInstance | null = null;
  let url: string | null = null;
  let closing = false;
  if (o.http !== false) {
    app = Fastify({ logger: false, forceCloseConnections: true, bodyLimit: 1024 * 1024 });
    const policy = o.accessPolicy ?? new AccessPolicy();
    app.addHook('onRequest', async (req, reply) => {
      try {
        policy.check(httpApiGroup(req.method, req.url.split('?')[0]!), req.headers);
      } catch (err) {
        const e = err as OspreyError;
        return reply.code(401).header('www-authenticate', 'Bearer').send({ error: { code: e.code, message: e.message } });
      }
    });
    registerStreamsRoutes(app, manager, { extraStats: () => (model ? { batcher: summarizeBatcher(model) } : {}) });
    registerProbeRoutes(app, manager, () => ({ model: o.model === null || model !== null, notClosing: !closing }));
    app.get('/', (_req, reply) => reply.redirect('/dashboard/'));
    app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
    url = await app.listen({ host: o.host ?? '127.0.0.1', port: o.port ?? 8080 });
  }
  let scada: Scada | undefined;
  try {
    scada = await startScada(manager, o.config, { host: o.host ?? '127.0.0.1', ...(o.log ? { log: o.log } : {}), ...(o.accessPolicy ? { accessPolicy: o.accessPolicy } : {}) });
    await manager.start();
  } catch (err) {
    await scada?.stop();
    await app?.close();
    await manager.stop();
    await model?.close();
    throw err;
  }
  return {
    manager,
    model,
    app,
    url,
    registry,
    scada,
    async close() {
      closing = true;
      await app?.close();
      await scada.stop();
      await manager.stop();
      await model?.close();
    },
  };
}

/**
 * The engine's measured frame rate: instances × 1 s / (model compute time per frame), from the batcher's statistics
 * once 20 frames have been inferred (null before).
 */
function measuredRate(m: StreamsModel, instances: number): () => number | null {
  return () => {
    const s = m.batcher.stats();
    if (s.inferenceCount < 20 || s.computeInfer.ns <= 0) return null;
    return (instances * 1e9) / (s.computeInfer.ns / s.inferenceCount);
  };
}

function summarizeBatcher(m: StreamsModel): Record<string, unknown> {
  const s = m.batcher.stats();
  const histogram = Object.fromEntries(s.batchStats.map((b) => [String(b.batchSize), b.computeInfer.count]));
  return {
    executionProvider: m.engine.info.executionProvider,
    pendingRequests: s.pendingRequests,
    inferenceCount: s.inferenceCount,
    executionCount: s.executionCount,
    meanBatchSize: s.executionCount ? s.inferenceCount / s.executionCount : 0,
    batchSizeHistogram: histogram,
    meanQueueMs: s.queue.count ? s.queue.ns / s.queue.count / 1e6 : 0,
    meanInferMs: s.computeInfer.count ? s.computeInfer.ns / s.computeInfer.count / 1e6 : 0,
  };
}
