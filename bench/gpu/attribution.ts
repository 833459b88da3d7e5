/**
 * Where does session.run's time go for the uint8-in / top-K-out engine on the CUDA EP? (GPU machine.)
 * Times, on the main thread, median session.run of:
 *   copy-only   uint8 [B,640,640,3] in → ReduceMax → a scalar out: the host→device copy of the input + one kernel
 *   prefix-only same input → Transpose/Cast/Div (Osprey's uint8 prefix) → ReduceMax → scalar
 *   e2e-fp16    the full engine (prefix + FP16 model + top-K suffix)
 *   e2e-fp16 on input already resident? not expressible through onnxruntime-node (no IO binding for inputs from JS)
 *
 *   node --import tsx bench/gpu/attribution.ts MODEL.onnx OUT.json [batches]
 */
import { writeFileSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { DataType, encodeOnnxModel, makeNode, makeValueInfo, readOnnxModel, type OnnxModel } from '../../src/onnx/index.js';
import { dynamicBatch, fp16, topKOutput, uint8Input } from '../../src/onnx/passes/index.js';
import { listGpus } from '../../src/gpu/system.js';

const [modelPath, outPath, batchesArg] = process.argv.slice(2);
const batches = (batchesArg ?? '1,8,32').split(',').map(Number);

function tiny(withPrefix: boolean): OnnxModel {
  const node = [];
  if (withPrefix) {
    node.push(
      makeNode('Transpose', ['images'], ['t'], { perm: [0, 3, 1, 2] }, 'transpose'),
      makeNode('Cast', ['t'], ['f'], { to: DataType.FLOAT }, 'cast'),
      makeNode('Div', ['f', 'k255'], ['x'], {}, 'div'),
      makeNode('ReduceMax', ['x'], ['y'], { keepdims: 0 }, 'reduce'),
    );
  } else {
    node.push(makeNode('Cast', ['images'], ['f'], { to: DataType.FLOAT }, 'cast'), makeNode('ReduceMax', ['f'], ['y'], { keepdims: 0 }, 'reduce'));
  }
  return {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    metadata_props: [],
    graph: {
      name: 'tiny',
      node,
      initializer: withPrefix ? [{ name: 'k255', data_type: DataType.FLOAT, dims: [], float_data: [255] }] : [],
      input: [makeValueInfo('images', DataType.UINT8, ['batch', 640, 640, 3])],
      output: [makeValueInfo('y', DataType.FLOAT, [])],
      value_info: [],
    },
  } as unknown as OnnxModel;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function time(bytes: Uint8Array, batch: number, iterations = 40): Promise<number> {
  const s = await ort.InferenceSession.create(bytes, { executionProviders: ['cuda'] });
  const data = new Uint8Array(batch * 640 * 640 * 3).map((_, i) => (i * 2654435761) >>> 24);
  const t: number[] = [];
  for (let i = 0; i < iterations + 5; i++) {
    const a = performance.now();
    await s.run({ images: new ort.Tensor('uint8', data, [batch, 640, 640, 3]) });
    if (i >= 5) t.push(performance.now() - a);
  }
  await s.release();
  return Math.round(median(t) * 1000) / 1000;
}

async function main(): Promise<void> {
  const e2e = encodeOnnxModel(fp16(topKOutput(uint8Input(dynamicBatch(readOnnxModel(modelPath!))), { k: 300 })));
  // The model without the top-K suffix, its raw output reduced on the device to a scalar (no big device→host copy):
  // model compute + input copy, for FP16 and FP32.
  const reduced = (half: boolean) => {
    let m = uint8Input(dynamicBatch(readOnnxModel(modelPath!)));
    if (half) m = fp16(m);
    const out = m.graph.output[0]!.name!;
    m.graph.node.push(makeNode('ReduceMax', [out], ['y'], { keepdims: 0 }, 'reduce_all'));
    m.graph.output = [makeValueInfo('y', DataType.FLOAT, [])];
    return encodeOnnxModel(m);
  };
  const modelFp16 = reduced(true);
  const modelFp32 = reduced(false);
  const rows = [];
  for (const batch of batches) {
    const copyOnly = await time(encodeOnnxModel(tiny(false)), batch);
    const prefixOnly = await time(encodeOnnxModel(tiny(true)), batch);
    const full = await time(e2e, batch);
    const m16 = await time(modelFp16, batch);
    const m32 = await time(modelFp32, batch);
    const mb = (batch * 640 * 640 * 3) / 1e6;
    rows.push({ batch, inputMB: mb, copyOnlyMs: copyOnly, prefixOnlyMs: prefixOnly, e2eFp16Ms: full, modelOnlyFp16Ms: m16, modelOnlyFp32Ms: m32, hostToDeviceGBps: Math.round((mb / copyOnly) * 100) / 100 / 1 });
    console.log(`batch ${batch}: input ${mb.toFixed(1)} MB; copy-only ${copyOnly} ms (${(mb / copyOnly).toFixed(2)} GB/s incl. one kernel), prefix-only ${prefixOnly} ms, model-only fp16 ${m16} ms, model-only fp32 ${m32} ms, e2e-fp16 (with top-K) ${full} ms`);
  }
  writeFileSync(outPath!, JSON.stringify({ benchmark: 'bench/gpu/attribution.ts', device: listGpus()[0] ?? null, createdAt: new Date().toISOString(), rows }, null, 1));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
