/**
 * `osprey bench profile`: the trace summary (pure), and a real profile of yolov8n on ORT's CPU EP.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { formatProfile, profileModel, summarizeOrtTrace } from '../../src/bench/ort-profile.js';
import { isOspreyError } from '../../src/core/errors.js';

const MODEL = fileURLToPath(new URL('../../../shared/data/models/yolov8n.onnx', import.meta.url));

test('summarizeOrtTrace: warm-up runs dropped by run index, time per run per op type and per node', () => {
  const ev = (cat: string, name: string, ts: number, dur: number, op?: string) => ({ cat, name, ts, dur, ...(op ? { args: { op_name: op } } : {}) });
  const events = [
    ev('Session', 'model_run', 0, 100),
    ev('Node', 'a_kernel_time', 10, 50, 'Conv'), // warm-up: dropped
    ev('Session', 'model_run', 200, 100),
    ev('Node', 'a_kernel_time', 210, 3000, 'Conv'),
    ev('Node', 'b_kernel_time', 220, 1000, 'Softmax'),
    ev('Node', 'b_fence_before', 221, 5, 'Softmax'), // not a kernel event
    ev('Session', 'model_run', 400, 100),
    ev('Node', 'a_kernel_time', 410, 1000, 'Conv'),
    ev('Node', 'c_kernel_time', 420, 1000, 'Conv'),
  ];
  const s = summarizeOrtTrace(events, 1);
  assert.equal(s.runs, 2);
  assert.equal(s.kernelMsPerRun, 3); // 6000 µs over 2 runs
  assert.deepEqual(s.operators, [
    { opType: 'Conv', msPerRun: 2.5, share: 0.8333, nodes: 2 },
    { opType: 'Softmax', msPerRun: 0.5, share: 0.1667, nodes: 1 },
  ]);
  assert.deepEqual(s.topNodes.map((n) => [n.node, n.msPerRun]), [['a', 2], ['b', 0.5], ['c', 0.5]]);
  assert.throws(() => summarizeOrtTrace(events, 3), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_INTERNAL'));
});

test('profileModel: yolov8n on the CPU EP; op times add up to the kernel time; the optimized graph is what ORT ran', async () => {
  const r = await profileModel({ model: MODEL, runs: 3, command: 'test' });
  assert.equal(r.kind, 'osprey-bench-profile');
  assert.equal(r.settings.runs, 3);
  const sum = r.operators.reduce((a, o) => a + o.msPerRun, 0);
  assert.ok(Math.abs(sum - r.kernelMsPerRun) < 0.01 * r.kernelMsPerRun + 0.01, `${sum} vs ${r.kernelMsPerRun}`);
  assert.ok(r.kernelMsPerRun <= r.runMs.mean * 1.05, 'kernels fit in the run');
  const conv = r.operators.find((o) => o.opType === 'Conv')!;
  assert.ok(conv.share > 0.4, `Conv is most of an FP32 YOLO: ${conv.share}`);
  assert.ok((r.optimizedGraph['com.microsoft.nchwc.Conv'] ?? 0) >= 60, JSON.stringify(r.optimizedGraph)); // NCHWc convolutions
  assert.ok(Object.keys(r.optimizedGraph).some((k) => /QuickGelu/.test(k)), 'ORT fused SiLU into QuickGelu');
  assert.match(formatProfile(r), /operator\s+ms\/run/);
  await assert.rejects(profileModel({ model: MODEL, runs: 0, command: 'test' }), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_USAGE'));
});
