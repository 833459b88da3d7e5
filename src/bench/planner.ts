/**
 * SLO-based capacity planning (`osprey plan`). Pure TS, no I/O.
 *
 * The rule ("measure, then plan"):
 *
 *   totalQps        = streams × fps            (or --qps)
 *   perUnitQps      = the throughput one GPU (or CPU node) sustains **at the latency target**: the best measured
 *                     configuration whose p99 ≤ SLO (and whose memory fits), or a figure given with --throughput
 *   unitsExact      = totalQps ÷ perUnitQps × redundancy
 *   gpus            = ⌈unitsExact⌉
 *
 * Rounding order: the ceiling is taken **once, after** multiplying by the redundancy (the formula as written,
 * GPUs = ⌈(QPS ÷ throughput) × redundancy⌉). `unitsWithoutRedundancy = ⌈totalQps ÷ perUnitQps⌉` is reported
 * beside it. The seeds' example gives the same answer both ways: 64 × 10 = 640 fps; 640 ÷ 80 = 8 T4s;
 * 8 × 1.5 = 12 → 12. Where they differ (650 fps: ⌈8.125 × 1.5⌉ = ⌈12.19⌉ = 13, against ⌈8.125⌉ × 1.5 = 13.5 → 14)
 * rounding once is the smaller answer that still provides the stated redundancy. The ceiling ignores float noise
 * below 1e-9 (so 12.000000000000002 is 12).
 *
 * Throughput at the SLO: **the best measured point meeting p99 ≤ SLO**, no interpolation between points. The
 * points are discrete configurations (batch × instances × queue delay) or load steps; interpolating would claim a
 * throughput nobody observed, and past the knee throughput falls while latency climbs (Triton's own numbers), so
 * a straight line between two points is not a safe estimate. Ties in throughput go to the lower p99.
 *
 * Recommended max queue delay (dynamic batching): the latency headroom left by the point, SLO − p99, capped by the
 * time one unit needs to collect a full batch at its planned share of the traffic, (batch − 1) ÷ (totalQps ÷ gpus);
 * 0 for batch 1. Points measured through a server with a queue delay already (bench search/server) keep theirs.
 *
 * Memory: with `gpuMemoryGb` (GiB = 2^30 bytes, the unit nvidia-smi's MiB figures add up to), a configuration fits
 * when instances × per-instance memory ≤ the limit; per-instance memory = the point's measured memory ÷ its
 * instances (GPU memory when measured, else host RSS growth for CPU results). Points without a measurement are
 * kept and flagged.
 */
import { OspreyError } from '../core/errors.js';

/** One measured operating point a plan can pick. */
export interface PlanPoint {
  /** Human label, e.g. "batch 4 × 2 instances" or "concurrency 8". */
  label: string;
  /** File (or source) the point came from. */
  source: string;
  /** Images per inference call (max batch size for server points). */
  batchSize: number;
  /** Engine instances on the unit. */
  instances: number;
  /** Max queue delay the point was measured with (server/search points). */
  maxQueueDelayMicroseconds?: number;
  /** Client concurrency of the load step (server/search points). */
  concurrency?: number;
  /** Measured throughput of the whole unit, images per second. */
  imagesPerSecond: number;
  /** Measured p99 latency, milliseconds (per request; per batch call for engine bench). */
  p99Ms: number;
  /** Measured memory of the configuration (all instances), bytes. */
  memoryBytes?: number;
  /** Which memory `memoryBytes` is. */
  memoryKind?: 'gpu' | 'host';
  /**
   * GPUs of one host the figure was measured on together (`--gpus 0,1`, `instance_group[].gpus`): a per-host figure.
   * Absent = one GPU (or one CPU node).
   */
  gpus?: number;
}

export interface PlanRequest {
  /** Number of camera streams (with fps). */
  streams?: number;
  /** Frames per second per stream (with streams). */
  fps?: number;
  /** Total queries (images) per second, instead of streams × fps. */
  qps?: number;
  /** Latency target, p99 in milliseconds. Required with points; optional with `throughput`. */
  sloP99Ms?: number;
  /** Redundancy factor ≥ 1. Default 1.5. */
  redundancy?: number;
  /** A per-unit throughput figure (images/s) given directly, instead of measured points. */
  throughput?: number;
  /** Memory per unit in GiB; configurations that need more are excluded. */
  gpuMemoryGb?: number;
  /** Measured points (from bench files). */
  points?: readonly PlanPoint[];
  /** What one unit is. Default 'gpu'. */
  unit?: 'gpu' | 'cpu';
}

