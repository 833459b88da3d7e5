/**
 * An engine of several instances placed on GPUs, for the commands that load a model on their own (`osprey bench
 * engine`, `osprey streams`, `osprey detect`): `instances` instances on EACH GPU of `gpuIds` (the `--gpus` option,
 * Triton's placement, as `osprey serve` does for `instanceGroup[].gpus`), each run sent to the instance with the fewest
 * runs in flight and, among equals, on the GPU with the fewest ({@link InstancePool}).
 *
 * The backend follows the file: an engine built by `osprey build --engine cuda` (`*.engine`, or a folder holding
 * `model.sm<XY>.engine` files, one picked per GPU by compute capability) runs on Osprey's GPU engine; anything else on
 * ONNX Runtime, its CUDA EP pinned to each GPU by `device_id`.
 */
import { readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { OspreyError } from '../core/errors.js';
import type { Tensor } from '../core/types.js';
import { gpuInventory, type GpuInventory } from '../gpu/inventory.js';
import type { Engine, EngineFactory, EngineInfo, EngineInstances, RunOptions } from './engine.js';
import { createGpuInstances } from './gpu-instances.js';
import { InstancePool } from './instance-pool.js';
import { createOrtInstances, type OrtEngineOptions } from './ort-engine.js';
import { placeInstances, type InstancePlacement } from './placement.js';

export interface PlacedEngineOptions extends Pick<OrtEngineOptions, 'modelPath' | 'executionProviders' | 'instances' | 'intraOpNumThreads' | 'intraOpSpinning'> {
  /** CUDA device ordinals; `instances` go on each. Default: device 0 (ONNX Runtime: its execution providers decide). */
  gpuIds?: readonly number[];
  /** The host's GPUs (default: read once, src/gpu/inventory.ts). */
  gpus?: () => Promise<GpuInventory>;
  /** Zero-input warmup runs per instance inside the backend. Default 1. */
  warmup?: number;
  /** Batch size of the warmup runs. Default 1. */
  warmupBatchSize?: number;
  /** Backend override (tests); default by file, see the module comment. */
  factory?: EngineFactory;
}

/** Info of a {@link PlacedEngine}: the first group's, with the instance count and the GPU of each instance. */
export interface PlacedEngineInfo extends EngineInfo {
  instanceCount: number;
  /** GPU of each instance (null: CPU). */
  devices: readonly (number | null)[];
}

export class PlacedEngine implements Engine {
  readonly info: PlacedEngineInfo;
  readonly pool: InstancePool<Engine>;
  private closed = false;

  constructor(private readonly groups: readonly EngineInstances[], devices: readonly (number | null)[]) {
    const instances = groups.flatMap((g) => g.instances);
    this.pool = new InstancePool(instances, devices);
    this.info = { ...groups[0]!.info, instanceCount: instances.length, devices: [...devices] };
  }

  run(feeds: Record<string, Tensor>, options?: RunOptions): Promise<Record<string, Tensor>> {
    if (this.closed) return Promise.reject(new OspreyError('OSPREY_ERR_ENGINE_CLOSED', 'the engine is closed'));
    return this.pool.runOnLeastBusy(feeds, options);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.groups.map((g) => g.close()));
  }
}

const ENGINE_FILE = /\.sm([0-9]+)([0-9])\.engine$/;

/** Whether PATH is a GPU engine (`*.engine`) or a folder of them. */
export async function isGpuEnginePath(path: string): Promise<boolean> {
  if (extname(path) === '.engine') return true;
  const st = await stat(path).catch(() => null);
  if (!st?.isDirectory()) return false;
  return (await readdir(path)).some((f) => ENGINE_FILE.test(f));
}

/**
 * Loads the engine.
 * @throws OspreyError `OSPREY_ERR_GPU_NOT_FOUND` (an id in `gpuIds` that does not exist; a GPU engine without a GPU),
 *   `OSPREY_ERR_ENGINE_INCOMPATIBLE` (no engine file for a GPU's compute capability), and the backend's errors
 *   (see `createOrtEngine`, {@link createGpuInstances}).
 */
export async function createPlacedEngine(o: PlacedEngineOptions): Promise<PlacedEngine> {
  const gpuEngine = await isGpuEnginePath(o.modelPath);
  const backend = gpuEngine ? 'osprey-cuda' : 'onnxruntime';
  const factory = o.factory ?? (gpuEngine ? createGpuInstances : createOrtInstances);
  const eps = o.executionProviders ?? (gpuEngine ? ['osprey-cuda'] : ['cuda', 'cpu']);
  const count = o.instances ?? 1;
  let placements: InstancePlacement[];
  if (o.gpuIds || gpuEngine) {
    const inventory = await (o.gpus ?? gpuInventory)();
    const cpuOnly = () => !gpuEngine && eps.every((e) => e === 'cpu');
    placements = placeInstances('model', [{ count, kind: 'KIND_AUTO', gpus: [] }], backend, inventory, o.gpuIds, cpuOnly);
    if (!o.gpuIds) placements = placements.slice(0, 1); // the GPU engine without --gpus: GPU 0
  } else {
    placements = [{ group: 0, gpu: 0, gpuInfo: null, count }]; // ONNX Runtime without --gpus: device 0, as before
  }
  // per-GPU files of an engine folder
  const byCc = new Map<string, string>();
  const st = await stat(o.modelPath).catch(() => null);
  if (gpuEngine && st?.isDirectory()) {
    for (const f of await readdir(o.modelPath)) {
      const m = ENGINE_FILE.exec(f);
      if (m) byCc.set(`${m[1]}.${m[2]}`, join(o.modelPath, f));
    }
  }
  const groups: EngineInstances[] = [];
  const devices: Array<number | null> = [];
  try {
    for (const p of placements) {
      let modelPath = o.modelPath;
      if (byCc.size > 0) {
        const cc = p.gpuInfo?.computeCapability;
        const file = cc !== undefined ? byCc.get(cc) : undefined;
        if (!file) {
          throw new OspreyError(
            'OSPREY_ERR_ENGINE_INCOMPATIBLE',
            `${o.modelPath}: no engine for GPU ${p.gpu} (${p.gpuInfo?.name ?? 'unknown'}, compute capability ${cc ?? 'unknown'}); found ${[...byCc.keys()].map((c) => `cc ${c}`).join(', ')}. Build one on that GPU: osprey build --engine cuda`,
            { gpu: p.gpu },
          );
        }
        modelPath = file;
      }
      const loaded = await factory({
        modelPath,
        executionProviders: p.gpu === null ? ['cpu'] : eps,
        instances: p.count,
        deviceId: p.gpu ?? 0,
        ...(p.gpuInfo ? { gpu: p.gpuInfo } : {}),
        ...(o.intraOpNumThreads !== undefined ? { intraOpNumThreads: o.intraOpNumThreads } : {}),
        warmup: o.warmup ?? 1,
        ...(o.warmupBatchSize !== undefined ? { warmupBatchSize: o.warmupBatchSize } : {}),
        // ONNX Runtime only (createOrtInstances hands its options to createOrtEngine); other backends ignore it
        ...(o.intraOpSpinning !== undefined ? ({ intraOpSpinning: o.intraOpSpinning } as object) : {}),
      });
      groups.push(loaded);
      const onGpu = p.gpu !== null && loaded.info.executionProvider !== 'cpu';
      for (let i = 0; i < loaded.instances.length; i++) devices.push(onGpu ? p.gpu : null);
    }
  } catch (err) {
    await Promise.all(groups.map((g) => g.close().catch(() => undefined)));
    throw err;
  }
  return new PlacedEngine(groups, devices);
}
