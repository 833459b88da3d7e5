/**
 * How many 10 fps camera streams one GPU sustains (issue 8's GPU figure; the seeds' bar: 64 streams × 10 fps = 640 fps).
 *
 * The GPU machine has no ffmpeg, so frames are PRE-DECODED: real images are decoded and letterboxed once (sharp), and
 * each simulated camera submits one of them every 100 ms into ONE dynamic batcher (src/scheduler, the same one
 * `osprey serve` and `osprey streams` use) through the streams' BatcherFrameInferer, then runs its own ByteTrack
 * tracker on the detections — everything of the streams pipeline except decoding. A camera keeps at most 2 frames in
 * flight; a frame arriving when both slots are taken is dropped (drop-oldest queues behave the same in count). A step
 * "keeps up" when < 1% of frames are dropped. Not a test.
 *
 *   npx tsx bench/run.ts streams-capacity-predecoded --model yolov8s.onnx --images DIR [--out FILE] \
 *        [--streams 64,128,192,256] [--fps 10] [--seconds 10] [--instances 4] [--max-batch 32] [--queue-delay-us 4000]
 *        [--buckets 1,2,4,8,16,32 | --no-buckets]
 */
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveDetectionModelSpec } from '../../src/core/model-spec.js';
import type { LetterboxGeometry } from '../../src/core/letterbox.js';
import { createOrtEngine } from '../../src/engine/ort-engine.js';
import type { Engine, RunOptions } from '../../src/engine/engine.js';
import type { Tensor } from '../../src/core/types.js';
import { percentile } from '../../src/bench/stats.js';
import { listGpus } from '../../src/gpu/system.js';
import { decodeImage } from '../../src/image/decode.js';
import { allocateBatch, letterboxImageInto } from '../../src/image/letterbox.js';
import { readOnnxModel, writeOnnxModel } from '../../src/onnx/index.js';
import { dynamicBatch, fp16, topKOutput, uint8Input } from '../../src/onnx/passes/index.js';
import { warmupBatchBuckets } from '../../src/engine/warmup.js';
import { DynamicBatcher, defaultBatchBuckets } from '../../src/scheduler/dynamic-batcher.js';
import { BatcherFrameInferer } from '../../src/streams/inferer.js';
import { ByteTracker } from '../../src/streams/tracker.js';
import { OSPREY_VERSION, onnxRuntimeVersion } from '../../src/version.js';

const argv = process.argv.slice(2);
const arg = (name: string, def: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1]! : def;
};
const modelPath = arg('--model', '');
const imagesDir = arg('--images', '');
const out = arg('--out', 'streams-gpu.json');
const streamCounts = arg('--streams', '64,128,192,256').split(',').map(Number);
const fps = Number(arg('--fps', '10'));
const seconds = Number(arg('--seconds', '10'));
const instances = Number(arg('--instances', '4'));
const maxBatch = Number(arg('--max-batch', '32'));
const queueDelayUs = Number(arg('--queue-delay-us', '4000'));
const ep = arg('--ep', 'cuda');
/** Batch sizes the batcher pads to; default: defaultBatchBuckets(maxBatch) on a device EP, exact sizes on the CPU. */
const bucketsArg = arg('--buckets', '');

