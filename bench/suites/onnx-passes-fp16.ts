/**
 * Which ops hurt in float16? Builds fp16 variants of yolov8n with different keep-FP32 settings, runs each on
 * real letterboxed images with ONNX Runtime (CPU EP: ops without float16 kernels run in float32 between Casts
 * that ORT inserts, so values are still rounded to float16 at every tensor boundary, as on a GPU) and compares
 * with FP32: raw output (boxes rows, class-score rows) and final detections (conf 0.25, IoU 0.7 host NMS).
 *
 *   npx tsx bench/run.ts onnx-passes-fp16 [--images N]
 *
 * Writes bench/results/<device>/onnx-passes-fp16.json (or --out FILE). Run: npx tsx bench/run.ts onnx-passes-fp16
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { decodeImage } from '../../src/image/decode.js';
import { allocateBatch, letterboxImageInto } from '../../src/image/letterbox.js';
import { detectOutputLayout } from '../../src/core/decode.js';
import { postprocessImage } from '../../src/core/postprocess.js';
import { DEFAULT_DETECT_OPTIONS, type Detection } from '../../src/core/types.js';
import type { LetterboxGeometry } from '../../src/core/letterbox.js';
import { encodeOnnxModel, readOnnxModel } from '../../src/onnx/index.js';
import { fp16, type Fp16Options } from '../../src/onnx/passes/index.js';
import { iouOfBoxes } from '../../src/core/nms.js';
import { argValue, dataDir, resultsDir } from '../lib.js';

const here = dirname(fileURLToPath(import.meta.url));
const SHARED = dataDir();
const argImages = process.argv.indexOf('--images');
const COUNT = argImages > 0 ? Number(process.argv[argImages + 1]) : 10;
const images = [
  join(SHARED, 'images/bus.jpg'),
  join(SHARED, 'images/zidane.jpg'),
  ...readdirSync(join(SHARED, 'coco-val-dev/images')).sort().map((f) => join(SHARED, 'coco-val-dev/images', f)),
].slice(0, COUNT);

const variants: { name: string; options: Fp16Options }[] = [
  { name: 'all-fp16 (nothing kept)', options: { keepOps: [], keepOutputTail: false } },
  { name: 'keep Softmax', options: { keepOps: ['Softmax'], keepOutputTail: false } },
  { name: 'keep output tail', options: { keepOps: [], keepOutputTail: true } },
  { name: 'default (Softmax + output tail)', options: {} },
  { name: 'default + Resize', options: { keepOps: ['Softmax', 'Resize'] } },
  { name: 'default, IO float16', options: { keepIO: false } },
];


function toFloat32(t: ort.Tensor): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  const bits = t.data as Uint16Array;
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i]!;
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    out[i] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return out;
}

async function main(): Promise<void> {
  const modelPath = join(SHARED, 'models/yolov8n.onnx');
  const base = readOnnxModel(modelPath);
  const inputDims = base.graph.input[0]!.type!.tensor_type!.shape!.dim.map((d) => d.dim_value!);
  const [, , h, w] = inputDims as [number, number, number, number];
  const batch = allocateBatch('float32-nchw', images.length, h, w);
  const geometries: LetterboxGeometry[] = [];
  for (let i = 0; i < images.length; i++) geometries.push(await letterboxImageInto(await decodeImage(images[i]!), batch, i));
  const per = batch.data.length / images.length;
  const opts = { executionProviders: ['cpu'], intraOpNumThreads: 2 } as const;

  const runAll = async (bytes: Uint8Array, f16Input: boolean): Promise<{ dims: number[]; data: Float32Array }[]> => {
    const s = await ort.InferenceSession.create(bytes, opts);
    const outs: { dims: number[]; data: Float32Array }[] = [];
    for (let i = 0; i < images.length; i++) {
      const x = (batch.data as Float32Array).subarray(i * per, (i + 1) * per);
      const feed = f16Input ? new ort.Tensor('float16', Uint16Array.from(x, (v) => f16bits(v)), [1, 3, h, w]) : new ort.Tensor('float32', x, [1, 3, h, w]);
      const o = (await s.run({ [s.inputNames[0]!]: feed }))[s.outputNames[0]!]!;
      outs.push({ dims: o.dims as number[], data: toFloat32(o) });
    }
    await s.release();
    return outs;
  };

  const t0 = Date.now();
  const ref = await runAll(encodeOnnxModel(base), false);
  const info = detectOutputLayout(ref[0]!.dims, 80);
  const names = Array.from({ length: info.numClasses }, (_, k) => String(k));
  const detect = (o: { dims: number[]; data: Float32Array }, i: number): Detection[] => postprocessImage(o, info, 0, geometries[i]!, names, DEFAULT_DETECT_OPTIONS);
  const refDet = ref.map(detect);
  const results = [];
  for (const v of variants) {
    const lines: string[] = [];
    const model = fp16(base, { ...v.options, log: (l) => lines.push(l) });
    const bytes = encodeOnnxModel(model);
    const outs = await runAll(bytes, v.options.keepIO === false);
    let boxDiff = 0, scoreDiff = 0, minIoU = 1, sumIoU = 0, matched = 0, missing = 0, extra = 0, detScoreDiff = 0;
    outs.forEach((o, i) => {
      const r = ref[i]!.data;
      const n = info.numBoxes;
      for (let j = 0; j < 4 * n; j++) boxDiff = Math.max(boxDiff, Math.abs(o.data[j]! - r[j]!));
      for (let j = 4 * n; j < r.length; j++) scoreDiff = Math.max(scoreDiff, Math.abs(o.data[j]! - r[j]!));
      const got = detect(o, i);
      const used = new Set<number>();
      for (const d of refDet[i]!) {
        let best = -1, bestIoU = 0;
        got.forEach((g, j) => {
          if (used.has(j) || g.classId !== d.classId) return;
          const x = iouOfBoxes(d.box, g.box);
          if (x > bestIoU) [best, bestIoU] = [j, x];
        });
        if (best < 0 || bestIoU < 0.5) {
          missing++;
          continue;
        }
        used.add(best);
        matched++;
        sumIoU += bestIoU;
        minIoU = Math.min(minIoU, bestIoU);
        detScoreDiff = Math.max(detScoreDiff, Math.abs(got[best]!.score - d.score));
      }
      extra += got.length - used.size;
    });
    const row = {
      variant: v.name,
      options: v.options,
      summary: lines[0],
      bytes: bytes.length,
      rawMaxAbsDiff: { boxesPx: boxDiff, classScores: scoreDiff },
      detections: { reference: refDet.reduce((a, d) => a + d.length, 0), matched, missing, extra, minIoU, meanIoU: matched ? sumIoU / matched : 0, maxScoreDiff: detScoreDiff },
    };
    results.push(row);
    console.log(
      `${v.name.padEnd(34)} size ${(bytes.length / 1e6).toFixed(2)} MB | raw max|Δ| boxes ${boxDiff.toFixed(3)} px, scores ${scoreDiff.toFixed(4)} | ` +
        `detections ${matched}/${row.detections.reference} matched (missing ${missing}, extra ${extra}), IoU min ${minIoU.toFixed(4)} mean ${row.detections.meanIoU.toFixed(5)}, max |Δscore| ${detScoreDiff.toFixed(4)}`,
    );
  }
  const outPath = resolve(argValue(process.argv, '--out', join(resultsDir('cpu'), 'onnx-passes-fp16.json')));
  mkdirSync(dirname(outPath), { recursive: true });
  writeFileSync(
    outPath,
    JSON.stringify(
      {
        command: `npx tsx bench/run.ts onnx-passes-fp16 --images ${COUNT}`,
        device: cpus()[0]?.model ?? 'unknown',
        cpuCount: cpus().length,
        onnxruntimeNode: (await import('onnxruntime-node/package.json', { with: { type: 'json' } })).default.version,
        node: process.version,
        model: 'yolov8n.onnx (../shared/data/models)',
        images: images.map((p) => p.split('/').pop()),
        fp32Reference: 'same images through the FP32 model, conf 0.25, IoU 0.7 class-aware host NMS (src/core)',
        results,
        durationSeconds: (Date.now() - t0) / 1000,
        createdAt: new Date().toISOString(),
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`wrote ${outPath}`);
}

function f16bits(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const e = ((x >>> 23) & 0xff) - 112;
  if (e <= 0) return sign;
  let hbits = (e << 10) | ((x & 0x7fffff) >>> 13);
  const rest = x & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (hbits & 1))) hbits++;
  return sign | hbits;
}

await main();
