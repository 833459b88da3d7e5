/**
 * Kubernetes manifests for Osprey replicas on GPUs (whole GPUs or MIG slices), generated from one set of options so
 * `osprey plan --emit kubernetes` and the committed `deploy/kubernetes/osprey.yaml` come from the same code, plus a
 * structural checker ({@link checkManifests}) that the tests and `--emit` run: no cluster is needed (none was
 * available when this was written; the manifests were never applied to one).
 *
 * What goes together, and why:
 * - readiness `GET /v2/health/ready` (false while loading or draining: the pod leaves the Service endpoints),
 *   liveness `GET /v2/health/live`, and a startup probe long enough for a first engine build (`startupTimeoutSeconds`);
 * - shutdown: `preStop` sleeps `preStopSleepSeconds` (endpoints and kube-proxy/ingress drop the pod first), then
 *   SIGTERM starts Osprey's drain (`--drain-timeout-ms`: new requests 503, in-flight finish);
 *   `terminationGracePeriodSeconds` = preStop + drain + margin, so Kubernetes never SIGKILLs a drain in progress;
 * - GPUs: `nvidia.com/gpu` (NVIDIA device plugin) or a MIG profile (`nvidia.com/mig-1g.18gb` … on an H200, the
 *   device plugin's "mixed" strategy), as limits (extended resources are not overcommitted: requests = limits);
 * - engines per GPU architecture: `nodeSelector` on GPU feature discovery's `nvidia.com/gpu.product`, with the
 *   model repository (a read-only volume) holding engines built for that product;
 * - the Prometheus operator's ServiceMonitor and PrometheusRule (the rules of deploy/prometheus), a
 *   PodDisruptionBudget, and an HPA on Osprey's in-flight requests and queue delay through prometheus-adapter
 *   ({@link prometheusAdapterRules}).
 */
import { DERIVED_METRIC, METRIC } from '../metrics/names.js';
import { DEFAULT_ALERT_THRESHOLDS, ruleFile, type AlertThresholds } from './prometheus.js';

/** MIG profiles of the H200 (141 GB): slices per GPU (NVIDIA MIG user guide, "Supported MIG profiles"). */
export const H200_MIG_PROFILES: Readonly<Record<string, { slicesPerGpu: number; memoryGb: number }>> = Object.freeze({
  '1g.18gb': { slicesPerGpu: 7, memoryGb: 18 },
  '1g.35gb': { slicesPerGpu: 4, memoryGb: 35 },
  '2g.35gb': { slicesPerGpu: 3, memoryGb: 35 },
  '3g.71gb': { slicesPerGpu: 2, memoryGb: 71 },
  '4g.71gb': { slicesPerGpu: 1, memoryGb: 71 },
  '7g.141gb': { slicesPerGpu: 1, memoryGb: 141 },
});

export interface HpaOptions {
  minReplicas: number;
  maxReplicas: number;
  /** Target mean in-flight requests per pod (`osprey_inflight_requests`). Default 16. */
  targetInFlightPerPod?: number;
  /** Target mean queue delay, seconds (custom metric `osprey_queue_delay_seconds`). Default 0.02. */
  targetQueueDelaySeconds?: number;
}

