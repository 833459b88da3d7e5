/**
 * Unit tests of the dynamic batcher's scheduling rules.
 *
 * These use a FAKE engine (an object implementing the Engine interface in-process, with a gate the test opens) —
 * the one place Osprey's tests use a stand-in for ONNX Runtime: the batching rules (order, batch composition,
 * queue policy) must be observed deterministically, which a real session's timing does not allow. The server tests
 * (test/server/) exercise the same batcher with the real engine on the real model.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OspreyError } from '../../src/core/errors.js';
import type { Tensor } from '../../src/core/types.js';
import type { Engine, EngineInfo } from '../../src/engine/engine.js';
import { resolveModelConfig, type DynamicBatchingConfig } from '../../src/repository/config.js';
import { DynamicBatcher, bucketFor, defaultBatchBuckets } from '../../src/scheduler/dynamic-batcher.js';

/** A fake engine: output `y[b] = [x[b][0], batch]`; each run waits for the test to open the gate when gated. */
class FakeEngine implements Engine {
  readonly info: EngineInfo = {
    inputs: [{ name: 'x', type: 'float32', shape: ['batch', 2] }],
    outputs: [{ name: 'y', type: 'float32', shape: ['batch', 2] }],
    executionProvider: 'fake',
    fallbacks: [],
    metadata: {},
  };
  readonly batches: number[][] = [];
  private gates: Array<() => void> = [];
  running = 0;
  maxRunning = 0;
  failNext = false;
  constructor(private readonly gated = false) {}

  async run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    const x = feeds.x!;
    const b = x.dims[0]!;
    const firsts: number[] = [];
    for (let i = 0; i < b; i++) firsts.push((x.data as Float32Array)[i * 2]!);
    this.batches.push(firsts);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    if (this.gated) await new Promise<void>((r) => this.gates.push(r));
    else await new Promise((r) => setImmediate(r));
    this.running--;
    if (this.failNext) {
      this.failNext = false;
      throw new OspreyError('OSPREY_ERR_INFERENCE_FAILED', 'fake failure');
    }
    const y = new Float32Array(b * 2);
    for (let i = 0; i < b; i++) {
      y[i * 2] = firsts[i]!;
      y[i * 2 + 1] = b;
    }
    return { y: { type: 'float32', dims: [b, 2], data: y } };
  }

  /** Opens the oldest waiting run. */
  release(): void {
    this.gates.shift()?.();
  }
  get waiting(): number {
    return this.gates.length;
  }
  async close(): Promise<void> {}
}

const input = (v: number, n = 1): Record<string, Tensor> => {
  const data = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) data[i * 2] = v + i;
  return { x: { type: 'float32', dims: [n, 2], data } };
};

function db(partial: Record<string, unknown>, maxBatchSize = 8): DynamicBatchingConfig {
  return resolveModelConfig({ maxBatchSize, dynamicBatching: partial as never }, 'm').dynamicBatching!;
}

const tick = () => new Promise((r) => setImmediate(r));
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await tick();
  assert.ok(cond(), 'condition not reached');
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof OspreyError && e.code === code);
}

