/**
 * Does changing the batch size between runs cost the CUDA EP? (GPU machine; a diagnostic, not a test.)
 *
 * The streams benchmark behind the dynamic batcher saw `session.run` take 1–2 s per batch while bench/gpu/run.ts, which
 * keeps one batch size per measurement, saw 16–39 ms for the same engine. The batcher pads each batch to a bucket
 * (1, 2, 4, 8, 16, 32), so consecutive runs of one session change shape. This times, on the main thread, one
 * session of the uint8-in / top-K-out FP16 engine running:
 *   fixed        batch 32, every run
 *   blocks       each bucket 6 runs in a row (first run after a switch vs the rest)
 *   alternating  the buckets in turn, every run a different shape (what the batcher produces under varying load)
 * after every bucket was run once (as warmupBatchBuckets does).
 *
 *   node --import tsx bench/gpu/shape-switch.ts MODEL.onnx OUT.json [ep=cuda] [buckets=1,2,4,8,16,32]
 */
import { writeFileSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { encodeOnnxModel, readOnnxModel } from '../../src/onnx/index.js';
import { dynamicBatch, fp16, topKOutput, uint8Input } from '../../src/onnx/passes/index.js';
import { listGpus } from '../../src/gpu/system.js';
import { percentile } from '../../src/bench/stats.js';
import { onnxRuntimeVersion } from '../../src/version.js';

const [modelPath, outPath, epArg, bucketsArg] = process.argv.slice(2);
const ep = epArg ?? 'cuda';
const buckets = (bucketsArg ?? '1,2,4,8,16,32').split(',').map(Number);
const maxB = Math.max(...buckets);

const r2 = (x: number) => Math.round(x * 100) / 100;
const summary = (xs: number[]) => ({ n: xs.length, p50: r2(percentile(xs, 50)), p90: r2(percentile(xs, 90)), max: r2(Math.max(...xs)) });

async function main(): Promise<void> {
  const bytes = encodeOnnxModel(fp16(topKOutput(uint8Input(dynamicBatch(readOnnxModel(modelPath!))), { k: 300 })));
  const s = await ort.InferenceSession.create(bytes, { executionProviders: [ep], graphOptimizationLevel: 'all' });
  const input = s.inputNames[0]!;
  const data = new Uint8Array(maxB * 640 * 640 * 3).map((_, i) => (i * 2654435761) >>> 24);
  const run = async (b: number): Promise<number> => {
    const t = performance.now();
    await s.run({ [input]: new ort.Tensor('uint8', data.subarray(0, b * 640 * 640 * 3), [b, 640, 640, 3]) });
    return performance.now() - t;
  };
  const firstRunMs: Record<number, number> = {};
  for (const b of buckets) firstRunMs[b] = r2(await run(b)); // warm-up: each shape once
  const fixed: number[] = [];
  for (let i = 0; i < 20; i++) fixed.push(await run(maxB));
  const blocks: Record<number, { first: number; rest: ReturnType<typeof summary> }> = {};
  for (const b of buckets) {
    const xs: number[] = [];
    for (let i = 0; i < 6; i++) xs.push(await run(b));
    blocks[b] = { first: r2(xs[0]!), rest: summary(xs.slice(1)) };
  }
  const alternating: Record<number, number[]> = {};
  for (let cycle = 0; cycle < 5; cycle++) for (const b of buckets) (alternating[b] ??= []).push(await run(b));
  const fixedAgain: number[] = [];
  for (let i = 0; i < 10; i++) fixedAgain.push(await run(maxB));
  await s.release();
  const result = {
    benchmark: 'bench/gpu/shape-switch.ts',
    createdAt: new Date().toISOString(),
    device: listGpus()[0] ?? null,
    versions: { onnxRuntime: onnxRuntimeVersion(), node: process.version },
    executionProvider: ep,
    engine: 'dynamic batch + uint8 NHWC + top-300 + FP16',
    buckets,
    firstRunMs,
    fixedMaxBatchMs: summary(fixed),
    blocksMs: blocks,
    alternatingMs: Object.fromEntries(Object.entries(alternating).map(([b, xs]) => [b, summary(xs)])),
    fixedMaxBatchAfterMs: summary(fixedAgain),
  };
  writeFileSync(outPath!, JSON.stringify(result, null, 1));
  console.log(JSON.stringify(result, null, 1));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
