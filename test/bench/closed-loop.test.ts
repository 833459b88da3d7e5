/**
 * The closed loop `osprey bench engine` times (src/bench/closed-loop.ts), on the real yolov8n (CPU EP) and bus.jpg,
 * serial (depth 1) and pipelined (depth 2): every batch gives the same detections as a plain `detect()`, the counts
 * agree, and the stage times tell serial from overlapped (~6 s in all).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runClosedLoops, type BatchTimesMs } from '../../src/bench/closed-loop.js';
import type { Detection } from '../../src/core/types.js';
import { isOspreyError } from '../../src/core/errors.js';
import { Detector } from '../../src/engine/detector.js';

const data = (p: string) => fileURLToPath(new URL(`../../../shared/data/${p}`, import.meta.url));
const MODEL = data('models/yolov8n.onnx');
const BUS = readFileSync(data('images/bus.jpg'));

test('closed loop, depth 1 and 2: correct detections in every batch, counts agree, depth 2 overlaps the stages', async () => {
  const det = await Detector.create({ modelPath: MODEL, executionProviders: ['cpu'], maxBatchSize: 1 });
  try {
    const reference = (await det.detect({ name: 'bus.jpg', bytes: BUS })).detections;
    assert.deepEqual(
      reference.map((d) => d.className).sort(),
      ['bus', 'person', 'person', 'person', 'person'],
      'the golden bus.jpg detections (test/engine/detector.test.ts checks their boxes against the reference)',
    );
    for (const depth of [1, 2]) {
      const times: BatchTimesMs[] = [];
      const detections: Detection[][][] = [];
      const w = await runClosedLoops(det, {
        batchSize: 1,
        instances: 1,
        pipelineDepth: depth,
        imageBytes: BUS,
        durationMs: 1200,
        minBatches: 4,
        record: (t) => times.push(t),
        onDetections: (d) => detections.push(d),
      });
      assert.ok(w.batches >= 4, `depth ${depth}: ${w.batches} batches`);
      assert.equal(times.length, w.batches, 'one record per finished batch');
      assert.equal(detections.length, w.batches, 'one detection list per finished batch');
      for (const d of detections) {
        assert.equal(d.length, 1, 'one image per batch');
        assert.deepEqual(d[0], reference, `depth ${depth}: same detections as detect(), bit for bit`);
      }
      assert.ok(w.windowMs >= 1200, 'the window ends after the last batch it started');
      const latency = times.map((t) => t.preprocess + t.queue + t.inference + t.postprocess);
      const busyMs = latency.reduce((a, b) => a + b, 0);
      for (const t of times) assert.ok(t.preprocess > 0 && t.inference > 0 && t.postprocess >= 0 && t.queue >= 0, JSON.stringify(t));
      if (depth === 1) {
        // Serial: batches never overlap, so their latencies fit in the window; nothing waits for the engine.
        assert.ok(busyMs <= w.windowMs, `depth 1: Σ latency ${busyMs} ms ≤ window ${w.windowMs} ms`);
        assert.ok(times.every((t) => t.queue < 1), `depth 1 queue: ${times.map((t) => t.queue.toFixed(2))}`);
      } else {
        // Pipelined: two batches in flight, so the latencies (queueing included) add up to more than the window
        // (Little's law: mean batches in flight = Σ latency / window).
        assert.ok(busyMs > 1.2 * w.windowMs, `depth 2: Σ latency ${busyMs} ms vs window ${w.windowMs} ms`);
        assert.ok(busyMs <= 2 * w.windowMs + 1, 'never more than 2 in flight');
      }
    }
    await assert.rejects(
      runClosedLoops(det, { batchSize: 1, instances: 1, pipelineDepth: 0, imageBytes: BUS, durationMs: 10 }),
      (e: unknown) => isOspreyError(e, 'OSPREY_ERR_INVALID_ARGUMENT'),
    );
    // A bad image fails the window with its code (the first error stops the loop).
    await assert.rejects(
      runClosedLoops(det, { batchSize: 1, instances: 1, pipelineDepth: 2, imageBytes: Buffer.from('not an image'), durationMs: 10 }),
      (e: unknown) => isOspreyError(e, 'OSPREY_ERR_INVALID_IMAGE'),
    );
  } finally {
    await det.close();
  }
});
