/**
 * Experiment (GPU machine): can onnxruntime-node hand us page-locked ("cpu-pinned") host buffers, and does feeding
 * the engine from one make the host→device copy cheaper than from an ordinary (pageable) ArrayBuffer?
 *
 * An extra graph output `pin` (Identity of the uint8 input) is requested with preferredOutputLocation 'cpu-pinned';
 * its data is then reused as the input buffer. Prints session.run times for both kinds of input buffer, batch 32.
 *
 *   node --import tsx bench/gpu/pinned-experiment.ts MODEL.onnx [batch] [iterations]
 */
import ort from 'onnxruntime-node';
import { DataType, makeNode, makeValueInfo, readOnnxModel, encodeOnnxModel } from '../../src/onnx/index.js';
import { dynamicBatch, fp16, topKOutput, uint8Input } from '../../src/onnx/passes/index.js';

const [modelPath, batchArg, itArg] = process.argv.slice(2);
const batch = Number(batchArg ?? 32);
const iterations = Number(itArg ?? 40);

const m = fp16(topKOutput(uint8Input(dynamicBatch(readOnnxModel(modelPath!))), { k: 300 }));
const input: string = m.graph.input[0]!.name!;
m.graph.node.push(makeNode('Identity', [input], ['pin'], {}, 'pin_identity'));
m.graph.output.push(makeValueInfo('pin', DataType.UINT8, ['batch', 640, 640, 3]));
const bytes = encodeOnnxModel(m);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const outNames = m.graph.output.map((o) => o.name);
  const s = await ort.InferenceSession.create(bytes, {
    executionProviders: ['cuda'],
    preferredOutputLocation: Object.fromEntries(outNames.map((n) => [n, n === 'pin' ? 'cpu-pinned' : 'cpu'])) as Record<string, ort.Tensor.DataLocation>,
  });
  const plain = new Uint8Array(batch * 640 * 640 * 3).map((_, i) => (i * 2654435761) >>> 24);
  const dims = [batch, 640, 640, 3];
  const first = await s.run({ [input]: new ort.Tensor('uint8', plain, dims) });
  const pin = first.pin!;
  console.log(`pin output: location=${pin.location} type=${pin.type} dims=${pin.dims.join('x')}`);
  let pinData: Uint8Array | undefined;
  try {
    pinData = pin.data as Uint8Array;
    console.log(`pin data: ${pinData.constructor.name} byteLength=${pinData.byteLength} sameAsInput=${pinData.buffer === plain.buffer} sample=${pinData[12345]} vs ${plain[12345]}`);
  } catch (e) {
    console.log(`pin data not readable: ${(e as Error).message}`);
  }
  // Run the plain model (no pin output requested) from a pageable buffer vs from the pinned buffer.
  const s2 = await ort.InferenceSession.create(encodeOnnxModel({ ...m, graph: { ...m.graph, output: m.graph.output.filter((o) => o.name !== 'pin'), node: m.graph.node.filter((n) => n.name !== 'pin_identity') } }), {
    executionProviders: ['cuda'],
  });
  const time = async (data: Uint8Array) => {
    const t: number[] = [];
    for (let i = 0; i < iterations + 5; i++) {
      const a = performance.now();
      await s2.run({ [input]: new ort.Tensor('uint8', data, dims) });
      if (i >= 5) t.push(performance.now() - a);
    }
    return median(t);
  };
  const pageable = await time(plain);
  console.log(`session.run batch ${batch}, pageable input: ${pageable.toFixed(2)} ms`);
  if (pinData) {
    const pinned = await time(pinData);
    console.log(`session.run batch ${batch}, pinned input:   ${pinned.toFixed(2)} ms  (ratio ${(pageable / pinned).toFixed(2)}x)`);
  }
  const tiny = new Uint8Array(1 * 640 * 640 * 3);
  const t1: number[] = [];
  for (let i = 0; i < 30; i++) {
    const a = performance.now();
    await s2.run({ [input]: new ort.Tensor('uint8', tiny, [1, 640, 640, 3]) });
    t1.push(performance.now() - a);
  }
  console.log(`session.run batch 1 (main thread, no worker): median ${median(t1.slice(5)).toFixed(2)} ms`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
