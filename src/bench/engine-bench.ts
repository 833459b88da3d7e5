/**
 * `osprey bench engine`: a trtexec-like measurement of the detector pipeline on one machine.
 *
 * For each configuration (batch size × instances): load the model into `instances` ONNX Runtime sessions (each in
 * its own worker thread), then run `instances` closed loops concurrently (src/bench/closed-loop.ts, shared with the
 * interleaved comparison; one per instance, like trtexec's `--infStreams`), each doing: host pre-processing (decode
 * the image bytes with sharp + letterbox into a fresh batch buffer, `batch` times) → inference (`engine.run`, in the
 * worker) → post-processing (decode + NMS + scale to source pixels, per image), with `pipelineDepth` batches in
 * flight per loop (default 2: N+1 is pre-processed while N runs, N post-processed while N+1 runs; 1 = serial).
 * Loops run for `warmupMs` unmeasured, then for `durationMs` measured; the run stops on duration, not on a count:
 * no batch starts after it, and the window ends when the last started batch finished. Latency is per batch,
 * pre + queue (waiting for the engine, 0 at depth 1) + inference + post. Throughput = images ÷ the window.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import sharp from 'sharp';
import { OspreyError } from '../core/errors.js';
import { Detector } from '../engine/detector.js';
import { DEFAULT_PIPELINE_DEPTH, pipelinedIntraOpSpinning } from '../engine/pipeline.js';
import { runClosedLoops } from './closed-loop.js';
import { isGpuEnginePath } from '../engine/placed-engine.js';
import { round, SampleBuffer, summarizeLatencies, percentile, mean } from './stats.js';
import type { BenchModel, EngineBenchConfiguration, EngineBenchResult, StageTimeMs } from './result.js';
import { benchEnvironment, gpuMemoryUsedBytes, MemorySampler, sha256File } from './system.js';
import { roundSummary } from './server-bench.js';

export interface EngineBenchOptions {
  /** An .onnx file, an engine directory (with model.onnx) or a repository model directory (<model>/<version>/model.onnx). */
  model: string;
  /** Execution providers in order. Default ['cpu']. */
  executionProviders?: readonly string[];
  batchSizes: number[];
  instanceCounts: number[];
  warmupMs: number;
  durationMs: number;
  /** Image file decoded + letterboxed on every iteration; default a synthetic 1280×720 JPEG. */
  image?: string;
  /** ORT intra-op threads per session; default ORT's choice. */
  intraOpNumThreads?: number;
  /** ORT's `session.intra_op.allow_spinning` (see OrtEngineOptions.intraOpSpinning); default {@link pipelinedIntraOpSpinning} (threads sleep at depth ≥ 2 on CPU, else ORT's spin). */
  intraOpSpinning?: boolean;
  /**
   * Batches in flight per instance loop (src/bench/closed-loop.ts): 2 (default) pre-processes batch N+1 while N
   * runs and post-processes N while N+1 runs; 1 is the serial loop (pre → inference → post, then the next batch).
   */
  pipelineDepth?: number;
  /** `--gpus`: CUDA device ordinals; each configuration's instance count goes on EACH of them. */
  gpuIds?: readonly number[];
  command: string;
  /** Called when a configuration starts / ends (progress). */
  onConfiguration?: (event: 'start' | 'end', index: number, total: number, batchSize: number, instances: number) => void;
}

/** A resolved model location: the .onnx file and what an engine directory's manifest says. */
export interface ResolvedModel {
  onnxPath: string;
  name: string;
  precision?: string;
  manifestPath?: string;
  /** Set when PATH was a repository model folder (`<repo>/<model>` with version folders). */
  repositoryModelDir?: string;
}

/**
 * Finds the .onnx file of PATH_OR_ENGINE_DIR: a file; a directory holding model.onnx (an `osprey build` engine
 * directory); or a repository model directory whose highest numeric version holds model.onnx.
 * @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND_FILE` naming what was looked for.
 */
