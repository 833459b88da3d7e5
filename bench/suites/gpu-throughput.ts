/**
 * GPU benchmark (issue 7): Osprey's ONNX Runtime engine on the CUDA execution provider, in one command on the GPU
 * machine, beside the PyTorch reference measured in the same run (`torch_yolov8.py bench`, JSON lines passed with
 * --pytorch). Not a test.
 *
 *   npx tsx bench/run.ts gpu-throughput [--model yolov8n=PATH] [--model yolov8s=PATH] [--pytorch torch.jsonl | --torch-script torch_yolov8.py] \
 *        --images DIR --out results.json [--ep cuda] [--batches 1,8,32,64] [--instances 1,2,4] [--duration-ms 2000]
 *
 * Variants built in-process with Osprey's graph passes (src/onnx/passes), all with a dynamic batch axis:
 *   plain-fp32   float32 NCHW [B,3,640,640] in, raw [B,84,8400] out, host decode + NMS (the model as exported)
 *   plain-fp16   same, FP16 inside (FP32 I/O)
 *   raw-uint8-fp16  uint8 NHWC in, raw [B,84,8400] out (ablation: input format alone)
 *   e2e-fp32     uint8 NHWC [B,640,640,3] in, top-K [B,K,6] out (K=300, as the PyTorch reference), host NMS
 *   e2e-fp16     same, FP16 inside
 * Every row is "frames on the host in, detections on the host out": host NMS runs on the main thread for every image.
 * Inputs are real letterboxed images (cycled), not zeros.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync, readFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createOrtEngine, type EnginePool } from '../../src/engine/ort-engine.js';
import { Detector } from '../../src/engine/detector.js';
import { resolveDetectionModelSpec, type DetectionModelSpec } from '../../src/core/model-spec.js';
import { postprocessImage } from '../../src/core/postprocess.js';
import { DEFAULT_DETECT_OPTIONS, type Tensor } from '../../src/core/types.js';
import type { LetterboxGeometry } from '../../src/core/letterbox.js';
import { decodeImage } from '../../src/image/decode.js';
import { allocateBatch, letterboxImageInto } from '../../src/image/letterbox.js';
import { readOnnxModel, writeOnnxModel } from '../../src/onnx/index.js';
import { dynamicBatch, fp16, topKOutput, uint8Input } from '../../src/onnx/passes/index.js';
import { summarizeLatencies } from '../../src/bench/stats.js';
import { listGpus } from '../../src/gpu/system.js';
import { OSPREY_VERSION, onnxRuntimeVersion } from '../../src/version.js';
import { dataDir } from '../lib.js';

type Variant = 'plain-fp32' | 'plain-fp16' | 'raw-uint8-fp16' | 'e2e-fp32' | 'e2e-fp16';

interface Args {
  models: Array<{ name: string; path: string }>;
  pytorch?: string;
  /** ../shared/tools/torch_yolov8.py: run its `bench` in this command when no --pytorch file is given. */
  torchScript?: string;
  images: string;
  out: string;
  ep: string;
  batches: number[];
  instances: number[];
  durationMs: number;
  topk: number;
  variants: Variant[];
  ablationBatches: number[];
  inflightPerInstance: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    models: [],
    images: '',
    out: 'gpu-results.json',
    ep: 'cuda',
    batches: [1, 8, 32, 64],
    instances: [1, 2, 4],
    durationMs: 2000,
    topk: 300,
    variants: ['e2e-fp16', 'e2e-fp32', 'plain-fp32', 'plain-fp16', 'raw-uint8-fp16'],
    ablationBatches: [1, 32],
    inflightPerInstance: 2,
  };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i]!;
    const v = argv[i + 1] ?? '';
    const list = () => v.split(',').map(Number);
    if (k === '--model') {
      const [name, path] = v.split('=');
      a.models.push({ name: name!, path: path! });
    } else if (k === '--pytorch') a.pytorch = v;
    else if (k === '--torch-script') a.torchScript = v;
    else if (k === '--images') a.images = v;
    else if (k === '--out') a.out = v;
    else if (k === '--ep') a.ep = v;
    else if (k === '--batches') a.batches = list();
    else if (k === '--instances') a.instances = list();
    else if (k === '--duration-ms') a.durationMs = Number(v);
    else if (k === '--topk') a.topk = Number(v);
    else if (k === '--variants') a.variants = v.split(',') as Variant[];
    else if (k === '--ablation-batches') a.ablationBatches = list();
    else if (k === '--inflight') a.inflightPerInstance = Number(v);
    else throw new Error(`unknown option ${k}`);
    i++;
  }
  if (a.models.length === 0 || !a.images) throw new Error('need --model NAME=PATH and --images DIR');
  return a;
}

