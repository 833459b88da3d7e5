/**
 * `osprey plan`: GPUs (or CPU nodes) needed for a load at a p99 latency target, from bench results.
 */
import type { Command } from 'commander';
import { parseNumber } from './bench.js';

interface PlanOpts {
  streams?: string;
  fps?: string;
  qps?: string;
  sloP99Ms?: string;
  redundancy: string;
  bench?: string[];
  model?: string;
  gpuMemoryGb?: string;
  throughput?: string;
  unit?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('plan')
    .description('Capacity plan: units = ⌈(total QPS ÷ per-unit throughput at the p99 target) × redundancy⌉, with the arithmetic')
    .option('--streams <n>', 'camera streams (with --fps)')
    .option('--fps <n>', 'frames per second per stream')
    .option('--qps <n>', 'total images per second (instead of --streams × --fps)')
    .option('--slo-p99-ms <ms>', 'latency target: p99 in milliseconds')
    .option('--redundancy <x>', 'spare-capacity factor ≥ 1', '1.5')
    .option('--bench <files...>', 'bench result JSON files (osprey bench engine|server|search)')
    .option('--model <path|name>', 'check the bench files were measured on this model (file/engine dir: sha256; name: model name)')
    .option('--gpu-memory-gb <GiB>', 'memory per unit; configurations needing more are excluded')
    .option('--throughput <n>', 'per-unit throughput (images/s) at the target, instead of --bench')
    .option('--unit <gpu|cpu>', 'what one unit is (default: from the bench files, else gpu)')
    .option('--json', 'print the plan as JSON (every input and intermediate figure)')
    .action(async (o: PlanOpts) => {
      const { computePlan, formatPlan } = await import('../../bench/planner.js');
      const { OspreyError } = await import('../../core/errors.js');
      if (o.unit !== undefined && o.unit !== 'gpu' && o.unit !== 'cpu') throw new OspreyError('OSPREY_ERR_USAGE', `--unit must be gpu or cpu, got ${o.unit}`, {});
      let points;
      let unit: 'gpu' | 'cpu' = (o.unit as 'gpu' | 'cpu' | undefined) ?? 'gpu';
      let files: Array<{ file: string; model: string; kind: string }> = [];
      let modelCheck = null;
      let unitNote: string | undefined;
      if (o.bench && o.bench.length > 0) {
        const { loadPlanInputs } = await import('../../bench/plan-files.js');
        const loaded = await loadPlanInputs(o.bench, o.model);
        points = loaded.points;
        if (o.unit === undefined && loaded.unit !== null) unit = loaded.unit;
        else if (o.unit === undefined) unitNote = 'the bench files are server results, which do not record the server device: units counted as GPUs (give --unit cpu for CPU nodes)';
        files = loaded.results.map(({ file, result }) => ({ file, model: result.model.name, kind: result.kind }));
        modelCheck = loaded.modelCheck;
      }
      const num = (v: string | undefined, name: string) => parseNumber(v, name);
      const plan = computePlan({
        ...(o.streams !== undefined ? { streams: num(o.streams, '--streams')! } : {}),
        ...(o.fps !== undefined ? { fps: num(o.fps, '--fps')! } : {}),
        ...(o.qps !== undefined ? { qps: num(o.qps, '--qps')! } : {}),
        ...(o.sloP99Ms !== undefined ? { sloP99Ms: num(o.sloP99Ms, '--slo-p99-ms')! } : {}),
        redundancy: num(o.redundancy, '--redundancy')!,
        ...(o.throughput !== undefined ? { throughput: num(o.throughput, '--throughput')! } : {}),
        ...(o.gpuMemoryGb !== undefined ? { gpuMemoryGb: num(o.gpuMemoryGb, '--gpu-memory-gb')! } : {}),
        ...(points ? { points } : {}),
        unit,
      });
      if (unitNote) plan.notes.push(unitNote);
      if (o.json) process.stdout.write(JSON.stringify({ ...plan, benchFiles: files, modelCheck }, null, 2) + '\n');
      else process.stdout.write(formatPlan(plan));
    });
}
