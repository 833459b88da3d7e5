/**
 * `osprey serve --cameras cameras.yaml`: the camera pipelines inside the inference server's process. Every camera
 * submits into the served model version's own dynamic batcher (the one KServe requests use), so camera frames and
 * API requests batch together; the streams API and dashboard are registered on the server's fastify instance and
 * the stream metrics on its Prometheus registry.
 */
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { OspreyError } from '../core/errors.js';
import type { DetectionModelSpec } from '../core/model-spec.js';
import type { LetterboxGeometry } from '../core/letterbox.js';
import { loadStreamsConfig, type StreamsConfig } from './config.js';
import type { FrameFormat } from './frame-source.js';
import { BatcherFrameInferer, frameFormatFor, type BatchSubmitter, type FrameInferer, type InferOptions, type InferResult } from './inferer.js';
import { openEventStore } from './pg-store.js';
import { StreamManager } from './manager.js';
import { registerStreamsRoutes } from './routes.js';
import type { AccessPolicy } from '../server/auth.js';
import { startScada, type Scada } from './scada.js';

/** What the server exposes of a served model version (a subset of `ModelVersion`). */
export interface ServedVersion {
  batcher: BatchSubmitter;
  detectionSpec: DetectionModelSpec | null;
  config: { dynamicBatching: { priorityLevels: number } | null };
}

/**
 * A frame inferer over a served model: resolves the current version on every frame (hot swaps are followed), and
 * keeps one {@link BatcherFrameInferer} per version object.
 */
export class ServedModelFrameInferer implements FrameInferer {
  readonly inputWidth: number;
  readonly inputHeight: number;
  readonly frameFormat: FrameFormat;
  readonly consumesInput = true;
  readonly names: readonly string[];
  private cache = new WeakMap<object, BatcherFrameInferer>();

  constructor(private readonly resolve: () => ServedVersion, private readonly model: string) {
    const spec = this.specOf(resolve());
    this.inputWidth = spec.inputWidth;
    this.inputHeight = spec.inputHeight;
    this.frameFormat = frameFormatFor(spec);
    this.names = spec.names;
  }

  private specOf(v: ServedVersion): DetectionModelSpec {
    if (!v.detectionSpec) throw new OspreyError('OSPREY_ERR_UNSUPPORTED_MODEL', `model '${this.model}' is not a detection model Osprey can post-process; streams need one`);
    return v.detectionSpec;
  }

  infer(frame: Uint8Array, geometry: LetterboxGeometry, options: InferOptions): Promise<InferResult> {
    const v = this.resolve();
    let inf = this.cache.get(v);
    if (!inf) {
      const spec = this.specOf(v);
      if (spec.inputWidth !== this.inputWidth || spec.inputHeight !== this.inputHeight || frameFormatFor(spec) !== this.frameFormat) {
        throw new OspreyError('OSPREY_ERR_UNSUPPORTED_MODEL', `model '${this.model}': the new version takes ${spec.inputWidth}×${spec.inputHeight} ${spec.inputFormat}; the cameras were started for ${this.inputWidth}×${this.inputHeight} (restart the cameras)`);
      }
      inf = new BatcherFrameInferer(v.batcher, spec, {}, v.config.dynamicBatching?.priorityLevels ?? 0);
      this.cache.set(v, inf);
    }
    return inf.infer(frame, geometry, options);
  }
}

export interface ServeCamerasOptions {
  /** cameras.yaml path. */
  camerasFile: string;
  /** Served model name the cameras use; default: the only model, or the file name of cameras.yaml's `model:`. */
  model?: string;
  log?: { info(o: object, msg?: string): void; warn(o: object, msg?: string): void };
  /** Listen address of the OPC UA server when cameras.yaml's `opcua.host` is not set. Default 127.0.0.1. */
  host?: string;
}

/** The server hook: register routes now (before listen), start the cameras once the server listens. */
export interface CamerasExtension {
  config: StreamsConfig;
  extendHttp(app: FastifyInstance, ctx: { resolve: (model: string) => ServedVersion; models: () => Promise<string[]>; registry?: Registry; accessPolicy?: AccessPolicy }): Promise<void>;
  manager(): StreamManager | null;
}

/** Loads cameras.yaml (errors surface before the server starts) and returns the server hook. */
export function camerasExtension(o: ServeCamerasOptions): CamerasExtension {
  const config = loadStreamsConfig(o.camerasFile);
  let manager: StreamManager | null = null;
  return {
    config,
    manager: () => manager,
    async extendHttp(app, ctx) {
      let model = o.model;
      if (!model) {
        const names = await ctx.models();
        const fromFile = config.model?.split(/[\\/]/).pop()?.replace(/\.onnx$/i, '');
        model = names.length === 1 ? names[0] : fromFile && names.includes(fromFile) ? fromFile : undefined;
        if (!model) throw new OspreyError('OSPREY_ERR_USAGE', `--cameras: say which served model the cameras use (--cameras-model NAME; served: ${names.join(', ') || 'none'})`);
      }
      const name = model;
      const inferer = new ServedModelFrameInferer(() => ctx.resolve(name), name);
      const store = await openEventStore(config);
      manager = new StreamManager({ config, inferer, store, ...(ctx.registry ? { registry: ctx.registry } : {}), ...(o.log ? { log: o.log } : {}) });
      const m = manager;
      registerStreamsRoutes(app, m);
      let scada: Scada | null = null;
      app.addHook('onReady', async () => {
        scada = await startScada(m, config, { ...(o.host ? { host: o.host } : {}), ...(o.log ? { log: o.log } : {}), ...(ctx.accessPolicy ? { accessPolicy: ctx.accessPolicy } : {}) });
        await m.start();
      });
      app.addHook('preClose', async () => {
        await scada?.stop();
        await m.stop();
      });
    },
  };
}
