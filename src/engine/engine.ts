/**
 * The one Engine interface every inference backend implements (ONNX Runtime today).
 */
import type { Tensor, TensorSpec } from '../core/types.js';
import type { GpuInfo } from '../gpu/system.js';

export type { TensorSpec };

/** An execution provider that was tried and not used, with the reason (e.g. "cuda: libcublasLt.so.13 not found"). */
export interface ExecutionProviderFallback {
  executionProvider: string;
  reason: string;
}

export interface EngineInfo {
  inputs: readonly TensorSpec[];
  outputs: readonly TensorSpec[];
  /** The execution provider the session runs on (`cuda`, `cpu`, ...). */
  executionProvider: string;
  /** Providers requested before it that failed, with reasons. */
  fallbacks: readonly ExecutionProviderFallback[];
  /** ONNX metadata_props as written by the exporter (Ultralytics writes `names`, `stride`, `imgsz`, `task`...). */
  metadata: Readonly<Record<string, string>>;
  /** Largest batch the engine runs on its dynamic batch axis, when it has a limit (a GPU engine's max batch profile). */
  maxBatchSize?: number;
}

/** Options of one {@link Engine.run}. */
export interface RunOptions {
  /**
   * Called with the input tensors once the engine no longer needs them, their buffers handed back (for the ONNX
   * Runtime engine: moved back from the worker thread, no copy). Reuse them for the next run instead of allocating
   * new ones (IO buffer reuse). Not called when the run fails.
   */
  onInputsReleased?: (feeds: Record<string, Tensor>) => void;
}

/**
 * A loaded model ready to run. Implementations never block the calling thread.
 */
export interface Engine {
  readonly info: EngineInfo;
  /**
   * Runs the model once.
   * @param feeds input name → tensor; the caller must not touch the tensors' buffers afterwards (they may be transferred).
   * @returns output name → tensor.
   * @throws OspreyError `OSPREY_ERR_INFERENCE_FAILED` when ONNX Runtime fails, `OSPREY_ERR_ENGINE_CLOSED` after close().
   */
  run(feeds: Record<string, Tensor>, options?: RunOptions): Promise<Record<string, Tensor>>;
  /** Releases the session(s) and worker(s). Idempotent. */
  close(): Promise<void>;
}

/**
 * What every backend needs to load one instance group of a model version (Triton's instance group): the lifecycle
 * (src/repository/lifecycle.ts) calls a backend's {@link EngineFactory} with it, once per group and GPU.
 */
export interface EngineLoadOptions {
  /** The model file (`.onnx`, or a backend's own engine file). */
  modelPath: string;
  /** Execution providers to try, in order (`['cuda', 'cpu']`, or `['cpu']` for KIND_CPU). */
  executionProviders: readonly string[];
  /** Instances in the group (`instanceGroup[].count`): each runs one batch at a time. */
  instances: number;
  /**
   * CUDA device ordinal the instances are pinned to (ONNX Runtime's CUDA EP `device_id`; the GPU engine's device):
   * the lifecycle calls the factory once per GPU of an instance group (`instanceGroup[].gpus`, Triton's placement:
   * `count` instances on each listed GPU). 0 for CPU groups.
   */
  deviceId: number;
  /** The GPU `deviceId` names, as the inventory read it (name, compute capability); absent for CPU groups and when no GPU is known. */
  gpu?: GpuInfo;
  /** CPU threads per instance (`parameters.intra_op_thread_count`); undefined = the backend's choice. */
  intraOpNumThreads?: number;
  /** Zero-input warmup runs inside the backend; the lifecycle passes 0 and runs the version's warmup itself. */
  warmup?: number;
  /** Batch size of those warmup runs (ONNX Runtime: a device EP plans per shape, so warm at the size you will run). Default 1. */
  warmupBatchSize?: number;
}

/** One instance group, loaded: the model's info and one {@link Engine} per instance. */
export interface EngineInstances {
  info: EngineInfo;
  /** One per instance; each runs one batch at a time (the batcher's {@link InstancePool} feeds them). */
  instances: readonly Engine[];
  close(): Promise<void>;
}

/**
 * A backend: loads an instance group. ONNX Runtime's is `createOrtInstances` (src/engine/ort-engine.ts); Osprey's
 * GPU engine plugs in here too, selected by the model config's `backend`/`platform`.
 */
export type EngineFactory = (options: EngineLoadOptions) => Promise<EngineInstances>;