export interface KubernetesOptions {
  /** Name of every object and the `app.kubernetes.io/name` label. Default `osprey`. */
  name?: string;
  namespace?: string;
  /** Container image with Osprey (its entrypoint runs `osprey`). */
  image?: string;
  replicas?: number;
  /** `nvidia.com/gpu`, `nvidia.com/mig-<profile>`, or null for CPU-only pods. Default `nvidia.com/gpu`. */
  gpuResource?: string | null;
  /** GPUs (or MIG slices) per replica. Default 1. */
  gpusPerReplica?: number;
  /** e.g. `{ 'nvidia.com/gpu.product': 'NVIDIA-H200' }` (GPU feature discovery): engines built for that GPU. */
  nodeSelector?: Record<string, string>;
  /** PersistentVolumeClaim holding the model repository (read-only). Default `<name>-models`. */
  modelRepositoryClaim?: string;
  /** Osprey's drain timeout, seconds. Default 25 (DEFAULT_DRAIN_TIMEOUT_MS). */
  drainTimeoutSeconds?: number;
  /** preStop sleep, seconds. Default 5. */
  preStopSleepSeconds?: number;
  /** Longest start (model load + engine build), seconds. Default 1200. */
  startupTimeoutSeconds?: number;
  /** Execution providers. Default `cuda,cpu` (`cpu` without a GPU resource). */
  executionProviders?: string;
  hpa?: HpaOptions | null;
  thresholds?: AlertThresholds;
  resources?: { cpu: string; memory: string; memoryLimit: string };
}

/**
 * `osprey serve`'s default drain timeout, seconds (src/server/server.ts DEFAULT_DRAIN_TIMEOUT_MS; not imported, so
 * planning does not load the server; test/deploy/files.test.ts checks they agree).
 */
export const SERVE_DRAIN_TIMEOUT_SECONDS = 25;

export const DEFAULT_KUBERNETES_OPTIONS = Object.freeze({
  name: 'osprey',
  image: 'ghcr.io/osprey/osprey:0.1.0',
  replicas: 2,
  gpuResource: 'nvidia.com/gpu',
  gpusPerReplica: 1,
  drainTimeoutSeconds: SERVE_DRAIN_TIMEOUT_SECONDS,
  preStopSleepSeconds: 5,
  startupTimeoutSeconds: 1200,
  resources: { cpu: '4', memory: '8Gi', memoryLimit: '16Gi' },
});

const PORTS = { http: 8000, grpc: 8001, metrics: 8002 } as const;
/** Seconds added to preStop + drain for the listeners and workers to close. */
const GRACE_MARGIN_SECONDS = 10;

export type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec?: any; [k: string]: unknown };

/**
 * The manifests, in apply order: PersistentVolumeClaim, Deployment, Service, PodDisruptionBudget,
 * HorizontalPodAutoscaler (when `hpa`), ServiceMonitor, PrometheusRule.
 */
