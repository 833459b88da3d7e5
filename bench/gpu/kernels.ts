/**
 * Kernel-level view of one engine run on the CUDA EP, for Nsight Compute (GPU machine; a diagnostic, not a test).
 * Runs the uint8-in / top-K-out engine at one batch size: 3 warm-up runs, then a marker (a one-node `Neg` session
 * on 7 floats, easy to find in the kernel list), then `runs` measured runs. Everything ncu lists after the marker
 * kernel belongs to the measured runs.
 *
 *   ncu --metrics gpu__time_duration.sum --csv --cache-control none --clock-control none \
 *     node --import tsx bench/gpu/kernels.ts MODEL.onnx [batch=32] [variant=e2e-fp16] [runs=2]
 */
import ort from 'onnxruntime-node';
import { DataType, encodeOnnxModel, makeNode, makeValueInfo, readOnnxModel, type OnnxModel } from '../../src/onnx/index.js';
import { dynamicBatch, fp16, topKOutput, uint8Input } from '../../src/onnx/passes/index.js';

const [modelPath, batchArg = '32', variant = 'e2e-fp16', runsArg = '2'] = process.argv.slice(2);
const batch = Number(batchArg);

function marker(): OnnxModel {
  return {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    metadata_props: [],
    graph: { name: 'marker', node: [makeNode('Neg', ['x'], ['y'], {}, 'marker')], initializer: [], input: [makeValueInfo('x', DataType.FLOAT, [7])], output: [makeValueInfo('y', DataType.FLOAT, [7])], value_info: [] },
  } as unknown as OnnxModel;
}

async function main(): Promise<void> {
  let m = uint8Input(dynamicBatch(readOnnxModel(modelPath!)));
  if (variant.startsWith('e2e')) m = topKOutput(m, { k: 300 });
  if (variant.endsWith('fp16')) m = fp16(m);
  // OSPREY_ORT_EXTRA: JSON for SessionOptions.extra (session config entries), e.g. {"ep":{"cuda":{"prefer_nhwc":"1"}}}
  const extra = process.env.OSPREY_ORT_EXTRA ? (JSON.parse(process.env.OSPREY_ORT_EXTRA) as Record<string, unknown>) : undefined;
  const s = await ort.InferenceSession.create(encodeOnnxModel(m), { executionProviders: [process.env.OSPREY_EP ?? 'cuda'], graphOptimizationLevel: 'all', ...(extra ? { extra } : {}) });
  const mk = await ort.InferenceSession.create(encodeOnnxModel(marker()), { executionProviders: [process.env.OSPREY_EP ?? 'cuda'] });
  const data = new Uint8Array(batch * 640 * 640 * 3).map((_, i) => (i * 2654435761) >>> 24);
  const feeds = () => ({ [s.inputNames[0]!]: new ort.Tensor('uint8', data, [batch, 640, 640, 3]) });
  for (let i = 0; i < 3; i++) await s.run(feeds());
  await mk.run({ x: new ort.Tensor('float32', new Float32Array(7), [7]) });
  const t: number[] = [];
  for (let i = 0; i < Number(runsArg); i++) {
    const a = performance.now();
    await s.run(feeds());
    t.push(performance.now() - a);
  }
  console.log(`kernels.ts: ${variant} b${batch}, measured runs (under the profiler): ${t.map((x) => x.toFixed(1)).join(', ')} ms`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
