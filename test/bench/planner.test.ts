import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computePlan, ceilTolerant, formatPlan, type PlanPoint } from '../../src/bench/planner.js';
import { isOspreyError } from '../../src/core/errors.js';

const pt = (batchSize: number, instances: number, imagesPerSecond: number, p99Ms: number, memoryBytes?: number): PlanPoint => ({
  label: `batch ${batchSize} × ${instances}`,
  source: 'test',
  batchSize,
  instances,
  imagesPerSecond,
  p99Ms,
  ...(memoryBytes !== undefined ? { memoryBytes, memoryKind: 'gpu' as const } : {}),
});
const GIB = 2 ** 30;

test('plan: the seeds worked example — 64 streams × 10 fps at 80 fps per T4, redundancy 1.5 → 12', () => {
  const p = computePlan({ streams: 64, fps: 10, throughput: 80, redundancy: 1.5 });
  assert.equal(p.totalQps, 640);
  assert.equal(p.ratio, 8);
  assert.equal(p.unitsWithoutRedundancy, 8);
  assert.equal(p.unitsExact, 12);
  assert.equal(p.gpus, 12);
  assert.ok(p.arithmetic.some((l) => l.includes('64 streams × 10 fps = 640')));
  assert.ok(p.arithmetic.some((l) => l.includes('⌈8 × 1.5⌉ = ⌈12⌉ = 12')));
  // default redundancy is 1.5
  assert.equal(computePlan({ qps: 640, throughput: 80 }).gpus, 12);
});

test('plan: rounding happens once, after the redundancy', () => {
  const p = computePlan({ qps: 650, throughput: 80, redundancy: 1.5 });
  assert.equal(p.unitsWithoutRedundancy, 9); // ⌈8.125⌉
  assert.equal(p.gpus, 13); // ⌈12.1875⌉, not ⌈8.125⌉ × 1.5 = 13.5 → 14
  assert.equal(ceilTolerant(0.1 * 3 * 10), 3); // 3.0000000000000004 is 3
  assert.equal(computePlan({ qps: 1, throughput: 1000, redundancy: 1 }).gpus, 1);
});

test('plan: picks the best throughput whose p99 meets the SLO, recommends batch/instances/queue delay', () => {
  const points = [pt(1, 1, 50, 30), pt(4, 1, 90, 60), pt(4, 2, 120, 95), pt(8, 2, 150, 140)];
  const p = computePlan({ streams: 64, fps: 10, sloP99Ms: 100, points });
  assert.equal(p.selected?.imagesPerSecond, 120);
  assert.equal(p.perUnitQps, 120);
  assert.equal(p.gpus, Math.ceil((640 / 120) * 1.5)); // 8
  assert.equal(p.recommended.batchSize, 4);
  assert.equal(p.recommended.instances, 2);
  // headroom 100 − 95 = 5 ms; fill (4−1)/(640/8) s = 37.5 ms → 5 ms
  assert.equal(p.recommended.maxQueueDelayMicroseconds, 5000);
  assert.equal(p.candidates.filter((c) => c.meetsSlo).length, 3);
  assert.match(formatPlan(p), /GPUs needed: 8/);
});

test('plan: queue delay capped by the batch fill time; batch 1 gets 0', () => {
  const p = computePlan({ qps: 1000, sloP99Ms: 100, redundancy: 1, points: [pt(4, 1, 500, 20)] });
  // 2 units, 500/s each: fill = 3/500 s = 6 ms < headroom 80 ms
  assert.equal(p.gpus, 2);
  assert.equal(p.recommended.maxQueueDelayMicroseconds, 6000);
  const q = computePlan({ qps: 100, sloP99Ms: 100, points: [pt(1, 1, 500, 20)] });
  assert.equal(q.recommended.maxQueueDelayMicroseconds, 0);
});

