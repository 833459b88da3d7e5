/**
 * `osprey bench profile`: where ONNX Runtime spends a model's time, operator by operator (trtexec's `--dumpProfile`).
 *
 * One session with ORT's own profiler (`enableProfiling`: a Chrome-trace JSON with one `<node>_kernel_time` event per
 * node per run, in µs) and `optimizedModelFilePath` (the graph ORT actually runs, after its fusions: QDQ → QLinearConv,
 * NCHWc layouts, …). ORT profiles from the session's creation, so the warm-up runs are dropped by run index: only the
 * kernel events after the first profiled `model_run` are summed, and divided by the number of profiled runs.
 * The input is a deterministic pseudo-random image (uint8 NHWC or float32 NCHW in [0, 1], from the model's input).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { OspreyError } from '../core/errors.js';
import { readOnnxModel } from '../onnx/model.js';
import { resolveModelPath } from './engine-bench.js';
import { mean, percentile, round } from './stats.js';
import { benchEnvironment, HostCpuSampler, sha256File } from './system.js';
import type { BenchEnvironment } from './result.js';

/** Time of one operator type per run. */
export interface OperatorTime {
  /** ORT kernel name, e.g. `QLinearConv`, `Conv` (NCHWc), `ReorderInput`, `Softmax`. */
  opType: string;
  /** Mean time per run over the profiled runs, ms. */
  msPerRun: number;
  /** Share of the summed kernel time, 0..1. */
  share: number;
  /** Nodes of this type in the optimized graph that ran. */
  nodes: number;
}

/** The JSON `osprey bench profile` writes. */
export interface OrtProfileResult {
  kind: 'osprey-bench-profile';
  schemaVersion: 1;
  model: { name: string; path: string; sha256: string; precision?: string };
  environment: BenchEnvironment;
  settings: { runs: number; warmupRuns: number; intraOpNumThreads: number; input: string };
  /** `session.run` wall time per profiled run, ms (median / mean / min). */
  runMs: { median: number; mean: number; min: number };
  /** Summed kernel time per run, ms. */
  kernelMsPerRun: number;
  operators: OperatorTime[];
  /** The slowest nodes: name, op type, ms per run, input/output shapes as ORT recorded them. */
  topNodes: Array<{ node: string; opType: string; msPerRun: number; shapes: string }>;
  /** Node count per op type (with its domain when not ai.onnx) in the graph ORT runs (`optimizedModelFilePath`). */
  optimizedGraph: Record<string, number>;
  /** CPU used by other processes during the profiled runs (cores), null without /proc/stat. */
  otherProcessesCores: number | null;
}

interface TraceEvent {
  cat?: string;
  name?: string;
  dur?: number;
  ts?: number;
  args?: { op_name?: string; input_type_shape?: unknown; output_type_shape?: unknown };
}

/**
 * Summarizes an ORT profile trace: per op type and per node, over the model runs after the first `skipRuns`.
 * Pure (exported for tests).
 */
export function summarizeOrtTrace(events: readonly TraceEvent[], skipRuns: number): Pick<OrtProfileResult, 'kernelMsPerRun' | 'operators' | 'topNodes'> & { runs: number } {
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((a, b) => (a.ts ?? 0) - (b.ts ?? 0));
  const kept = runs.slice(skipRuns);
  if (kept.length === 0) throw new OspreyError('OSPREY_ERR_INTERNAL', `the ORT profile holds ${runs.length} runs, none after the ${skipRuns} warm-up runs`);
  const from = kept[0]!.ts ?? 0;
  const byOp = new Map<string, { us: number; nodes: Set<string> }>();
  const byNode = new Map<string, { op: string; us: number; shapes: string }>();
  let total = 0;
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time') || (e.ts ?? 0) < from) continue;
    const op = e.args?.op_name ?? '?';
    const node = e.name.slice(0, -'_kernel_time'.length);
    const o = byOp.get(op) ?? { us: 0, nodes: new Set<string>() };
    o.us += e.dur ?? 0;
    o.nodes.add(node);
    byOp.set(op, o);
    const n = byNode.get(node) ?? { op, us: 0, shapes: `${JSON.stringify(e.args?.input_type_shape ?? [])} → ${JSON.stringify(e.args?.output_type_shape ?? [])}` };
    n.us += e.dur ?? 0;
    byNode.set(node, n);
    total += e.dur ?? 0;
  }
  const perRun = (us: number) => round(us / kept.length / 1000, 3);
  return {
    runs: kept.length,
    kernelMsPerRun: perRun(total),
    operators: [...byOp]
      .sort((a, b) => b[1].us - a[1].us)
      .map(([opType, o]) => ({ opType, msPerRun: perRun(o.us), share: round(total > 0 ? o.us / total : 0, 4), nodes: o.nodes.size })),
    topNodes: [...byNode]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, 15)
      .map(([node, n]) => ({ node, opType: n.op, msPerRun: perRun(n.us), shapes: n.shapes })),
  };
}

/**
 * Profiles a model on ORT's CPU EP.
 * @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND_FILE`, `OSPREY_ERR_INVALID_MODEL` (ORT refuses it), `OSPREY_ERR_USAGE` (runs < 1).
 */