export interface PlanCandidate {
  point: PlanPoint;
  meetsSlo: boolean;
  fitsMemory: boolean | null;
  perInstanceMemoryBytes: number | null;
  reason: string;
}

export interface Plan {
  /** Every input, as used (defaults filled in). */
  inputs: {
    streams: number | null;
    fps: number | null;
    qps: number | null;
    sloP99Ms: number | null;
    redundancy: number;
    throughput: number | null;
    gpuMemoryGb: number | null;
    unit: 'gpu' | 'cpu';
    pointsConsidered: number;
  };
  /** "GPU" or "CPU node". */
  unitName: string;
  totalQps: number;
  perUnitQps: number;
  /** totalQps ÷ perUnitQps, before any rounding. */
  ratio: number;
  /** ⌈ratio⌉: units with no redundancy. */
  unitsWithoutRedundancy: number;
  /** ratio × redundancy, before rounding. */
  unitsExact: number;
  /** ⌈ratio × redundancy⌉: the answer. Named `gpus` as the issue asks, also for CPU nodes; with a per-host figure, hosts × GPUs per host. */
  gpus: number;
  /** With a per-host figure (measured on several GPUs of one host): the hosts, and GPUs in each; else null. */
  hosts: number | null;
  gpusPerHost: number | null;
  /** Planned share of the traffic per unit: totalQps ÷ gpus (images/s). */
  qpsPerUnit: number;
  /** Planned utilisation of each unit: qpsPerUnit ÷ perUnitQps. */
  utilization: number;
  /** The configuration chosen (null when the throughput was given directly). */
  selected: PlanPoint | null;
  recommended: { batchSize: number | null; instances: number | null; maxQueueDelayMicroseconds: number | null };
  candidates: PlanCandidate[];
  /** The arithmetic, one line per step, as printed. */
  arithmetic: string[];
  notes: string[];
}

const GIB = 2 ** 30;
const EPS = 1e-9;

/** ⌈x⌉ ignoring float noise below 1e-9. */
export function ceilTolerant(x: number): number {
  return Math.ceil(x - EPS);
}

function fmt(v: number, digits = 2): string {
  if (Number.isInteger(v)) return String(v);
  return String(Math.round(v * 10 ** digits) / 10 ** digits);
}

function positive(name: string, v: number | undefined, allowZero = false): void {
  if (v === undefined) return;
  if (!Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new OspreyError('OSPREY_ERR_USAGE', `${name} must be a positive number, got ${v}`, { option: name, value: v });
  }
}

/**
 * Computes a capacity plan.
 *
 * @example
 *   computePlan({ streams: 64, fps: 10, throughput: 80, redundancy: 1.5 }).gpus // 12
 * @throws OspreyError `OSPREY_ERR_USAGE` for missing/zero/negative inputs (e.g. neither qps nor streams × fps).
 * @throws OspreyError `OSPREY_ERR_PLAN_INFEASIBLE` when no measured point meets the SLO (or fits the memory);
 *   the message names the best p99 measured and what would work.
 */
