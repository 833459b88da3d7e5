/**
 * Plan → deployment (`osprey plan … --emit kubernetes|nginx`): the seeds' worked example stays exact (64 streams ×
 * 10 fps at 80 img/s per card, redundancy 1.5 → 12 GPUs → 12 replicas), MIG profiles pack into whole GPUs, and the
 * emitted files pass the same checks as the committed ones (structural for Kubernetes, nginx -t, promtool).
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { computePlan } from '../../src/bench/planner.js';
import { isOspreyError } from '../../src/core/errors.js';
import { checkManifests, type Manifest } from '../../src/deploy/kubernetes.js';
import { compareMigProfiles, deploymentFromPlan, parseProfileThroughputs } from '../../src/deploy/plan-deployment.js';
import { REPO_ROOT, tempDir, which } from '../support/processes.js';

const ENTRY = `import(${JSON.stringify(new URL('../../src/cli/main.ts', import.meta.url).href)}).then((m) => m.main(['node', 'osprey', ...process.argv.slice(1)]))`;
function osprey(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', '-e', ENTRY, ...args], { cwd: REPO_ROOT, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('plan → deployment (pure)', () => {
  it('the seeds\' example: 12 GPUs → 12 replicas of nvidia.com/gpu: 1, HPA 12..18', () => {
    const d = deploymentFromPlan(computePlan({ streams: 64, fps: 10, throughput: 80, redundancy: 1.5 }));
    assert.deepEqual({ replicas: d.replicas, gpus: d.gpus, gpuResource: d.gpuResource, hpa: d.hpa }, { replicas: 12, gpus: 12, gpuResource: 'nvidia.com/gpu', hpa: { minReplicas: 12, maxReplicas: 18 } });
  });

  it('MIG: slices pack into whole H200s (19 slices of 3g.71gb, 2 per GPU → 10 GPUs)', () => {
    const d = deploymentFromPlan(computePlan({ streams: 64, fps: 10, throughput: 52 }), { migProfile: '3g.71gb' });
    assert.deepEqual({ replicas: d.replicas, gpus: d.gpus, gpuResource: d.gpuResource }, { replicas: 19, gpus: 10, gpuResource: 'nvidia.com/mig-3g.71gb' });
  });

  it('compares MIG profiles: the one needing the fewest GPUs first, ties to fewer slices', () => {
    const choices = compareMigProfiles({ streams: 64, fps: 10, redundancy: 1.5 }, parseProfileThroughputs('1g.18gb=15,2g.35gb=32,3g.71gb=52,7g.141gb=80'));
    assert.deepEqual(choices.map((c) => [c.profile, c.deployment.replicas, c.deployment.gpus]), [['3g.71gb', 19, 10], ['2g.35gb', 30, 10], ['1g.18gb', 64, 10], ['7g.141gb', 12, 12]]);
  });

  it('bad input: an unknown MIG profile, a malformed --mig-throughput, HPA max below the plan → OSPREY_ERR_USAGE naming it', () => {
    const plan = computePlan({ qps: 100, throughput: 10 });
    assert.throws(() => deploymentFromPlan(plan, { migProfile: '9g.999gb' }), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_USAGE') && /unknown MIG profile '9g\.999gb'/.test((e as Error).message));
    assert.throws(() => parseProfileThroughputs('1g.18gb:20'), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_USAGE') && /1g\.18gb=20/.test((e as Error).message));
    assert.throws(() => deploymentFromPlan(plan, { maxReplicas: 3 }), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_USAGE') && /--hpa-max-replicas/.test((e as Error).message));
  });
});

describe('osprey plan --emit (CLI)', () => {
  let tmp: { path: string; remove: () => Promise<void> };
  before(async () => {
    tmp = await tempDir('osprey-plan-emit-');
  });
  after(async () => tmp?.remove());

  it('--emit kubernetes: 12 replicas, HPA 12..18, the SLO in the PrometheusRule; the manifests pass the checks', async () => {
    const out = join(tmp.path, 'k8s');
    const r = await osprey(['plan', '--streams', '64', '--fps', '10', '--throughput', '80', '--slo-p99-ms', '150', '--emit', 'kubernetes', '--out', out, '--image', 'registry.example/osprey:1']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /GPUs needed: 12/);
    assert.match(r.stdout, /HPA: minReplicas 12 .* maxReplicas 18/);
    const docs = parseAllDocuments(await readFile(join(out, 'osprey.yaml'), 'utf8')).map((d) => d.toJS() as Manifest);
    assert.deepEqual(checkManifests(docs), []);
    const dep = docs.find((d) => d.kind === 'Deployment')!;
    assert.equal(dep.spec.replicas, 12);
    assert.equal(dep.spec.template.spec.containers[0].image, 'registry.example/osprey:1');
    const hpa = docs.find((d) => d.kind === 'HorizontalPodAutoscaler')!;
    assert.deepEqual([hpa.spec.minReplicas, hpa.spec.maxReplicas], [12, 18]);
    const rules = JSON.stringify(docs.find((d) => d.kind === 'PrometheusRule')!.spec);
    assert.match(rules, /p99_5m > 0\.15/);
    assert.match(rules, /< 12/, 'OspreyReplicasMissing needs the planned 12 replicas');
  });

  it('--emit kubernetes --mig-throughput: the best profile\'s resource on every replica', async () => {
    const out = join(tmp.path, 'mig');
    const r = await osprey(['plan', '--streams', '64', '--fps', '10', '--mig-throughput', '1g.18gb=15,3g.71gb=52', '--emit', 'kubernetes', '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const plan = JSON.parse(r.stdout) as { deployment: { replicas: number; gpus: number; gpuResource: string }; migProfiles: Array<{ profile: string }> };
    assert.deepEqual([plan.deployment.replicas, plan.deployment.gpus, plan.deployment.gpuResource], [19, 10, 'nvidia.com/mig-3g.71gb']);
    assert.equal(plan.migProfiles[0]!.profile, '3g.71gb');
    const dep = parseAllDocuments(await readFile(join(out, 'osprey.yaml'), 'utf8')).map((d) => d.toJS() as Manifest).find((d) => d.kind === 'Deployment')!;
    assert.equal(dep.spec.template.spec.containers[0].resources.limits['nvidia.com/mig-3g.71gb'], '1');
  });

  it('--emit nginx: one upstream per replica; nginx -t and promtool accept the files', { skip: which('nginx') && which('promtool') ? false : 'nginx/promtool not installed' }, async () => {
    const out = join(tmp.path, 'nginx');
    const r = await osprey(['plan', '--qps', '100', '--throughput', '40', '--emit', 'nginx', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const conf = await readFile(join(out, 'osprey.conf'), 'utf8');
    assert.equal(conf.match(/server 127\.0\.0\.1:80[0-9]0 /g)?.length, 4, '⌈100 ÷ 40 × 1.5⌉ = 4 HTTP upstreams');
    const p = tmp.path;
    const wrapper = join(p, 'wrap.conf');
    await writeFile(wrapper, `pid ${p}/nginx.pid;\nevents {}\nhttp {\n  access_log off;\n  client_body_temp_path ${p}/cb; proxy_temp_path ${p}/p; fastcgi_temp_path ${p}/f; uwsgi_temp_path ${p}/u; scgi_temp_path ${p}/s;\n  include ${join(out, 'osprey.conf')};\n}\n`);
    const t = spawnSync(which('nginx')!, ['-t', '-c', wrapper, '-p', p, '-e', join(p, 'error.log')], { encoding: 'utf8' });
    assert.equal(t.status, 0, t.stderr);
    const c = spawnSync(which('promtool')!, ['check', 'config', 'prometheus.yml'], { cwd: out, encoding: 'utf8' });
    assert.equal(c.status, 0, c.stdout + c.stderr);
  });

  it('--emit with an unknown kind → exit 2 with OSPREY_ERR_USAGE', async () => {
    const r = await osprey(['plan', '--qps', '100', '--throughput', '40', '--emit', 'helm']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /OSPREY_ERR_USAGE: --emit must be kubernetes or nginx, got helm/);
  });
});

it('a per-host plan: one replica per host, each asking for the host’s GPUs', () => {
  const plan = computePlan({ qps: 12000, sloP99Ms: 50, redundancy: 1.5, points: [{ label: 'b32 on 2 GPUs', source: 'test', batchSize: 32, instances: 4, imagesPerSecond: 3000, p99Ms: 40, gpus: 2 }] });
  const d = deploymentFromPlan(plan);
  assert.equal(d.replicas, 6);
  assert.equal(d.gpusPerReplica, 2);
  assert.equal(d.gpus, 12);
  assert.ok(d.arithmetic.some((l) => l === 'replicas: 6 (one per host of 2 GPUs), nvidia.com/gpu: 2 each'), d.arithmetic.join('\n'));
});
