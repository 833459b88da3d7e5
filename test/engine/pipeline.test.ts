/**
 * The per-instance batch pipeline's scheduling (src/engine/pipeline.ts), with stages that are plain timed async
 * functions: this tests the scheduler itself (what overlaps with what, how many batches are in flight, the order of
 * engine turns, error handling). The detector running through it on the real model is tested in
 * test/bench/closed-loop.test.ts and test/engine/detector.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkPipelineDepth, pipelinedIntraOpSpinning, runPipeline, type BatchTimesMs } from '../../src/engine/pipeline.js';
import { isOspreyError } from '../../src/core/errors.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Trace {
  events: { t: number; what: string; item: number }[];
  times: BatchTimesMs[];
  maxRunning: number;
  maxInFlight: number;
  finished: number[];
}

/** N items through prepare (prepMs) → run (runMs) → finish, recording what happens when. */
async function traced(n: number, depth: number, loops: number, prepMs: number, runMs: number): Promise<Trace & { wallMs: number }> {
  const tr: Trace = { events: [], times: [], maxRunning: 0, maxInFlight: 0, finished: [] };
  let next = 0;
  let running = 0;
  let inFlight = 0;
  const t0 = performance.now();
  const ev = (what: string, item: number) => tr.events.push({ t: performance.now() - t0, what, item });
  await runPipeline<number, number, number>(
    {
      next: () => (next < n ? next++ : undefined),
      prepare: async (i) => {
        inFlight++;
        tr.maxInFlight = Math.max(tr.maxInFlight, inFlight);
        ev('prepare-start', i);
        await sleep(prepMs);
        ev('prepare-end', i);
        return i;
      },
      run: async (i) => {
        running++;
        tr.maxRunning = Math.max(tr.maxRunning, running);
        ev('run-start', i);
        await sleep(runMs);
        ev('run-end', i);
        running--;
        return i * 10;
      },
      finish: (i, out) => {
        assert.equal(out, i * 10, 'finish gets its own batch output');
        ev('finish', i);
        tr.finished.push(i);
        inFlight--;
      },
      record: (t) => tr.times.push(t),
    },
    { depth, loops },
  );
  return { ...tr, wallMs: performance.now() - t0 };
}

const at = (tr: Trace, what: string, item: number) => tr.events.find((e) => e.what === what && e.item === item)!.t;

test('depth 1: serial — one batch in flight, each prepared only after the previous finished, queue ≈ 0', async () => {
  const tr = await traced(6, 1, 1, 10, 20);
  assert.deepEqual(tr.finished, [0, 1, 2, 3, 4, 5]);
  assert.equal(tr.maxInFlight, 1);
  for (let i = 1; i < 6; i++) assert.ok(at(tr, 'prepare-start', i) >= at(tr, 'finish', i - 1), `batch ${i} starts after ${i - 1} finished`);
  assert.equal(tr.times.length, 6);
  for (const t of tr.times) assert.ok(t.queue < 2, `queue ${t.queue} ms`);
  assert.ok(tr.wallMs >= 6 * 30 - 5, `serial wall ${tr.wallMs} ≈ 6 × (10 + 20) ms`);
});

test('depth 2: batch N+1 is prepared while N runs, N is finished after N+1 started, runs never overlap', async () => {
  const tr = await traced(8, 2, 1, 10, 20);
  assert.deepEqual([...tr.finished].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(tr.maxRunning, 1, 'one loop: one batch in the engine at a time');
  assert.equal(tr.maxInFlight, 2);
  for (let i = 1; i < 8; i++) {
    assert.ok(at(tr, 'run-start', i) >= at(tr, 'run-end', i - 1), `run ${i} after run ${i - 1}`);
    assert.ok(at(tr, 'prepare-end', i) <= at(tr, 'run-end', i - 1) + 5, `batch ${i} was prepared while ${i - 1} ran`);
    assert.ok(at(tr, 'finish', i - 1) >= at(tr, 'run-start', i), `batch ${i - 1} finished after ${i} reached the engine`);
  }
  // Steady state is bound by the 20 ms runs, not 10 + 20: 8 batches in ≈ 10 + 8 × 20 ms, against 240 ms serial.
  assert.ok(tr.wallMs < 8 * 30 - 30, `pipelined wall ${tr.wallMs} ms`);
  // The stage times partition each batch's latency; waiting for the engine shows as queue.
  assert.ok(tr.times.some((t) => t.queue > 5), JSON.stringify(tr.times));
  for (const t of tr.times) assert.ok(t.preprocess >= 9 && t.inference >= 19 && t.postprocess >= 0 && t.queue >= 0, JSON.stringify(t));
});

test('2 loops × depth 2: at most one run per loop (2 in all), the first batches spread over the loops', async () => {
  const tr = await traced(10, 2, 2, 5, 20);
  assert.equal(tr.finished.length, 10);
  assert.equal(tr.maxRunning, 2);
  assert.equal(tr.maxInFlight, 4);
  // items 0 and 1 start in different loops, so both run at once
  assert.ok(Math.abs(at(tr, 'run-start', 0) - at(tr, 'run-start', 1)) < 8);
});

test('an error in a stage stops new batches, lets those in flight settle, then is thrown; bad depths are refused', async () => {
  let started = 0;
  let finished = 0;
  await assert.rejects(
    runPipeline<number, number, number>(
      {
        next: () => (started < 100 ? started++ : undefined),
        prepare: async (i) => {
          await sleep(2);
          return i;
        },
        run: async (i) => {
          await sleep(5);
          if (i === 3) throw new Error('run 3 failed');
          return i;
        },
        finish: () => {
          finished++;
        },
      },
      { depth: 2 },
    ),
    /run 3 failed/,
  );
  assert.ok(started <= 6, `stopped starting batches after the failure (started ${started})`);
  assert.ok(finished >= 3 && finished <= 5, `finished ${finished}`);
  // prepare() returning undefined skips the batch (nothing to run)
  const ran: number[] = [];
  let k = 0;
  await runPipeline<number, number, number>({ next: () => (k < 4 ? k++ : undefined), prepare: async (i) => (i % 2 ? undefined : i), run: async (i) => (ran.push(i), i), finish: () => {} }, { depth: 2 });
  assert.deepEqual(ran, [0, 2]);
  for (const bad of [0, -1, 1.5, NaN]) {
    assert.throws(() => checkPipelineDepth(bad), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_INVALID_ARGUMENT') && e.message.includes(String(bad)));
    await assert.rejects(runPipeline({ next: () => undefined, prepare: async () => 1, run: async () => 1, finish: () => {} }, { depth: bad }), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_INVALID_ARGUMENT'));
  }
});

test('intra-op spinning of a pipelined loop: threads sleep at depth ≥ 2 on CPU; ORT decides at depth 1 and on GPUs; an explicit choice wins', () => {
  assert.equal(pipelinedIntraOpSpinning(undefined, 2, ['cpu']), false);
  assert.equal(pipelinedIntraOpSpinning(undefined, 3, []), false);
  assert.equal(pipelinedIntraOpSpinning(undefined, 1, ['cpu']), undefined);
  assert.equal(pipelinedIntraOpSpinning(undefined, 2, ['cuda', 'cpu']), undefined);
  assert.equal(pipelinedIntraOpSpinning(true, 2, ['cpu']), true);
  assert.equal(pipelinedIntraOpSpinning(false, 1, ['cpu']), false);
});