test('plan: infeasible SLO → OSPREY_ERR_PLAN_INFEASIBLE naming the best p99 and what would work', () => {
  const points = [pt(1, 1, 7, 140), pt(4, 1, 9, 480)];
  assert.throws(
    () => computePlan({ streams: 64, fps: 10, sloP99Ms: 100, points }),
    (e: unknown) => {
      assert.ok(isOspreyError(e, 'OSPREY_ERR_PLAN_INFEASIBLE'));
      assert.match(e.message, /best p99 measured is 140 ms at batch 1 × 1/);
      assert.match(e.message, /relax the SLO to ≥ 140 ms/);
      assert.equal(e.details.minimumFeasibleSloMs, 140);
      return true;
    },
  );
  // best p99 at a larger batch than measured minimum → suggests smaller batches
  assert.throws(() => computePlan({ qps: 10, sloP99Ms: 10, points: [pt(4, 1, 9, 40), pt(8, 1, 9, 80)] }), /measure smaller batches/);
});

test('plan: memory limit excludes configurations; all excluded → infeasible with the instance count that fits', () => {
  const points = [pt(1, 1, 100, 20, 3 * GIB), pt(1, 4, 300, 40, 12 * GIB)];
  const p = computePlan({ qps: 600, sloP99Ms: 100, gpuMemoryGb: 8, points });
  assert.equal(p.selected?.instances, 1); // the 4-instance point needs 12 GiB > 8
  assert.equal(p.candidates[1]!.fitsMemory, false);
  assert.equal(p.candidates[1]!.perInstanceMemoryBytes, 3 * GIB);
  assert.throws(
    () => computePlan({ qps: 600, sloP99Ms: 100, gpuMemoryGb: 2, points }),
    (e: unknown) => {
      assert.ok(isOspreyError(e, 'OSPREY_ERR_PLAN_INFEASIBLE'));
      assert.match(e.message, /need more memory than --gpu-memory-gb 2/);
      assert.match(e.message, /at most 0 instance/);
      return true;
    },
  );
});

test('plan: zero or negative figures → OSPREY_ERR_USAGE', () => {
  for (const req of [
    { streams: 0, fps: 10, throughput: 80 },
    { streams: 64, fps: -1, throughput: 80 },
    { qps: 640, throughput: 0 },
    { qps: 640, throughput: 80, redundancy: 0.5 },
    { qps: -5, throughput: 80 },
    { qps: 640, sloP99Ms: 0, points: [pt(1, 1, 1, 1)] },
    { qps: 640 }, // no throughput
    { streams: 64, throughput: 80 }, // no fps
    { qps: 640, streams: 64, fps: 10, throughput: 80 }, // both
    { qps: 640, points: [pt(1, 1, 1, 1)] }, // bench without SLO
  ]) {
    assert.throws(() => computePlan(req), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_USAGE'), JSON.stringify(req));
  }
});

test('plan: a per-host figure (measured on 2 GPUs of one host together) plans hosts, not 2 × a one-GPU figure', () => {
  // the points are written here as a multi-GPU bench result would yield them (planPoints); figures are inputs, not measurements
  const host2: PlanPoint = { ...pt(32, 4, 3000, 40), gpus: 2, label: 'batch 32 × 4 instances on each of 2 GPUs' };
  const p = computePlan({ qps: 12000, sloP99Ms: 50, redundancy: 1.5, points: [host2] });
  assert.equal(p.hosts, 6); // ⌈12000 ÷ 3000 × 1.5⌉
  assert.equal(p.gpusPerHost, 2);
  assert.equal(p.gpus, 12);
  assert.equal(p.unitName, 'host of 2 GPUs');
  assert.ok(p.arithmetic.some((l) => l === 'GPUs: 6 hosts × 2 GPUs = 12 (the measured per-host figure, not 2 × a one-GPU figure)'), p.arithmetic.join('\n'));
  assert.match(formatPlan(p), /GPUs needed: 12 \(6 hosts × 2 GPUs, from the per-host figure\)/);
  // with a one-GPU figure too, the better per-GPU figure wins: 1600 img/s on one GPU beats 3000 / 2 = 1500 per GPU
  const one = computePlan({ qps: 12000, sloP99Ms: 50, redundancy: 1.5, points: [host2, pt(32, 4, 1600, 40)] });
  assert.equal(one.hosts, null);
  assert.equal(one.gpus, 12); // ⌈7.5 × 1.5⌉ = ⌈11.25⌉
  const two = computePlan({ qps: 12000, sloP99Ms: 50, redundancy: 1.5, points: [host2, pt(32, 4, 1400, 40)] });
  assert.equal(two.hosts, 6);
});
