/**
 * worker_thread of {@link GpuEngine}: owns one {@link GpuRuntime} (CUDA context current on this thread, one stream,
 * graphs per batch profile). Messages as the ONNX Runtime worker's (worker-protocol.ts): `run` with transferred
 * uint8 frames, `result` with the `[n, K, 6]` rows and the input buffer handed back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { checkEngineCompatible, readEngineFile } from '../compile/serialize.js';
import { Nvrtc } from '../cuda/nvrtc.js';
import { toOspreyError } from '../core/errors.js';
import type { Tensor } from '../core/types.js';
import { GpuRuntime, type ConvTactic } from './gpu-runtime.js';

export interface GpuWorkerData {
  enginePath: string;
  deviceId: number;
  warmupRuns: number;
}

const port = parentPort!;
const data = workerData as GpuWorkerData;
let rt: GpuRuntime | undefined;
try {
  const t0 = performance.now();
  const { header, weights, cubin } = readEngineFile(new Uint8Array(readFileSync(data.enginePath)), data.enginePath);
  rt = new GpuRuntime(header.plan, weights, cubin, {
    deviceId: data.deviceId,
    tactics: Object.fromEntries(Object.entries(header.tactics).map(([k, v]) => [Number(k), v as ConvTactic])),
    cudnn: header.target.cudnnVersion !== null,
  });
  checkEngineCompatible(header.target, {
    gpuName: rt.device.name,
    computeCapability: rt.device.computeCapability,
    driverVersion: rt.device.driverVersion,
    nvrtcVersion: new Nvrtc().version(),
    cudnnVersion: rt.device.cudnnVersion ?? null,
  }, data.enginePath);
  const graphs = rt.captureGraphs();
  for (let i = 0; i < data.warmupRuns; i++) for (const b of rt.batches) await rt.run(b);
  port.postMessage({ type: 'ready', info: { plan: header.plan, device: rt.device, deviceBytes: rt.deviceBytes, graphs, loadMs: performance.now() - t0 } });
} catch (err) {
  const e = toOspreyError(err, 'OSPREY_ERR_ENGINE_INCOMPATIBLE');
  port.postMessage({ type: 'load-error', code: e.code, message: e.message });
  rt = undefined;
}

let chain: Promise<void> = Promise.resolve();
port.on('message', (m: { type: 'run'; id: number; feeds: Record<string, Tensor> } | { type: 'close' }) => {
  if (m.type === 'close') {
    void chain.then(() => {
      rt?.close();
      port.postMessage({ type: 'closed' });
    });
    return;
  }
  chain = chain.then(async () => {
    try {
      if (!rt) throw new Error('engine not loaded');
      const t = Object.values(m.feeds)[0]!;
      const n = t.dims[0]!;
      const t0 = performance.now();
      const rows = await rt.run(n, t.data as Uint8Array);
      const k = rt.outputBytesPerImage / 24;
      port.postMessage(
        { type: 'result', id: m.id, outputs: { [rt.plan.output.name]: { type: 'float32', dims: [n, k, 6], data: rows } }, runMs: performance.now() - t0, sessions: 1, inputs: m.feeds },
        [rows.buffer as ArrayBuffer, (t.data as Uint8Array).buffer as ArrayBuffer],
      );
    } catch (err) {
      port.postMessage({ type: 'run-error', id: m.id, message: (err as Error).message });
    }
  });
});
