/**
 * Messages between {@link OrtWorkerInstance} (main thread) and `ort-worker` (one worker_thread per ONNX Runtime
 * session). Tensors travel as typed arrays whose ArrayBuffers are transferred (moved, not copied).
 */
import type { Tensor, TensorSpec } from '../core/types.js';
import type { ExecutionProviderFallback } from './engine.js';

/**
 * Default number of shape-specialised ONNX Runtime sessions per engine instance on a device execution provider
 * (`OrtEngineOptions.maxShapeSessions`): enough for the dynamic batcher's default buckets up to batch 64
 * (1, 2, 4, 8, 16, 32, 64).
 */
export const DEFAULT_MAX_SHAPE_SESSIONS = 8;

/** What the worker needs to create its session. */
export interface OrtWorkerData {
  /** The model's path (and its name in messages). */
  modelPath: string;
  /** Model bytes to load instead of reading `modelPath`. */
  modelBytes?: Uint8Array;
  /** Ordered execution providers to try (`cuda`, `cpu`, `tensorrt`, `webgpu`). */
  executionProviders: readonly string[];
  /** GPU ordinal for device providers. Default 0. */
  deviceId: number;
  /** ORT intra-op threads (CPU EP); 0 lets ORT decide. */
  intraOpNumThreads: number;
  /** ORT's `session.intra_op.allow_spinning`; undefined keeps ORT's default (spin). */
  intraOpSpinning?: boolean;
  /** Number of warmup runs on zero-filled inputs before reporting ready. */
  warmupRuns: number;
  /** Batch size used for dynamic batch axes during warmup. */
  warmupBatchSize: number;
  /**
   * The most sessions this worker keeps, one per distinct input shape (see ort-worker). 1 = one session for every
   * shape. Undefined: DEFAULT_MAX_SHAPE_SESSIONS on a device EP, 1 on the CPU EP.
   */
  maxShapeSessions?: number;
  /** Read ONNX metadata_props (the first instance does; the others reuse its answer). */
  readMetadata: boolean;
}

export type MainToWorker =
  | { type: 'run'; id: number; feeds: Record<string, Tensor>; returnInputs?: boolean }
  | { type: 'close' };

export interface WorkerReadyInfo {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  executionProvider: string;
  fallbacks: ExecutionProviderFallback[];
  /** ONNX metadata_props (empty when not read). */
  metadata: Record<string, string>;
  /** Session creation time, ms. */
  loadMs: number;
  /** Total warmup time, ms. */
  warmupMs: number;
}

export type WorkerToMain =
  | { type: 'ready'; info: WorkerReadyInfo }
  | { type: 'load-error'; code: string; message: string; details?: Record<string, unknown> }
  /** `inputs`: the run's feeds handed back (buffers moved), for reuse by the caller. */
  | { type: 'result'; id: number; outputs: Record<string, Tensor>; runMs: number; sessions: number; inputs?: Record<string, Tensor> }
  | { type: 'run-error'; id: number; message: string }
  | { type: 'closed' };
