/**
 * ONNX Runtime engine: each session lives in its own worker_thread, so `run()` never blocks the calling thread
 * (onnxruntime-node's `session.run()` is synchronous on the thread that calls it). N instances form an
 * {@link EnginePool} that sends each run to the least-busy instance.
 *
 * Tensors move between threads by transfer (the ArrayBuffer is moved, not copied): after `run(feeds)` the
 * caller's input buffers are detached, and the outputs arrive as fresh typed arrays owned by the caller.
 */
import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { OspreyError, type ErrorCode, ERROR_CATALOGUE } from '../core/errors.js';
import type { Tensor, TensorStorage } from '../core/types.js';
import type { Engine, EngineFactory, EngineInfo, ExecutionProviderFallback, RunOptions } from './engine.js';
import { defaultExecutionProviders, normalizeExecutionProvider } from './execution-providers.js';
import type { MainToWorker, OrtWorkerData, WorkerReadyInfo, WorkerToMain } from './worker-protocol.js';
import { siblingModuleUrl, spawnModuleWorker } from '../util/worker-spawn.js';
import { InstancePool } from './instance-pool.js';

/** Options of {@link createOrtEngine}. */
export interface OrtEngineOptions {
  /** Path of the `.onnx` file (also the model's name in messages when `modelBytes` is given). */
  modelPath: string;
  /**
   * The model's bytes, to load instead of reading `modelPath` (e.g. a graph rewritten in memory). Each instance's
   * worker gets a copy.
   */
  modelBytes?: Uint8Array;
  /** Execution providers to try, in order. Default `['cuda', 'cpu']`. */
  executionProviders?: readonly string[];
  /** Number of instances (sessions, each in its own worker thread) — Triton's `instanceGroup[].count`. Default 1. */
  instances?: number;
  /**
   * ORT intra-op threads per session (CPU EP). Default: ORT's choice (one per physical core) for one instance;
   * with N instances, the logical CPUs divided by N (at least 1), so the sessions do not oversubscribe the CPU.
   */
  intraOpNumThreads?: number;
  /**
   * Whether ORT's intra-op threads spin (busy-wait) for work between parallel sections and after a run (ORT's
   * `session.intra_op.allow_spinning`) instead of sleeping. Spinning saves wake-up latency inside a run, but
   * takes cores that host work of the same process (sharp decoding the next image) could use. Default: ORT's (spin).
   */
  intraOpSpinning?: boolean;
  /** GPU ordinal for device providers. Default 0. */
  deviceId?: number;
  /** Warmup runs per instance on zero-filled inputs (`true` = 1, `false` = 0). Default 1. */
  warmup?: number | boolean;
  /** Batch size used for a dynamic batch axis during warmup. Default 1. */
  warmupBatchSize?: number;
  /**
   * Device EPs (CUDA, TensorRT): the most ONNX Runtime sessions each instance keeps, one per distinct input shape,
   * so that no session ever changes shape. The CUDA EP re-plans every cuDNN convolution when a session's input shape
   * changes (≈1.5 s per change for yolov8n on an H100 against 4–14 ms per run); a dynamic batcher that varies the
   * batch size would pay that on most runs. Each extra session costs its own weights and activation memory on the
   * device. 1 turns this off. Default: {@link DEFAULT_MAX_SHAPE_SESSIONS} on device EPs, 1 on the CPU EP (which has
   * no such cost).
   */
  maxShapeSessions?: number;
}

export { DEFAULT_MAX_SHAPE_SESSIONS } from './worker-protocol.js';

/** {@link EngineInfo} plus what the ORT engine knows about itself. */
export interface OrtEngineInfo extends EngineInfo {
  modelPath: string;
  /** Number of live instances. */
  instanceCount: number;
  /** Session creation time of the first instance, ms. */
  loadMs: number;
  /** Warmup time of the first instance, ms. */
  warmupMs: number;
}

function workerUrl(): URL {
  return siblingModuleUrl(import.meta.url, './ort-worker');
}

function spawnWorker(url: URL, workerData: OrtWorkerData): Worker {
  return spawnModuleWorker(url, { workerData });
}

/**
 * The ArrayBuffers of `feeds` to move to the worker (each once). A view is moved with its whole buffer (the caller
 * gave the tensors away, see {@link Engine.run}); SharedArrayBuffers are shared, not moved — ORT-node does not
 * accept them, so such a feed is copied by the worker.
 */
function transferList(feeds: Record<string, Tensor>): ArrayBuffer[] {
  const list = new Set<ArrayBuffer>();
  for (const t of Object.values(feeds)) {
    const buf = (t.data as TensorStorage).buffer;
    if (buf instanceof ArrayBuffer) list.add(buf);
  }
  return [...list];
}

