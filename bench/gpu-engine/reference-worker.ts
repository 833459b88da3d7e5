/**
 * worker_thread of bench/gpu-engine/run.ts: runs the CPU reference executor (src/compile/reference.ts) of the FP16
 * plan on one letterboxed frame and posts every layer's output view (NCHW float32) and the raw head output, so
 * the GPU's layers are compared while the GPU does other work.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { compilePlan, executePlan, readView } from '../../src/compile/index.js';
import { readOnnxModel } from '../../src/onnx/index.js';

const { modelPath, framePath, k, profiles } = workerData as { modelPath: string; framePath: string; k: number; profiles: { min: number; opt: number; max: number } };
const { plan, weightData } = compilePlan(readOnnxModel(modelPath), { precision: 'float16', k, profiles });
const frame = new Uint8Array(readFileSync(framePath));
const layers: Array<{ index: number; name: string; data: Float32Array }> = [];
const t0 = performance.now();
const r = executePlan(plan, weightData, frame, 1, {
  raw: true,
  afterLayer: (index, layer, state) => {
    if (layer.kind === 'conv' || layer.kind === 'maxpool' || layer.kind === 'upsample' || layer.kind === 'copy' || layer.kind === 'preprocess') {
      layers.push({ index, name: layer.name, data: readView(state, layer.output) });
    }
  },
});
parentPort!.postMessage(
  { layers, raw: r.raw, detections: r.detections, ms: performance.now() - t0 },
  [...layers.map((l) => l.data.buffer as ArrayBuffer), r.raw!.buffer as ArrayBuffer, r.detections.buffer as ArrayBuffer],
);