function buildVariant(src: string, variant: Variant, dir: string, topk: number): string {
  let m = dynamicBatch(readOnnxModel(src));
  if (variant.startsWith('e2e') || variant.startsWith('raw-uint8')) m = uint8Input(m);
  if (variant.startsWith('e2e')) m = topKOutput(m, { k: topk });
  if (variant.endsWith('fp16')) m = fp16(m);
  const out = join(dir, `${variant}.onnx`);
  writeOnnxModel(m, out);
  return out;
}

/** Latency percentiles in ms (src/bench/stats: numpy's linear interpolation), rounded to µs; `p50` is the median. */
function latencyStats(ms: number[]) {
  const l = summarizeLatencies(ms);
  const r = (v: number) => Math.round(v * 1000) / 1000;
  return { min: r(l.min), mean: r(l.mean), p50: r(l.median), p90: r(l.p90), p95: r(l.p95), p99: r(l.p99), max: r(l.max) };
}

/** Real letterboxed frames, one template per image, in the variant's input format. */
async function loadFrames(dir: string, spec: DetectionModelSpec, count = 16): Promise<{ frames: Array<Uint8Array | Float32Array>; geometries: LetterboxGeometry[] }> {
  const files = readdirSync(dir).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort().slice(0, count);
  const frames: Array<Uint8Array | Float32Array> = [];
  const geometries: LetterboxGeometry[] = [];
  for (const f of files) {
    const img = await decodeImage(join(dir, f));
    const batch = allocateBatch(spec.inputFormat, 1, spec.inputHeight, spec.inputWidth);
    geometries.push(await letterboxImageInto(img, batch, 0));
    frames.push(batch.data);
  }
  return { frames, geometries };
}

interface Row {
  model: string;
  variant: Variant;
  precision: 'fp32' | 'fp16';
  input: 'uint8-nhwc' | 'float32-nchw';
  output: 'topk' | 'raw';
  batch: number;
  instances: number;
  executionProvider: string;
  imagesPerSecond: number;
  latencyMs: ReturnType<typeof latencyStats>;
  postprocessMsPerImage: number;
  detectionsPerImage: number;
  eventLoopDelayP99Ms: number;
  sessionRunMsMean: number;
  runs: number;
  reuseBuffers: boolean;
  ratioToPytorch?: number | null;
  pytorchHostUint8ImagesPerSecond?: number | null;
}

