/**
 * The GPUs of this host, by CUDA device ordinal (the id ONNX Runtime's CUDA EP takes as `device_id` and Osprey's GPU
 * engine as its device): what `instanceGroup[].gpus` and `--gpus` are checked against at load, and what
 * `osprey doctor` lists.
 *
 * Sources, in order: `nvidia-smi --query-gpu` (name, compute capability, driver version, memory), else the CUDA
 * driver itself (`libcuda.so.1`: cuDeviceGetCount and attributes) when nvidia-smi is missing, as in some containers.
 * When `CUDA_VISIBLE_DEVICES` is set the driver is asked first: it renumbers the visible GPUs from 0, nvidia-smi does
 * not. Nothing is invented when neither is present: the list is empty and `note` says why.
 */
import { findCudaLibraries, systemDiscoveryHost } from '../cuda/discovery.js';
import { OspreyError } from '../core/errors.js';
import { listCudaDevices } from './cuda-libraries.js';
import { listGpus, type GpuInfo } from './system.js';

export interface GpuInventory {
  /** One per GPU, `index` = CUDA device ordinal. */
  gpus: GpuInfo[];
  /** Where the list came from. */
  source: 'nvidia-smi' | 'cuda-driver' | 'none';
  /** Why the list is empty (or how it was read), for messages, e.g. "nvidia-smi not found; libcuda.so.1 not found". */
  note: string;
}

/** Reads the GPUs from the CUDA driver; null with the reason when it cannot. */
async function fromDriver(): Promise<{ gpus: GpuInfo[]; note: string }> {
  const search = findCudaLibraries(systemDiscoveryHost()).find((s) => s.spec.id === 'cuda');
  if (!search?.found) return { gpus: [], note: 'libcuda.so.1 not found (no NVIDIA driver)' };
  try {
    const r = await listCudaDevices(search.found.path);
    const gpus = r.devices.map((d) => ({
      index: d.index,
      name: d.name,
      computeCapability: d.computeCapability,
      driverVersion: r.driverApiVersion ? `CUDA ${r.driverApiVersion}` : 'unknown',
      memoryTotalBytes: d.memoryBytes,
      memoryUsedBytes: 0,
    }));
    return { gpus, note: r.note ?? `${gpus.length} GPU(s) from the CUDA driver (${search.found.path})` };
  } catch (err) {
    return { gpus: [], note: `libcuda.so.1 at ${search.found.path} does not load: ${(err as Error).message.split('\n')[0]}` };
  }
}

/** Lists the GPUs now (no cache). */
export async function readGpuInventory(env: Readonly<Record<string, string | undefined>> = process.env): Promise<GpuInventory> {
  const driverFirst = env.CUDA_VISIBLE_DEVICES !== undefined;
  if (driverFirst) {
    const d = await fromDriver();
    if (d.gpus.length > 0) return { gpus: d.gpus, source: 'cuda-driver', note: `${d.note}; CUDA_VISIBLE_DEVICES=${env.CUDA_VISIBLE_DEVICES}` };
  }
  const smi = listGpus();
  if (smi.length > 0) return { gpus: smi, source: 'nvidia-smi', note: `${smi.length} GPU(s) from nvidia-smi` };
  if (driverFirst) return { gpus: [], source: 'none', note: `nvidia-smi lists no GPU; CUDA_VISIBLE_DEVICES=${env.CUDA_VISIBLE_DEVICES}` };
  const d = await fromDriver();
  if (d.gpus.length > 0) return { gpus: d.gpus, source: 'cuda-driver', note: d.note };
  return { gpus: [], source: 'none', note: `nvidia-smi not found or lists no GPU; ${d.note}` };
}

let cached: Promise<GpuInventory> | undefined;

/** The GPUs of this process, read once (GPUs do not come and go under a running server). */
export function gpuInventory(): Promise<GpuInventory> {
  return (cached ??= readGpuInventory());
}

/** `0, 1` of an inventory, or `none` — for messages. */
export function describeGpus(inv: GpuInventory): string {
  if (inv.gpus.length === 0) return `none (${inv.note})`;
  return inv.gpus.map((g) => `${g.index} (${g.name}, cc ${g.computeCapability})`).join(', ');
}

/**
 * Checks that every id is a GPU of the inventory.
 * @param where names what asked for the ids, e.g. `yolov8n: instanceGroup[0].gpus` or `--gpus`.
 * @throws OspreyError `OSPREY_ERR_GPU_NOT_FOUND` naming the first missing id and the GPUs found.
 */
export function checkGpuIds(ids: readonly number[], inv: GpuInventory, where: string): void {
  for (const id of ids) {
    if (!inv.gpus.some((g) => g.index === id)) {
      throw new OspreyError('OSPREY_ERR_GPU_NOT_FOUND', `${where}: GPU ${id} does not exist on this machine; GPUs found: ${describeGpus(inv)}`, {
        gpu: id,
        gpusFound: inv.gpus.map((g) => g.index),
      });
    }
  }
}

/**
 * Parses a `--gpus` value: comma-separated CUDA device ordinals, e.g. `0,1` → [0, 1] (duplicates dropped, order kept).
 * @throws OspreyError `OSPREY_ERR_USAGE` for anything that is not a list of non-negative integers.
 */
export function parseGpuList(text: string, flag = '--gpus'): number[] {
  const parts = text.split(',').map((s) => s.trim());
  const out: number[] = [];
  for (const p of parts) {
    if (!/^\d+$/.test(p)) throw new OspreyError('OSPREY_ERR_USAGE', `${flag} ${JSON.stringify(text)}: '${p}' is not a GPU id (give CUDA device ordinals, e.g. ${flag} 0,1)`);
    const n = Number(p);
    if (!out.includes(n)) out.push(n);
  }
  return out;
}