export async function resolveModelPath(path: string): Promise<ResolvedModel> {
  let st;
  try {
    st = await stat(path);
  } catch {
    throw new OspreyError('OSPREY_ERR_MODEL_NOT_FOUND_FILE', `${path}: no such model file or engine directory`, { path });
  }
  if (st.isFile()) return { onnxPath: path, name: basename(path, extname(path)), precision: extname(path) === '.engine' ? 'fp16' : precisionFromName(path) };
  const direct = join(path, 'model.onnx');
  const readManifest = async (dir: string): Promise<{ precision?: string; path?: string }> => {
    const p = join(dir, 'manifest.json');
    try {
      const m = JSON.parse(await readFile(p, 'utf8')) as { precision?: unknown };
      return typeof m.precision === 'string' ? { precision: m.precision, path: p } : { path: p };
    } catch {
      return {};
    }
  };
  const isFile = async (p: string) => (await stat(p).catch(() => null))?.isFile() === true;
  if (!(await isFile(direct)) && (await isGpuEnginePath(path))) {
    // an `osprey build --engine cuda` folder: the engine of each GPU is picked by compute capability at load
    const m = await readManifest(path);
    return { onnxPath: path, name: basename(path.replace(/\/+$/, '')), precision: 'fp16', ...(m.path ? { manifestPath: m.path } : {}) };
  }
  if (await isFile(direct)) {
    const m = await readManifest(path);
    return { onnxPath: direct, name: basename(path.replace(/\/+$/, '')), ...(m.precision ? { precision: m.precision } : {}), ...(m.path ? { manifestPath: m.path } : {}) };
  }
  const versions = (await readdir(path)).filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const p = join(path, v, 'model.onnx');
    if (await isFile(p)) {
      const m = await readManifest(join(path, v));
      return {
        onnxPath: p,
        name: basename(path.replace(/\/+$/, '')),
        repositoryModelDir: path.replace(/\/+$/, ''),
        ...(m.precision ? { precision: m.precision } : {}),
        ...(m.path ? { manifestPath: m.path } : {}),
      };
    }
  }
  throw new OspreyError('OSPREY_ERR_MODEL_NOT_FOUND_FILE', `${path}: a directory without model.onnx (nor <version>/model.onnx)`, { path });
}

function precisionFromName(p: string): string {
  const n = basename(p).toLowerCase();
  if (n.includes('int8')) return 'int8';
  if (n.includes('fp16')) return 'fp16';
  return 'fp32';
}

/** A synthetic 1280×720 JPEG (smooth gradients + shapes), used when no --image is given. */
export async function syntheticImage(): Promise<Buffer> {
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="1280" height="720"><defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">` +
    `<stop offset="0" stop-color="#4a6fa5"/><stop offset="1" stop-color="#c9b79c"/></linearGradient></defs>` +
    `<rect width="1280" height="720" fill="url(#g)"/><rect x="200" y="300" width="380" height="260" fill="#b22"/>` +
    `<circle cx="900" cy="360" r="120" fill="#222"/><rect x="700" y="520" width="500" height="80" fill="#eee"/></svg>`;
  return sharp(Buffer.from(svg)).jpeg({ quality: 90 }).toBuffer();
}

function stage(samples: Float64Array): StageTimeMs {
  return { mean: round(mean(samples), 3), p99: round(percentile(samples, 99), 3) };
}

/**
 * Checks the requested batch sizes against the model's batch axis.
 * @throws OspreyError `OSPREY_ERR_USAGE` when the model has a fixed batch size and another one is asked for.
 */
export function checkBatchSizes(fixedBatch: number | null, batchSizes: readonly number[], modelPath: string, inputShape: readonly (number | string)[]): void {
  if (fixedBatch === null) return;
  const wrong = batchSizes.filter((b) => b !== fixedBatch);
  if (wrong.length === 0) return;
  throw new OspreyError(
    'OSPREY_ERR_USAGE',
    `--batch ${wrong.join(',')}: ${modelPath} has a fixed batch size of ${fixedBatch} (input shape ${JSON.stringify(inputShape)}); ` +
      `use --batch ${fixedBatch}, or build a dynamic-batch engine first (osprey build --model ${modelPath} --out DIR --max-batch ${Math.max(...wrong)})`,
    { fixedBatch, requested: wrong },
  );
}

