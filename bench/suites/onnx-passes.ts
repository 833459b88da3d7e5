/**
 * CPU throughput of the plain export vs the Osprey-fused engines (uint8 NHWC prefix + top-K suffix, and the
 * NMS-in-graph variant), at batch 1 and 4, in one run. Measures what a server pays per image for the model and the
 * host work after it: feed → session.run → host decode + NMS (src/core postprocessImage). The input batch is
 * prepared once per format (letterbox is the same for both; the plain graph additionally needs float32 NCHW,
 * which the host must produce — not counted here, so the ratio is conservative for the fused engine).
 * Variants are measured round-robin (rounds interleaved) so they share the machine's load.
 *
 *   npx tsx bench/run.ts onnx-passes [--rounds N]
 *
 * Writes bench/results/<device>/onnx-passes.json (or --out FILE). Run: npx tsx bench/run.ts onnx-passes
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { decodeImage } from '../../src/image/decode.js';
import { allocateBatch, letterboxImageInto, type BatchBuffer } from '../../src/image/letterbox.js';
import { resolveDetectionModelSpec, type DetectionModelSpec } from '../../src/core/model-spec.js';
import { postprocessImage } from '../../src/core/postprocess.js';
import { DEFAULT_DETECT_OPTIONS } from '../../src/core/types.js';
import type { LetterboxGeometry } from '../../src/core/letterbox.js';
import { encodeOnnxModel, readModelMetadata, readOnnxModel, type OnnxModel } from '../../src/onnx/index.js';
import { dynamicBatch, topKOutput, uint8Input } from '../../src/onnx/passes/index.js';
import { OSPREY_VERSION, onnxRuntimeVersion } from '../../src/version.js';
import { argValue, dataDir, resultsDir } from '../lib.js';

const here = dirname(fileURLToPath(import.meta.url));
const SHARED = dataDir();
const argRounds = process.argv.indexOf('--rounds');
const ROUNDS = argRounds > 0 ? Number(process.argv[argRounds + 1]) : 5;
const BATCHES = [1, 4];
const IMAGES = ['images/bus.jpg', 'images/zidane.jpg', 'coco-val-dev/images/000000000802.jpg', 'coco-val-dev/images/000000018575.jpg'].map((p) => join(SHARED, p));

interface Variant {
  name: string;
  model: OnnxModel;
  session?: ort.InferenceSession;
  spec?: DetectionModelSpec;
  outputBytes?: number;
  times: Map<number, number[]>;
}

async function main(): Promise<void> {
  const original = readOnnxModel(join(SHARED, 'models/yolov8n.onnx'));
  const dyn = dynamicBatch(original);
  const variants: Variant[] = [
    { name: 'plain (float32 NCHW → [B,84,8400], host decode + NMS)', model: dyn, times: new Map() },
    { name: 'uint8 + topK (uint8 NHWC → [B,1000,6], host NMS)', model: topKOutput(uint8Input(dyn)), times: new Map() },
    { name: 'uint8 + NMS in graph (→ [B,300,6])', model: topKOutput(uint8Input(dyn), { nmsInGraph: true }), times: new Map() },
  ];
  const maxB = Math.max(...BATCHES);
  const f = allocateBatch('float32-nchw', maxB, 640, 640);
  const u = allocateBatch('uint8-nhwc', maxB, 640, 640);
  const geometries: LetterboxGeometry[] = [];
  for (let i = 0; i < maxB; i++) {
    const img = await decodeImage(IMAGES[i % IMAGES.length]!);
    geometries.push(await letterboxImageInto(img, f, i));
    await letterboxImageInto(img, u, i);
  }
  for (const v of variants) {
    const bytes = encodeOnnxModel(v.model);
    const meta = readModelMetadata(bytes);
    v.spec = resolveDetectionModelSpec(meta.inputs, meta.outputs, meta.metadata);
    v.session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: 2, graphOptimizationLevel: 'all' });
  }
  const feed = (v: Variant, b: number): ort.Tensor => {
    const buf: BatchBuffer = v.spec!.inputFormat === 'uint8-nhwc' ? u : f;
    const per = buf.data.length / buf.batchSize;
    return v.spec!.inputFormat === 'uint8-nhwc'
      ? new ort.Tensor('uint8', (buf.data as Uint8Array).subarray(0, b * per), [b, 640, 640, 3])
      : new ort.Tensor('float32', (buf.data as Float32Array).subarray(0, b * per), [b, 3, 640, 640]);
  };
  const once = async (v: Variant, b: number): Promise<number> => {
    const t0 = performance.now();
    const out = (await v.session!.run({ [v.spec!.inputName]: feed(v, b) }))[v.spec!.outputName]!;
    const dims = out.dims as number[];
    let count = 0;
    for (let i = 0; i < b; i++) {
      count += postprocessImage({ dims, data: out.data as Float32Array }, v.spec!.layout, i, geometries[i]!, v.spec!.names, DEFAULT_DETECT_OPTIONS, v.spec!.nmsInGraph).length;
    }
    v.outputBytes = (out.data as Float32Array).byteLength / b;
    if (count === 0) throw new Error(`${v.name}: no detections`);
    return performance.now() - t0;
  };
  // warmup
  for (const v of variants) for (const b of BATCHES) for (let k = 0; k < 2; k++) await once(v, b);
  const t0 = Date.now();
  for (let r = 0; r < ROUNDS; r++) {
    for (const b of BATCHES) {
      for (const v of variants) {
        const iters = b === 1 ? 4 : 1;
        for (let k = 0; k < iters; k++) {
          const ms = await once(v, b);
          if (!v.times.has(b)) v.times.set(b, []);
          v.times.get(b)!.push(ms);
        }
      }
    }
    process.stderr.write(`round ${r + 1}/${ROUNDS}\r`);
  }
  process.stderr.write('\n');
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const rows = variants.map((v) => ({
    variant: v.name,
    outputBytesPerImage: v.outputBytes,
    batches: BATCHES.map((b) => {
      const ms = median(v.times.get(b)!);
      return { batch: b, medianBatchMs: Math.round(ms * 100) / 100, imagesPerSecond: Math.round((1000 * b * 100) / ms) / 100, samples: v.times.get(b)!.length };
    }),
  }));
  const base = rows[0]!;
  const ratios = rows.slice(1).map((r) => ({
    variant: r.variant,
    vsPlain: Object.fromEntries(r.batches.map((b, k) => [`batch${b.batch}`, Math.round((b.imagesPerSecond / base.batches[k]!.imagesPerSecond) * 100) / 100])),
  }));
  for (const r of rows) {
    console.log(`${r.variant.padEnd(56)} ${r.batches.map((b) => `B=${b.batch}: ${b.imagesPerSecond.toFixed(2)} img/s (median ${b.medianBatchMs} ms/batch)`).join('  ')}  output ${(r.outputBytesPerImage! / 1024).toFixed(1)} KiB/image`);
  }
  for (const r of ratios) console.log(`ratio ${r.variant}: ${Object.entries(r.vsPlain).map(([k, v]) => `${k} ×${v}`).join(', ')}`);
  const outPath = resolve(argValue(process.argv, '--out', join(resultsDir('cpu'), 'onnx-passes.json')));
  mkdirSync(dirname(outPath), { recursive: true });
  writeFileSync(
    outPath,
    JSON.stringify(
      {
        command: `npx tsx bench/run.ts onnx-passes --rounds ${ROUNDS}`,
        device: cpus()[0]?.model ?? 'unknown',
        cpuCount: cpus().length,
        executionProvider: 'cpu (intraOpNumThreads 2)',
        osprey: OSPREY_VERSION,
        onnxruntime: onnxRuntimeVersion(),
        node: process.version,
        model: 'yolov8n.onnx (../shared/data/models), dynamicBatch applied to every variant',
        measured: 'feed → session.run → host decode + NMS per image (conf 0.25, IoU 0.7); letterbox excluded',
        results: rows,
        ratios,
        durationSeconds: (Date.now() - t0) / 1000,
        createdAt: new Date().toISOString(),
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`wrote ${outPath}`);
  for (const v of variants) await v.session!.release();
}

await main();
