/**
 * One model version's life (Triton's `model_lifecycle`): built from ONE resolved {@link ModelConfig}, it owns the
 * version's engines (one backend call per instance group), their {@link InstancePool}, the warmup, the
 * {@link DynamicBatcher} and the detection pieces; it is closed by draining the batcher, then the engines.
 * The repository (src/repository/repository.ts) only finds models and versions on disk and keeps the index.
 *
 * Where a backend plugs in: {@link LifecycleContext.factory} (an {@link EngineFactory}, ONNX Runtime's
 * `createOrtInstances` by default), called with each instance group's {@link EngineLoadOptions}.
 */
import { join } from 'node:path';
import { OspreyError, toOspreyError } from '../core/errors.js';
import type { DetectionModelSpec } from '../core/model-spec.js';
import type { Tensor } from '../core/types.js';
import { Detector } from '../engine/detector.js';
import type { EngineFactory, EngineInfo, EngineInstances } from '../engine/engine.js';
import { createGpuInstances } from '../engine/gpu-instances.js';
import { InstancePool } from '../engine/instance-pool.js';
import { gpuInventory, type GpuInventory } from '../gpu/inventory.js';
import { placeInstances } from '../engine/placement.js';

export { placeInstances, type InstancePlacement } from '../engine/placement.js';
import { bucketWarmupSamples, warmupInstances, zeroFeeds, type WarmupSample } from '../engine/warmup.js';
import { DynamicBatcher, defaultBatchBuckets, type BatcherObserver } from '../scheduler/dynamic-batcher.js';
import { resolveModelConfig, type InstanceGroupConfig, type ModelBackend, type ModelConfig, type ModelConfigFile, type WarmupConfig } from './config.js';
import { allocateStorage, bytesPerElement, elementCount, storageFromBytes } from './datatypes.js';
import { readBoundedFile, resolveInModelFolder } from './paths.js';

/** Triton's model states, as `POST /v2/repository/index` reports them. */
export type ModelState = 'UNKNOWN' | 'READY' | 'UNAVAILABLE' | 'LOADING' | 'UNLOADING';

/** Largest warmup sample (one input of one `modelWarmup` entry), bytes. */
export const MAX_WARMUP_INPUT_BYTES = 512 * 1024 * 1024;

/** A loaded, servable model version. */
export class ModelVersion {
  state: ModelState = 'READY';
  /** Users that resolved this version and have not finished (requests between lookup and answer). */
  private users = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(
    readonly model: string,
    readonly version: number,
    /** The resolved config: every default applied, completed from the model. Everyone reads this one. */
    readonly config: ModelConfig,
    readonly modelPath: string,
    readonly info: EngineInfo,
    readonly batcher: DynamicBatcher,
    /** Detection pieces (spec, decode, letterbox, postprocess); null for a model Osprey cannot read as a detector. */
    readonly detector: Detector | null,
    /** Why `detector` is null. */
    readonly detectorError: OspreyError | null,
    private readonly engines: EngineInstances[],
    /** Identity of what was loaded (file + config), to reuse unchanged versions on re-load. */
    readonly loadKey: string,
  ) {}

  /** The detection spec (input format/size, layout, names...), or null. */
  get detectionSpec(): DetectionModelSpec | null {
    return this.detector?.spec ?? null;
  }

  /** Marks a user (a request) as using this version until `release()`. */
  acquire(): void {
    this.users++;
  }

