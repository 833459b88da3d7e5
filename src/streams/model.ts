/**
 * The inference stack of `osprey streams` when it runs on its own: an ORT engine (worker threads), the model's
 * config completed like `osprey serve` does (`resolveModelConfig`), and the same {@link DynamicBatcher}, with
 * one priority level per camera priority so cameras' frames batch together and higher-priority cameras go first.
 * Under `osprey serve --cameras`, the server's own batcher is used instead (see `BatcherFrameInferer`).
 */
import { basename } from 'node:path';
import { resolveDetectionModelSpec, type DetectionModelSpec } from '../core/model-spec.js';
import type { DetectOptions } from '../core/types.js';
import type { Engine } from '../engine/engine.js';
import type { InstancePool } from '../engine/instance-pool.js';
import { createOrtEngine } from '../engine/ort-engine.js';
import { createPlacedEngine, isGpuEnginePath } from '../engine/placed-engine.js';
import { resolveModelConfig } from '../repository/config.js';
import { warmupBatchBuckets } from '../engine/warmup.js';
import { DynamicBatcher, defaultBatchBuckets } from '../scheduler/dynamic-batcher.js';
import { BatcherFrameInferer } from './inferer.js';

export interface StreamsModelOptions {
  modelPath: string;
  /** Execution providers in order. Default `['cuda', 'cpu']` (the engine's default). */
  executionProviders?: readonly string[];
  /** Engine instances. Default 1. */
  instances?: number;
  intraOpNumThreads?: number;
  /**
   * `--gpus`: CUDA device ordinals; `instances` go on EACH, and the batcher spreads batches across the GPUs by queue
   * depth. An engine from `osprey build --engine cuda` (`*.engine` / its folder) runs on GPU 0 without it.
   */
  gpuIds?: readonly number[];
  /** Priority levels (cameras use 1..levels). Default 3. */
  priorityLevels?: number;
  /** Dynamic batching max queue delay. Default 2000 µs. */
  maxQueueDelayMicroseconds?: number;
  /** Max batch for a dynamic-batch model. Default: the config default (8). */
  maxBatchSize?: number;
  detect?: Partial<DetectOptions>;
}

export interface StreamsModel {
  engine: Engine;
  batcher: DynamicBatcher;
  spec: DetectionModelSpec;
  inferer: BatcherFrameInferer;
  close(): Promise<void>;
}

/** Loads the model and builds engine → batcher → frame inferer. */
export async function loadStreamsModel(o: StreamsModelOptions): Promise<StreamsModel> {
  const common = {
    modelPath: o.modelPath,
    ...(o.executionProviders ? { executionProviders: o.executionProviders } : {}),
    instances: o.instances ?? 1,
    ...(o.intraOpNumThreads ? { intraOpNumThreads: o.intraOpNumThreads } : {}),
  };
  let engine: Engine;
  /** The placed engine's pool (instances labelled by GPU) for the batcher; undefined = the ORT pool as one engine. */
  let pool: InstancePool<Engine> | undefined;
  if (o.gpuIds !== undefined || (await isGpuEnginePath(o.modelPath))) {
    const placed = await createPlacedEngine({ ...common, ...(o.gpuIds ? { gpuIds: o.gpuIds } : {}) });
    engine = placed;
    pool = placed.pool;
  } else {
    engine = await createOrtEngine(common);
  }
  try {
    const spec = resolveDetectionModelSpec(engine.info.inputs, engine.info.outputs, engine.info.metadata);
    const levels = o.priorityLevels ?? 3;
    const name = basename(o.modelPath).replace(/\.(onnx|engine)$/i, '');
    const cfg = resolveModelConfig(
      {
        ...(o.maxBatchSize !== undefined && spec.batchSize === null ? { maxBatchSize: o.maxBatchSize } : {}),
        dynamicBatching: { priorityLevels: levels, defaultPriorityLevel: levels, maxQueueDelayMicroseconds: o.maxQueueDelayMicroseconds ?? 2000 },
      },
      name,
      engine.info,
    );
    // On a GPU, a dynamic-batch engine runs at a few tuned batch sizes (see DynamicBatcherOptions.batchBuckets).
    const batchBuckets =
      engine.info.executionProvider !== 'cpu' && spec.batchSize === null && cfg.maxBatchSize > 1 ? defaultBatchBuckets(cfg.maxBatchSize) : undefined;
    if (batchBuckets) await warmupBatchBuckets(engine.info, pool ? pool.engines : [engine], batchBuckets);
    const batcher = new DynamicBatcher({
      name: `${name}:streams`,
      engines: pool ?? [engine],
      maxBatchSize: cfg.maxBatchSize,
      dynamicBatching: cfg.dynamicBatching,
      fixedBatchSize: spec.batchSize,
      ...(batchBuckets ? { batchBuckets } : {}),
    });
    const inferer = new BatcherFrameInferer(batcher, spec, o.detect ?? {}, cfg.dynamicBatching?.priorityLevels ?? 0);
    return {
      engine,
      batcher,
      spec,
      inferer,
      async close() {
        await batcher.close();
        await engine.close();
      },
    };
  } catch (err) {
    await engine.close();
    throw err;
  }
}
