/**
 * Warmup of engine instances, in one place: which shapes a zero warmup run uses, and running samples on every
 * instance. A served model version's warmup is decided by its lifecycle (src/repository/lifecycle.ts: the config's
 * `modelWarmup`, then the batch sizes the batcher will send on a GPU); a standalone engine
 * (`createOrtEngine({ warmup })`) runs one zero batch in its worker with {@link warmupDims}.
 */
import type { Tensor, TensorSpec } from '../core/types.js';
import { allocateStorage } from '../repository/datatypes.js';
import type { Engine } from './engine.js';

/**
 * The dims of a zero warmup input: fixed dims as they are, a dynamic batch axis (axis 0) = `batchSize`.
 * @returns null when another axis is dynamic (no valid shape can be guessed).
 * @example warmupDims(['batch', 3, 640, 640], 4) // → [4, 3, 640, 640]
 */
export function warmupDims(shape: TensorSpec['shape'], batchSize: number): number[] | null {
  const dims = shape.map((d, axis) => (typeof d === 'number' && d > 0 ? d : axis === 0 ? batchSize : -1));
  return dims.some((d) => d < 0) ? null : dims;
}

/**
 * Zero-filled feeds for every input at `batchSize`.
 * @returns null when an input has a dynamic non-batch axis.
 */
export function zeroFeeds(inputs: readonly TensorSpec[], batchSize: number): Record<string, Tensor> | null {
  const feeds: Record<string, Tensor> = {};
  for (const spec of inputs) {
    const dims = warmupDims(spec.shape, batchSize);
    if (!dims) return null;
    feeds[spec.name] = { type: spec.type, dims, data: allocateStorage(spec.type, dims.reduce((a, x) => a * x, 1)) };
  }
  return feeds;
}

/** One warmup sample: feeds (built fresh per run, since a run may take their buffers) and how many runs. */
export interface WarmupSample {
  /** For messages, e.g. `modelWarmup 'zeros'` or `batch 8`. */
  name: string;
  feeds: () => Promise<Record<string, Tensor>> | Record<string, Tensor>;
  count: number;
}

/**
 * Runs every sample `count` times on every instance, instance by instance (a GPU instance tunes its kernels for
 * each shape it sees here, before traffic arrives).
 * @throws the engine's error (`OSPREY_ERR_INFERENCE_FAILED`): a model that fails its warmup is not READY (Triton).
 */
export async function warmupInstances(instances: readonly Engine[], samples: readonly WarmupSample[]): Promise<void> {
  for (const engine of instances) {
    for (const s of samples) for (let i = 0; i < s.count; i++) await engine.run(await s.feeds());
  }
}

/** Samples of one zero batch per bucket size (the sizes a dynamic batcher pads to on a GPU). */
export function bucketWarmupSamples(inputs: readonly TensorSpec[], buckets: readonly number[]): WarmupSample[] {
  const out: WarmupSample[] = [];
  for (const b of buckets) {
    if (!zeroFeeds(inputs, b)) continue;
    out.push({ name: `batch ${b}`, feeds: () => zeroFeeds(inputs, b)!, count: 1 });
  }
  return out;
}

/**
 * Runs one zero batch of every bucket size on every instance.
 * @example await warmupBatchBuckets(engine.info, instances, defaultBatchBuckets(32));
 */
export function warmupBatchBuckets(info: { inputs: readonly TensorSpec[] }, instances: readonly Engine[], buckets: readonly number[]): Promise<void> {
  return warmupInstances(instances, bucketWarmupSamples(info.inputs, buckets));
}