  release(): void {
    this.users--;
    if (this.users === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Waits for users to finish, drains the batcher, releases the sessions. */
  async close(): Promise<void> {
    this.state = 'UNLOADING';
    if (this.users > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
    await this.batcher.close();
    await Promise.all(this.engines.map((e) => e.close()));
    this.state = 'UNAVAILABLE';
  }
}

/** What a version load needs from its repository. */
export interface LifecycleContext {
  /** The `onnxruntime` backend (ONNX Runtime's `createOrtInstances` in production; tests may pass their own). */
  factory: EngineFactory;
  /** Other backends by config `backend` name; `osprey-cuda` defaults to {@link createGpuInstances}. */
  backends?: Partial<Record<ModelBackend, EngineFactory>> | undefined;
  /** The GPUs of this host (default {@link gpuInventory}: nvidia-smi / the CUDA driver, read once). */
  gpus?: (() => Promise<GpuInventory>) | undefined;
  /** `--gpus`: replaces `instanceGroup[].gpus` of every group that is not KIND_CPU (command line over file). */
  gpuIds?: readonly number[] | undefined;
  /** Execution providers for `KIND_AUTO` groups, in order. */
  executionProviders: readonly string[];
  /** Batcher observer of this version (metrics). */
  observer?: BatcherObserver | undefined;
  /** Real paths of folders symlinks may point into (warmup files). */
  allowedTargets: readonly string[];
}

/** The version to load. */
export interface VersionSource {
  model: string;
  version: number;
  /** The model file (already confined to the model folder). */
  modelPath: string;
  /** The model folder (warmup files live in `<modelDir>/warmup/`). */
  modelDir: string;
  /** The config as written (validated), for completion from the model. */
  file: ModelConfigFile;
  /** The same config resolved without the model: instance groups and parameters come from here. */
  resolved: ModelConfig;
  /** Where the config came from, for messages. */
  where: string;
  loadKey: string;
  /** Compute capability → model file built for it, confined and present (from `ccModelFilenames`, plus `model.sm<XY>.engine` files for osprey-cuda). */
  ccModelPaths?: Readonly<Record<string, string>>;
}

/** Execution providers of an instance group kind. */
function providersFor(group: InstanceGroupConfig, eps: readonly string[]): readonly string[] {
  if (group.kind === 'KIND_CPU') return ['cpu'];
  const device = group.kind === 'KIND_GPU' ? eps.filter((e) => e !== 'cpu') : eps;
  return device.length > 0 ? device : ['cuda'];
}

/**
 * Loads one model version: engines for every instance group, the config completed from the model, the detector,
 * the warmup, the batcher. On any failure everything started so far is closed.
 * @throws OspreyError from the backend (`OSPREY_ERR_INVALID_MODEL`, `OSPREY_ERR_EP_UNAVAILABLE`, ...),
 *   `OSPREY_ERR_CONFIG` (config contradicting the model, warmup files), `OSPREY_ERR_PATH_NOT_ALLOWED`,
 *   `OSPREY_ERR_INFERENCE_FAILED` (warmup failed: the version is not READY, as in Triton).
 */
export async function loadModelVersion(src: VersionSource, ctx: LifecycleContext): Promise<ModelVersion> {
  const intraOp = intParameter(src.resolved.parameters, 'intra_op_thread_count');
  const backend = src.resolved.backend;
  const factory = backend === 'onnxruntime' ? ctx.factory : (ctx.backends?.[backend] ?? createGpuInstances);
  const engines: EngineInstances[] = [];
  /** The GPU of each instance, in the pool's order (null: CPU). */
  const devices: Array<number | null> = [];
  /** Group → the GPUs its instances were placed on (what `GET …/config` reports as `instance_group[].gpus`). */
  const placedGpus = new Map<number, number[]>();
  try {
    const cpuOnly = (i: number) => providersFor(src.resolved.instanceGroup[i]!, ctx.executionProviders).every((e) => e === 'cpu');
    // the host's GPUs are read only when some group may go on one (a CPU-only config never spawns nvidia-smi)
    const needsGpus = src.resolved.instanceGroup.some((g, i) => g.kind !== 'KIND_CPU' && (backend !== 'onnxruntime' || !cpuOnly(i) || g.gpus.length > 0 || ctx.gpuIds !== undefined));
    const inventory: GpuInventory = needsGpus ? await (ctx.gpus ?? gpuInventory)() : { gpus: [], source: 'none', note: 'not read: no instance group runs on a GPU' };
    const placements = placeInstances(src.model, src.resolved.instanceGroup, backend, inventory, ctx.gpuIds, cpuOnly);
    for (const p of placements) {
      const g = src.resolved.instanceGroup[p.group]!;
      const cc = p.gpuInfo?.computeCapability;
      const loaded = await factory({
        modelPath: (cc !== undefined ? src.ccModelPaths?.[cc] : undefined) ?? src.modelPath,
        executionProviders: providersFor(g, ctx.executionProviders),
        instances: p.count,
        deviceId: p.gpu ?? 0,
        ...(p.gpuInfo ? { gpu: p.gpuInfo } : {}),
        ...(intraOp !== undefined ? { intraOpNumThreads: intraOp } : {}),
        warmup: 0, // the version's warmup runs below, once, for every instance
      });
      engines.push(loaded);
      const onGpu = p.gpu !== null && loaded.info.executionProvider !== 'cpu';
      for (let i = 0; i < loaded.instances.length; i++) devices.push(onGpu ? p.gpu : null);
      if (onGpu && p.gpuInfo !== null) placedGpus.set(p.group, [...(placedGpus.get(p.group) ?? []), p.gpu!]);
    }
    const info = engines[0]!.info;
    const resolvedConfig = resolveModelConfig(src.file, src.model, info, src.where);
    const config: ModelConfig = placedGpus.size === 0 ? resolvedConfig : { ...resolvedConfig, instanceGroup: resolvedConfig.instanceGroup.map((g, i) => ({ ...g, gpus: placedGpus.get(i) ?? g.gpus })) };
    let detector: Detector | null = null;
    let detectorError: OspreyError | null = null;
    try {
      detector = Detector.fromEngine(engines[0]!.instances[0]!, { maxBatchSize: Math.max(1, config.maxBatchSize) });
    } catch (err) {
      detectorError = toOspreyError(err);
    }
    const instances = engines.flatMap((e) => e.instances);
    const first = info.inputs[0]?.shape[0];
    const fixedBatchSize = config.maxBatchSize > 0 && typeof first === 'number' && first > 0 ? first : null;
    // On a GPU, run a dynamic-batch engine at a few batch sizes only, each tuned once in the warmup (batchBuckets).
    const onDevice = info.executionProvider !== 'cpu';
    const batchBuckets = onDevice && fixedBatchSize === null && config.maxBatchSize > 1 ? defaultBatchBuckets(config.maxBatchSize) : undefined;
    await warmupInstances(instances, warmupSamples(config, info, src, ctx, batchBuckets));
    const batcher = new DynamicBatcher({
      name: `${src.model}:${src.version}`,
      engines: new InstancePool(instances, devices),
      maxBatchSize: config.maxBatchSize,
      dynamicBatching: config.dynamicBatching,
      fixedBatchSize,
      ...(batchBuckets ? { batchBuckets } : {}),
      observer: ctx.observer,
    });
    return new ModelVersion(src.model, src.version, config, src.modelPath, info, batcher, detector, detectorError, engines, src.loadKey);
  } catch (err) {
    await Promise.all(engines.map((e) => e.close().catch(() => undefined)));
    throw err;
  }
}

/**
 * The version's one warmup: the config's `modelWarmup` samples (Triton: the model is not READY until they pass),
 * then one zero batch per bucket size the batcher pads to on a GPU; with neither, one zero run at batch 1 (the
 * first run of an ONNX Runtime session allocates and plans, so traffic should not pay it).
 */
function warmupSamples(config: ModelConfig, info: EngineInfo, src: VersionSource, ctx: LifecycleContext, buckets: readonly number[] | undefined): WarmupSample[] {
  const samples: WarmupSample[] = config.modelWarmup.map((w) => ({
    name: `modelWarmup '${w.name}'`,
    feeds: () => warmupFeeds(config, w, src.modelDir, ctx.allowedTargets),
    count: w.count,
  }));
  if (buckets) samples.push(...bucketWarmupSamples(info.inputs, buckets));
  else if (samples.length === 0 && zeroFeeds(info.inputs, 1)) samples.push({ name: 'zero batch 1', feeds: () => zeroFeeds(info.inputs, 1)!, count: 1 });
  return samples;
}

/** A non-negative integer from the resolved (string) parameters. */
function intParameter(params: Readonly<Record<string, string>>, key: string): number | undefined {
  const s = params[key];
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0) throw new OspreyError('OSPREY_ERR_CONFIG', `parameters.${key}: '${s}' is not a non-negative integer`, { keyPath: `parameters.${key}` });
  return n;
}

/**
 * Builds the feeds of one warmup sample (zero, random or file data). A file is `<model folder>/warmup/<inputDataFile>`,
 * confined to the model folder (src/repository/paths.ts) and read only when it is a regular file of exactly the size
 * the sample's shape implies; a sample over {@link MAX_WARMUP_INPUT_BYTES} is refused before anything is allocated.
 * @throws OspreyError `OSPREY_ERR_CONFIG` (size, shape), `OSPREY_ERR_PATH_NOT_ALLOWED`, `OSPREY_ERR_MODEL_NOT_FOUND_FILE`.
 */
async function warmupFeeds(config: ModelConfig, w: WarmupConfig, modelDir: string, allowedTargets: readonly string[]): Promise<Record<string, Tensor>> {
  const feeds: Record<string, Tensor> = {};
  for (const [name, spec] of Object.entries(w.inputs)) {
    const keyPath = `modelWarmup.${w.name}.inputs.${name}`;
    const dims = config.maxBatchSize > 0 ? [w.batchSize, ...spec.dims] : [...spec.dims];
    const count = elementCount(dims);
    const want = count * bytesPerElement(spec.dataType);
    if (!Number.isSafeInteger(want) || want > MAX_WARMUP_INPUT_BYTES) {
      throw new OspreyError('OSPREY_ERR_CONFIG', `${config.name}: ${keyPath}: [${dims.join(', ')}] is ${want} bytes, over the ${MAX_WARMUP_INPUT_BYTES}-byte limit of a warmup input`, { keyPath });
    }
    let data = allocateStorage(spec.dataType, count);
    if (spec.source === 'random') {
      const bytes = new Uint8Array(count);
      for (let off = 0; off < count; off += 65536) crypto.getRandomValues(bytes.subarray(off, Math.min(count, off + 65536)));
      if (data instanceof Float32Array || data instanceof Float64Array) data.set(bytes);
      else if (data instanceof Uint8Array || data instanceof Int8Array) data.set(bytes);
    } else if (typeof spec.source === 'object') {
      const ctx = { model: config.name, keyPath: `${keyPath}.inputDataFile` };
      const { path, display } = await resolveInModelFolder(modelDir, join(modelDir, 'warmup'), spec.source.file, ctx, allowedTargets);
      const bytes = await readBoundedFile(path, display, ctx, { expectedBytes: want });
      data = storageFromBytes(spec.dataType, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength).slice());
    }
    feeds[name] = { type: spec.dataType, dims, data };
  }
  return feeds;
}