export function computePlan(req: PlanRequest): Plan {
  positive('--streams', req.streams);
  positive('--fps', req.fps);
  positive('--qps', req.qps);
  positive('--slo-p99-ms', req.sloP99Ms);
  positive('--throughput', req.throughput);
  positive('--gpu-memory-gb', req.gpuMemoryGb);
  const redundancy = req.redundancy ?? 1.5;
  if (!Number.isFinite(redundancy) || redundancy < 1) {
    throw new OspreyError('OSPREY_ERR_USAGE', `--redundancy must be ≥ 1 (1 = no spare capacity), got ${redundancy}`, { option: '--redundancy', value: redundancy });
  }
  const unit = req.unit ?? 'gpu';
  let unitName = unit === 'gpu' ? 'GPU' : 'CPU node';
  let unitsName = unit === 'gpu' ? 'GPUs' : 'CPU nodes';
  /** Set when the selected figure is per host (measured on several GPUs together): units are then hosts. */
  let gpusPerHost: number | null = null;
  const arithmetic: string[] = [];
  const notes: string[] = [];

  // ---- demand ----
  let totalQps: number;
  if (req.qps !== undefined) {
    if (req.streams !== undefined || req.fps !== undefined) {
      throw new OspreyError('OSPREY_ERR_USAGE', 'give either --qps or --streams with --fps, not both', {});
    }
    totalQps = req.qps;
    arithmetic.push(`demand: ${fmt(totalQps)} images/s (--qps)`);
  } else {
    if (req.streams === undefined || req.fps === undefined) {
      throw new OspreyError('OSPREY_ERR_USAGE', 'the demand is missing: give --streams and --fps (or --qps)', {});
    }
    totalQps = req.streams * req.fps;
    arithmetic.push(`demand: ${fmt(req.streams)} streams × ${fmt(req.fps)} fps = ${fmt(totalQps)} images/s`);
  }

  // ---- supply per unit ----
  const candidates: PlanCandidate[] = [];
  let selected: PlanPoint | null = null;
  let perUnitQps: number;
  const points = req.points ?? [];
  if (req.throughput !== undefined) {
    if (points.length > 0) {
      throw new OspreyError('OSPREY_ERR_USAGE', 'give either --throughput or --bench, not both', {});
    }
    perUnitQps = req.throughput;
    arithmetic.push(`throughput per ${unitName}: ${fmt(perUnitQps)} images/s (--throughput, taken as measured at the latency target)`);
  } else {
    if (points.length === 0) {
      throw new OspreyError('OSPREY_ERR_USAGE', 'no throughput: give --bench RESULT.json (from osprey bench) or --throughput N', {});
    }
    if (req.sloP99Ms === undefined) {
      throw new OspreyError('OSPREY_ERR_USAGE', '--slo-p99-ms is required with --bench (throughput is read at the latency target)', {});
    }
    const slo = req.sloP99Ms;
    const limitBytes = req.gpuMemoryGb !== undefined ? req.gpuMemoryGb * GIB : null;
    for (const p of points) {
      const meetsSlo = p.p99Ms <= slo;
      const perInstance = p.memoryBytes !== undefined && p.instances > 0 ? p.memoryBytes / p.instances : null;
      let fitsMemory: boolean | null = null;
      if (limitBytes !== null && perInstance !== null) fitsMemory = p.instances * perInstance <= limitBytes;
      const reasons: string[] = [];
      reasons.push(meetsSlo ? `p99 ${fmt(p.p99Ms)} ms ≤ ${fmt(slo)} ms` : `p99 ${fmt(p.p99Ms)} ms > SLO ${fmt(slo)} ms`);
      if (limitBytes !== null) {
        if (perInstance === null) reasons.push('memory not measured');
        else reasons.push(`${p.instances} × ${fmt(perInstance / GIB, 3)} GiB ${fitsMemory ? '≤' : '>'} ${fmt(req.gpuMemoryGb!)} GiB`);
      }
      candidates.push({ point: p, meetsSlo, fitsMemory, perInstanceMemoryBytes: perInstance, reason: reasons.join('; ') });
    }
    const ok = candidates.filter((c) => c.meetsSlo && c.fitsMemory !== false);
    if (ok.length === 0) throw infeasible(candidates, slo, req.gpuMemoryGb);
    // per GPU, so a 2-GPU host figure competes with 1-GPU figures on what each GPU delivers
    const perGpu = (p: PlanPoint) => p.imagesPerSecond / (p.gpus ?? 1);
    ok.sort((a, b) => perGpu(b.point) - perGpu(a.point) || a.point.p99Ms - b.point.p99Ms);
    selected = ok[0]!.point;
    if (ok[0]!.fitsMemory === null && limitBytes !== null) notes.push(`memory of the selected configuration was not measured; --gpu-memory-gb could not be checked for it`);
    perUnitQps = selected.imagesPerSecond;
    if ((selected.gpus ?? 1) > 1) {
      gpusPerHost = selected.gpus!;
      unitName = `host of ${gpusPerHost} GPUs`;
      unitsName = `hosts of ${gpusPerHost} GPUs`;
    }
    arithmetic.push(
      `throughput per ${unitName} at p99 ≤ ${fmt(slo)} ms: ${fmt(perUnitQps, 1)} images/s — ${selected.label} (p99 ${fmt(selected.p99Ms)} ms), ` +
        `best of ${ok.length} of ${candidates.length} measured configurations meeting the target`,
    );
  }

  // ---- units ----
  const ratio = totalQps / perUnitQps;
  const unitsWithoutRedundancy = ceilTolerant(ratio);
  const unitsExact = ratio * redundancy;
  const units = Math.max(1, ceilTolerant(unitsExact));
  arithmetic.push(`${unitsName} without redundancy: ${fmt(totalQps)} ÷ ${fmt(perUnitQps, 1)} = ${fmt(ratio, 3)} → ⌈${fmt(ratio, 3)}⌉ = ${unitsWithoutRedundancy}`);
  arithmetic.push(`${unitsName} with redundancy: ⌈${fmt(ratio, 3)} × ${fmt(redundancy)}⌉ = ⌈${fmt(unitsExact, 3)}⌉ = ${units}`);
  const gpus = gpusPerHost !== null ? units * gpusPerHost : units;
  if (gpusPerHost !== null) {
    arithmetic.push(`GPUs: ${units} hosts × ${gpusPerHost} GPUs = ${gpus} (the measured per-host figure, not ${gpusPerHost} × a one-GPU figure)`);
  }
  const qpsPerUnit = totalQps / units;
  const utilization = qpsPerUnit / perUnitQps;
  arithmetic.push(`load per ${unitName}: ${fmt(totalQps)} ÷ ${units} = ${fmt(qpsPerUnit, 1)} images/s (${fmt(utilization * 100, 1)}% of ${fmt(perUnitQps, 1)})`);

  // ---- recommendation ----
  let maxQueueDelayMicroseconds: number | null = null;
  if (selected) {
    if (selected.maxQueueDelayMicroseconds !== undefined) {
      maxQueueDelayMicroseconds = selected.maxQueueDelayMicroseconds;
      arithmetic.push(`max queue delay: ${maxQueueDelayMicroseconds} µs (as measured)`);
    } else if (selected.batchSize <= 1) {
      maxQueueDelayMicroseconds = 0;
      arithmetic.push('max queue delay: 0 µs (batch 1 needs no batching wait)');
    } else {
      const headroomMs = Math.max(0, req.sloP99Ms! - selected.p99Ms);
      const fillMs = ((selected.batchSize - 1) / qpsPerUnit) * 1000;
      const delayMs = Math.min(headroomMs, fillMs);
      maxQueueDelayMicroseconds = Math.floor((delayMs * 1000) / 100) * 100;
      arithmetic.push(
        `max queue delay: min(headroom ${fmt(req.sloP99Ms!)} − ${fmt(selected.p99Ms)} = ${fmt(headroomMs)} ms, ` +
          `batch fill (${selected.batchSize} − 1) ÷ ${fmt(qpsPerUnit, 1)}/s = ${fmt(fillMs)} ms) → ${maxQueueDelayMicroseconds} µs`,
      );
    }
  }

  return {
    inputs: {
      streams: req.streams ?? null,
      fps: req.fps ?? null,
      qps: req.qps ?? null,
      sloP99Ms: req.sloP99Ms ?? null,
      redundancy,
      throughput: req.throughput ?? null,
      gpuMemoryGb: req.gpuMemoryGb ?? null,
      unit,
      pointsConsidered: points.length,
    },
    unitName,
    totalQps,
    perUnitQps,
    ratio,
    unitsWithoutRedundancy,
    unitsExact,
    gpus,
    hosts: gpusPerHost !== null ? units : null,
    gpusPerHost,
    qpsPerUnit,
    utilization,
    selected,
    recommended: {
      batchSize: selected?.batchSize ?? null,
      instances: selected?.instances ?? null,
      maxQueueDelayMicroseconds,
    },
    candidates,
    arithmetic,
    notes,
  };
}

