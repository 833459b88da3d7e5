/**
 * Detections from the CUDA execution provider against the CPU execution provider, FP32, on the same images
 * (issue 7: "detections from CUDA FP32 match CPU FP32 on the coco-val-dev images"). Run on the GPU machine:
 *
 *   npx tsx bench/run.ts cuda-cpu-agreement [--model yolov8n.onnx] [--images coco-val-dev/images] [--out FILE]
 *
 * Matching: for every CPU detection, the CUDA detection of the same class with the highest IoU; a pair counts as
 * matched at IoU ≥ 0.9. Reports per image counts, unmatched detections on each side, worst IoU and largest score
 * difference among matched pairs. Default thresholds (conf 0.25, IoU 0.7) as `osprey detect`.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { iouXYXY } from '../../src/core/nms.js';
import type { Detection, ImageResult } from '../../src/core/types.js';
import { Detector } from '../../src/engine/detector.js';
import { listGpus } from '../../src/gpu/system.js';
import { onnxRuntimeVersion, OSPREY_VERSION } from '../../src/version.js';

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? process.argv[i + 1] : fallback;
  if (v === undefined) throw new Error(`missing ${name}`);
  return v;
}

function detections(r: ImageResult): Detection[] {
  if ('error' in r) throw new Error(`${r.image}: ${r.error.code} ${r.error.message}`);
  return r.detections;
}

async function run(ep: string, model: string, files: string[]): Promise<{ ep: string; results: ImageResult[] }> {
  const det = await Detector.create({ modelPath: model, executionProviders: [ep] });
  try {
    return { ep: det.engine.info.executionProvider, results: await det.detectFiles(files) };
  } finally {
    await det.close();
  }
}

async function main(): Promise<void> {
  const model = arg('--model');
  const dir = arg('--images');
  const out = arg('--out', 'compare-ep.json');
  const files = readdirSync(dir).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort().map((f) => join(dir, f));
  const cpu = await run('cpu', model, files);
  const cuda = await run(arg('--ep', 'cuda'), model, files);
  let matched = 0;
  let cpuOnly = 0;
  let cudaOnly = 0;
  let worstIoU = 1;
  let maxScoreDiff = 0;
  const perImage = files.map((f, i) => {
    const a = detections(cpu.results[i]!);
    const b = detections(cuda.results[i]!);
    const used = new Set<number>();
    let m = 0;
    for (const d of a) {
      let best = -1;
      let bestIoU = 0;
      b.forEach((e, j) => {
        if (used.has(j) || e.classId !== d.classId) return;
        const iou = iouXYXY(...d.box, ...e.box);
        if (iou > bestIoU) {
          bestIoU = iou;
          best = j;
        }
      });
      if (best >= 0 && bestIoU >= 0.9) {
        used.add(best);
        m++;
        worstIoU = Math.min(worstIoU, bestIoU);
        maxScoreDiff = Math.max(maxScoreDiff, Math.abs(d.score - b[best]!.score));
      }
    }
    matched += m;
    cpuOnly += a.length - m;
    cudaOnly += b.length - m;
    return { image: f.split('/').pop(), cpu: a.length, cuda: b.length, matched: m };
  });
  const result = {
    benchmark: 'cuda-cpu-agreement',
    createdAt: new Date().toISOString(),
    device: listGpus()[0] ?? null,
    versions: { osprey: OSPREY_VERSION, onnxRuntime: onnxRuntimeVersion(), node: process.version },
    model,
    images: files.length,
    executionProviders: [cpu.ep, cuda.ep],
    matchRule: 'same class, IoU >= 0.9 (greedy by CPU detection order)',
    detectionsCpu: matched + cpuOnly,
    detectionsCuda: matched + cudaOnly,
    matched,
    cpuOnly,
    cudaOnly,
    worstMatchedIoU: Math.round(worstIoU * 1e5) / 1e5,
    maxMatchedScoreDiff: Math.round(maxScoreDiff * 1e5) / 1e5,
    perImage,
  };
  writeFileSync(out, JSON.stringify(result, null, 1));
  console.log(
    `CUDA vs CPU FP32 on ${files.length} images: ${matched} matched, ${cpuOnly} CPU-only, ${cudaOnly} CUDA-only; worst IoU ${result.worstMatchedIoU}, max |Δscore| ${result.maxMatchedScoreDiff} (${cpu.ep} vs ${cuda.ep})`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