export function kubernetesManifests(o: KubernetesOptions = {}): Manifest[] {
  const d = DEFAULT_KUBERNETES_OPTIONS;
  const name = o.name ?? d.name;
  const replicas = o.replicas ?? d.replicas;
  const gpuResource = o.gpuResource === undefined ? d.gpuResource : o.gpuResource;
  const gpus = o.gpusPerReplica ?? d.gpusPerReplica;
  const drain = o.drainTimeoutSeconds ?? d.drainTimeoutSeconds;
  const preStop = o.preStopSleepSeconds ?? d.preStopSleepSeconds;
  const startup = o.startupTimeoutSeconds ?? d.startupTimeoutSeconds;
  const res = o.resources ?? d.resources;
  const claim = o.modelRepositoryClaim ?? `${name}-models`;
  const thresholds = { ...(o.thresholds ?? DEFAULT_ALERT_THRESHOLDS), job: name };
  const selector = { 'app.kubernetes.io/name': name };
  const labels = { ...selector, 'app.kubernetes.io/component': 'inference-server', 'app.kubernetes.io/part-of': 'osprey' };
  const meta = (n: string, extra: Record<string, unknown> = {}) => ({ name: n, ...(o.namespace ? { namespace: o.namespace } : {}), labels, ...extra });
  const eps = o.executionProviders ?? (gpuResource ? 'cuda,cpu' : 'cpu');
  const gpuLimits = gpuResource ? { [gpuResource]: String(gpus) } : {};
  const periodStartup = 10;

  const manifests: Manifest[] = [
    {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: meta(claim),
      spec: { accessModes: ['ReadOnlyMany'], resources: { requests: { storage: '20Gi' } } },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta(name),
      spec: {
        replicas,
        selector: { matchLabels: selector },
        // A new pod must be ready before an old one drains: no capacity is lost during a rollout.
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
        template: {
          metadata: { labels },
          spec: {
            terminationGracePeriodSeconds: preStop + drain + GRACE_MARGIN_SECONDS,
            ...(o.nodeSelector ? { nodeSelector: o.nodeSelector } : {}),
            ...(gpuResource ? { tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] } : {}),
            containers: [
              {
                name: 'osprey',
                image: o.image ?? d.image,
                args: [
                  'serve',
                  '--model-repository', '/models',
                  '--host', '0.0.0.0',
                  '--http-port', String(PORTS.http),
                  '--grpc-port', String(PORTS.grpc),
                  '--metrics-port', String(PORTS.metrics),
                  '--ep', eps,
                  '--drain-timeout-ms', String(drain * 1000),
                  // Behind a Service / ingress many requests share few client addresses.
                  '--max-connections-per-ip', '4096',
                ],
                env: [{ name: 'OSPREY_AUTH_TOKEN', valueFrom: { secretKeyRef: { name: `${name}-auth`, key: 'token', optional: true } } }],
                ports: [
                  { name: 'http', containerPort: PORTS.http, protocol: 'TCP' },
                  { name: 'grpc', containerPort: PORTS.grpc, protocol: 'TCP' },
                  { name: 'metrics', containerPort: PORTS.metrics, protocol: 'TCP' },
                ],
                startupProbe: { httpGet: { path: '/v2/health/live', port: 'http' }, periodSeconds: periodStartup, failureThreshold: Math.ceil(startup / periodStartup), timeoutSeconds: 2 },
                readinessProbe: { httpGet: { path: '/v2/health/ready', port: 'http' }, periodSeconds: 5, failureThreshold: 2, timeoutSeconds: 2 },
                livenessProbe: { httpGet: { path: '/v2/health/live', port: 'http' }, periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 5 },
                lifecycle: { preStop: { exec: { command: ['sleep', String(preStop)] } } },
                resources: {
                  requests: { cpu: res.cpu, memory: res.memory, ...gpuLimits },
                  limits: { memory: res.memoryLimit, ...gpuLimits },
                },
                volumeMounts: [{ name: 'models', mountPath: '/models', readOnly: true }],
              },
            ],
            volumes: [{ name: 'models', persistentVolumeClaim: { claimName: claim, readOnly: true } }],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(name),
      spec: {
        type: 'ClusterIP',
        selector,
        ports: [
          { name: 'http', port: PORTS.http, targetPort: 'http', protocol: 'TCP' },
          { name: 'grpc', port: PORTS.grpc, targetPort: 'grpc', protocol: 'TCP', appProtocol: 'kubernetes.io/h2c' },
          { name: 'metrics', port: PORTS.metrics, targetPort: 'metrics', protocol: 'TCP' },
        ],
      },
    },
    {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: meta(name),
      spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
    },
  ];
  if (o.hpa !== null) {
    const hpa = o.hpa ?? { minReplicas: replicas, maxReplicas: replicas * 2 };
    manifests.push({
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: meta(name),
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
        minReplicas: hpa.minReplicas,
        maxReplicas: hpa.maxReplicas,
        metrics: [
          { type: 'Pods', pods: { metric: { name: METRIC.inFlightRequests }, target: { type: 'AverageValue', averageValue: String(hpa.targetInFlightPerPod ?? 16) } } },
          { type: 'Pods', pods: { metric: { name: DERIVED_METRIC.queueDelay }, target: { type: 'AverageValue', averageValue: `${Math.round((hpa.targetQueueDelaySeconds ?? 0.02) * 1000)}m` } } },
        ],
        behavior: { scaleDown: { stabilizationWindowSeconds: 300, policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] } },
      },
    });
  }
  manifests.push(
    {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'ServiceMonitor',
      metadata: meta(name),
      spec: { selector: { matchLabels: selector }, endpoints: [{ port: 'metrics', path: '/metrics', interval: '15s' }] },
    },
    {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: meta(name),
      spec: ruleFile(thresholds),
    },
  );
  return manifests;
}