/** Plain copies of tensors (drops prototypes such as ort.Tensor's, keeps the typed arrays). */
function plainFeeds(feeds: Record<string, Tensor>): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) out[name] = { type: t.type, dims: [...t.dims], data: t.data };
  return out;
}

interface Pending {
  resolve: (outputs: Record<string, Tensor>) => void;
  reject: (err: Error) => void;
  onInputsReleased?: (feeds: Record<string, Tensor>) => void;
}

/**
 * One ORT session in one worker thread. Use {@link createOrtEngine}; this class is exported for tests and pools.
 */
export class OrtWorkerInstance {
  readonly ready: WorkerReadyInfo;
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closing = false;
  private dead: OspreyError | undefined;
  private closedPromise: Promise<void> | undefined;
  private idleWaiters: Array<() => void> = [];
  /** Completed runs and their total time inside `session.run` (ms). */
  runs = 0;
  runMsTotal = 0;
  /** ONNX Runtime sessions open in this instance's worker (more than 1 with shape-specialised sessions). */
  sessions = 1;

  private constructor(worker: Worker, ready: WorkerReadyInfo) {
    this.worker = worker;
    this.ready = ready;
    worker.on('message', (msg: WorkerToMain) => this.onMessage(msg));
    worker.on('error', (err) => this.fail(new OspreyError('OSPREY_ERR_ENGINE_CLOSED', `engine worker crashed: ${err.message}`, {}, { cause: err })));
    worker.on('exit', (code) => {
      if (!this.closing || this.pending.size > 0) {
        this.fail(new OspreyError('OSPREY_ERR_ENGINE_CLOSED', `engine worker exited (code ${code})`, { exitCode: code }));
      }
      this.dead ??= new OspreyError('OSPREY_ERR_ENGINE_CLOSED', 'the engine is closed');
    });
    worker.unref(); // an idle engine does not keep the process alive; in-flight runs ref() it
  }