describe('DynamicBatcher (fake engine)', () => {
  it('forms one batch of maxBatchSize from concurrent requests within the max queue delay, each answer its own', async () => {
    const engine = new FakeEngine();
    const b = new DynamicBatcher({ name: 't', engines: [engine], maxBatchSize: 8, dynamicBatching: db({ maxQueueDelayMicroseconds: 10_000_000 }) });
    const results = await Promise.all(Array.from({ length: 8 }, (_v, i) => b.submit(input(i * 10))));
    assert.deepEqual(engine.batches, [[0, 10, 20, 30, 40, 50, 60, 70]]);
    results.forEach((r, i) => {
      assert.equal(r.batchSize, 8);
      assert.deepEqual(r.outputs.y!.dims, [1, 2]);
      assert.equal((r.outputs.y!.data as Float32Array)[0], i * 10);
    });
    const s = b.stats();
    assert.equal(s.executionCount, 1);
    assert.equal(s.inferenceCount, 8);
    assert.equal(s.success.count, 8);
    assert.deepEqual(s.batchStats.map((x) => x.batchSize), [8]);
    await b.close();
  });

  it('batch buckets: 3 requests run as one zero-padded batch of 4, each answer its own row; stats count 3', async () => {
    const engine = new FakeEngine();
    const b = new DynamicBatcher({
      name: 't',
      engines: [engine],
      maxBatchSize: 8,
      dynamicBatching: db({ maxQueueDelayMicroseconds: 10_000_000, preferredBatchSize: [3] }),
      batchBuckets: defaultBatchBuckets(8),
    });
    const results = await Promise.all([5, 6, 7].map((v) => b.submit(input(v))));
    assert.deepEqual(engine.batches, [[5, 6, 7, 0]], 'padded to the bucket of 4 with a zero row');
    results.forEach((r, i) => {
      assert.deepEqual(r.outputs.y!.dims, [1, 2]);
      assert.equal((r.outputs.y!.data as Float32Array)[0], 5 + i);
      assert.equal(r.batchSize, 3);
    });
    assert.equal(b.stats().inferenceCount, 3);
    await b.close();
  });

  it('IO buffer reuse: an assembled batch buffer handed back by the engine is used again, its padding rows zeroed', async () => {
    // A fake engine that hands the inputs back like the ORT engine does (onInputsReleased), recording the buffers.
    const seen: ArrayBuffer[] = [];
    const rows: number[][] = [];
    const engine: Engine = {
      info: new FakeEngine().info,
      async run(feeds, options) {
        const x = feeds.x!;
        seen.push(x.data.buffer as ArrayBuffer);
        rows.push(Array.from(x.data as Float32Array).filter((_v, i) => i % 2 === 0));
        await new Promise((r) => setImmediate(r));
        options?.onInputsReleased?.(feeds);
        const b = x.dims[0]!;
        return { y: { type: 'float32', dims: [b, 2], data: new Float32Array(b * 2) } };
      },
      async close() {},
    };
    const b = new DynamicBatcher({
      name: 't',
      engines: [engine],
      maxBatchSize: 4,
      dynamicBatching: db({ maxQueueDelayMicroseconds: 20_000, preferredBatchSize: [4] }, 4),
      batchBuckets: [4],
    });
    await Promise.all([1, 2, 3, 4].map((v) => b.submit(input(v))));
    await Promise.all([5, 6, 7].map((v) => b.submit(input(v))));
    assert.equal(seen.length, 2);
    assert.equal(seen[1], seen[0], 'the second batch ran on the first batch buffer');
    assert.deepEqual(rows, [[1, 2, 3, 4], [5, 6, 7, 0]], 'the recycled buffer holds the new frames and a zeroed padding row');
    await b.close();
  });

  it('bucket arithmetic: powers of two up to the max batch size, smallest bucket at or above the batch', () => {
    assert.deepEqual(defaultBatchBuckets(32), [1, 2, 4, 8, 16, 32]);
    assert.deepEqual(defaultBatchBuckets(24), [1, 2, 4, 8, 16, 24]);
    assert.deepEqual(defaultBatchBuckets(1), [1]);
    assert.deepEqual([1, 3, 5, 17, 24].map((t) => bucketFor(t, defaultBatchBuckets(24))), [1, 4, 8, 24, 24]);
    assert.equal(bucketFor(7, undefined), 7);
    assert.equal(bucketFor(40, [8, 16]), 40, 'beyond the largest bucket: run as is');
  });

  it('dispatches the largest preferred batch size at once and the rest after the delay', async () => {
    const engine = new FakeEngine();
    const b = new DynamicBatcher({ name: 't', engines: [engine], maxBatchSize: 8, dynamicBatching: db({ preferredBatchSize: [4], maxQueueDelayMicroseconds: 20_000 }) });
    await Promise.all(Array.from({ length: 6 }, (_v, i) => b.submit(input(i))));
    assert.deepEqual(engine.batches, [[0, 1, 2, 3], [4, 5]]);
    await b.close();
  });

  it('requests with n > 1 count n batch elements and split back per request', async () => {
    const engine = new FakeEngine();
    const b = new DynamicBatcher({ name: 't', engines: [engine], maxBatchSize: 4, dynamicBatching: db({ maxQueueDelayMicroseconds: 20_000 }, 4) });
    const [r1, r2, r3] = await Promise.all([b.submit(input(100, 2)), b.submit(input(200, 2)), b.submit(input(300, 1))]);
    assert.deepEqual(engine.batches[0], [100, 101, 200, 201]);
    assert.deepEqual([...(r1!.outputs.y!.data as Float32Array)], [100, 4, 101, 4]);
    assert.deepEqual(r2!.outputs.y!.dims, [2, 2]);
    assert.equal(r3!.batchSize, 1);
    await b.close();
  });

  it('a higher-priority request overtakes queued lower-priority ones', async () => {
    const engine = new FakeEngine(true);
    const b = new DynamicBatcher({ name: 't', engines: [engine], maxBatchSize: 1, dynamicBatching: db({ priorityLevels: 2, defaultPriorityLevel: 2 }, 1) });
    const order: number[] = [];
    const track = (v: number, priority?: number) => b.submit(input(v), { priority }).then(() => order.push(v));
    const all = [track(1), track(2), track(3), track(4, 1)];
    await until(() => engine.waiting === 1);
    for (let i = 0; i < 4; i++) {
      await until(() => engine.waiting === 1);
      engine.release();
    }
    await Promise.all(all);
    assert.deepEqual(engine.batches.map((x) => x[0]), [1, 4, 2, 3]);
    assert.deepEqual(order, [1, 4, 2, 3]);
    await b.close();
  });

  it('queue full: a level over maxQueueSize rejects with OSPREY_ERR_QUEUE_FULL and keeps serving', async () => {
    const engine = new FakeEngine(true);
    const b = new DynamicBatcher({ name: 't', engines: [engine], maxBatchSize: 1, dynamicBatching: db({ defaultQueuePolicy: { maxQueueSize: 1 } }, 1) });
    const a = b.submit(input(1)); // dispatched
    await until(() => engine.waiting === 1);
    const queued = b.submit(input(2)); // queued (1 of 1)
    await rejectsWith(b.submit(input(3)), 'OSPREY_ERR_QUEUE_FULL');
    engine.release();
    await a;
    await until(() => engine.waiting === 1);
    engine.release();
    await queued;
    assert.equal(b.stats().rejected.OSPREY_ERR_QUEUE_FULL, 1);
    await b.close();
  });

  it('timeout with REJECT: a request over its queue timeout fails with OSPREY_ERR_TIMEOUT; others still run', async () => {
    const engine = new FakeEngine(true);
    const b = new DynamicBatcher({ name: 't', engines: [engine], maxBatchSize: 1, dynamicBatching: db({ defaultQueuePolicy: { defaultTimeoutMicroseconds: 20_000 } }, 1) });
    const a = b.submit(input(1));
    await until(() => engine.waiting === 1);
    await rejectsWith(b.submit(input(2)), 'OSPREY_ERR_TIMEOUT');
    engine.release();
    await a;
    assert.equal(b.stats().pendingRequests, 0);
    await b.close();
  });

  it('a request timeout only applies with allowTimeoutOverride', async () => {
    const engine = new FakeEngine(true);
    const strict = new DynamicBatcher({ name: 't', engines: [engine], maxBatchSize: 1, dynamicBatching: db({}, 1) });
    const a = strict.submit(input(1));
    await until(() => engine.waiting === 1);
    const b2 = strict.submit(input(2), { timeoutMicroseconds: 1000 });
    await new Promise((r) => setTimeout(r, 20));
    engine.release();
    await a;
    await until(() => engine.waiting === 1);
    engine.release();
    assert.equal((await b2).batchSize, 1); // not timed out: override not allowed

    const engine2 = new FakeEngine(true);
    const lenient = new DynamicBatcher({ name: 't', engines: [engine2], maxBatchSize: 1, dynamicBatching: db({ defaultQueuePolicy: { allowTimeoutOverride: true } }, 1) });
    const c = lenient.submit(input(1));
    await until(() => engine2.waiting === 1);
    await rejectsWith(lenient.submit(input(2), { timeoutMicroseconds: 1000 }), 'OSPREY_ERR_TIMEOUT');
    engine2.release();
    await c;
    await strict.close();
    await lenient.close();
  });

  it('timeout with DELAY: a timed-out request runs after the requests that did not time out', async () => {
    const engine = new FakeEngine(true);
    const b = new DynamicBatcher({ name: 't', engines: [engine], maxBatchSize: 1, dynamicBatching: db({ defaultQueuePolicy: { timeoutAction: 'DELAY', defaultTimeoutMicroseconds: 5_000 } }, 1) });
    const a = b.submit(input(1));
    await until(() => engine.waiting === 1);
    const late = b.submit(input(2));
    await new Promise((r) => setTimeout(r, 30)); // request 2 is now delayed
    const fresh = b.submit(input(3));
    for (let i = 0; i < 3; i++) {
      await until(() => engine.waiting === 1);
      engine.release();
    }
    await Promise.all([a, late, fresh]);
    assert.deepEqual(engine.batches.map((x) => x[0]), [1, 3, 2]);
    await b.close();
  });

  it('feeds every instance: two instances run two batches at once', async () => {
    const e1 = new FakeEngine(true);
    const e2 = new FakeEngine(true);
    const b = new DynamicBatcher({ name: 't', engines: [e1, e2], maxBatchSize: 2, dynamicBatching: db({}, 2) });
    const all = [b.submit(input(1)), b.submit(input(2)), b.submit(input(3))];
    await until(() => e1.waiting === 1 && e2.waiting === 1);
    assert.equal(b.stats().instances.filter((i) => i.busy).length, 2);
    e1.release();
    e2.release();
    await until(() => e1.waiting + e2.waiting === 1);
    e1.release();
    e2.release();
    await Promise.all(all);
    assert.equal(b.stats().inferenceCount, 3);
    await b.close();
  });

  it('an engine failure fails only that batch; the next batch runs', async () => {
    const engine = new FakeEngine();
    const b = new DynamicBatcher({ name: 't', engines: [engine], maxBatchSize: 2, dynamicBatching: db({ maxQueueDelayMicroseconds: 10_000_000 }, 2) });
    engine.failNext = true;
    const failed = [b.submit(input(1)), b.submit(input(2))];
    for (const f of failed) await rejectsWith(f, 'OSPREY_ERR_INFERENCE_FAILED');
    const ok = await Promise.all([b.submit(input(3)), b.submit(input(4))]);
    assert.equal(ok.length, 2);
    assert.equal(b.stats().fail.count, 2);
    await b.close();
  });

  it('pads a batch to a fixed model batch axis and returns only the real rows', async () => {
    const engine = new FakeEngine();
    const b = new DynamicBatcher({ name: 't', engines: [engine], maxBatchSize: 4, fixedBatchSize: 4, dynamicBatching: null });
    const r = await b.submit(input(7));
    assert.deepEqual(engine.batches, [[7, 0, 0, 0]]);
    assert.deepEqual(r.outputs.y!.dims, [1, 2]);
    await b.close();
  });

  it('bad submits: priority out of range, batch over maxBatchSize, inconsistent batch axis', async () => {
    const b = new DynamicBatcher({ name: 't', engines: [new FakeEngine()], maxBatchSize: 2, dynamicBatching: db({ priorityLevels: 2 }, 2) });
    await rejectsWith(b.submit(input(1), { priority: 3 }), 'OSPREY_ERR_INVALID_ARGUMENT');
    await rejectsWith(b.submit(input(1, 3)), 'OSPREY_ERR_INVALID_TENSOR');
    await rejectsWith(
      b.submit({ x: input(1).x!, z: { type: 'float32', dims: [2, 2], data: new Float32Array(4) } }),
      'OSPREY_ERR_INVALID_TENSOR',
    );
    await b.close();
  });

  it('close() runs what is queued, then refuses new requests with OSPREY_ERR_MODEL_NOT_READY', async () => {
    const engine = new FakeEngine();
    const b = new DynamicBatcher({ name: 't', engines: [engine], maxBatchSize: 8, dynamicBatching: db({ maxQueueDelayMicroseconds: 10_000_000 }) });
    const queued = [b.submit(input(1)), b.submit(input(2))];
    await b.close();
    assert.equal((await Promise.all(queued)).length, 2);
    await rejectsWith(b.submit(input(3)), 'OSPREY_ERR_MODEL_NOT_READY');
  });
});