async function measureConfiguration(
  modelPath: string,
  eps: readonly string[],
  batchSize: number,
  instances: number,
  imageBytes: Buffer,
  pipelineDepth: number,
  o: EngineBenchOptions,
): Promise<{ config: EngineBenchConfiguration; executionProvider: string }> {
  const baselineRssBytes = process.memoryUsage.rss();
  const onGpu = eps[0] === 'cuda' || eps[0] === 'tensorrt';
  const baselineGpuMemoryBytes = onGpu ? await gpuMemoryUsedBytes() : null;
  const det = await Detector.create({
    modelPath,
    executionProviders: eps,
    instances,
    maxBatchSize: batchSize,
    warmup: 1,
    warmupBatchSize: batchSize,
    ...(o.intraOpNumThreads !== undefined ? { intraOpNumThreads: o.intraOpNumThreads } : {}),
    ...(o.intraOpSpinning !== undefined ? { intraOpSpinning: o.intraOpSpinning } : {}),
    ...(o.gpuIds ? { gpuIds: o.gpuIds } : {}),
  });
  const ep = det.engine.info.executionProvider;
  const sampler = new MemorySampler(ep === 'cuda' || ep === 'tensorrt' || ep === 'osprey-cuda');
  sampler.start();
  const lat = new SampleBuffer();
  const pre = new SampleBuffer();
  const queue = new SampleBuffer();
  const inf = new SampleBuffer();
  const post = new SampleBuffer();
  let windowMs: number;
  let images: number;
  try {
    const loop = { batchSize, instances, pipelineDepth, imageBytes };
    await runClosedLoops(det, { ...loop, durationMs: o.warmupMs }); // unmeasured; at least one batch per instance
    // On a machine so slow that fewer than `instances` batches (at least 2) would finish in the window, it is
    // extended until they have (bounded by 10 × the duration), so statistics exist.
    const w = await runClosedLoops(det, {
      ...loop,
      durationMs: o.durationMs,
      minBatches: Math.max(2, instances),
      record: (t) => {
        pre.push(t.preprocess);
        queue.push(t.queue);
        inf.push(t.inference);
        post.push(t.postprocess);
        lat.push(t.preprocess + t.queue + t.inference + t.postprocess);
      },
    });
    windowMs = w.windowMs;
    images = w.batches * batchSize;
  } finally {
    sampler.stop();
    await det.close();
  }
  if (lat.length === 0) {
    throw new OspreyError('OSPREY_ERR_USAGE', `batch ${batchSize} × ${instances}: no batch completed within --duration-ms ${o.durationMs}; raise it`, {});
  }
  const config: EngineBenchConfiguration = {
    batchSize,
    instances,
    pipelineDepth,
    durationMs: round(windowMs, 1),
    batches: lat.length,
    images,
    imagesPerSecond: round((images / windowMs) * 1000, 2),
    batchesPerSecond: round((lat.length / windowMs) * 1000, 2),
    latencyMs: roundSummary(summarizeLatencies(lat.values())),
    stagesMs: { preprocess: stage(pre.values()), queue: stage(queue.values()), inference: stage(inf.values()), postprocess: stage(post.values()) },
    memory: {
      baselineRssBytes,
      peakRssBytes: sampler.peakRssBytes,
      ...(sampler.peakGpuMemoryBytes !== undefined && baselineGpuMemoryBytes !== null ? { baselineGpuMemoryBytes } : {}),
      ...(sampler.peakGpuMemoryBytes !== undefined ? { peakGpuMemoryBytes: sampler.peakGpuMemoryBytes } : {}),
    },
  };
  return { config, executionProvider: ep };
}

/**
 * Runs every configuration, one after the other.
 * @throws OspreyError `OSPREY_ERR_USAGE` (bad figures, a batch size a fixed-batch model cannot take),
 *   `OSPREY_ERR_MODEL_NOT_FOUND_FILE`, `OSPREY_ERR_INVALID_MODEL`, `OSPREY_ERR_EP_UNAVAILABLE` (from the engine).
 */
