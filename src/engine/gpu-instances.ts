/**
 * Osprey's GPU engine as a backend ({@link EngineFactory}, model config `backend: osprey-cuda` or
 * `platform: osprey_cuda_engine`): `instances` {@link GpuEngine}s, each with its own worker_thread, CUDA stream and
 * captured graphs, on GPU `deviceId`, loaded from an engine file built by `osprey build --engine cuda`
 * (`model.sm<XY>.engine`, src/compile/serialize.ts).
 *
 * Before any worker starts, the file's header is read on the calling thread (pure, no GPU) and its compute
 * capability compared with the GPU it is meant for, so a file built for another architecture is refused with the
 * GPU named; the worker then checks driver and library versions itself (`checkEngineCompatible`).
 */
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { OspreyError } from '../core/errors.js';
import type { Tensor } from '../core/types.js';
import { ENGINE_MAGIC, engineFileName, type EngineFileHeader } from '../compile/serialize.js';
import type { GpuInfo } from '../gpu/system.js';
import type { Engine, EngineFactory, EngineInstances, RunOptions } from './engine.js';
import { GpuEngine } from './gpu-engine.js';

/** The header fields read on the main thread (the plan's layers are there too, untyped here). */
export type EngineHeaderSummary = Omit<EngineFileHeader, 'plan'> & { plan: { profiles?: { max?: number } } };

/** Largest engine header read on the main thread, bytes (yolov8s's is ~200 KB). */
const MAX_HEADER_BYTES = 64 * 1024 * 1024;

/**
 * Reads an engine file's JSON header only (magic + length + JSON), not its blobs.
 * @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND_FILE` (no such file), `OSPREY_ERR_ENGINE_INCOMPATIBLE` (not an
 *   Osprey engine file, or damaged).
 */
export async function readEngineHeader(path: string): Promise<EngineHeaderSummary> {
  const name = basename(path);
  const fh = await open(path, 'r').catch((err: Error) => {
    throw new OspreyError('OSPREY_ERR_MODEL_NOT_FOUND_FILE', `${name}: engine file not found or not readable`, { path: name }, { cause: err });
  });
  try {
    const head = new Uint8Array(12);
    const { bytesRead } = await fh.read(head, 0, 12, 0);
    const bad = (why: string) => new OspreyError('OSPREY_ERR_ENGINE_INCOMPATIBLE', `${name}: ${why}; rebuild it with osprey build --engine cuda`, { file: name });
    if (bytesRead < 12 || new TextDecoder().decode(head.subarray(0, 8)) !== ENGINE_MAGIC) throw bad('not an Osprey GPU engine file (bad magic)');
    const len = new DataView(head.buffer).getUint32(8, true);
    if (len === 0 || len > MAX_HEADER_BYTES) throw bad(`header length ${len} is out of range`);
    const buf = new Uint8Array(len);
    const r = await fh.read(buf, 0, len, 12);
    if (r.bytesRead !== len) throw bad('truncated header');
    try {
      return JSON.parse(new TextDecoder().decode(buf)) as EngineHeaderSummary;
    } catch {
      throw bad('header is not valid JSON');
    }
  } finally {
    await fh.close();
  }
}

/**
 * Refuses an engine built for another compute capability than `gpu`'s, naming both and the file to build.
 * @throws OspreyError `OSPREY_ERR_ENGINE_INCOMPATIBLE`.
 */
export function checkEngineForGpu(file: string, builtFor: string, gpu: GpuInfo): void {
  if (builtFor === gpu.computeCapability) return;
  throw new OspreyError(
    'OSPREY_ERR_ENGINE_INCOMPATIBLE',
    `${basename(file)} was built for compute capability ${builtFor}, but GPU ${gpu.index} (${gpu.name}) is ${gpu.computeCapability}: ` +
      `build ${engineFileName(gpu.computeCapability)} on that GPU (osprey build --engine cuda --device ${gpu.index}) and list it in ccModelFilenames`,
    { file: basename(file), builtFor, gpu: gpu.index, computeCapability: gpu.computeCapability },
  );
}

/**
 * The `osprey-cuda` backend.
 * @throws OspreyError `OSPREY_ERR_GPU_NOT_FOUND` (no GPU known for `deviceId`), `OSPREY_ERR_ENGINE_INCOMPATIBLE`
 *   (another compute capability, driver or library version; damaged file), `OSPREY_ERR_CUDA_LIBRARY` (libcuda,
 *   NVRTC or cuDNN missing), `OSPREY_ERR_CUDA` (a CUDA call failed), `OSPREY_ERR_MODEL_NOT_FOUND_FILE`.
 */
export const createGpuInstances: EngineFactory = async (options): Promise<EngineInstances> => {
  if (!options.gpu) {
    throw new OspreyError('OSPREY_ERR_GPU_NOT_FOUND', `the osprey-cuda backend needs an NVIDIA GPU: GPU ${options.deviceId} is not known on this machine (run osprey doctor)`, { gpu: options.deviceId });
  }
  const header = await readEngineHeader(options.modelPath);
  checkEngineForGpu(options.modelPath, header.target.computeCapability, options.gpu);
  const engines: GpuEngine[] = [];
  try {
    for (let i = 0; i < options.instances; i++) engines.push(await GpuEngine.load(options.modelPath, { deviceId: options.deviceId, warmupRuns: options.warmup ?? 0 }));
  } catch (err) {
    await Promise.all(engines.map((e) => e.close().catch(() => undefined)));
    throw err;
  }
  const max = header.plan.profiles?.max;
  const info = { ...engines[0]!.info, ...(typeof max === 'number' ? { maxBatchSize: max } : {}) };
  const instances: Engine[] = engines.map((e) => ({ info, run: (feeds: Record<string, Tensor>, o?: RunOptions) => e.run(feeds, o), close: () => e.close() }));
  return { info, instances, close: async () => void (await Promise.all(engines.map((e) => e.close()))) };
};
