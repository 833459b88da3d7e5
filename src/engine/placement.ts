/**
 * Where engine instances go on a multi-GPU host (Triton's instance-group placement), shared by the model lifecycle
 * (`osprey serve`) and the engines the CLI loads on its own (`osprey bench engine`, `osprey streams`, `osprey detect`
 * with `--gpus`).
 */
import { OspreyError } from '../core/errors.js';
import { checkGpuIds, describeGpus, type GpuInventory } from '../gpu/inventory.js';
import type { GpuInfo } from '../gpu/system.js';

/** The part of an instance group placement reads (src/repository/config.ts `InstanceGroupConfig`). */
export interface PlacementGroup {
  count: number;
  kind: 'KIND_AUTO' | 'KIND_CPU' | 'KIND_GPU';
  gpus: readonly number[];
}

/** One engine-factory call of a version: an instance group on one GPU (or on the CPU). */
export interface InstancePlacement {
  group: number;
  /** CUDA device ordinal; null for a CPU group. */
  gpu: number | null;
  /** The GPU as the inventory read it (null: CPU, or no GPU known for a device group on the onnxruntime backend). */
  gpuInfo: GpuInfo | null;
  /** Instances on it (`instanceGroup[].count`). */
  count: number;
}

/**
 * Where each instance group's instances go, Triton's placement: `count` instances on EACH GPU of
 * `instanceGroup[].gpus` (or of `gpuIds`, the `--gpus` option, which replaces it); a KIND_GPU / KIND_AUTO group
 * that names no GPU gets `count` instances on every GPU of the host, or one call on device 0 when the host has none
 * and the backend is onnxruntime (its CUDA EP then falls back to, or is refused in favour of, the CPU as the
 * execution providers say); KIND_CPU: one call with no GPU. Every named id must be a GPU of the inventory.
 * @throws OspreyError `OSPREY_ERR_GPU_NOT_FOUND` (an id that does not exist, naming it and the GPUs found; or
 *   backend osprey-cuda on a host with no GPU), `OSPREY_ERR_CONFIG` (osprey-cuda with a KIND_CPU group).
 */
export function placeInstances(
  model: string,
  groups: readonly PlacementGroup[],
  backend: 'onnxruntime' | 'osprey-cuda',
  inventory: GpuInventory,
  gpuIds?: readonly number[],
  /** Whether group `i` can only run on the CPU (its execution providers are `['cpu']`): placed once, not per GPU. */
  cpuOnly: (i: number) => boolean = () => false,
): InstancePlacement[] {
  const out: InstancePlacement[] = [];
  groups.forEach((g, gi) => {
    if (g.kind === 'KIND_CPU') {
      if (backend === 'osprey-cuda') {
        throw new OspreyError('OSPREY_ERR_CONFIG', `${model}: instanceGroup[${gi}].kind: KIND_CPU, but backend osprey-cuda runs on GPUs only (use KIND_GPU, or backend onnxruntime for CPU instances)`, { keyPath: `instanceGroup[${gi}].kind` });
      }
      out.push({ group: gi, gpu: null, gpuInfo: null, count: g.count });
      return;
    }
    const named = gpuIds ?? (g.gpus.length > 0 ? g.gpus : undefined);
    if (named) checkGpuIds(named, inventory, gpuIds ? `${model}: --gpus` : `${model}: instanceGroup[${gi}].gpus`);
    if (backend === 'onnxruntime' && cpuOnly(gi)) {
      out.push({ group: gi, gpu: null, gpuInfo: null, count: g.count });
      return;
    }
    const ids = named ?? inventory.gpus.map((x) => x.index);
    if (ids.length === 0) {
      if (backend === 'osprey-cuda') {
        throw new OspreyError('OSPREY_ERR_GPU_NOT_FOUND', `${model}: backend osprey-cuda needs an NVIDIA GPU; GPUs found: ${describeGpus(inventory)}`, { gpusFound: [] });
      }
      out.push({ group: gi, gpu: 0, gpuInfo: null, count: g.count });
      return;
    }
    for (const id of ids) out.push({ group: gi, gpu: id, gpuInfo: inventory.gpus.find((x) => x.index === id) ?? null, count: g.count });
  });
  return out;
}