/** Rounds up to 2 decimals (a figure the SLO must reach, so never rounded down). */
function ceil2(v: number): number {
  return Math.ceil(v * 100 - 1e-9) / 100;
}

function infeasible(candidates: readonly PlanCandidate[], slo: number, gpuMemoryGb: number | undefined): OspreyError {
  const meeting = candidates.filter((c) => c.meetsSlo);
  if (meeting.length === 0) {
    const best = [...candidates].sort((a, b) => a.point.p99Ms - b.point.p99Ms)[0]!.point;
    const smallest = Math.min(...candidates.map((c) => c.point.batchSize));
    const what =
      best.batchSize > smallest
        ? 'or measure smaller batches / fewer instances'
        : best.batchSize > 1
          ? 'or measure smaller batches (batch 1) / a faster engine (INT8, FP16, GPU)'
          : 'or measure a faster engine (INT8, FP16, a GPU)';
    return new OspreyError(
      'OSPREY_ERR_PLAN_INFEASIBLE',
      `no measured configuration meets p99 ≤ ${fmt(slo)} ms: the best p99 measured is ${fmt(ceil2(best.p99Ms))} ms at ${best.label}; ` +
        `relax the SLO to ≥ ${fmt(ceil2(best.p99Ms))} ms ${what}`,
      { sloP99Ms: slo, bestP99Ms: best.p99Ms, bestConfiguration: best.label, minimumFeasibleSloMs: best.p99Ms },
    );
  }
  // Every configuration meeting the SLO needs more memory than the limit.
  const smallest = [...meeting].sort((a, b) => (a.point.memoryBytes ?? 0) - (b.point.memoryBytes ?? 0))[0]!;
  const perInst = smallest.perInstanceMemoryBytes ?? 0;
  const maxInstances = perInst > 0 ? Math.floor(((gpuMemoryGb ?? 0) * GIB) / perInst) : 0;
  return new OspreyError(
    'OSPREY_ERR_PLAN_INFEASIBLE',
    `the ${meeting.length} configuration(s) meeting p99 ≤ ${fmt(slo)} ms need more memory than --gpu-memory-gb ${fmt(gpuMemoryGb ?? 0)}: ` +
      `the smallest, ${smallest.point.label}, needs ${smallest.point.instances} × ${fmt(perInst / GIB, 3)} GiB = ${fmt((smallest.point.memoryBytes ?? 0) / GIB, 3)} GiB; ` +
      `raise --gpu-memory-gb to ≥ ${fmt((smallest.point.memoryBytes ?? 0) / GIB, 3)} or measure configurations with at most ${maxInstances} instance(s)`,
    { sloP99Ms: slo, gpuMemoryGb, smallestMemoryBytes: smallest.point.memoryBytes, maxInstancesThatFit: maxInstances },
  );
}

