/**
 * The closed loop that `osprey bench engine` times, shared by the single-engine bench (engine-bench.ts) and the
 * interleaved comparison (engine-compare.ts): `instances` loops (one per engine instance, like trtexec's
 * `--infStreams`), each running batches of `batchSize` copies of one encoded image through the detector —
 * sharp decode + letterbox into a fresh batch buffer → `engine.run` in the worker → output decode + NMS + scaling
 * to source pixels — with up to `pipelineDepth` batches in flight per loop ({@link runPipeline}: batch N+1 is
 * decoded and letterboxed while N runs, N is post-processed while N+1 runs; depth 1 is the serial loop).
 *
 * A loop starts no batch after `durationMs` (unless fewer than `minBatches` batches were started, up to 10 × the
 * duration), and the window ends when the last started batch has finished: throughput = images ÷ window, with no
 * partial batches at its edges.
 */
import type { Detection } from '../core/types.js';
import type { LetterboxGeometry } from '../core/letterbox.js';
import type { FloatOutput } from '../core/decode.js';
import type { Detector } from '../engine/detector.js';
import type { BatchBuffer } from '../image/letterbox.js';
import { runPipeline, type BatchTimesMs } from '../engine/pipeline.js';

export type { BatchTimesMs };

/** Options of {@link runClosedLoops}. */
export interface ClosedLoopOptions {
  batchSize: number;
  /** Loops side by side, one per engine instance. */
  instances: number;
  /** Batches in flight per loop; 1 = serial (pre → inference → post, then the next batch). */
  pipelineDepth: number;
  /** The encoded image decoded and letterboxed into every batch slot. */
  imageBytes: Uint8Array;
  /** No batch starts after this, ms from the start (but see `minBatches`). */
  durationMs: number;
  /** Keep starting batches past `durationMs` until this many were started, up to 10 × `durationMs`. Every loop starts at least one. */
  minBatches?: number;
  /** Each finished batch's stage times (they add up to its latency). */
  record?: (times: BatchTimesMs) => void;
  /** Each finished batch's detections, one list per image (for checks). */
  onDetections?: (detections: Detection[][]) => void;
}

/**
 * Runs the closed loops for one window (see the module doc).
 * @returns the window (first batch started → last batch finished), ms, and the batches finished in it.
 * @throws OspreyError from the detector (`OSPREY_ERR_INVALID_IMAGE`, `OSPREY_ERR_INFERENCE_FAILED`, …) or
 *   `OSPREY_ERR_INVALID_ARGUMENT` (pipeline depth not a positive integer); the first error stops the window.
 */
export async function runClosedLoops(det: Detector, o: ClosedLoopOptions): Promise<{ windowMs: number; batches: number }> {
  const t0 = performance.now();
  const end = t0 + o.durationMs;
  const hardEnd = t0 + 10 * o.durationMs;
  const minBatches = o.minBatches ?? 0;
  let started = 0;
  const startedBy = new Array<number>(o.instances).fill(0);
  let batches = 0;
  interface Prepared {
    batch: BatchBuffer;
    geometries: LetterboxGeometry[];
  }
  await runPipeline<number, Prepared, FloatOutput>(
    {
      next: (loop) => {
        const now = performance.now();
        // Every loop starts at least one batch (so each instance runs); then the duration (and minBatches) decide.
        if (startedBy[loop]! > 0 && (now >= hardEnd || (now >= end && started >= minBatches))) return undefined;
        startedBy[loop]!++;
        return started++;
      },
      prepare: async () => {
        const batch = det.allocateBatch(o.batchSize);
        const geometries = await Promise.all(
          Array.from({ length: o.batchSize }, async (_, i) => det.preprocessInto(await det.decode({ name: 'bench', bytes: o.imageBytes }), batch, i)),
        );
        return { batch, geometries };
      },
      run: (p) => det.runBatch(p.batch, o.batchSize),
      finish: (p, out) => {
        const detections = det.postprocessBatch(out, p.geometries);
        o.onDetections?.(detections as Detection[][]);
      },
      record: (t) => {
        batches++;
        o.record?.(t);
      },
    },
    { depth: o.pipelineDepth, loops: o.instances },
  );
  return { windowMs: performance.now() - t0, batches };
}
