/**
 * `osprey plan`: GPUs (or CPU nodes) needed for a load at a p99 latency target, from bench results, and the
 * deployment for it (replicas, GPUs or MIG slices, HPA bounds; `--emit kubernetes|nginx` writes the files).
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
  migProfile?: string;
  migThroughput?: string;
  hpaMaxReplicas?: string;
  emit?: string;
  out: string;
  image?: string;
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
    .option('--mig-profile <profile>', 'the throughput was measured on one MIG slice of this profile (H200: 1g.18gb, 1g.35gb, 2g.35gb, 3g.71gb, 4g.71gb, 7g.141gb): replicas are slices')
    .option('--mig-throughput <list>', 'per-slice throughput of several MIG profiles, e.g. 1g.18gb=20,3g.71gb=70: plans each and picks the one that packs into the fewest GPUs')
    .option('--hpa-max-replicas <n>', 'HPA maxReplicas (default ⌈replicas × redundancy⌉)')
    .option('--emit <kind>', 'write the deployment for the plan: kubernetes (manifests + prometheus-adapter values) or nginx (config + Prometheus rules and scrape config)')
    .option('--out <dir>', 'with --emit: the folder to write into', 'osprey-deploy')
    .option('--image <image>', 'with --emit kubernetes: the container image')
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
      const { compareMigProfiles, deploymentFromPlan, parseProfileThroughputs } = await import('../../deploy/plan-deployment.js');
      if (o.emit !== undefined && o.emit !== 'kubernetes' && o.emit !== 'nginx') throw new OspreyError('OSPREY_ERR_USAGE', `--emit must be kubernetes or nginx, got ${o.emit}`, { option: '--emit' });
      if (o.migThroughput !== undefined && (o.throughput !== undefined || points || o.migProfile !== undefined)) {
        throw new OspreyError('OSPREY_ERR_USAGE', '--mig-throughput gives the throughput of each profile: not with --throughput, --bench or --mig-profile', { option: '--mig-throughput' });
      }
      const hpaMax = o.hpaMaxReplicas !== undefined ? num(o.hpaMaxReplicas, '--hpa-max-replicas') : undefined;
      const request = {
        ...(o.streams !== undefined ? { streams: num(o.streams, '--streams')! } : {}),
        ...(o.fps !== undefined ? { fps: num(o.fps, '--fps')! } : {}),
        ...(o.qps !== undefined ? { qps: num(o.qps, '--qps')! } : {}),
        ...(o.sloP99Ms !== undefined ? { sloP99Ms: num(o.sloP99Ms, '--slo-p99-ms')! } : {}),
        redundancy: num(o.redundancy, '--redundancy')!,
        ...(o.gpuMemoryGb !== undefined ? { gpuMemoryGb: num(o.gpuMemoryGb, '--gpu-memory-gb')! } : {}),
        unit,
      };
      let plan;
      let deployment;
      let migProfiles;
      if (o.migThroughput !== undefined) {
        migProfiles = compareMigProfiles(request, parseProfileThroughputs(o.migThroughput), hpaMax);
        plan = migProfiles[0]!.plan;
        deployment = migProfiles[0]!.deployment;
      } else {
        plan = computePlan({ ...request, ...(o.throughput !== undefined ? { throughput: num(o.throughput, '--throughput')! } : {}), ...(points ? { points } : {}) });
        deployment = deploymentFromPlan(plan, { ...(o.migProfile !== undefined ? { migProfile: o.migProfile } : {}), ...(hpaMax !== undefined ? { maxReplicas: hpaMax } : {}) });
      }
      if (unitNote) plan.notes.push(unitNote);
      const gpuResource = plan.inputs.unit === 'cpu' ? null : deployment.gpuResource;
      const written: string[] = [];
      if (o.emit) {
        const { planDeployFiles } = await import('../../deploy/files.js');
        const { mkdir, writeFile } = await import('node:fs/promises');
        const { join } = await import('node:path');
        const files = planDeployFiles(o.emit as 'kubernetes' | 'nginx', {
          replicas: deployment.replicas,
          minReplicas: deployment.hpa.minReplicas,
          maxReplicas: deployment.hpa.maxReplicas,
          gpuResource,
          gpusPerReplica: deployment.gpusPerReplica,
          ...(o.image !== undefined ? { kubernetes: { image: o.image } } : {}),
          ...(plan.inputs.sloP99Ms !== null ? { thresholds: { latencyP99SloSeconds: plan.inputs.sloP99Ms / 1000 } } : {}),
        });
        await mkdir(o.out, { recursive: true });
        for (const [name, text] of Object.entries(files)) {
          await writeFile(join(o.out, name), text);
          written.push(join(o.out, name));
        }
      }
      if (o.json) {
        const profiles = migProfiles?.map((c) => ({ profile: c.profile, perSliceQps: c.perSliceQps, slices: c.deployment.replicas, gpus: c.deployment.gpus }));
        process.stdout.write(JSON.stringify({ ...plan, deployment: { ...deployment, gpuResource }, ...(profiles ? { migProfiles: profiles } : {}), written, benchFiles: files, modelCheck }, null, 2) + '\n');
        return;
      }
      const lines = [formatPlan(plan).trimEnd(), '', 'deployment:'];
      if (migProfiles) {
        lines.push('  MIG profiles (per-slice throughput → slices → H200 GPUs):');
        for (const c of migProfiles) lines.push(`  ${c === migProfiles[0] ? '*' : ' '} ${c.profile.padEnd(9)} ${String(c.perSliceQps).padStart(7)} img/s → ${String(c.deployment.replicas).padStart(4)} slices → ${c.deployment.gpus} GPUs`);
      }
      for (const a of deployment.arithmetic) lines.push(`  ${a}`);
      if (plan.inputs.unit === 'cpu') lines.push('  (CPU nodes: no GPU resource is requested)');
      for (const w of written) lines.push(`wrote ${w}`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}
