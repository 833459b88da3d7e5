/**
 * From a capacity plan (src/bench/planner.ts) to a deployment: replicas, whole GPUs or MIG slices, and HPA bounds.
 * Pure; `osprey plan --emit kubernetes|nginx` writes the files ({@link planDeployFiles}).
 *
 * One replica per unit the plan counts: a whole GPU (`nvidia.com/gpu: 1`) or one MIG slice
 * (`nvidia.com/mig-<profile>: 1`, when the throughput was measured on that slice). For MIG,
 * GPUs = ⌈slices ÷ slices per GPU⌉ (H200 table {@link H200_MIG_PROFILES}); given throughputs for several profiles,
 * the profile that needs the fewest whole GPUs packs best (ties: fewer slices, i.e. fewer replicas to run).
 *
 * HPA bounds: `minReplicas` = the plan's units (its redundancy stays provisioned: the seeds' 12 for 64 × 10 fps at
 * 80 img/s); `maxReplicas` = ⌈units × redundancy⌉ (room for a burst of the same factor), unless given.
 */
import type { Plan, PlanRequest } from '../bench/planner.js';
import { computePlan, ceilTolerant } from '../bench/planner.js';
import { OspreyError } from '../core/errors.js';
import { H200_MIG_PROFILES } from './kubernetes.js';

export interface Deployment {
  /** Replicas (= GPUs, or MIG slices). */
  replicas: number;
  /** Whole GPUs the replicas occupy. */
  gpus: number;
  /** The Kubernetes resource each replica asks one of. */
  gpuResource: string;
  /** MIG profile, when the unit is a slice. */
  migProfile: string | null;
  /** Slices per GPU of that profile (1 for whole GPUs). */
  slicesPerGpu: number;
  /** GPUs each replica asks for: 1, or the GPUs of a host when the plan used a per-host figure. */
  gpusPerReplica: number;
  hpa: { minReplicas: number; maxReplicas: number };
  /** One line per step, as printed. */
  arithmetic: string[];
}

/**
 * @throws OspreyError `OSPREY_ERR_USAGE` for an unknown MIG profile or HPA bounds out of order.
 */
export function deploymentFromPlan(plan: Plan, options: { migProfile?: string; maxReplicas?: number } = {}): Deployment {
  // a per-host figure (measured on N GPUs of one host together): one replica per host, asking for its N GPUs
  const gpusPerReplica = plan.hosts !== null && options.migProfile === undefined ? (plan.gpusPerHost ?? 1) : 1;
  const replicas = gpusPerReplica > 1 ? plan.hosts! : plan.gpus;
  let gpus = replicas * gpusPerReplica;
  let slicesPerGpu = 1;
  let gpuResource = 'nvidia.com/gpu';
  const arithmetic: string[] = [];
  if (options.migProfile !== undefined) {
    const p = H200_MIG_PROFILES[options.migProfile];
    if (!p) throw new OspreyError('OSPREY_ERR_USAGE', `unknown MIG profile '${options.migProfile}' (H200 profiles: ${Object.keys(H200_MIG_PROFILES).join(', ')})`, { option: '--mig-profile' });
    slicesPerGpu = p.slicesPerGpu;
    gpus = Math.ceil(replicas / slicesPerGpu);
    gpuResource = `nvidia.com/mig-${options.migProfile}`;
    arithmetic.push(`MIG ${options.migProfile}: ${replicas} slices ÷ ${slicesPerGpu} per H200 → ⌈${Math.round((replicas / slicesPerGpu) * 1000) / 1000}⌉ = ${gpus} GPUs`);
  }
  const maxReplicas = options.maxReplicas ?? ceilTolerant(replicas * plan.inputs.redundancy);
  if (!Number.isInteger(maxReplicas) || maxReplicas < replicas) {
    throw new OspreyError('OSPREY_ERR_USAGE', `--hpa-max-replicas must be an integer ≥ the planned ${replicas} replicas, got ${maxReplicas}`, { option: '--hpa-max-replicas' });
  }
  arithmetic.push(`replicas: ${replicas} (one per ${options.migProfile ? 'slice' : gpusPerReplica > 1 ? `host of ${gpusPerReplica} GPUs` : 'GPU'}), ${gpuResource}: ${gpusPerReplica} each`);
  arithmetic.push(`HPA: minReplicas ${replicas} (the plan, redundancy included), maxReplicas ${maxReplicas}${options.maxReplicas === undefined ? ` = ⌈${replicas} × ${plan.inputs.redundancy}⌉` : ' (given)'}`);
  return { replicas, gpus, gpuResource, migProfile: options.migProfile ?? null, slicesPerGpu, gpusPerReplica, hpa: { minReplicas: replicas, maxReplicas }, arithmetic };
}

/** One profile's result when comparing MIG profiles. */
export interface ProfileChoice {
  profile: string;
  perSliceQps: number;
  plan: Plan;
  deployment: Deployment;
}

/**
 * Plans each MIG profile from its measured per-slice throughput and picks the one needing the fewest whole GPUs.
 * @param throughputs e.g. `{ '1g.18gb': 20, '3g.71gb': 70 }` (images/s per slice at the latency target).
 * @returns every profile, best first.
 */
export function compareMigProfiles(request: Omit<PlanRequest, 'throughput' | 'points'>, throughputs: Readonly<Record<string, number>>, maxReplicas?: number): ProfileChoice[] {
  const out: ProfileChoice[] = [];
  for (const [profile, qps] of Object.entries(throughputs)) {
    const plan = computePlan({ ...request, throughput: qps });
    out.push({ profile, perSliceQps: qps, plan, deployment: deploymentFromPlan(plan, { migProfile: profile, ...(maxReplicas !== undefined ? { maxReplicas } : {}) }) });
  }
  return out.sort((a, b) => a.deployment.gpus - b.deployment.gpus || a.deployment.replicas - b.deployment.replicas);
}

/** Parses `1g.18gb=20,3g.71gb=70`. */
export function parseProfileThroughputs(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([0-9]+g\.[0-9]+gb)=([0-9.]+)$/.exec(part);
    const v = m ? Number(m[2]) : NaN;
    if (!m || !Number.isFinite(v) || v <= 0) throw new OspreyError('OSPREY_ERR_USAGE', `--mig-throughput: expected PROFILE=IMAGES_PER_SECOND like 1g.18gb=20, got '${part}'`, { option: '--mig-throughput' });
    out[m[1]!] = v;
  }
  if (Object.keys(out).length === 0) throw new OspreyError('OSPREY_ERR_USAGE', '--mig-throughput is empty', { option: '--mig-throughput' });
  return out;
}
