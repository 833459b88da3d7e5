/**
 * The files under deploy/, checked with the tools operators run: the generated ones are current (src/deploy output
 * for the defaults); Prometheus' own `promtool check rules`, `promtool test rules` (every alert fires in one case and
 * stays quiet in another) and `promtool check config`; `nginx -t` on the nginx file; the Kubernetes manifests parsed
 * and checked structurally (no cluster here: never applied to one), the MIG overlay built; the Grafana dashboard's
 * shape; every metric a rule or panel reads is one Osprey, dcgm-exporter or Prometheus exports, or a recording rule.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { defaultDeployFiles } from '../../src/deploy/files.js';
import { checkManifests, kubernetesManifests, type Manifest } from '../../src/deploy/kubernetes.js';
import { alertingRules } from '../../src/deploy/prometheus.js';
import { DCGM_MAPPING, METRIC, ROUTING_METRIC, STREAM_METRIC } from '../../src/metrics/names.js';
import { RoutingMetrics } from '../../src/routing/metrics.js';
import { committedDashboard, committedRules, dashboardExprs, metricNames, ruleExprs } from './promql.js';
import { REPO_ROOT, tempDir, which } from '../support/processes.js';

const promtool = which('promtool');
const nginxBin = which('nginx');
const kubectl = which('kubectl');
const read = (path: string) => readFile(join(REPO_ROOT, path), 'utf8');
const run = (bin: string, args: string[], cwd = REPO_ROOT) => spawnSync(bin, args, { cwd, encoding: 'utf8', timeout: 60_000 });

describe('generated deploy files', () => {
  it('every generated file under deploy/ is current (npx tsx deploy/generate.ts)', async () => {
    for (const [path, text] of Object.entries(defaultDeployFiles())) {
      assert.equal(await read(path).catch(() => '(missing)'), text, `${path} is stale: run npx tsx deploy/generate.ts`);
    }
  });
});

describe('Prometheus rules (promtool)', { skip: promtool ? false : 'promtool is not installed (Debian prometheus; bash scripts/setup.sh)' }, () => {
  it('promtool check rules deploy/prometheus/osprey-rules.yml', () => {
    const r = run(promtool!, ['check', 'rules', 'deploy/prometheus/osprey-rules.yml']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS: \d+ rules found/);
  });

  it('promtool test rules: every unit test passes', () => {
    const r = run(promtool!, ['test', 'rules', 'osprey-rules.test.yml'], join(REPO_ROOT, 'deploy/prometheus'));
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS/);
  });

  it('the unit tests have, for every alert, a case where it fires and one where it stays quiet', async () => {
    const tests = parseYaml(await read('deploy/prometheus/osprey-rules.test.yml')) as { tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }> }> };
    const fires = new Set<string>();
    const quiet = new Set<string>();
    for (const t of tests.tests) for (const a of t.alert_rule_test ?? []) ((a.exp_alerts ?? []).length > 0 ? fires : quiet).add(a.alertname);
    for (const { alert } of alertingRules().rules) {
      assert.ok(fires.has(alert), `${alert}: no case where it fires`);
      assert.ok(quiet.has(alert), `${alert}: no case where it stays quiet`);
    }
  });

  it('promtool check config deploy/prometheus/prometheus.yml (and the rule file it loads)', () => {
    const r = run(promtool!, ['check', 'config', 'prometheus.yml'], join(REPO_ROOT, 'deploy/prometheus'));
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  it('a threshold changed in the generator changes the rule file, and promtool accepts it', async () => {
    const { ruleFile, DEFAULT_ALERT_THRESHOLDS } = await import('../../src/deploy/prometheus.js');
    const { toYaml } = await import('../../src/deploy/files.js');
    const tmp = await tempDir('osprey-rules-');
    try {
      const text = toYaml(ruleFile({ ...DEFAULT_ALERT_THRESHOLDS, gpuUtilizationRatio: 0.8, latencyP99SloSeconds: 0.25 }));
      assert.match(text, /gpu:utilization:ratio > 0\.8\n/);
      assert.match(text, /p99_5m > 0\.25\n/);
      await writeFile(join(tmp.path, 'rules.yml'), text);
      const r = run(promtool!, ['check', 'rules', join(tmp.path, 'rules.yml')]);
      assert.equal(r.status, 0, r.stdout + r.stderr);
    } finally {
      await tmp.remove();
    }
  });
});

describe('metric names in rules and panels', () => {
  it('the metric name tables match the modules that register them; no module names a metric itself', async () => {
    const registry = new Registry();
    new RoutingMetrics(registry);
    for (const name of Object.values(ROUTING_METRIC)) assert.ok(registry.getSingleMetric(name), `${name} is registered by src/routing/metrics.ts`);
    // Every prom-client constructor in src/ takes its name from src/metrics/names.ts (METRIC, ROUTING_METRIC, STREAM_METRIC).
    const literal = /\bname:\s*['"`](osprey|nv)_[a-z0-9_]+['"`]/;
    const offenders: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.name.endsWith('.ts') && !p.endsWith(join('metrics', 'names.ts'))) {
          (await readFile(p, 'utf8')).split('\n').forEach((line, i) => { if (literal.test(line)) offenders.push(`${p}:${i + 1}`); });
        }
      }
    };
    await walk(join(REPO_ROOT, 'src'));
    assert.deepEqual(offenders, []);
  });

  it('every metric a rule or a panel reads is exported (Osprey, dcgm-exporter, Prometheus) or recorded by a rule', async () => {
    const rules = ruleExprs(await committedRules());
    const recorded = new Set(rules.filter((r) => r.source.startsWith('record:')).map((r) => r.source.slice('record: '.length)));
    const histograms = [METRIC.batchSize, METRIC.queueDuration, METRIC.requestDuration, METRIC.computeDuration, STREAM_METRIC.latency];
    const known = new Set<string>([
      ...Object.values(METRIC),
      ...histograms.flatMap((h) => [`${h}_bucket`, `${h}_sum`, `${h}_count`]),
      ...Object.values(ROUTING_METRIC),
      ...Object.values(STREAM_METRIC),
      ...DCGM_MAPPING.flatMap((m) => m.dcgm.split(' + ')),
      'DCGM_FI_DEV_FB_FREE',
      'up',
      ...recorded,
    ]);
    const queries = [...rules, ...dashboardExprs(await committedDashboard()), ...alertingRules().rules.map((a) => ({ source: `signal of ${a.alert}`, expr: a.signal }))];
    const unknown = queries.flatMap((q) => metricNames(q.expr).filter((n) => !known.has(n)).map((n) => `${q.source}: ${n}`));
    assert.deepEqual(unknown, []);
  });
});

describe('nginx configuration', { skip: nginxBin ? false : 'nginx is not installed (bash scripts/setup.sh)' }, () => {
  it('nginx -t accepts deploy/nginx/osprey.conf inside an http {} block (as /etc/nginx/conf.d/ includes it)', async () => {
    const tmp = await tempDir('osprey-nginx-t-');
    try {
      const wrapper = join(tmp.path, 'nginx.conf');
      const p = tmp.path;
      await writeFile(
        wrapper,
        `pid ${p}/nginx.pid;\nerror_log ${p}/error.log;\nevents {}\nhttp {\n  access_log off;\n  client_body_temp_path ${p}/cb; proxy_temp_path ${p}/p; fastcgi_temp_path ${p}/f; uwsgi_temp_path ${p}/u; scgi_temp_path ${p}/s;\n  include ${join(REPO_ROOT, 'deploy/nginx/osprey.conf')};\n}\n`,
      );
      const r = run(nginxBin!, ['-t', '-c', wrapper, '-p', p, '-e', join(p, 'error.log')]);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stderr, /test is successful/);
    } finally {
      await tmp.remove();
    }
  });

  it('the file has the health checks, retries, keep-alive and gRPC parts the docs promise', async () => {
    const conf = await read('deploy/nginx/osprey.conf');
    assert.match(conf, /server 127\.0\.0\.1:8000 max_fails=1 fail_timeout=5s;/);
    assert.match(conf, /proxy_next_upstream error timeout http_503 non_idempotent;/);
    assert.match(conf, /location \/v2\/repository\/ \{[^}]*proxy_next_upstream error timeout;/s, 'model load/unload is not re-sent after it reached a replica');
    assert.match(conf, /keepalive 32;/);
    assert.match(conf, /proxy_set_header Connection "";/);
    assert.match(conf, /grpc_pass grpc:\/\/osprey_grpc;/);
    assert.match(conf, /grpc_next_upstream error timeout non_idempotent;/);
    assert.match(conf, /add_header grpc-status 14 always;/);
  });
});

describe('Kubernetes manifests (structural: no cluster here)', () => {
  let docs: Manifest[];
  before(async () => {
    docs = parseAllDocuments(await read('deploy/kubernetes/base/osprey.yaml')).map((d) => d.toJS() as Manifest);
  });

  it('the drain timeout the manifests assume is osprey serve\'s default', async () => {
    const { DEFAULT_DRAIN_TIMEOUT_MS } = await import('../../src/server/server.js');
    const { SERVE_DRAIN_TIMEOUT_SECONDS } = await import('../../src/deploy/kubernetes.js');
    assert.equal(SERVE_DRAIN_TIMEOUT_SECONDS * 1000, DEFAULT_DRAIN_TIMEOUT_MS);
  });

  it('parse, and pass the structural checks', () => {
    assert.deepEqual(docs.map((d) => d.kind), ['PersistentVolumeClaim', 'Deployment', 'Service', 'PodDisruptionBudget', 'HorizontalPodAutoscaler', 'ServiceMonitor', 'PrometheusRule']);
    assert.deepEqual(checkManifests(docs), []);
  });

  it('probes on the health endpoints, a startup probe for an engine build, a grace period above preStop + drain, a GPU', () => {
    const dep = docs.find((d) => d.kind === 'Deployment')!;
    const pod = dep.spec.template.spec;
    const c = pod.containers[0];
    assert.equal(c.readinessProbe.httpGet.path, '/v2/health/ready');
    assert.equal(c.livenessProbe.httpGet.path, '/v2/health/live');
    assert.ok(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold >= 600, 'at least 10 minutes to start');
    const drainMs = Number(c.args[c.args.indexOf('--drain-timeout-ms') + 1]);
    assert.deepEqual(c.lifecycle.preStop.exec.command, ['sleep', '5']);
    assert.ok(pod.terminationGracePeriodSeconds > 5 + drainMs / 1000);
    assert.equal(c.resources.limits['nvidia.com/gpu'], '1');
    assert.deepEqual(dep.spec.strategy.rollingUpdate, { maxUnavailable: 0, maxSurge: 1 });
    const svc = docs.find((d) => d.kind === 'Service')!;
    assert.deepEqual(svc.spec.ports.map((p: { name: string }) => p.name), ['http', 'grpc', 'metrics']);
    const hpa = docs.find((d) => d.kind === 'HorizontalPodAutoscaler')!;
    assert.deepEqual(hpa.spec.metrics.map((m: { pods: { metric: { name: string } } }) => m.pods.metric.name), [METRIC.inFlightRequests, 'osprey_queue_delay_seconds']);
  });

  it('the PrometheusRule carries the same rules as deploy/prometheus', async () => {
    const rule = docs.find((d) => d.kind === 'PrometheusRule')!;
    assert.deepEqual(rule.spec, parseYaml(await committedRules()));
  });

  it('the checker finds what a cluster would refuse (selector, grace period, extended resources, probe port, liveness on readiness)', () => {
    const broken = kubernetesManifests();
    const dep = broken.find((d) => d.kind === 'Deployment')!;
    const c = dep.spec.template.spec.containers[0];
    dep.spec.selector.matchLabels = { app: 'other' };
    dep.spec.template.spec.terminationGracePeriodSeconds = 20;
    c.resources.requests['nvidia.com/gpu'] = '2';
    c.resources.limits['nvidia.com/mig-1g.18gb'] = '0.5';
    c.readinessProbe.httpGet.port = 'web';
    c.livenessProbe.httpGet.path = '/v2/health/ready';
    const problems = checkManifests(broken).join('\n');
    assert.match(problems, /Deployment\/osprey: spec\.selector: does not select/);
    assert.match(problems, /terminationGracePeriodSeconds: 20 s is not above preStop 5 s \+ drain 25 s/);
    assert.match(problems, /requests \(2\) must equal limits \(1\) for an extended resource/);
    assert.match(problems, /nvidia\.com\/mig-1g\.18gb: '0\.5' — extended resources are whole numbers/);
    assert.match(problems, /readinessProbe: port 'web' is not a container port/);
    assert.match(problems, /livenessProbe: on readiness/);
  });

  it('the MIG overlay asks for one nvidia.com/mig-1g.18gb slice instead of a whole GPU', async () => {
    let out: Manifest[];
    if (kubectl) {
      const r = run(kubectl, ['kustomize', 'deploy/kubernetes/overlays/mig-1g.18gb']);
      assert.equal(r.status, 0, r.stderr);
      out = parseAllDocuments(r.stdout).map((d) => d.toJS() as Manifest);
    } else {
      // No kubectl: apply the overlay's RFC 6902 patch here (remove/add only, the ops it uses).
      const k = parseYaml(await read('deploy/kubernetes/overlays/mig-1g.18gb/kustomization.yaml')) as { patches: Array<{ patch: string }> };
      out = structuredClone(docs);
      const dep = out.find((d) => d.kind === 'Deployment')!;
      for (const op of parseYaml(k.patches[0]!.patch) as Array<{ op: string; path: string; value?: unknown }>) {
        const keys = op.path.split('/').slice(1).map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
        let o: any = dep;
        for (const key of keys.slice(0, -1)) o = o[key];
        if (op.op === 'remove') delete o[keys.at(-1)!];
        else o[keys.at(-1)!] = op.value;
      }
    }
    const c = out.find((d) => d.kind === 'Deployment')!.spec.template.spec.containers[0];
    assert.deepEqual(Object.keys(c.resources.limits).filter((k) => k.startsWith('nvidia.com/')), ['nvidia.com/mig-1g.18gb']);
    assert.equal(c.resources.limits['nvidia.com/mig-1g.18gb'], '1');
    assert.deepEqual(checkManifests(out), []);
  });
});

describe('Grafana dashboard and provisioning', () => {
  it('panel ids are unique, every panel fits the 24-column grid and reads the Prometheus data source variable', async () => {
    const d = (await committedDashboard()) as { panels: Array<{ id: number; type: string; gridPos: { x: number; w: number }; datasource?: { uid: string }; targets?: Array<{ refId: string; expr: string }> }> };
    const ids = d.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length);
    for (const p of d.panels) {
      assert.ok(p.gridPos.x + p.gridPos.w <= 24, `panel ${p.id} overflows the grid`);
      if (p.type === 'row') continue;
      assert.equal(p.datasource?.uid, '${datasource}');
      assert.ok((p.targets ?? []).length > 0 && p.targets!.every((t) => t.refId && t.expr));
    }
    const titles = d.panels.map((p) => (p as unknown as { title: string }).title);
    for (const want of ['Throughput (images/s)', 'Request latency p50 / p95 / p99', 'Queue delay (mean, p99)', 'Batch size distribution', 'GPU utilization', 'GPU memory used', 'GPU temperature', 'Loaded versions', 'Version swaps and rollbacks', 'Camera fps (processed / from source)', 'Dropped frames', 'Camera state']) {
      assert.ok(titles.includes(want), `panel '${want}'`);
    }
  });

  it('the provisioning files point Grafana at the dashboard folder and a Prometheus data source', async () => {
    const provider = parseYaml(await read('deploy/grafana/provisioning/dashboards/osprey.yml')) as { apiVersion: number; providers: Array<{ type: string; options: { path: string } }> };
    assert.equal(provider.apiVersion, 1);
    assert.equal(provider.providers[0]!.type, 'file');
    const ds = parseYaml(await read('deploy/grafana/provisioning/datasources/prometheus.yml')) as { datasources: Array<{ type: string; url: string }> };
    assert.equal(ds.datasources[0]!.type, 'prometheus');
  });
});