async function measure(
  engine: EnginePool,
  spec: DetectionModelSpec,
  frames: Awaited<ReturnType<typeof loadFrames>>,
  batch: number,
  instances: number,
  durationMs: number,
  reuseBuffers: boolean,
  inflightPerInstance: number,
) {
  const perImage = spec.inputHeight * spec.inputWidth * 3;
  const isU8 = spec.inputFormat === 'uint8-nhwc';
  const dims = isU8 ? [batch, spec.inputHeight, spec.inputWidth, 3] : [batch, 3, spec.inputHeight, spec.inputWidth];
  // Input buffers: with reuse, the engine hands each buffer back after the run (moved, not copied) and it goes
  // round again already holding frames; without, every run allocates and fills a fresh buffer (one memcpy).
  const free: Tensor[] = [];
  const makeFeed = (seq: number): Record<string, Tensor> => {
    const recycled = reuseBuffers ? free.pop() : undefined;
    if (recycled) return { [spec.inputName]: recycled };
    const data = isU8 ? new Uint8Array(batch * perImage) : new Float32Array(batch * perImage);
    for (let b = 0; b < batch; b++) (data as Uint8Array).set(frames.frames[(seq + b) % frames.frames.length] as Uint8Array, b * perImage);
    return { [spec.inputName]: { type: isU8 ? 'uint8' : 'float32', dims, data } };
  };
  const runOptions = reuseBuffers ? { onInputsReleased: (f: Record<string, Tensor>) => void free.push(f[spec.inputName]!) } : {};
  const opts = { ...DEFAULT_DETECT_OPTIONS };
  // warm-up at this batch size (first run allocates and picks kernels)
  for (let i = 0; i < Math.max(2, instances); i++) await Promise.all(Array.from({ length: instances }, (_, k) => engine.run(makeFeed(k))));
  const lat: number[] = [];
  let images = 0;
  let runs = 0;
  let postMs = 0;
  let dets = 0;
  const concurrency = instances * inflightPerInstance;
  const sessionBefore = engine.instances.reduce((a, i) => ({ ms: a.ms + i.runMsTotal, runs: a.runs + i.runs }), { ms: 0, runs: 0 });
  const eld = monitorEventLoopDelay({ resolution: 1 });
  eld.enable();
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  let seq = 0;
  const loop = async () => {
    while (performance.now() < deadline) {
      const feed = makeFeed(seq++);
      const s = performance.now();
      const out = await engine.run(feed, runOptions);
      const o = out[spec.outputName]!;
      const p0 = performance.now();
      for (let b = 0; b < batch; b++) {
        dets += postprocessImage({ dims: o.dims, data: o.data as Float32Array }, spec.layout, b, frames.geometries[(seq + b) % frames.geometries.length]!, spec.names, opts, spec.nmsInGraph).length;
      }
      const e = performance.now();
      postMs += e - p0;
      lat.push(e - s);
      images += batch;
      runs++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const elapsed = performance.now() - t0;
  const sessionAfter = engine.instances.reduce((a, i) => ({ ms: a.ms + i.runMsTotal, runs: a.runs + i.runs }), { ms: 0, runs: 0 });
  const sessionRunMsMean = (sessionAfter.ms - sessionBefore.ms) / Math.max(1, sessionAfter.runs - sessionBefore.runs);
  eld.disable();
  return {
    imagesPerSecond: Math.round((images / elapsed) * 1000 * 10) / 10,
    latencyMs: latencyStats(lat),
    postprocessMsPerImage: Math.round((postMs / Math.max(1, images)) * 1000) / 1000,
    detectionsPerImage: Math.round((dets / Math.max(1, images)) * 100) / 100,
    eventLoopDelayP99Ms: Math.round((eld.percentile(99) / 1e6) * 100) / 100,
    /** Mean time inside the worker's session.run() (host→device copy, compute, device→host copy), ms per run. */
    sessionRunMsMean: Math.round(sessionRunMsMean * 1000) / 1000,
    runs,
  };
}

/** Batch-1 latency, sequential runs (no overlap): the engine alone and end to end from JPEG bytes. */
async function latencyBatch1(modelPath: string, ep: string, imagePath: string, durationMs: number) {
  const det = await Detector.create({ modelPath, executionProviders: [ep], warmup: 5, maxBatchSize: 1 });
  try {
    const img = await decodeImage(imagePath);
    const buf = det.allocateBatch(1);
    const g = await letterboxImageInto(img, buf, 0);
    const template = buf.data.slice();
    const engineMs: number[] = [];
    const e2eMs: number[] = [];
    for (let i = 0; i < 20; i++) {
      const b = det.allocateBatch(1);
      b.data.set(template as never);
      await det.runBatch(b, 1);
    }
    let t0 = performance.now();
    while (performance.now() - t0 < durationMs) {
      const b = det.allocateBatch(1);
      b.data.set(template as never);
      const s = performance.now();
      const out = await det.runBatch(b, 1);
      det.postprocessBatch(out, [g]);
      engineMs.push(performance.now() - s);
    }
    const jpeg = readFileSync(imagePath);
    t0 = performance.now();
    let last = 0;
    while (performance.now() - t0 < durationMs) {
      const s = performance.now();
      const [r] = await det.detectFiles([{ name: 'bus.jpg', bytes: jpeg }]);
      if (r && 'detections' in r) last = r.detections.length;
      e2eMs.push(performance.now() - s);
    }
    return { executionProvider: det.engine.info.executionProvider, engineLatencyMs: latencyStats(engineMs), endToEndFromJpegLatencyMs: latencyStats(e2eMs), detections: last };
  } finally {
    await det.close();
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv);
  const work = mkdtempSync(join(tmpdir(), 'osprey-gpu-bench-'));
  // PyTorch in the same command (docs/gpu.md): torch_yolov8.py bench per model scale, unless a --pytorch file is given
  const script = args.torchScript ?? process.env.OSPREY_TORCH_YOLOV8 ?? join(dataDir(), '..', 'tools', 'torch_yolov8.py');
  if (!args.pytorch && existsSync(script)) {
    const lines: string[] = [];
    for (const m of args.models) {
      const scale = /yolov8([nsmlx])/.exec(m.name)?.[1] ?? 'n';
      const r = spawnSync('python3', [script, 'bench', '--scale', scale, '--batch', args.batches.join(','), '--precision', 'fp16'], { encoding: 'utf8', cwd: dirname(script), maxBuffer: 64 * 1024 * 1024 });
      if (r.status !== 0) process.stderr.write(`gpu-throughput: ${script} bench --scale ${scale} failed (${r.status}): ${(r.stderr ?? '').slice(-500)}\n`);
      lines.push(...(r.stdout ?? '').split('\n').filter((l) => l.startsWith('{')));
    }
    args.pytorch = join(dirname(args.out), `pytorch-${args.models.map((m) => m.name).join('-')}.jsonl`);
    writeFileSync(args.pytorch, lines.join('\n') + '\n');
  }
  const torchRows: Array<Record<string, unknown>> = args.pytorch
    ? readFileSync(args.pytorch, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
    : [];
  const torchHost = (model: string, precision: string, batch: number) =>
    (torchRows.find((r) => r.model === model && r.precision === precision && r.batch === batch && r.mode === 'host-uint8')?.images_per_s as number | undefined) ?? null;
  const rows: Row[] = [];
  const latency: Record<string, unknown> = {};
  const gpus = listGpus();
  const save = () => {
    const result = {
      benchmark: 'gpu-throughput',
      command: process.argv.slice(1).join(' '),
      createdAt: new Date().toISOString(),
      device: gpus[0] ?? null,
      cpu: cpus()[0]?.model,
      cpuCount: cpus().length,
      versions: { osprey: OSPREY_VERSION, onnxRuntime: onnxRuntimeVersion(), node: process.version, pytorch: torchRows[0]?.torch ?? null },
      notes: [
        'Every Osprey row: frames on the host in, detections on the host out (host NMS on the main thread for every image).',
        'PyTorch host-uint8: pinned uint8 batch -> normalize -> model -> top-300 boxes on the host (no NMS), same GPU, same command.',
        'Inputs are real letterboxed images cycled (not zeros). reuseBuffers: the engine hands input buffers back after each run and they are reused (no allocation, no copy); false: a fresh buffer filled per run.',
      ],
      rows,
      batch1Latency: latency,
      pytorch: torchRows,
    };
    writeFileSync(args.out, JSON.stringify(result, null, 1));
  };
  const bus = join(args.images, readdirSync(args.images).find((f) => f === 'bus.jpg') ?? readdirSync(args.images)[0]!);
  for (const model of args.models) {
    const dir = join(work, model.name);
    mkdirSync(dir, { recursive: true });
    for (const variant of args.variants) {
      let path: string;
      try {
        path = buildVariant(model.path, variant, dir, args.topk);
      } catch (err) {
        process.stderr.write(`${model.name} ${variant}: build failed, skipped: ${(err as Error).message}\n`);
        continue;
      }
      const isMain = variant.startsWith('e2e');
      const batches = isMain ? args.batches : args.ablationBatches;
      const instanceList = isMain ? args.instances : [...new Set([1, Math.max(...args.instances)])];
      for (const instances of instanceList) {
        const engine = await createOrtEngine({ modelPath: path, executionProviders: [args.ep], instances, warmup: 1 });
        const spec = resolveDetectionModelSpec(engine.info.inputs, engine.info.outputs, engine.info.metadata);
        const frames = await loadFrames(args.images, spec);
        const configs: Array<{ batch: number; reuse: boolean }> = batches.map((b) => ({ batch: b, reuse: true }));
        // ablation: IO buffer reuse off, at batch 32 for the main variant
        if (variant === 'e2e-fp16' && batches.includes(32)) configs.push({ batch: 32, reuse: false });
        for (const { batch, reuse } of configs) {
          const m = await measure(engine, spec, frames, batch, instances, args.durationMs, reuse, args.inflightPerInstance);
          const precision = variant.endsWith('fp16') ? 'fp16' : 'fp32';
          const ref = torchHost(model.name, precision, batch);
          const row: Row = {
            model: model.name,
            variant,
            precision,
            input: spec.inputFormat === 'uint8-nhwc' ? 'uint8-nhwc' : 'float32-nchw',
            output: variant.startsWith('e2e') ? 'topk' : 'raw',
            batch,
            instances,
            executionProvider: engine.info.executionProvider,
            ...m,
            reuseBuffers: reuse,
            pytorchHostUint8ImagesPerSecond: ref,
            ratioToPytorch: ref ? Math.round((m.imagesPerSecond / ref) * 100) / 100 : null,
          };
          rows.push(row);
          save();
          process.stderr.write(
            `${model.name} ${variant} b${batch} i${instances}${reuse ? '' : ' (no buffer reuse)'}: ${m.imagesPerSecond} img/s p50 ${m.latencyMs.p50} ms p99 ${m.latencyMs.p99} ms` +
              `${ref ? ` ratio ${row.ratioToPytorch}` : ''} session.run ${m.sessionRunMsMean} ms (${engine.info.executionProvider})\n`,
          );
        }
        await engine.close();
      }
    }
    const e2e16 = join(dir, 'e2e-fp16.onnx');
    if (args.variants.includes('e2e-fp16')) {
      latency[model.name] = await latencyBatch1(e2e16, args.ep, bus, args.durationMs);
      process.stderr.write(`${model.name} batch-1 latency: ${JSON.stringify(latency[model.name])}\n`);
    }
  }
  save();
  // Short table last.
  const best = (model: string, variant: string, batch: number) =>
    rows.filter((r) => r.model === model && r.variant === variant && r.batch === batch && r.reuseBuffers).sort((a, b) => b.imagesPerSecond - a.imagesPerSecond)[0];
  console.log('model    variant          batch reuse inst   img/s   p50ms   p99ms  ratioToPytorch');
  for (const r of rows) {
    console.log(
      `${r.model.padEnd(8)} ${r.variant.padEnd(16)} ${String(r.batch).padStart(5)} ${r.reuseBuffers ? ' yes' : '  no'} ${String(r.instances).padStart(4)} ${String(r.imagesPerSecond).padStart(7)} ${String(r.latencyMs.p50).padStart(7)} ${String(r.latencyMs.p99).padStart(7)}  ${r.ratioToPytorch ?? '-'}`,
    );
  }
  for (const m of args.models) {
    const b = best(m.name, 'e2e-fp16', 32);
    if (b) console.log(`TARGET ${m.name} fp16 b32 best: ${b.imagesPerSecond} img/s (${b.instances} instances) = ${b.ratioToPytorch}x PyTorch host-uint8`);
  }
  console.log(`batch-1 latency: ${JSON.stringify(latency)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
