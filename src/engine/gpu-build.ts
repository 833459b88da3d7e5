/**
 * `osprey build --engine cuda`: ONNX YOLO export → GPU engine file for the GPU in hand, the way TensorRT's builder
 * works: parse → lower → fuse → place/memory plan (src/compile, pure) → compile the kernels with NVRTC for this
 * GPU's compute capability → time every conv tactic on this GPU (timing cache reused across builds) → serialize.
 *
 * Writes `<out>/model.sm<cc>.engine`, `<out>/manifest.json` (sha256 of the engine, plan and memory figures, build
 * times, the `ccModelFilenames` entry for a model config) and `<out>/timing-cache.json`.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { OspreyError } from '../core/errors.js';
import { compilePlan } from '../compile/index.js';
import { KERNEL_SOURCE } from '../compile/kernels.js';
import { engineFileName, writeEngineFile } from '../compile/serialize.js';
import { CudaDriver, CuDeviceAttribute } from '../cuda/driver.js';
import { Nvrtc } from '../cuda/nvrtc.js';
import { readOnnxModel } from '../onnx/index.js';
import { OSPREY_VERSION } from '../version.js';
import { GpuRuntime, type TimingCache } from './gpu-runtime.js';

export interface GpuBuildOptions {
  model: string;
  out: string;
  /** Candidates per image, default 300. */
  topk?: number;
  /** Batch profile; defaults min 1, opt = max, max 32. */
  minBatch?: number;
  optBatch?: number;
  maxBatch?: number;
  /** Timing cache file: read when present, written after (default `<out>/timing-cache.json`). */
  timingCache?: string;
  /** Time cuDNN tactics too (default true). */
  cudnn?: boolean;
  deviceId?: number;
  log?: (line: string) => void;
}

export interface GpuBuildResult {
  enginePath: string;
  manifest: Record<string, unknown>;
}

/**
 * Builds the engine on the GPU in hand.
 * @throws OspreyError `OSPREY_ERR_CUDA_LIBRARY` (no driver / NVRTC), `OSPREY_ERR_GPU_COMPILE` (a graph it cannot
 *   lower, with the node), `OSPREY_ERR_CUDA` (a CUDA call failed).
 */
export async function buildGpuEngine(o: GpuBuildOptions): Promise<GpuBuildResult> {
  const log = o.log ?? (() => {});
  if (!existsSync(o.model)) throw new OspreyError('OSPREY_ERR_MODEL_NOT_FOUND_FILE', `--model ${o.model}: file not found`);
  const t0 = performance.now();
  const source = readFileSync(o.model);
  const max = o.maxBatch ?? 32;
  const profiles = { min: o.minBatch ?? 1, opt: o.optBatch ?? max, max };
  const { plan, weightData } = compilePlan(readOnnxModel(new Uint8Array(source)), { precision: 'float16', k: o.topk ?? 300, profiles });
  for (const l of plan.passLog) log(l);
  const planMs = performance.now() - t0;
  const drv = new CudaDriver();
  drv.init();
  const dev = drv.device(o.deviceId ?? 0);
  const cc = `${drv.attribute(dev, CuDeviceAttribute.COMPUTE_CAPABILITY_MAJOR)}.${drv.attribute(dev, CuDeviceAttribute.COMPUTE_CAPABILITY_MINOR)}`;
  const nvrtc = new Nvrtc();
  const kernels = nvrtc.compile(KERNEL_SOURCE, `sm_${cc.replace('.', '')}`);
  log(`kernels: NVRTC ${nvrtc.version()} → sm_${cc.replace('.', '')} cubin, ${kernels.cubin.length} bytes, ${kernels.compileMs.toFixed(0)} ms`);
  const rt = new GpuRuntime(plan, weightData, kernels.cubin, { deviceId: o.deviceId ?? 0, cudnn: o.cudnn !== false, batches: [profiles.opt], log });
  try {
    // realistic activations for the timings: a deterministic textured frame in every slot
    const frame = new Uint8Array(rt.inputBytesPerImage * profiles.opt);
    for (let i = 0; i < frame.length; i++) frame[i] = (i * 2654435761) >>> 24;
    await rt.run(profiles.opt, frame);
    mkdirSync(o.out, { recursive: true });
    const cachePath = o.timingCache ?? join(o.out, 'timing-cache.json');
    const cache: TimingCache = existsSync(cachePath) ? (JSON.parse(readFileSync(cachePath, 'utf8')) as TimingCache) : {};
    const tune = rt.autotune(profiles.opt, cache, { cudnnConfigs: 3 });
    log(`autotune: ${tune.timedLayers} conv layers timed, ${tune.cachedLayers} from the timing cache, ${(tune.ms / 1000).toFixed(1)} s`);
    writeFileSync(cachePath, JSON.stringify(tune.cache));
    const target = {
      gpuName: rt.device.name,
      computeCapability: cc,
      driverVersion: rt.device.driverVersion,
      nvrtcVersion: nvrtc.version(),
      cudnnVersion: Object.values(rt.tactics).some((t) => t.kind === 'cudnn') ? (rt.device.cudnnVersion ?? null) : null,
    };
    const sourceSha = createHash('sha256').update(source).digest('hex');
    const build = { planMs: Math.round(planMs), nvrtcMs: Math.round(kernels.compileMs), autotuneMs: Math.round(tune.ms), timedLayers: tune.timedLayers, cachedLayers: tune.cachedLayers, totalMs: Math.round(performance.now() - t0) };
    const bytes = writeEngineFile({ createdAt: new Date().toISOString(), osprey: OSPREY_VERSION, source: { file: basename(o.model), sha256: sourceSha }, target, plan, tactics: rt.tactics, build }, weightData, kernels.cubin);
    const name = engineFileName(cc);
    const enginePath = join(o.out, name);
    writeFileSync(enginePath, bytes);
    const manifest = {
      format: 'osprey-gpu-engine-manifest',
      formatVersion: 1,
      engine: { file: name, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') },
      source: { file: basename(o.model), sha256: sourceSha, bytes: source.length },
      target,
      profiles: plan.profiles,
      memory: plan.memory,
      layers: plan.layers.length,
      build,
      ccModelFilenames: { [cc]: name },
      passLog: plan.passLog,
    };
    writeFileSync(join(o.out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    return { enginePath, manifest };
  } finally {
    rt.close();
  }
}
