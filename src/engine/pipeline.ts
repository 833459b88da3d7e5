/**
 * Per-instance batch pipelining of the detector's three stages, as a real serving pipeline (or trtexec, which
 * overlaps transfers with compute) runs them: each batch goes
 *
 *   prepare (host: sharp decode + letterbox, on libuv's thread pool) → run (the engine's worker thread) →
 *   finish (host: output decode + NMS, on the calling thread)
 *
 * and each loop keeps up to `depth` batches in flight, so that batch N+1 is prepared while batch N runs in the
 * engine, and N is finished while N+1 runs. A loop runs one batch at a time in the engine (one loop per engine
 * instance), in the order its batches finished preparing; `loops` loops run side by side and take work items from
 * one shared `next()`. Depth 1 is the serial loop: prepare, run, finish, then the next batch.
 *
 * Stage times per batch ({@link BatchTimesMs}) partition its latency: `preprocess + queue + inference + postprocess`
 * is the time from the start of its preparation to the end of its finishing. `queue` is the wait for the loop's
 * engine turn (0 at depth 1), so a pipelined loop's latency honestly includes its queueing.
 */
import { OspreyError } from '../core/errors.js';

/** Time one batch spent in each stage, ms; the four add up to its latency. */
export interface BatchTimesMs {
  /** prepare(): decode + letterbox. */
  preprocess: number;
  /** Prepared, waiting for the loop's previous batch to leave the engine. */
  queue: number;
  /** run(): the engine call. */
  inference: number;
  /** finish(): post-processing (starts once the loop's next batch has been handed to the engine). */
  postprocess: number;
}

/** The stages of {@link runPipeline}. */
export interface PipelineStages<T, P, O> {
  /** The next work item for loop `loop` (0-based), or `undefined` to start no more batches in that loop (called whenever one of its slots is free). */
  next(loop: number): T | undefined;
  /** Host pre-processing of one item; `undefined` means nothing to run for it (e.g. every image failed to decode). */
  prepare(item: T): Promise<P | undefined>;
  /** The engine call. */
  run(prepared: P): Promise<O>;
  /** Host post-processing of one batch's output. */
  finish(prepared: P, output: O): void | Promise<void>;
  /** Called after `finish` with the batch's stage times. */
  record?(times: BatchTimesMs, prepared: P): void;
}

/** Options of {@link runPipeline}. */
export interface PipelineOptions {
  /** Batches in flight per loop (prepare → run → finish), ≥ 1; 1 = the serial loop. */
  depth: number;
  /** Loops side by side (one per engine instance), ≥ 1. Default 1. */
  loops?: number;
}

/** Default per-loop depth for throughput: prepare the next batch while this one runs. */
export const DEFAULT_PIPELINE_DEPTH = 2;

/**
 * ONNX Runtime's `session.intra_op.allow_spinning` for a pipelined CPU loop, unless the caller chose: at depth ≥ 2
 * the host stages (decode, letterbox, NMS) run while the engine infers and need the cores that spinning intra-op
 * threads would hold, so threads sleep (false); at depth 1, and on GPU execution providers, ORT's default (undefined).
 * Measured on the 2-core AMD EPYC development machine at depth 2 (docs/bench.md; docs/build.md, "Speed"): INT8 yolov8n 28.4 → 30.9 images/s,
 * FP32 13.8 → 14.2 with threads sleeping.
 * @example pipelinedIntraOpSpinning(undefined, 2, ['cpu']) // → false
 */
export function pipelinedIntraOpSpinning(explicit: boolean | undefined, depth: number, executionProviders: readonly string[]): boolean | undefined {
  if (explicit !== undefined) return explicit;
  return depth >= 2 && (executionProviders[0] ?? 'cpu') === 'cpu' ? false : undefined;
}

/**
 * Checks a pipeline depth.
 * @throws OspreyError `OSPREY_ERR_INVALID_ARGUMENT` when it is not a positive integer (the message names `what`).
 */
export function checkPipelineDepth(depth: number, what = 'pipeline depth'): number {
  if (!Number.isInteger(depth) || depth < 1) throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `${what} must be a positive integer, got ${depth}`, { depth });
  return depth;
}

/**
 * Runs work items through the stages until `next()` returns `undefined` and every started batch has finished.
 * The first error of any stage stops new batches from starting; the batches in flight settle, then that error is
 * thrown (a stage that must not stop the run — a bad image among many — catches its own errors).
 * @throws OspreyError `OSPREY_ERR_INVALID_ARGUMENT` (depth or loops not a positive integer), and whatever a stage throws.
 */
export async function runPipeline<T, P, O>(stages: PipelineStages<T, P, O>, options: PipelineOptions): Promise<void> {
  const depth = checkPipelineDepth(options.depth);
  const loops = checkPipelineDepth(options.loops ?? 1, 'pipeline loops');
  let failed = false;
  let failure: unknown;
  const take = (loop: number): { item: T } | undefined => {
    if (failed) return undefined;
    const item = stages.next(loop);
    return item === undefined ? undefined : { item };
  };
  // Per loop, the engine turn: a chain of promises, each batch waits for the one before it to leave the engine.
  const engineFree: Promise<void>[] = Array.from({ length: loops }, () => Promise.resolve());
  const slot = async (loop: number): Promise<void> => {
    for (let w = take(loop); w !== undefined; w = take(loop)) {
      const a = performance.now();
      const prepared = await stages.prepare(w.item);
      if (prepared === undefined) continue;
      const b = performance.now();
      const previous = engineFree[loop]!;
      let release!: () => void;
      engineFree[loop] = new Promise<void>((r) => (release = r));
      let output: O;
      let b2: number;
      try {
        await previous;
        b2 = performance.now();
        output = await stages.run(prepared);
      } finally {
        release();
      }
      const c = performance.now();
      // Let the loop's next prepared batch reach the engine before this one is post-processed.
      if (depth > 1) await new Promise<void>((r) => setImmediate(r));
      await stages.finish(prepared, output);
      const d = performance.now();
      stages.record?.({ preprocess: b - a, queue: b2 - b, inference: c - b2, postprocess: d - c }, prepared);
    }
  };
  const guarded = async (loop: number): Promise<void> => {
    try {
      await slot(loop);
    } catch (err) {
      if (!failed) failure = err;
      failed = true;
    }
  };
  // Slots start depth-major (the first slot of every loop, then the second…), so the first batches spread over the loops.
  const slots: Promise<void>[] = [];
  for (let k = 0; k < depth; k++) for (let l = 0; l < loops; l++) slots.push(guarded(l));
  await Promise.all(slots);
  if (failed) throw failure;
}