/**
 * prometheus-adapter rules (the `rules.custom` of its Helm chart values) that expose the two HPA metrics per pod:
 * `osprey_inflight_requests` and `osprey_queue_delay_seconds` (mean queue delay over 2 minutes).
 */
export function prometheusAdapterRules(): Record<string, unknown> {
  const resources = { overrides: { namespace: { resource: 'namespace' }, pod: { resource: 'pod' } } };
  return {
    rules: {
      custom: [
        {
          seriesQuery: `${METRIC.inFlightRequests}{namespace!="",pod!=""}`,
          resources,
          name: { matches: `^${METRIC.inFlightRequests}$`, as: METRIC.inFlightRequests },
          metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)',
        },
        {
          seriesQuery: `${METRIC.queueDuration}_count{namespace!="",pod!=""}`,
          resources,
          name: { matches: `^${METRIC.queueDuration}_count$`, as: DERIVED_METRIC.queueDelay },
          metricsQuery:
            `sum(rate(${METRIC.queueDuration}_sum{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>) / ` +
            `clamp_min(sum(rate(${METRIC.queueDuration}_count{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>), 1e-9)`,
        },
      ],
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Structural checks (what `kubectl apply --dry-run=server` would refuse, checked without a cluster)

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const PORT_NAME = /^(?=.*[a-z])[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const KNOWN_KINDS: Record<string, string> = {
  PersistentVolumeClaim: 'v1',
  Service: 'v1',
  ConfigMap: 'v1',
  Deployment: 'apps/v1',
  PodDisruptionBudget: 'policy/v1',
  HorizontalPodAutoscaler: 'autoscaling/v2',
  ServiceMonitor: 'monitoring.coreos.com/v1',
  PrometheusRule: 'monitoring.coreos.com/v1',
};

function matches(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/**
 * Checks manifests as the API server and the controllers would: known apiVersion/kind, names (DNS-1123),
 * selectors that select the pod template, container ports and probe ports, extended resources (integers, requests =
 * limits), a grace period above preStop + drain, Service target ports, HPA/PDB targets, rule groups.
 * @returns the problems found, each naming the object and field; empty when none.
 */
export function checkManifests(manifests: readonly Manifest[]): string[] {
  const problems: string[] = [];
  const at = (m: Manifest, field: string, what: string) => problems.push(`${m.kind}/${m.metadata?.name ?? '?'}: ${field}: ${what}`);
  const deployments = manifests.filter((m) => m.kind === 'Deployment');
  for (const m of manifests) {
    if (!m || typeof m !== 'object') {
      problems.push('a manifest is not an object');
      continue;
    }
    const expected = KNOWN_KINDS[m.kind];
    if (!expected) at(m, 'kind', `unknown kind '${m.kind}'`);
    else if (m.apiVersion !== expected) at(m, 'apiVersion', `'${m.apiVersion}', expected '${expected}'`);
    if (!m.metadata?.name || !DNS1123_SUBDOMAIN.test(m.metadata.name) || m.metadata.name.length > 253) at(m, 'metadata.name', `'${m.metadata?.name}' is not a DNS-1123 name`);
    if (m.kind === 'Service' && !DNS1123_LABEL.test(m.metadata.name)) at(m, 'metadata.name', 'a Service name must be a DNS-1123 label');
    if (m.kind !== 'ConfigMap' && (m.spec === undefined || typeof m.spec !== 'object')) at(m, 'spec', 'missing');
  }
  for (const m of deployments) {
    const spec = m.spec;
    const tpl = spec?.template;
    if (!Number.isInteger(spec?.replicas) || spec.replicas < 0) at(m, 'spec.replicas', `'${spec?.replicas}' is not a non-negative integer`);
    if (!matches(spec?.selector?.matchLabels, tpl?.metadata?.labels)) at(m, 'spec.selector', 'does not select spec.template.metadata.labels (the API server refuses it)');
    const containers: any[] = tpl?.spec?.containers ?? [];
    if (containers.length === 0) at(m, 'spec.template.spec.containers', 'empty');
    const grace = tpl?.spec?.terminationGracePeriodSeconds;
    for (const [i, c] of containers.entries()) {
      const f = `spec.template.spec.containers[${i}]`;
      if (!c.name || !DNS1123_LABEL.test(c.name)) at(m, `${f}.name`, `'${c.name}' is not a DNS-1123 label`);
      if (!c.image) at(m, `${f}.image`, 'missing');
      const portNames = new Set<string>();
      const portNumbers = new Set<number>();
      for (const [j, p] of (c.ports ?? []).entries()) {
        if (!Number.isInteger(p.containerPort) || p.containerPort < 1 || p.containerPort > 65535) at(m, `${f}.ports[${j}].containerPort`, `'${p.containerPort}' is not in 1..65535`);
        if (p.name !== undefined && (!PORT_NAME.test(p.name) || p.name.length > 15)) at(m, `${f}.ports[${j}].name`, `'${p.name}' is not an IANA service name (≤ 15 characters)`);
        if (p.name) portNames.add(p.name);
        portNumbers.add(p.containerPort);
      }
      for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) {
        const pr = c[probe];
        if (!pr) {
          at(m, `${f}.${probe}`, 'missing');
          continue;
        }
        const port = pr.httpGet?.port ?? pr.grpc?.port ?? pr.tcpSocket?.port;
        if (typeof port === 'string' ? !portNames.has(port) : !portNumbers.has(port)) at(m, `${f}.${probe}`, `port '${port}' is not a container port`);
        if (pr.httpGet && (typeof pr.httpGet.path !== 'string' || !pr.httpGet.path.startsWith('/'))) at(m, `${f}.${probe}.httpGet.path`, 'must start with /');
        for (const k of ['periodSeconds', 'failureThreshold', 'timeoutSeconds']) if (pr[k] !== undefined && (!Number.isInteger(pr[k]) || pr[k] < 1)) at(m, `${f}.${probe}.${k}`, 'must be a positive integer');
      }
      if (c.livenessProbe?.httpGet?.path === '/v2/health/ready') at(m, `${f}.livenessProbe`, 'on readiness: a draining or loading pod would be restarted');
      const req = c.resources?.requests ?? {};
      const lim = c.resources?.limits ?? {};
      for (const key of new Set([...Object.keys(req), ...Object.keys(lim)])) {
        if (!key.includes('/') || key.startsWith('kubernetes.io/')) continue; // cpu, memory, …: native resources
        for (const [where, v] of [['requests', req[key]], ['limits', lim[key]]] as const) {
          if (v !== undefined && !/^[1-9][0-9]*$/.test(String(v))) at(m, `${f}.resources.${where}.${key}`, `'${v}' — extended resources are whole numbers`);
        }
        if (lim[key] === undefined) at(m, `${f}.resources.limits.${key}`, 'an extended resource must have a limit');
        else if (req[key] !== undefined && String(req[key]) !== String(lim[key])) at(m, `${f}.resources.${key}`, `requests (${req[key]}) must equal limits (${lim[key]}) for an extended resource`);
      }
      const sleep = c.lifecycle?.preStop?.exec?.command?.[0] === 'sleep' ? Number(c.lifecycle.preStop.exec.command[1]) : (c.lifecycle?.preStop?.sleep?.seconds ?? 0);
      const drainFlag = (c.args ?? []).indexOf('--drain-timeout-ms');
      const drainSeconds = drainFlag >= 0 ? Number(c.args[drainFlag + 1]) / 1000 : SERVE_DRAIN_TIMEOUT_SECONDS;
      const g = grace ?? 30;
      if (!(g > sleep + drainSeconds)) at(m, 'spec.template.spec.terminationGracePeriodSeconds', `${g} s is not above preStop ${sleep} s + drain ${drainSeconds} s: the kubelet would SIGKILL a drain in progress`);
      const mounts: any[] = c.volumeMounts ?? [];
      const volumes = new Set(((tpl?.spec?.volumes ?? []) as any[]).map((v) => v.name));
      for (const vm of mounts) if (!volumes.has(vm.name)) at(m, `${f}.volumeMounts`, `volume '${vm.name}' is not in spec.template.spec.volumes`);
    }
  }
  const podsOf = (selector: Record<string, string> | undefined) => deployments.filter((d) => matches(selector, d.spec?.template?.metadata?.labels));
  for (const m of manifests) {
    if (m.kind === 'Service') {
      const targets = podsOf(m.spec?.selector);
      if (targets.length === 0) at(m, 'spec.selector', 'selects no Deployment pod template');
      for (const [j, p] of ((m.spec?.ports ?? []) as any[]).entries()) {
        if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) at(m, `spec.ports[${j}].port`, `'${p.port}' is not in 1..65535`);
        if (typeof p.targetPort === 'string') {
          const found = targets.some((d) => (d.spec.template.spec.containers as any[]).some((c) => (c.ports ?? []).some((cp: any) => cp.name === p.targetPort)));
          if (!found) at(m, `spec.ports[${j}].targetPort`, `no container port named '${p.targetPort}'`);
        }
        if ((m.spec.ports as any[]).length > 1 && !p.name) at(m, `spec.ports[${j}].name`, 'required when a Service has several ports');
      }
    }
    if (m.kind === 'PodDisruptionBudget') {
      if (podsOf(m.spec?.selector?.matchLabels).length === 0) at(m, 'spec.selector', 'selects no Deployment pod template');
      if ((m.spec?.minAvailable === undefined) === (m.spec?.maxUnavailable === undefined)) at(m, 'spec', 'exactly one of minAvailable and maxUnavailable');
    }
    if (m.kind === 'HorizontalPodAutoscaler') {
      const ref = m.spec?.scaleTargetRef;
      if (!deployments.some((d) => d.metadata.name === ref?.name && ref?.kind === 'Deployment')) at(m, 'spec.scaleTargetRef', `no Deployment '${ref?.name}'`);
      const min = m.spec?.minReplicas ?? 1;
      if (!Number.isInteger(min) || min < 1 || !Number.isInteger(m.spec?.maxReplicas) || m.spec.maxReplicas < min) at(m, 'spec.minReplicas/maxReplicas', `need 1 ≤ minReplicas (${min}) ≤ maxReplicas (${m.spec?.maxReplicas})`);
      if (!Array.isArray(m.spec?.metrics) || m.spec.metrics.length === 0) at(m, 'spec.metrics', 'empty');
    }
    if (m.kind === 'ServiceMonitor') {
      const svc = manifests.find((s) => s.kind === 'Service' && matches(m.spec?.selector?.matchLabels, s.metadata.labels));
      if (!svc) at(m, 'spec.selector', 'selects no Service (by its labels)');
      for (const e of (m.spec?.endpoints ?? []) as any[]) if (svc && !(svc.spec.ports as any[]).some((p) => p.name === e.port)) at(m, 'spec.endpoints', `no Service port named '${e.port}'`);
    }
    if (m.kind === 'PrometheusRule') {
      for (const g of (m.spec?.groups ?? []) as any[]) {
        if (!g.name) at(m, 'spec.groups', 'a group without a name');
        for (const r of (g.rules ?? []) as any[]) if ((r.record === undefined) === (r.alert === undefined) || typeof r.expr !== 'string') at(m, `spec.groups[${g.name}]`, 'each rule needs exactly one of record/alert and an expr');
      }
    }
  }
  return problems;
}
