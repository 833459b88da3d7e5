/**
 * Where does ONNX Runtime place the engine's nodes on the CUDA EP, and does it insert Memcpy nodes (device↔host copies
 * inside the graph, each a stream synchronisation)? (GPU machine; a diagnostic, not a test.)
 *
 * Opens the uint8-in / top-K-out FP16 engine with verbose session logging and runs it once; ONNX Runtime writes its
 * placement summary ("Node placements", "Memcpy nodes are added") to stderr. Filter with grep, e.g.
 *
 *   node --import tsx bench/gpu/placement.ts MODEL.onnx 2>&1 | grep -E "placed on|Memcpy|not assigned|EP Node"
 */
import ort from 'onnxruntime-node';
import { encodeOnnxModel, readOnnxModel } from '../../src/onnx/index.js';
import { dynamicBatch, fp16, topKOutput, uint8Input } from '../../src/onnx/passes/index.js';

const [modelPath, variant = 'e2e-fp16', ep = 'cuda'] = process.argv.slice(2);

async function main(): Promise<void> {
  let m = uint8Input(dynamicBatch(readOnnxModel(modelPath!)));
  if (variant.startsWith('e2e')) m = topKOutput(m, { k: 300 });
  if (variant.endsWith('fp16')) m = fp16(m);
  const s = await ort.InferenceSession.create(encodeOnnxModel(m), {
    executionProviders: [ep],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 0,
    logVerbosityLevel: 0,
    // OSPREY_ORT_EXTRA: JSON for SessionOptions.extra (session config entries), e.g. {"ep":{"cuda":{"prefer_nhwc":"1"}}}
    ...(process.env.OSPREY_ORT_EXTRA ? { extra: JSON.parse(process.env.OSPREY_ORT_EXTRA) as Record<string, unknown> } : {}),
  });
  const data = new Uint8Array(8 * 640 * 640 * 3);
  await s.run({ [s.inputNames[0]!]: new ort.Tensor('uint8', data, [8, 640, 640, 3]) });
  await s.release();
  console.log(`placement run done (${variant}, ${ep})`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