/** q-th percentile (0..1) in ms rounded to 0.1, NaN when there is no sample (src/bench/stats does the arithmetic). */
const pct = (xs: number[], q: number): number => (xs.length ? Math.round(percentile(xs, q * 100) * 10) / 10 : NaN);

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'osprey-streams-gpu-'));
  const enginePath = join(work, 'engine.onnx');
  writeOnnxModel(fp16(topKOutput(uint8Input(dynamicBatch(readOnnxModel(modelPath), { maxBatch })), { k: 300 })), enginePath);
  // one engine per instance (Triton's instance group), each in its own worker thread; the CPU cores are shared out
  // between the sessions' intra-op thread pools (separate pools each sized to every core oversubscribe the CPU)
  const intraOpNumThreads = Math.max(1, Math.floor(cpus().length / instances));
  let pools: Awaited<ReturnType<typeof createOrtEngine>>[];
  let engines: Engine[];
  if (argv.includes('--one-pool')) {
    // one pool of N instances, each instance wrapped as an Engine (as src/repository does for an instance group)
    const pool = await createOrtEngine({ modelPath: enginePath, executionProviders: [ep], instances, warmup: 1 });
    pools = [pool];
    engines = pool.instances.map((inst) => ({ info: pool.info, run: (f: Record<string, Tensor>, o?: RunOptions) => inst.run(f, o), close: () => inst.close() }));
  } else {
    pools = await Promise.all(
      Array.from({ length: instances }, () =>
        createOrtEngine({ modelPath: enginePath, executionProviders: [ep], instances: 1, warmup: 2, warmupBatchSize: maxBatch, intraOpNumThreads }),
      ),
    );
    engines = pools;
  }
  const engine = pools[0]!;
  const spec = resolveDetectionModelSpec(engine.info.inputs, engine.info.outputs, engine.info.metadata);
  const batcher = new DynamicBatcher({
    name: 'streams-gpu',
    engines,
    maxBatchSize: maxBatch,
    // exact sizes on the CPU; a few tuned sizes on a GPU (--no-buckets to measure without)
    ...(bucketsArg
      ? { batchBuckets: bucketsArg.split(',').map(Number) }
      : ep !== 'cpu' && !argv.includes('--no-buckets')
        ? { batchBuckets: defaultBatchBuckets(maxBatch) }
        : {}),
    dynamicBatching: {
      preferredBatchSize: [maxBatch],
      maxQueueDelayMicroseconds: queueDelayUs,
      preserveOrdering: false,
      priorityLevels: 0,
      defaultPriorityLevel: 0,
      defaultQueuePolicy: { timeoutAction: 'REJECT', defaultTimeoutMicroseconds: 0, allowTimeoutOverride: false, maxQueueSize: 0 },
      priorityQueuePolicy: {},
    },
  });
  const inferer = new BatcherFrameInferer(batcher, spec);
  if (batcher.batchBuckets) await warmupBatchBuckets(engine.info, engines, batcher.batchBuckets);
  // pre-decoded, letterboxed frames (uint8 RGB at the model size)
  const files = readdirSync(imagesDir).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort();
  const frames: Array<{ data: Uint8Array; geometry: LetterboxGeometry }> = [];
  for (const f of files.slice(0, 16)) {
    const b = allocateBatch('uint8-nhwc', 1, spec.inputHeight, spec.inputWidth);
    const geometry = await letterboxImageInto(await decodeImage(join(imagesDir, f)), b, 0);
    frames.push({ data: b.data as Uint8Array, geometry });
  }
  const steps = [];
  for (const n of streamCounts) {
    let offered = 0;
    let dropped = 0;
    let processed = 0;
    let detections = 0;
    const latency: number[] = [];
    const batchSizes: number[] = [];
    const timers: NodeJS.Timeout[] = [];
    const sessionTotals = () =>
      pools.flatMap((e) => e.instances).reduce((a, i) => ({ ms: a.ms + i.runMsTotal, runs: a.runs + i.runs }), { ms: 0, runs: 0 });
    const sessionBefore = sessionTotals();
    const executionsBefore = Number((batcher.stats() as unknown as Record<string, unknown>).executionCount); // this step only (not the warm-up runs nor earlier steps)
    const t0 = performance.now();
    const deadline = t0 + seconds * 1000;
    const pendingAll: Promise<void>[] = [];
    for (let c = 0; c < n; c++) {
      const tracker = new ByteTracker();
      let inFlight = 0;
      let seq = c;
      const tick = () => {
        if (performance.now() >= deadline) return;
        offered++;
        if (inFlight >= 2) {
          dropped++;
          return;
        }
        inFlight++;
        const f = frames[seq++ % frames.length]!;
        const start = performance.now();
        const p = inferer
          .infer(f.data.slice(), f.geometry, { priority: 0, confThreshold: 0.25 })
          .then((r) => {
            tracker.update(r.detections, performance.now());
            latency.push(performance.now() - start);
            batchSizes.push(r.batchSize);
            detections += r.detections.length;
            processed++;
          })
          .finally(() => inFlight--);
        pendingAll.push(p);
      };
      // cameras start spread over one frame interval, like independent streams
      timers.push(setTimeout(() => timers.push(setInterval(tick, 1000 / fps)), (c * (1000 / fps)) / n));
    }
    await new Promise((r) => setTimeout(r, seconds * 1000 + 50));
    for (const t of timers) clearInterval(t);
    await Promise.allSettled(pendingAll);
    const elapsed = (performance.now() - t0) / 1000;
    const st = batcher.stats() as unknown as Record<string, unknown>;
    const sessionAfter = sessionTotals();
    const step = {
      streams: n,
      sessionRunMsMean: Math.round(((sessionAfter.ms - sessionBefore.ms) / Math.max(1, sessionAfter.runs - sessionBefore.runs)) * 100) / 100,
      executions: Number(st.executionCount) - executionsBefore,
      batcherStatsCumulative: { executionCount: st.executionCount, inferenceCount: st.inferenceCount, queue: st.queue, computeInput: st.computeInput, computeInfer: st.computeInfer, computeOutput: st.computeOutput },
      fpsPerStream: fps,
      offeredFps: Math.round((offered / seconds) * 10) / 10,
      processedFps: Math.round((processed / elapsed) * 10) / 10,
      droppedPercent: Math.round((dropped / Math.max(1, offered)) * 1000) / 10,
      frameToResultMs: { p50: pct(latency, 0.5), p99: pct(latency, 0.99) },
      meanBatchSize: Math.round((batchSizes.reduce((a, b) => a + b, 0) / Math.max(1, batchSizes.length)) * 10) / 10,
      detectionsPerFrame: Math.round((detections / Math.max(1, processed)) * 10) / 10,
      keepsUp: dropped / Math.max(1, offered) < 0.01,
    };
    steps.push(step);
    process.stderr.write(`${JSON.stringify(step)}\n`);
  }
  await batcher.close();
  await Promise.all(pools.map((e) => e.close()));
  const best = steps.filter((s) => s.keepsUp).sort((a, b) => b.streams - a.streams)[0];
  const result = {
    benchmark: 'streams-capacity-predecoded',
    command: `npx tsx bench/run.ts streams-capacity-predecoded ${argv.join(' ')}`,
    createdAt: new Date().toISOString(),
    device: listGpus()[0] ?? null,
    cpu: cpus()[0]?.model,
    versions: { osprey: OSPREY_VERSION, onnxRuntime: onnxRuntimeVersion(), node: process.version },
    frames: 'pre-decoded (no ffmpeg on the GPU machine): real images letterboxed once with sharp, resubmitted by each camera',
    engine: { variant: 'dynamic batch + uint8 NHWC + top-300 + FP16', instances, maxBatch, maxQueueDelayMicroseconds: queueDelayUs, executionProvider: engine.info.executionProvider, batchBuckets: batcher.batchBuckets ?? null },
    steps,
    maxStreamsKeptUp: best?.streams ?? 0,
  };
  writeFileSync(out, JSON.stringify(result, null, 1));
  console.log(`streams sustained at ${fps} fps (< 1% dropped): ${best?.streams ?? 0} (${best ? best.processedFps : 0} fps; seeds' bar 64 × 10 = 640 fps)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
