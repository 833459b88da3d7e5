/**
 * `osprey bench engine --model A --model B …`: engines compared **interleaved**, so that one run gives a ratio that
 * holds on a machine whose load changes (other jobs, thermal or frequency changes, noisy neighbours).
 *
 * Measuring A for a minute and then B for a minute gives a ratio that moves with whatever else the machine did in
 * each minute (on a shared 2-core VM, INT8 ÷ FP32 came out 1.51, 1.78 and 2.33 in three such runs). Here every
 * engine is loaded once, then the run alternates between them in rounds. A round is a palindrome, A B … … B A: each
 * engine is measured twice, `durationMs / 2` each time, each window after `warmupMs` unmeasured (its caches and
 * thread pool come back after the other engine ran), so every engine's windows are centred on the same instant and
 * a steady drift in load cancels *within the round* (with one window per engine and the order reversed every other
 * round, the drift cancels only in the median, and each round's ratio is biased up and down in turn, which widens
 * the min / max). Each round gives each engine's throughput (its images ÷ its time over both windows) and, for every
 * engine after the first, the ratio to the first (the baseline) within that round, when both saw nearly the same
 * machine. The result states the ratio's min / median / max over the
 * rounds — the minimum is what a claim like "≥ 2×" must hold for — and what the rest of the machine was doing in
 * each round (CPU time used by other processes, from /proc/stat, and the load average).
 *
 * What one measured window is: the closed loops of src/bench/closed-loop.ts, shared with the single-engine bench:
 * `instances` loops (one per instance) of pre-processing (sharp decode + letterbox of `image`) → inference →
 * post-processing (decode + NMS), `pipelineDepth` batches in flight per loop (default 2: batch N+1 is pre-processed
 * while N runs; 1 = serial); a loop starts no batch after `durationMs` and the window ends when the last batch
 * finished, so throughput = images ÷ the window with no partial batches at its edges (short windows stay exact).
 */
import { readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { OspreyError } from '../core/errors.js';
import { Detector } from '../engine/detector.js';
import { DEFAULT_PIPELINE_DEPTH, pipelinedIntraOpSpinning } from '../engine/pipeline.js';
import { runClosedLoops } from './closed-loop.js';
import { checkBatchSizes, resolveModelPath, syntheticImage } from './engine-bench.js';
import type { ComparisonConfiguration, ComparisonWindow, EngineComparisonResult, EngineRatio } from './comparison-result.js';
import { roundFigures, summarizeRatios } from './comparison-result.js';
import type { EngineBenchConfiguration, StageTimeMs } from './result.js';
import { BENCH_SCHEMA_VERSION } from './result.js';
import { roundSummary } from './server-bench.js';
import { mean, percentile, round, SampleBuffer, summarizeLatencies } from './stats.js';
import { benchEnvironment, HostCpuSampler, MemorySampler, sha256File } from './system.js';

export type { ComparisonConfiguration, ComparisonWindow, EngineComparisonResult, EngineRatio, RatioSummary } from './comparison-result.js';
export { comparisonEngineResults, formatComparisonResult, roundFigures, summarizeRatios } from './comparison-result.js';

/** Options of {@link runEngineComparison}. */
export interface EngineComparisonOptions {
  /** Two or more models (.onnx, engine directory or repository model folder); the first is the baseline of the ratios. */
  models: readonly string[];
  /** Execution providers in order, for every engine. Default ['cpu']. */
  executionProviders?: readonly string[];
  batchSizes: number[];
  instanceCounts: number[];
  /** Rounds per configuration (each round measures every engine once). */
  rounds: number;
  /** Unmeasured time per engine per round, ms (at least one batch per instance is run). */
  warmupMs: number;
  /** Measured time per engine per round, ms. */
  durationMs: number;
  /** Image decoded + letterboxed on every iteration; default a synthetic 1280×720 JPEG. */
  image?: string;
  /** ORT intra-op threads per session; default ORT's choice. */
  intraOpNumThreads?: number;
  /** ORT's `session.intra_op.allow_spinning` (see OrtEngineOptions.intraOpSpinning); default {@link pipelinedIntraOpSpinning} (threads sleep at depth ≥ 2 on CPU, else ORT's spin). */
  intraOpSpinning?: boolean;
  /**
   * Batches in flight per instance loop (see src/bench/closed-loop.ts): 2 (default) pre-processes batch N+1 while
   * N runs and post-processes N while N+1 runs; 1 is the serial loop (pre → inference → post, then the next).
   */
  pipelineDepth?: number;
  command: string;
  /** Progress: called after each engine's window. */
  onWindow?: (w: ComparisonWindow, configuration: { batchSize: number; instances: number }) => void;
}

function stage(samples: Float64Array): StageTimeMs {
  return { mean: round(mean(samples), 3), p99: round(percentile(samples, 99), 3) };
}

/**
 * Window order of one round for `n` engines: 0…n−1, then n−1…0 (a palindrome, so each engine's two windows are
 * centred on the same instant and a linear drift cancels within the round).
 * @example roundOrder(2) // [0, 1, 1, 0]; roundOrder(3) // [0, 1, 2, 2, 1, 0]
 */
export function roundOrder(n: number): number[] {
  const o = Array.from({ length: n }, (_, i) => i);
  return [...o, ...o.slice().reverse()];
}

interface EngineSamples {
  lat: SampleBuffer;
  pre: SampleBuffer;
  queue: SampleBuffer;
  inf: SampleBuffer;
  post: SampleBuffer;
  images: number;
  windowMs: number;
  memory: MemorySampler;
  baselineRssBytes: number;
}

/**
 * Runs the interleaved comparison (see the module doc).
 * @throws OspreyError `OSPREY_ERR_USAGE` (fewer than 2 models, bad figures, a batch size a fixed-batch model cannot
 *   take), `OSPREY_ERR_MODEL_NOT_FOUND_FILE`, `OSPREY_ERR_FILE_NOT_FOUND` (--image), `OSPREY_ERR_INVALID_IMAGE`,
 *   and the engine's load errors (`OSPREY_ERR_INVALID_MODEL`, `OSPREY_ERR_EP_UNAVAILABLE`).
 */
export async function runEngineComparison(o: EngineComparisonOptions): Promise<EngineComparisonResult> {
  if (o.models.length < 2) throw new OspreyError('OSPREY_ERR_USAGE', `a comparison needs at least 2 models, got ${o.models.length}`, {});
  const posInt = (name: string, vs: readonly number[]) => {
    if (vs.length === 0) throw new OspreyError('OSPREY_ERR_USAGE', `${name} is empty`, {});
    for (const v of vs) if (!Number.isInteger(v) || v < 1) throw new OspreyError('OSPREY_ERR_USAGE', `${name} values must be positive integers, got ${v}`, { option: name, value: v });
  };
  posInt('--batch', o.batchSizes);
  posInt('--instances', o.instanceCounts);
  posInt('--rounds', [o.rounds]);
  const pipelineDepth = o.pipelineDepth ?? DEFAULT_PIPELINE_DEPTH;
  posInt('--pipeline-depth', [pipelineDepth]);
  if (!(o.durationMs > 0)) throw new OspreyError('OSPREY_ERR_USAGE', `--duration-ms must be > 0, got ${o.durationMs}`, {});
  if (!(o.warmupMs >= 0)) throw new OspreyError('OSPREY_ERR_USAGE', `--warmup-ms must be ≥ 0, got ${o.warmupMs}`, {});
  const eps = o.executionProviders ?? ['cpu'];
  const intraOpSpinning = pipelinedIntraOpSpinning(o.intraOpSpinning, pipelineDepth, eps);
  const resolved = [];
  for (const m of o.models) resolved.push(await resolveModelPath(m));
  const startEnv = await benchEnvironment(eps[0]!, o.command);
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

  // Probe each model once for its batch axis and input, before any measurement.
  const engines: EngineComparisonResult['engines'] = [];
  for (let k = 0; k < resolved.length; k++) {
    const r = resolved[k]!;
    const probe = await Detector.create({ modelPath: r.onnxPath, executionProviders: eps, instances: 1, warmup: 0 });
    const spec = probe.spec;
    const inputSpec = probe.engine.info.inputs.find((i) => i.name === spec.inputName)!;
    const executionProvider = probe.engine.info.executionProvider;
    try {
      checkBatchSizes(spec.batchSize, o.batchSizes, r.onnxPath, inputSpec.shape);
      if (k === 0) await probe.decode({ name: o.image ?? 'synthetic', bytes: imageBytes }); // a bad --image fails here
    } finally {
      await probe.close();
    }
    engines.push({
      name: r.name,
      path: o.models[k]!,
      sha256: await sha256File(r.onnxPath),
      input: { name: inputSpec.name, type: inputSpec.type, shape: inputSpec.shape },
      ...(r.precision ? { precision: r.precision } : {}),
      executionProvider,
    });
  }
  // Names in ratio labels: the precision tells FP32 from INT8 builds of the same model.
  const label = (k: number) => {
    const e = engines[k]!;
    const dup = engines.filter((x) => x.name === e.name).length > 1;
    return dup ? `${e.name} #${k + 1}` : e.name;
  };

  const configurations: ComparisonConfiguration[] = [];
  const cpu = new HostCpuSampler();
  for (const batchSize of o.batchSizes) {
    for (const instances of o.instanceCounts) {
      const dets: Detector[] = [];
      const samples: EngineSamples[] = [];
      try {
        for (const r of resolved) {
          const baselineRssBytes = process.memoryUsage.rss();
          dets.push(
            await Detector.create({
              modelPath: r.onnxPath,
              executionProviders: eps,
              instances,
              maxBatchSize: batchSize,
              warmup: 1,
              warmupBatchSize: batchSize,
              ...(o.intraOpNumThreads !== undefined ? { intraOpNumThreads: o.intraOpNumThreads } : {}),
              ...(intraOpSpinning !== undefined ? { intraOpSpinning } : {}),
            }),
          );
          const onGpu = dets.at(-1)!.engine.info.executionProvider === 'cuda' || dets.at(-1)!.engine.info.executionProvider === 'tensorrt';
          samples.push({ lat: new SampleBuffer(), pre: new SampleBuffer(), queue: new SampleBuffer(), inf: new SampleBuffer(), post: new SampleBuffer(), images: 0, windowMs: 0, memory: new MemorySampler(onGpu), baselineRssBytes });
        }
        const windows: ComparisonWindow[] = [];
        for (let r = 0; r < o.rounds; r++) {
          const order = roundOrder(dets.length);
          for (let pos = 0; pos < order.length; pos++) {
            const k = order[pos]!;
            const det = dets[k]!;
            const s = samples[k]!;
            const loop = { batchSize, instances, pipelineDepth, imageBytes };
            await runClosedLoops(det, { ...loop, durationMs: o.warmupMs }); // at least one batch per instance
            const loadAverage1m = round(loadavg()[0] ?? 0, 2);
            const before = cpu.read();
            const winInf = new SampleBuffer(64);
            const winLat = new SampleBuffer(64);
            s.memory.start();
            const { windowMs, batches } = await runClosedLoops(det, {
              ...loop,
              durationMs: o.durationMs / 2,
              record: (t) => {
                const latency = t.preprocess + t.queue + t.inference + t.postprocess;
                s.pre.push(t.preprocess);
                s.queue.push(t.queue);
                s.inf.push(t.inference);
                s.post.push(t.postprocess);
                s.lat.push(latency);
                winInf.push(t.inference);
                winLat.push(latency);
              },
            });
            s.memory.stop();
            const usage = cpu.since(before);
            s.images += batches * batchSize;
            s.windowMs += windowMs;
            const w: ComparisonWindow = {
              round: r,
              engine: k,
              order: pos,
              durationMs: round(windowMs, 1),
              batches,
              images: batches * batchSize,
              imagesPerSecond: round((batches * batchSize * 1000) / windowMs, 3),
              medianLatencyMs: round(percentile(winLat.values(), 50), 3),
              inferenceMeanMs: round(mean(winInf.values()), 3),
              otherProcessesCores: usage ? round(usage.otherProcessesCores, 3) : null,
              stealCores: usage ? round(usage.stealCores, 3) : null,
              loadAverage1m,
            };
            windows.push(w);
            o.onWindow?.(w, { batchSize, instances });
          }
        }
        const perEngine: EngineBenchConfiguration[] = samples.map((s) => ({
          batchSize,
          instances,
          pipelineDepth,
          durationMs: round(s.windowMs, 1),
          batches: s.lat.length,
          images: s.images,
          imagesPerSecond: round((s.images / s.windowMs) * 1000, 2),
          batchesPerSecond: round((s.lat.length / s.windowMs) * 1000, 2),
          latencyMs: roundSummary(summarizeLatencies(s.lat.values())),
          stagesMs: { preprocess: stage(s.pre.values()), queue: stage(s.queue.values()), inference: stage(s.inf.values()), postprocess: stage(s.post.values()) },
          memory: {
            baselineRssBytes: s.baselineRssBytes,
            peakRssBytes: s.memory.peakRssBytes,
            ...(s.memory.peakGpuMemoryBytes !== undefined ? { peakGpuMemoryBytes: s.memory.peakGpuMemoryBytes } : {}),
          },
        }));
        const ratios: EngineRatio[] = [];
        for (let k = 1; k < dets.length; k++) {
          const tput: number[] = [];
          const inf: number[] = [];
          for (let r = 0; r < o.rounds; r++) {
            const base = roundFigures(windows, r, 0);
            const it = roundFigures(windows, r, k);
            tput.push(it.imagesPerSecond / base.imagesPerSecond);
            inf.push(base.inferenceMeanMs / it.inferenceMeanMs);
          }
          ratios.push({ engine: k, label: `${label(k)} / ${label(0)}`, throughputRatio: summarizeRatios(tput), inferenceSpeedup: summarizeRatios(inf) });
        }
        const others = windows.map((w) => w.otherProcessesCores).filter((v): v is number => v !== null);
        configurations.push({
          batchSize,
          instances,
          windows,
          perEngine,
          ratios,
          otherProcessesCores: others.length ? { min: round(Math.min(...others), 3), median: round(percentile(others, 50), 3), max: round(Math.max(...others), 3) } : null,
        });
      } finally {
        for (const s of samples) s.memory.stop();
        await Promise.all(dets.map((d) => d.close()));
      }
    }
  }
  return {
    kind: 'osprey-bench-engine-comparison',
    schemaVersion: BENCH_SCHEMA_VERSION,
    engines,
    environment: { ...(await benchEnvironment(engines[0]!.executionProvider, o.command)), createdAt: startEnv.createdAt, loadAverage: startEnv.loadAverage },
    settings: {
      rounds: o.rounds,
      warmupMs: o.warmupMs,
      durationMs: o.durationMs,
      order: 'ABBA-within-round',
      pipelineDepth,
      image: o.image ?? 'synthetic 1280×720 JPEG',
      ...(o.intraOpNumThreads !== undefined ? { intraOpNumThreads: o.intraOpNumThreads } : {}),
      ...(intraOpSpinning !== undefined ? { intraOpSpinning } : {}),
    },
    configurations,
  };
}

