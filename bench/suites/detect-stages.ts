/**
 * Per-stage times of the detector pipeline on one image, and the main thread's event-loop delay while inference
 * runs in the engine's worker thread versus the same inference run on the main thread.
 *
 *   npx tsx bench/run.ts detect-stages [--iterations 30] [--image ../shared/data/images/bus.jpg]
 *     [--model ../shared/data/models/yolov8n.onnx] [--ep cpu] [--out bench/results/<device>/detect-stages.json]
 *
 * Stages (each timed separately, N iterations after one warm-up):
 *   decode       encoded bytes (already in memory) → RGB pixels (sharp, EXIF applied)
 *   letterbox    RGB → float32 NCHW batch slot (sharp: cv2-equivalent bilinear resize, pad 114, /255 planes);
 *                the uint8 NHWC variant (what Osprey-built engines take) is timed too
 *   inference    engine.run round trip from the main thread: transfer to the worker, session.run, transfer back
 *                (the worker-side session.run time is reported separately); also for the same model with the
 *                uint8 NHWC prefix fused in memory (Detector `fuseUint8Input`, what `osprey detect` runs)
 *   postprocess  decode [1, 84, 8400] → conf filter → NMS → scale to source pixels (core postprocessImage)
 * Event-loop delay: perf_hooks.monitorEventLoopDelay (1 ms resolution) during N back-to-back inferences, once
 * through the worker engine and once through an ORT session created on the main thread; the ratio is printed.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import ort from 'onnxruntime-node';
import sharp from 'sharp';
import { benchEnvironment } from '../../src/bench/system.js';
import { dataDir, resultsDir } from '../lib.js';
import { computeLetterbox } from '../../src/core/letterbox.js';
import { postprocessImage } from '../../src/core/postprocess.js';
import { DEFAULT_DETECT_OPTIONS } from '../../src/core/types.js';
import { Detector } from '../../src/engine/detector.js';
import type { OrtEngineInfo } from '../../src/engine/ort-engine.js';
import { decodeImage } from '../../src/image/decode.js';
import { allocateBatch, letterboxInto } from '../../src/image/letterbox.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
}

const iterations = Number(arg('iterations', '30'));
const imagePath = resolve(arg('image', join(dataDir(), 'images', 'bus.jpg')));
const modelPath = resolve(arg('model', join(dataDir(), 'models', 'yolov8n.onnx')));
const ep = arg('ep', 'cpu');
const outPath = resolve(arg('out', join(resultsDir('cpu'), `detect-stages${ep === 'cpu' ? '' : '-' + ep}.json`)));

interface Stats {
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  min: number;
  max: number;
}

function stats(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { mean: r(s.reduce((a, b) => a + b, 0) / s.length), p50: r(q(0.5)), p90: r(q(0.9)), p99: r(q(0.99)), min: r(s[0]!), max: r(s[s.length - 1]!) };
}

async function timeIt(n: number, fn: () => Promise<unknown> | unknown): Promise<number[]> {
  await fn(); // warm-up
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

/** Event-loop delay (ms) while `run` executes `n` times back to back. */
async function loopDelayDuring(n: number, run: () => Promise<unknown>): Promise<{ p50: number; p99: number; max: number; wallMs: number }> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const t = performance.now();
  for (let i = 0; i < n; i++) await run();
  const wallMs = performance.now() - t;
  h.disable();
  const ms = (ns: number) => Math.round((ns / 1e6) * 1000) / 1000;
  return { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max), wallMs: Math.round(wallMs) };
}