  /**
   * Starts a worker and waits until its session is created and warmed up.
   * @throws OspreyError with the worker's code: `OSPREY_ERR_MODEL_NOT_FOUND_FILE`, `OSPREY_ERR_INVALID_MODEL`,
   *   `OSPREY_ERR_EP_UNAVAILABLE`, `OSPREY_ERR_INFERENCE_FAILED` (warmup), `OSPREY_ERR_ENGINE_CLOSED` (worker died).
   */
  static start(data: OrtWorkerData): Promise<OrtWorkerInstance> {
    const worker = spawnWorker(workerUrl(), data);
    return new Promise((resolve, reject) => {
      const onMessage = (msg: WorkerToMain): void => {
        cleanup();
        if (msg.type === 'ready') {
          resolve(new OrtWorkerInstance(worker, msg.info));
        } else if (msg.type === 'load-error') {
          const code = (msg.code in ERROR_CATALOGUE ? msg.code : 'OSPREY_ERR_INTERNAL') as ErrorCode;
          reject(new OspreyError(code, msg.message, msg.details ?? {}));
          void worker.terminate();
        } else {
          reject(new OspreyError('OSPREY_ERR_INTERNAL', `engine worker sent '${msg.type}' before ready`));
          void worker.terminate();
        }
      };
      const onError = (err: Error): void => {
        cleanup();
        reject(new OspreyError('OSPREY_ERR_ENGINE_CLOSED', `engine worker failed to start: ${err.message}`, {}, { cause: err }));
      };
      const onExit = (code: number): void => {
        cleanup();
        reject(new OspreyError('OSPREY_ERR_ENGINE_CLOSED', `engine worker exited during startup (code ${code})`));
      };
      const cleanup = (): void => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
  }

  /** Runs in flight on this instance. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** False once closed or crashed. */
  get alive(): boolean {
    return !this.dead && !this.closing;
  }

  /**
   * Runs the session once in the worker. The feeds' ArrayBuffers are transferred (detached here); untransferable
   * ones (Node's pooled Buffer slabs) are copied.
   * @throws OspreyError `OSPREY_ERR_INFERENCE_FAILED` (ORT rejected the run), `OSPREY_ERR_ENGINE_CLOSED`.
   */
  run(feeds: Record<string, Tensor>, options: RunOptions = {}): Promise<Record<string, Tensor>> {
    if (this.dead) return Promise.reject(this.dead);
    if (this.closing) return Promise.reject(new OspreyError('OSPREY_ERR_ENGINE_CLOSED', 'the engine is closing'));
    const id = this.nextId++;
    const onInputsReleased = options.onInputsReleased;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, ...(onInputsReleased ? { onInputsReleased } : {}) });
      if (this.pending.size === 1) this.worker.ref();
      const msg: MainToWorker = { type: 'run', id, feeds: plainFeeds(feeds), ...(onInputsReleased ? { returnInputs: true } : {}) };
      try {
        this.worker.postMessage(msg, transferList(feeds));
      } catch {
        try {
          this.worker.postMessage(msg); // e.g. an untransferable (pooled) buffer: copy instead
        } catch (err) {
          this.settle(id);
          reject(new OspreyError('OSPREY_ERR_INVALID_TENSOR', `cannot send the input tensors to the engine: ${(err as Error).message}`));
        }
      }
    });
  }

  private settle(id: number): Pending | undefined {
    const p = this.pending.get(id);
    this.pending.delete(id);
    if (this.pending.size === 0) {
      this.worker.unref();
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
    return p;
  }

  private onMessage(msg: WorkerToMain): void {
    if (msg.type === 'result') {
      this.runs++;
      this.runMsTotal += msg.runMs;
      this.sessions = msg.sessions;
      const p = this.settle(msg.id);
      if (p?.onInputsReleased && msg.inputs) p.onInputsReleased(msg.inputs);
      p?.resolve(msg.outputs);
    } else if (msg.type === 'run-error') {
      this.settle(msg.id)?.reject(new OspreyError('OSPREY_ERR_INFERENCE_FAILED', `inference failed: ${msg.message}`));
    }
  }

  private fail(err: OspreyError): void {
    this.dead ??= err;
    for (const [id, p] of [...this.pending]) {
      this.settle(id);
      p.reject(err);
    }
  }

  /**
   * Stops taking runs, lets in-flight runs finish, releases the session and ends the worker. Idempotent.
   * The worker is only terminated forcibly when runs outlast `graceMs`: terminating a worker in the middle of
   * ORT's native `run()` can abort the whole process (seen in testing: "terminate called after throwing an
   * instance of 'Napi::Error'"), so the normal path is a message asking the worker to release and exit.
   * @param graceMs how long to wait for in-flight runs and the session release before terminating. Default 10000.
   */
  close(graceMs = 10_000): Promise<void> {
    this.closedPromise ??= (async () => {
      this.closing = true;
      if (this.dead) {
        await this.worker.terminate();
        return;
      }
      const timeout = <T>(p: Promise<T>): Promise<T | 'timeout'> =>
        Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref())]);
      if (this.pending.size > 0) await timeout(new Promise<void>((r) => this.idleWaiters.push(r)));
      const exited = new Promise<void>((r) => this.worker.once('exit', () => r()));
      this.worker.ref();
      this.worker.postMessage({ type: 'close' } satisfies MainToWorker);
      if ((await timeout(exited)) === 'timeout') await this.worker.terminate();
      this.fail(new OspreyError('OSPREY_ERR_ENGINE_CLOSED', 'the engine is closed'));
    })();
    return this.closedPromise;
  }
}

/**
 * N engine instances behind one {@link Engine}: each run goes to the live instance with the fewest runs in
 * flight (ties go round-robin), like Triton's instance groups. The choice is {@link InstancePool}'s, the same
 * owner the dynamic batcher dispatches through.
 */
export class EnginePool implements Engine {
  readonly info: OrtEngineInfo;
  readonly instances: readonly OrtWorkerInstance[];
  private readonly pool: InstancePool<OrtWorkerInstance>;
  private closed = false;

  constructor(instances: readonly OrtWorkerInstance[], modelPath: string) {
    if (instances.length === 0) throw new OspreyError('OSPREY_ERR_INTERNAL', 'an engine pool needs at least one instance');
    this.instances = instances;
    this.pool = new InstancePool(instances);
    const first = instances[0]!.ready;
    const pool = this;
    this.info = {
      inputs: first.inputs,
      outputs: first.outputs,
      executionProvider: first.executionProvider,
      fallbacks: first.fallbacks,
      metadata: first.metadata,
      modelPath,
      get instanceCount() {
        return pool.instances.filter((i) => i.alive).length;
      },
      loadMs: first.loadMs,
      warmupMs: first.warmupMs,
    };
  }

  /** Total runs in flight over all instances. */
  get inFlight(): number {
    let n = 0;
    for (const i of this.instances) n += i.inFlight;
    return n;
  }

  /** @inheritdoc */
  run(feeds: Record<string, Tensor>, options?: RunOptions): Promise<Record<string, Tensor>> {
    if (this.closed) return Promise.reject(new OspreyError('OSPREY_ERR_ENGINE_CLOSED', 'the engine is closed'));
    return this.pool.runOnLeastBusy(feeds, options, (inst) => inst.alive);
  }