/** The plan as readable text (what `osprey plan` prints without --json). */
export function formatPlan(plan: Plan): string {
  const lines: string[] = [];
  const units = plan.inputs.unit === 'gpu' ? 'GPUs' : 'CPU nodes';
  lines.push(`${units} needed: ${plan.gpus}${plan.hosts !== null ? ` (${plan.hosts} hosts × ${plan.gpusPerHost} GPUs, from the per-host figure)` : ''}`);
  if (plan.selected) {
    const r = plan.recommended;
    lines.push(`recommended: batch size ${r.batchSize}, ${r.instances} instance(s) per ${plan.unitName}, max queue delay ${r.maxQueueDelayMicroseconds} µs`);
    lines.push(`  (from ${plan.selected.source}: ${plan.selected.label})`);
  }
  lines.push('');
  lines.push('arithmetic:');
  for (const a of plan.arithmetic) lines.push(`  ${a}`);
  if (plan.candidates.length > 0) {
    lines.push('');
    lines.push('measured configurations:');
    for (const c of plan.candidates) {
      const mark = c.meetsSlo && c.fitsMemory !== false ? (c.point === plan.selected ? '*' : '+') : '-';
      lines.push(`  ${mark} ${c.point.label.padEnd(34)} ${c.point.imagesPerSecond.toFixed(1).padStart(9)} img/s${(c.point.gpus ?? 1) > 1 ? ` (${c.point.gpus} GPUs)` : ''}  ${c.reason}`);
    }
    lines.push('  (* selected, + meets the target, - excluded)');
  }
  for (const n of plan.notes) lines.push(`note: ${n}`);
  return lines.join('\n') + '\n';
}
