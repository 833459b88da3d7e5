/**
 * The generated Kubernetes manifests against the official OpenAPI schemas (kubernetes-models: JSON schemas generated
 * from Kubernetes' OpenAPI spec; @kubernetes-models/prometheus-operator: the operator's CRD schemas), as the API
 * server's schema validation would check them. No cluster is needed (none is available here); what a cluster would
 * check beyond the schema (selectors, probe ports, grace periods) is test/deploy/files.test.ts's checkManifests.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { HELM_VALUES } from '../../src/deploy/files.js';
import { kubernetesManifests, type Manifest } from '../../src/deploy/kubernetes.js';
import { REPO_ROOT } from '../support/data.js';

type Model = { validate(): void };
const MODELS: Record<string, new (data: any) => Model> = {
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

/** Schema problems of each manifest, `Kind/name: message`. */
function schemaProblems(manifests: readonly Manifest[]): string[] {
  const problems: string[] = [];
  for (const m of manifests) {
    const Model = MODELS[`${m.apiVersion}/${m.kind}`];
    if (!Model) {
      problems.push(`${m.kind}/${m.metadata.name}: no schema for ${m.apiVersion} ${m.kind}`);
      continue;
    }
    try {
      new Model(structuredClone(m)).validate();
    } catch (err) {
      problems.push(`${m.kind}/${m.metadata.name}: ${(err as Error).message}`);
    }
  }
  return problems;
}

describe('Kubernetes manifests against the official OpenAPI schemas', () => {
  it('every generated manifest (GPU and MIG, with HPA, PDB, ServiceMonitor, PrometheusRule) is schema-valid', () => {
    const gpu = kubernetesManifests();
    assert.ok(gpu.length >= 7, `expected the full set, got ${gpu.map((m) => m.kind).join(', ')}`);
    assert.deepEqual(schemaProblems(gpu), []);
    const mig = kubernetesManifests({ gpuResource: 'nvidia.com/mig-1g.18gb', gpusPerReplica: 1 });
    assert.equal(mig.find((m) => m.kind === 'Deployment')!.spec.template.spec.containers[0].resources.limits['nvidia.com/mig-1g.18gb'], '1');
    assert.deepEqual(schemaProblems(mig), []);
  });

  it('the committed deploy/kubernetes/base/osprey.yaml is schema-valid', async () => {
    const text = await readFile(join(REPO_ROOT, 'deploy/kubernetes/base/osprey.yaml'), 'utf8');
    const docs = parseAllDocuments(text).map((d) => d.toJS() as Manifest).filter(Boolean);
    assert.ok(docs.length >= 7);
    assert.deepEqual(schemaProblems(docs), []);
  });

  it('the schemas catch what the API server would refuse (a string replica count, a non-string HPA metric type)', () => {
    const broken = kubernetesManifests();
    const dep = broken.find((m) => m.kind === 'Deployment')!;
    dep.spec.replicas = 'three';
    const hpa = broken.find((m) => m.kind === 'HorizontalPodAutoscaler')!;
    hpa.spec.metrics[0].type = 7;
    const problems = schemaProblems(broken).join('\n');
    assert.match(problems, /Deployment\/osprey: .*replicas/);
    assert.match(problems, /HorizontalPodAutoscaler\/osprey: .*type/);
  });
});

/**
 * Renders the chart's template for the subset of Helm it uses: `{{ .Values.a.b }}`, `{{ .Release.Namespace }}` and
 * the raw string `{{`{{`}}`. Helm itself is not installable here; anything else in the template is an error.
 */
function renderChart(template: string, values: Record<string, unknown>, namespace: string): string {
  return template.replace(/\{\{(.*?)\}\}/g, (m, expr: string) => {
    const e = expr.trim();
    if (e === '`{{`') return '{{';
    if (e === '.Release.Namespace') return namespace;
    if (e.startsWith('.Values.')) {
      const v = e.slice('.Values.'.length).split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)?.[k], values);
      if (v === undefined) throw new Error(`the template reads ${e}, which values.yaml does not set`);
      return String(v);
    }
    throw new Error(`unexpected template expression ${m}`);
  });
}

describe('the Helm chart (deploy/helm/osprey): a thin wrapper over the generated manifests', () => {
  it('rendered with its values.yaml it equals the manifests generated with the same options, and passes the schemas', async () => {
    const read = (p: string) => readFile(join(REPO_ROOT, 'deploy/helm/osprey', p), 'utf8');
    const chart = parseYaml(await read('Chart.yaml')) as { apiVersion: string; name: string; version: string };
    assert.deepEqual([chart.apiVersion, chart.name], ['v2', 'osprey']);
    const values = parseYaml(await read('values.yaml')) as typeof HELM_VALUES;
    assert.deepEqual(values, HELM_VALUES);
    const template = await read('templates/osprey.yaml');
    for (const v of [values, { ...values, image: 'registry.local/osprey:test', replicas: 5, hpa: { minReplicas: 5, maxReplicas: 9 } }]) {
      const rendered = parseAllDocuments(renderChart(template, v, 'vision')).map((d) => d.toJS() as Manifest).filter(Boolean);
      const expected = kubernetesManifests({ image: v.image, replicas: v.replicas, hpa: { minReplicas: v.hpa.minReplicas, maxReplicas: v.hpa.maxReplicas }, namespace: 'vision' });
      assert.deepEqual(rendered, JSON.parse(JSON.stringify(expected)));
      assert.deepEqual(schemaProblems(rendered), []);
    }
    // Prometheus' own {{ $labels.… }} reach the PrometheusRule unchanged.
    const rule = parseAllDocuments(renderChart(template, values, 'vision')).map((d) => d.toJS() as Manifest).find((m) => m?.kind === 'PrometheusRule')!;
    assert.match(JSON.stringify(rule.spec), /\{\{ \$labels\.gpu \}\}/);
  });
});