async function main(): Promise<void> {
  const command = `npx tsx bench/run.ts detect-stages ${process.argv.slice(2).join(' ')}`.trim();
  const env = await benchEnvironment(ep, command);
  const bytes = readFileSync(imagePath);
  const det = await Detector.create({ modelPath, executionProviders: [ep], warmup: 2 });
  const info = det.engine.info as OrtEngineInfo;
  const spec = det.spec;
  const opts = { ...DEFAULT_DETECT_OPTIONS };
  process.stderr.write(`detect-stages: ${imagePath} on ${info.executionProvider}, ${iterations} iterations\n`);

  const decodeMs = await timeIt(iterations, () => decodeImage(bytes, { name: imagePath }));
  const image = await decodeImage(bytes, { name: imagePath });
  const g = computeLetterbox(image.width, image.height, spec.inputWidth, spec.inputHeight);
  const f32 = allocateBatch('float32-nchw', 1, spec.inputHeight, spec.inputWidth);
  const letterboxFloatMs = await timeIt(iterations, () => letterboxInto(image, g, f32, 0));
  const u8 = allocateBatch('uint8-nhwc', 1, spec.inputHeight, spec.inputWidth);
  const letterboxUint8Ms = await timeIt(iterations, () => letterboxInto(image, g, u8, 0));
  const resizeLinearMs = await timeIt(iterations, () =>
    sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
      .resize(g.resizedWidth, g.resizedHeight, { kernel: 'linear', fit: 'fill' })
      .extend({ top: g.padTop, bottom: g.padBottom, left: g.padLeft, right: g.padRight, background: { r: 114, g: 114, b: 114 } })
      .raw()
      .toBuffer(),
  );

  // Inference: a fresh copy of the prepared input each time (the engine takes ownership of the buffer).
  // Also the same model with the uint8 NHWC prefix fused in memory (what `osprey detect` uses): uint8 letterbox,
  // uint8 in. The two are timed interleaved, so that other load on the machine hits both alike.
  const fused = await Detector.create({ modelPath, executionProviders: [ep], warmup: 2, fuseUint8Input: true });
  const input = f32.data as Float32Array;
  const fusedInput = u8.data as Uint8Array;
  let lastOutput: { dims: readonly number[]; data: Float32Array } | undefined;
  const inst = (det.engine as unknown as { instances: { runs: number; runMsTotal: number }[] }).instances[0]!;
  const fusedInst = (fused.engine as unknown as { instances: { runs: number; runMsTotal: number }[] }).instances[0]!;
  lastOutput = await det.runBatch({ ...f32, data: input.slice() }, 1);
  await fused.runBatch({ ...u8, data: fusedInput.slice() }, 1);
  const [runsBefore, workerMsBefore, fusedRunsBefore, fusedMsBefore] = [inst.runs, inst.runMsTotal, fusedInst.runs, fusedInst.runMsTotal];
  const inferenceMs: number[] = [];
  const inferenceFusedMs: number[] = [];
  for (let i = 0; i < iterations; i++) {
    let t = performance.now();
    lastOutput = await det.runBatch({ ...f32, data: input.slice() }, 1);
    inferenceMs.push(performance.now() - t);
    t = performance.now();
    await fused.runBatch({ ...u8, data: fusedInput.slice() }, 1);
    inferenceFusedMs.push(performance.now() - t);
  }
  const workerRunMean = (inst.runMsTotal - workerMsBefore) / (inst.runs - runsBefore);
  const fusedWorkerRunMean = (fusedInst.runMsTotal - fusedMsBefore) / (fusedInst.runs - fusedRunsBefore);
  await fused.close();
  const postprocessMs = await timeIt(iterations, () => postprocessImage(lastOutput!, spec.layout, 0, g, spec.names, opts, spec.nmsInGraph));
  const detections = postprocessImage(lastOutput!, spec.layout, 0, g, spec.names, opts, spec.nmsInGraph);

  // Event-loop delay: worker engine vs the same model run on the main thread.
  const worker = await loopDelayDuring(iterations, () => det.runBatch({ ...f32, data: input.slice() }, 1));
  const mainSession = await ort.InferenceSession.create(modelPath, { executionProviders: [ep], graphOptimizationLevel: 'all' });
  const dims = [1, 3, spec.inputHeight, spec.inputWidth];
  await mainSession.run({ [spec.inputName]: new ort.Tensor('float32', input.slice(), dims) });
  const mainThread = await loopDelayDuring(iterations, () => mainSession.run({ [spec.inputName]: new ort.Tensor('float32', input.slice(), dims) }));
  await mainSession.release();
  await det.close();

  const ratio = Math.round((mainThread.p99 / Math.max(worker.p99, 0.001)) * 10) / 10;
  const result = {
    schemaVersion: 1,
    bench: 'detect-stages',
    environment: env,
    sharp: sharp.versions.sharp,
    libvips: sharp.versions.vips,
    model: { path: modelPath, input: info.inputs[0], output: info.outputs[0] },
    image: { path: imagePath, width: image.width, height: image.height },
    executionProvider: info.executionProvider,
    fallbacks: info.fallbacks,
    iterations,
    stagesMs: {
      decode: stats(decodeMs),
      letterboxFloat32Nchw: stats(letterboxFloatMs),
      letterboxUint8Nhwc: stats(letterboxUint8Ms),
      inferenceRoundTrip: stats(inferenceMs),
      inferenceInWorkerMean: Math.round(workerRunMean * 1000) / 1000,
      inferenceRoundTripFusedUint8: stats(inferenceFusedMs),
      inferenceInWorkerFusedUint8Mean: Math.round(fusedWorkerRunMean * 1000) / 1000,
      postprocess: stats(postprocessMs),
    },
    comparison: {
      note: "sharp resize(kernel 'linear') + pad, uint8: the path Osprey does NOT use (antialiased, 4.9 px off OpenCV on bus.jpg)",
      resizeLinearUint8: stats(resizeLinearMs),
    },
    detections: detections.length,
    eventLoopDelayMs: { inferenceInWorker: worker, inferenceOnMainThread: mainThread, p99RatioMainOverWorker: ratio },
  };
  mkdirSync(dirname(outPath), { recursive: true });
  writeFileSync(outPath, `${JSON.stringify(result, null, 2)}\n`);

  const row = (name: string, s: Stats) => `  ${name.padEnd(26)} mean ${s.mean.toFixed(2).padStart(8)} ms   p50 ${s.p50.toFixed(2).padStart(8)}   p90 ${s.p90.toFixed(2).padStart(8)}`;
  const lines = [
    `device: ${env.device} (${env.cpuCount} CPUs, load ${env.loadAverage.join(' ')}), ${info.executionProvider}, node ${env.nodeVersion}, ORT ${env.onnxRuntimeVersion}, osprey ${env.ospreyVersion}`,
    `image ${image.width}x${image.height} → ${spec.inputWidth}x${spec.inputHeight}, ${detections.length} detections, ${iterations} iterations`,
    row('decode', result.stagesMs.decode),
    row('letterbox float32 NCHW', result.stagesMs.letterboxFloat32Nchw),
    row('letterbox uint8 NHWC', result.stagesMs.letterboxUint8Nhwc),
    row('inference (round trip)', result.stagesMs.inferenceRoundTrip),
    `  ${'inference (in worker)'.padEnd(26)} mean ${workerRunMean.toFixed(2).padStart(8)} ms`,
    row('inference, uint8 prefix', result.stagesMs.inferenceRoundTripFusedUint8),
    `  ${'  (in worker)'.padEnd(26)} mean ${fusedWorkerRunMean.toFixed(2).padStart(8)} ms`,
    `per image, float path (letterbox f32 + inference) ${(result.stagesMs.letterboxFloat32Nchw.mean + result.stagesMs.inferenceRoundTrip.mean).toFixed(1)} ms vs uint8 prefix path (letterbox u8 + inference) ${(result.stagesMs.letterboxUint8Nhwc.mean + result.stagesMs.inferenceRoundTripFusedUint8.mean).toFixed(1)} ms`,
    row('postprocess (decode+NMS)', result.stagesMs.postprocess),
    `event-loop delay during inference: worker p50 ${worker.p50} ms p99 ${worker.p99} ms max ${worker.max} ms | main thread p50 ${mainThread.p50} ms p99 ${mainThread.p99} ms max ${mainThread.max} ms | p99 ratio main/worker ${ratio}x`,
    `wrote ${outPath}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
