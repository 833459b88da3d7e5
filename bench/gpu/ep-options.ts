/**
 * Can CUDA EP options reach ONNX Runtime through session config entries? onnxruntime-node 1.29 passes only
 * `deviceId` to the CUDA EP, but copies `SessionOptions.extra` into session config entries (`ep.cuda.prefer_nhwc`
 * …). This times the uint8-in / top-K-out FP16 engine at batch 32 and 1 with several such entries; a change in time
 * (and in the kernels, see kernels.ts) shows whether an entry took effect. GPU machine; a diagnostic.
 *
 *   node --import tsx bench/gpu/ep-options.ts MODEL.onnx OUT.json
 */
import { writeFileSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { encodeOnnxModel, readOnnxModel } from '../../src/onnx/index.js';
import { dynamicBatch, fp16, topKOutput, uint8Input } from '../../src/onnx/passes/index.js';
import { listGpus } from '../../src/gpu/system.js';
import { percentile } from '../../src/bench/stats.js';

const [modelPath, outPath] = process.argv.slice(2);
const variants: Array<{ name: string; extra?: Record<string, unknown> }> = [
  { name: 'none' },
  { name: 'ep.cuda.prefer_nhwc=1', extra: { ep: { cuda: { prefer_nhwc: '1' } } } },
  { name: 'ep.CUDAExecutionProvider.prefer_nhwc=1', extra: { ep: { CUDAExecutionProvider: { prefer_nhwc: '1' } } } },
  { name: 'ep.cuda.cudnn_conv_algo_search=HEURISTIC', extra: { ep: { cuda: { cudnn_conv_algo_search: 'HEURISTIC' } } } },
  { name: 'ep.cuda.enable_cuda_graph=1', extra: { ep: { cuda: { enable_cuda_graph: '1' } } } },
];

async function main(): Promise<void> {
  const bytes = encodeOnnxModel(fp16(topKOutput(uint8Input(dynamicBatch(readOnnxModel(modelPath!))), { k: 300 })));
  const rows = [];
  for (const v of variants) {
    const row: Record<string, unknown> = { variant: v.name };
    for (const batch of [32, 1]) {
      try {
        const opts: ort.InferenceSession.SessionOptions = { executionProviders: ['cuda'], graphOptimizationLevel: 'all', ...(v.extra ? { extra: v.extra } : {}) };
        const s = await ort.InferenceSession.create(bytes, opts);
        const data = new Uint8Array(batch * 640 * 640 * 3).map((_, i) => (i * 2654435761) >>> 24);
        const t: number[] = [];
        for (let i = 0; i < 45; i++) {
          const a = performance.now();
          await s.run({ [s.inputNames[0]!]: new ort.Tensor('uint8', data, [batch, 640, 640, 3]) });
          if (i >= 5) t.push(performance.now() - a);
        }
        await s.release();
        row[`b${batch}p50Ms`] = Math.round(percentile(t, 50) * 100) / 100;
        row[`b${batch}p99Ms`] = Math.round(percentile(t, 99) * 100) / 100;
      } catch (e) {
        row[`b${batch}error`] = (e instanceof Error ? e.message : String(e)).split('\n')[0];
      }
    }
    rows.push(row);
    console.log(JSON.stringify(row));
  }
  writeFileSync(outPath!, JSON.stringify({ benchmark: 'bench/gpu/ep-options.ts', createdAt: new Date().toISOString(), device: listGpus()[0] ?? null, rows }, null, 1));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