  /** @inheritdoc */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.instances.map((i) => i.close()));
  }
}

/**
 * Loads a model into `instances` ONNX Runtime sessions, each in its own worker thread, trying the execution
 * providers in order and recording why each one before the chosen one failed (`info.fallbacks`).
 *
 * @example
 *   const engine = await createOrtEngine({ modelPath: 'yolov8n.onnx', executionProviders: ['cuda', 'cpu'] });
 *   engine.info.executionProvider; // 'cpu' on a machine without the CUDA EP libraries
 *   engine.info.fallbacks;         // [{ executionProvider: 'cuda', reason: 'cuda: libonnxruntime_providers_shared.so not found in …' }]
 *   const out = await engine.run({ images: { type: 'float32', dims: [1, 3, 640, 640], data } }); // out.output0.dims → [1, 84, 8400]
 *   await engine.close();
 * @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND_FILE` (no such file), `OSPREY_ERR_INVALID_MODEL` (not ONNX, or
 *   ORT cannot load it), `OSPREY_ERR_EP_UNAVAILABLE` (no provider loaded; reasons in `details.fallbacks`),
 *   `OSPREY_ERR_INFERENCE_FAILED` (warmup failed), `OSPREY_ERR_INVALID_ARGUMENT` (bad option).
 */
export async function createOrtEngine(options: OrtEngineOptions): Promise<EnginePool> {
  const { modelPath } = options;
  if (!options.modelBytes) {
    try {
      const s = await stat(modelPath);
      if (!s.isFile()) throw new Error('not a file');
    } catch (err) {
      throw new OspreyError('OSPREY_ERR_MODEL_NOT_FOUND_FILE', `${modelPath}: model file not found or not a file`, { modelPath }, { cause: err });
    }
  }
  const count = options.instances ?? 1;
  if (!Number.isInteger(count) || count < 1) {
    throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `instances must be a positive integer, got ${count}`);
  }
  const eps = (options.executionProviders ?? defaultExecutionProviders()).map(normalizeExecutionProvider).filter(Boolean);
  if (eps.length === 0) throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', 'executionProviders is empty');
  if (options.maxShapeSessions !== undefined && (!Number.isInteger(options.maxShapeSessions) || options.maxShapeSessions < 1)) {
    throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `maxShapeSessions must be a positive integer, got ${options.maxShapeSessions}`);
  }
  const warmupRuns = options.warmup === undefined ? 1 : typeof options.warmup === 'boolean' ? (options.warmup ? 1 : 0) : options.warmup;
  const base: OrtWorkerData = {
    modelPath,
    executionProviders: eps,
    deviceId: options.deviceId ?? 0,
    // N sessions each taking every core would oversubscribe the CPU: split the cores between instances.
    intraOpNumThreads: options.intraOpNumThreads ?? (count > 1 ? Math.max(1, Math.floor(availableParallelism() / count)) : 0),
    ...(options.intraOpSpinning !== undefined ? { intraOpSpinning: options.intraOpSpinning } : {}),
    warmupRuns,
    warmupBatchSize: options.warmupBatchSize ?? 1,
    ...(options.maxShapeSessions !== undefined ? { maxShapeSessions: options.maxShapeSessions } : {}),
    readMetadata: true,
    ...(options.modelBytes ? { modelBytes: options.modelBytes } : {}),
  };
  const first = await OrtWorkerInstance.start(base);
  const instances = [first];
  if (count > 1) {
    // The others use the provider the first one settled on, and skip re-reading the metadata.
    const rest = await Promise.allSettled(
      Array.from({ length: count - 1 }, () =>
        OrtWorkerInstance.start({ ...base, executionProviders: [first.ready.executionProvider], readMetadata: false }),
      ),
    );
    for (const r of rest) if (r.status === 'fulfilled') instances.push(r.value);
    const failed = rest.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.all(instances.map((i) => i.close()));
      throw failed.reason;
    }
    for (const inst of instances.slice(1)) (inst.ready as { metadata: Record<string, string> }).metadata = first.ready.metadata;
  }
  return new EnginePool(instances, modelPath);
}

export type { ExecutionProviderFallback };

/**
 * ONNX Runtime as a backend ({@link EngineFactory}): {@link createOrtEngine}, each worker exposed as its own
 * {@link Engine} for the version's instance pool.
 */
export const createOrtInstances: EngineFactory = async (options) => {
  const pool = await createOrtEngine(options);
  return {
    info: pool.info,
    instances: pool.instances.map((inst) => ({ info: pool.info, run: (feeds: Record<string, Tensor>, o?: RunOptions) => inst.run(feeds, o), close: () => inst.close() })),
    close: () => pool.close(),
  };
};