export async function profileModel(o: { model: string; runs: number; warmupRuns?: number; intraOpNumThreads?: number; command: string }): Promise<OrtProfileResult> {
  if (!Number.isInteger(o.runs) || o.runs < 1) throw new OspreyError('OSPREY_ERR_USAGE', `--runs must be a positive integer, got ${o.runs}`, {});
  const warmupRuns = o.warmupRuns ?? 3;
  const resolved = await resolveModelPath(o.model);
  const work = mkdtempSync(join(tmpdir(), 'osprey-profile-'));
  try {
    const optimized = join(work, 'optimized.onnx');
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(resolved.onnxPath, {
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
        optimizedModelFilePath: optimized,
        enableProfiling: true,
        profileFilePrefix: join(work, 'profile'),
        logSeverityLevel: 3,
        ...(o.intraOpNumThreads ? { intraOpNumThreads: o.intraOpNumThreads } : {}),
      });
    } catch (err) {
      throw new OspreyError('OSPREY_ERR_INVALID_MODEL', `ONNX Runtime cannot load ${resolved.onnxPath}: ${(err as Error).message}`, {}, { cause: err });
    }
    const meta = session.inputMetadata[0] as { type?: string; shape?: ReadonlyArray<number | string> } | undefined;
    const shape = (meta?.shape ?? []).map((d) => (typeof d === 'number' && d > 0 ? d : 1));
    const count = shape.reduce((a, b) => a * b, 1);
    const isU8 = meta?.type === 'uint8';
    const pixels = Uint8Array.from({ length: count }, (_, i) => (i * 2654435761) >>> 24);
    const tensor = isU8 ? new ort.Tensor('uint8', pixels, shape) : new ort.Tensor('float32', Float32Array.from(pixels, (v) => v / 255), shape);
    const feeds = { [session.inputNames[0]!]: tensor };
    const cpu = new HostCpuSampler();
    const times: number[] = [];
    for (let i = 0; i < warmupRuns; i++) await session.run(feeds);
    const before = cpu.read();
    for (let i = 0; i < o.runs; i++) {
      const t0 = performance.now();
      await session.run(feeds);
      times.push(performance.now() - t0);
    }
    const usage = cpu.since(before);
    session.endProfiling();
    await session.release();
    const traceFile = readdirSync(work).find((f) => f.startsWith('profile') && f.endsWith('.json'));
    if (!traceFile) throw new OspreyError('OSPREY_ERR_INTERNAL', 'ONNX Runtime wrote no profile file');
    const summary = summarizeOrtTrace(JSON.parse(readFileSync(join(work, traceFile), 'utf8')) as TraceEvent[], warmupRuns);
    const optimizedGraph: Record<string, number> = {};
    for (const n of readOnnxModel(optimized).graph.node) {
      const k = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.op_type}` : (n.op_type ?? '?');
      optimizedGraph[k] = (optimizedGraph[k] ?? 0) + 1;
    }
    return {
      kind: 'osprey-bench-profile',
      schemaVersion: 1,
      model: { name: resolved.name, path: o.model, sha256: await sha256File(resolved.onnxPath), ...(resolved.precision ? { precision: resolved.precision } : {}) },
      environment: await benchEnvironment('cpu', o.command),
      settings: { runs: o.runs, warmupRuns, intraOpNumThreads: o.intraOpNumThreads ?? 0, input: `${isU8 ? 'uint8' : 'float32'} ${JSON.stringify(shape)}, pseudo-random pixels` },
      runMs: { median: round(percentile(times, 50), 3), mean: round(mean(times), 3), min: round(Math.min(...times), 3) },
      kernelMsPerRun: summary.kernelMsPerRun,
      operators: summary.operators,
      topNodes: summary.topNodes,
      optimizedGraph: Object.fromEntries(Object.entries(optimizedGraph).sort((a, b) => b[1] - a[1])),
      otherProcessesCores: usage ? round(usage.otherProcessesCores, 3) : null,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The text `osprey bench profile` prints. */
export function formatProfile(r: OrtProfileResult): string {
  const lines = [
    `${r.model.name} (${r.model.precision ?? '?'}) on ${r.environment.device}, ONNX Runtime ${r.environment.onnxRuntimeVersion} CPU EP; ${r.settings.runs} runs after ${r.settings.warmupRuns} warm-up`,
    `session.run median ${r.runMs.median.toFixed(2)} ms (min ${r.runMs.min.toFixed(2)}); kernels ${r.kernelMsPerRun.toFixed(2)} ms per run` +
      (r.otherProcessesCores !== null ? `; other processes used ${r.otherProcessesCores.toFixed(2)} cores meanwhile` : ''),
    '',
    'operator                      ms/run   share  nodes',
    ...r.operators.map((o) => `${o.opType.padEnd(28)} ${o.msPerRun.toFixed(2).padStart(7)} ${(o.share * 100).toFixed(1).padStart(6)}%  ${String(o.nodes).padStart(5)}`),
    '',
    'slowest nodes:',
    ...r.topNodes.slice(0, 8).map((n) => `  ${n.msPerRun.toFixed(2).padStart(6)} ms  ${n.opType.padEnd(16)} ${n.node}`),
    '',
    `optimized graph: ${Object.entries(r.optimizedGraph).map(([k, v]) => `${v} ${k}`).join(', ')}`,
  ];
  return lines.join('\n') + '\n';
}