export async function runEngineBench(o: EngineBenchOptions): Promise<EngineBenchResult> {
  const posInt = (name: string, vs: readonly number[]) => {
    if (vs.length === 0) throw new OspreyError('OSPREY_ERR_USAGE', `${name} is empty`, {});
    for (const v of vs) if (!Number.isInteger(v) || v < 1) throw new OspreyError('OSPREY_ERR_USAGE', `${name} values must be positive integers, got ${v}`, { option: name, value: v });
  };
  posInt('--batch', o.batchSizes);
  posInt('--instances', o.instanceCounts);
  const pipelineDepth = o.pipelineDepth ?? DEFAULT_PIPELINE_DEPTH;
  posInt('--pipeline-depth', [pipelineDepth]);
  if (!(o.durationMs > 0)) throw new OspreyError('OSPREY_ERR_USAGE', `--duration-ms must be > 0, got ${o.durationMs}`, {});
  if (!(o.warmupMs >= 0)) throw new OspreyError('OSPREY_ERR_USAGE', `--warmup-ms must be ≥ 0, got ${o.warmupMs}`, {});
  const resolved = await resolveModelPath(o.model);
  const eps = o.executionProviders ?? ['cpu'];
  const intraOpSpinning = pipelinedIntraOpSpinning(o.intraOpSpinning, pipelineDepth, eps);
  const startEnv = await benchEnvironment(eps[0]!, o.command); // load average and time at the start
  let imageBytes: Buffer;
  if (o.image) {
    try {
      imageBytes = await readFile(o.image);
    } catch {
      throw new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `--image ${o.image}: cannot read the file`, { path: o.image });
    }
  } else {
    imageBytes = await syntheticImage();
  }

  // Probe the model once (no warmup) for its batch axis and input, before any measurement.
  const probe = await Detector.create({ modelPath: resolved.onnxPath, executionProviders: eps, instances: 1, warmup: 0, ...(o.gpuIds ? { gpuIds: o.gpuIds.slice(0, 1) } : {}) });
  const spec = probe.spec;
  const inputSpec = probe.engine.info.inputs.find((i) => i.name === spec.inputName)!;
  await probe.close();
  checkBatchSizes(spec.batchSize, o.batchSizes, resolved.onnxPath, inputSpec.shape);
  await probe.decode({ name: o.image ?? 'synthetic', bytes: imageBytes }); // a bad --image fails here, with its code

  const model: BenchModel = {
    name: resolved.name,
    path: o.model,
    sha256: await sha256File((await stat(resolved.onnxPath)).isDirectory() ? (resolved.manifestPath ?? resolved.onnxPath) : resolved.onnxPath),
    input: { name: inputSpec.name, type: inputSpec.type, shape: inputSpec.shape },
    ...(resolved.precision ? { precision: resolved.precision } : {}),
  };
  const configurations: EngineBenchConfiguration[] = [];
  const plan = o.batchSizes.flatMap((b) => o.instanceCounts.map((i) => [b, i] as const));
  let executionProvider = eps[0]!;
  for (let k = 0; k < plan.length; k++) {
    const [b, i] = plan[k]!;
    o.onConfiguration?.('start', k, plan.length, b, i);
    const r = await measureConfiguration(resolved.onnxPath, eps, b, i, imageBytes, pipelineDepth, { ...o, ...(intraOpSpinning !== undefined ? { intraOpSpinning } : {}) });
    executionProvider = r.executionProvider;
    configurations.push(r.config);
    o.onConfiguration?.('end', k, plan.length, b, i);
  }
  return {
    kind: 'osprey-bench-engine',
    schemaVersion: 1,
    model,
    executionProvider,
    environment: { ...(await benchEnvironment(executionProvider, o.command)), createdAt: startEnv.createdAt, loadAverage: startEnv.loadAverage },
    settings: {
      warmupMs: o.warmupMs,
      durationMs: o.durationMs,
      image: o.image ?? 'synthetic 1280×720 JPEG',
      pipelineDepth,
      ...(o.intraOpNumThreads !== undefined ? { intraOpNumThreads: o.intraOpNumThreads } : {}),
      ...(intraOpSpinning !== undefined ? { intraOpSpinning } : {}),
      ...(o.gpuIds ? { gpuIds: [...o.gpuIds] } : {}),
    },
    configurations,
    skipped: [],
  };
}
