/**
 * Osprey's GPU engine behind the one {@link Engine} interface: an engine file built by `osprey build --engine cuda`
 * (src/compile) run by {@link GpuRuntime} in a worker_thread (never on the caller's thread). Input: uint8 NHWC
 * letterboxed RGB frames `[batch, H, W, 3]`; output: `[batch, K, 6]` float32 rows x1, y1, x2, y2, score, classId
 * in model-input pixels, best first — the same tensors as Osprey's ONNX engines with the uint8 prefix and top-K
 * suffix, so the detector, server and streams code read them unchanged.
 */
import { Worker } from 'node:worker_threads';
import { OspreyError } from '../core/errors.js';
import type { Tensor } from '../core/types.js';
import type { EnginePlan } from '../compile/plan.js';
import type { Engine, EngineInfo, RunOptions } from './engine.js';
import type { DeviceInfo } from './gpu-runtime.js';

export interface GpuEngineOptions {
  deviceId?: number;
  /** Runs of every batch profile before ready. Default 1. */
  warmupRuns?: number;
}

export interface GpuEngineLoadInfo {
  device: DeviceInfo;
  /** Device memory the instance holds (weights, arena for the largest profile, I/O, workspace), bytes. */
  deviceBytes: number;
  /** Batch profiles with a captured CUDA graph. */
  graphs: number[];
  loadMs: number;
}

export class GpuEngine implements Engine {
  private pending = new Map<number, { resolve: (o: Record<string, Tensor>) => void; reject: (e: Error) => void; options?: RunOptions }>();
  private nextId = 1;
  private closed = false;

  private constructor(private readonly worker: Worker, readonly info: EngineInfo, readonly load: GpuEngineLoadInfo) {
    worker.on('message', (m: { type: string; id?: number; outputs?: Record<string, Tensor>; inputs?: Record<string, Tensor>; message?: string }) => {
      const p = m.id !== undefined ? this.pending.get(m.id) : undefined;
      if (!p) return;
      this.pending.delete(m.id!);
      if (m.type === 'result') {
        if (m.inputs) p.options?.onInputsReleased?.(m.inputs);
        p.resolve(m.outputs!);
      } else p.reject(new OspreyError('OSPREY_ERR_INFERENCE_FAILED', m.message ?? 'GPU engine run failed'));
    });
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', () => this.failAll(new OspreyError('OSPREY_ERR_ENGINE_CLOSED', 'the GPU engine worker exited')));
  }

  private failAll(err: Error): void {
    this.closed = true;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  /**
   * Loads an engine file in a new worker.
   * @throws OspreyError `OSPREY_ERR_ENGINE_INCOMPATIBLE` (built for another GPU/driver/library, or damaged),
   *   `OSPREY_ERR_CUDA_LIBRARY` (a library missing), `OSPREY_ERR_CUDA` (a CUDA call failed).
   */
  static async load(enginePath: string, options: GpuEngineOptions = {}): Promise<GpuEngine> {
    const ext = import.meta.url.slice(import.meta.url.lastIndexOf('.')); // .ts (tsx), .js (dist), .mjs (bundle)
    const url = new URL(`./gpu-worker${ext}`, import.meta.url);
    const workerData = { enginePath, deviceId: options.deviceId ?? 0, warmupRuns: options.warmupRuns ?? 1 };
    // under tsx the worker is a .ts file: register tsx in the worker first (as ort-engine.ts does)
    const worker =
      ext === '.ts'
        ? new Worker(
            `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); }).catch((e) => { setImmediate(() => { throw e; }); });`,
            { eval: true, workerData },
          )
        : new Worker(url, { workerData });
    const ready = await new Promise<{ plan: EnginePlan } & GpuEngineLoadInfo>((resolve, reject) => {
      worker.once('message', (m: { type: string; info?: { plan: EnginePlan } & GpuEngineLoadInfo; code?: string; message?: string }) => {
        if (m.type === 'ready') resolve(m.info!);
        else reject(new OspreyError((m.code as 'OSPREY_ERR_ENGINE_INCOMPATIBLE') ?? 'OSPREY_ERR_ENGINE_INCOMPATIBLE', m.message ?? 'GPU engine failed to load', { file: enginePath }));
      });
      worker.once('error', reject);
    }).catch(async (err) => {
      await worker.terminate();
      throw err;
    });
    const { plan } = ready;
    const info: EngineInfo = {
      inputs: [{ name: plan.input.name, type: 'uint8', shape: ['batch', plan.input.height, plan.input.width, plan.input.channels] }],
      outputs: [{ name: plan.output.name, type: 'float32', shape: ['batch', plan.output.k, 6] }],
      executionProvider: 'osprey-cuda',
      fallbacks: [],
      metadata: plan.metadata,
    };
    return new GpuEngine(worker, info, { device: ready.device, deviceBytes: ready.deviceBytes, graphs: ready.graphs, loadMs: ready.loadMs });
  }

  run(feeds: Record<string, Tensor>, options?: RunOptions): Promise<Record<string, Tensor>> {
    if (this.closed) return Promise.reject(new OspreyError('OSPREY_ERR_ENGINE_CLOSED', 'the GPU engine is closed'));
    const t = feeds[this.info.inputs[0]!.name];
    if (!t || t.type !== 'uint8' || t.dims.length !== 4) {
      return Promise.reject(new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `input '${this.info.inputs[0]!.name}' must be uint8 [batch, ${this.info.inputs[0]!.shape.slice(1).join(', ')}]`));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, options });
      const buf = (t.data as Uint8Array).buffer as ArrayBuffer;
      this.worker.postMessage({ type: 'run', id, feeds }, buf.byteLength === (t.data as Uint8Array).byteLength ? [buf] : []);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await new Promise<void>((resolve) => {
      this.worker.once('message', () => resolve());
      this.worker.postMessage({ type: 'close' });
      setTimeout(resolve, 2000).unref();
    });
    await this.worker.terminate();
  }
}
