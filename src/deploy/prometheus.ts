/**
 * Prometheus recording and alerting rules for Osprey (Prometheus' own rule-file format), generated from one table of
 * thresholds so every threshold is a parameter with the seeds' value as its default. `deploy/prometheus/osprey-rules.yml`
 * is this module's output for {@link DEFAULT_ALERT_THRESHOLDS} (kept in sync by test/deploy/files.test.ts;
 * regenerate with `npx tsx deploy/generate.ts`), `promtool test rules` runs `deploy/prometheus/osprey-rules.test.yml`
 * against it.
 *
 * Recording rules follow Prometheus' `level:metric:operations` naming: `model:` series aggregate every replica of a
 * model, `gpu:` series are one per GPU (UUID), read from NVIDIA's dcgm-exporter when it is scraped and from Osprey's
 * own nvidia-smi gauges otherwise ({@link DCGM_MAPPING}); `camera:` series are one per camera. Without a GPU the
 * `gpu:` series are absent (not zero), so GPU alerts stay quiet and GPU panels show "no data" on a CPU-only host.
 */
import { DCGM_MAPPING, DCGM_UUID_LABEL, METRIC, ROUTING_METRIC, STREAM_METRIC } from '../metrics/names.js';

/** Every alert threshold, in base units (ratios 0..1, seconds, °C). */
export interface AlertThresholds {
  /** Prometheus `job` of the Osprey replicas. Default `osprey`. */
  job: string;
  /** GPU utilization above which a GPU is saturated (ratio). Seeds: 0.9 (90 %). */
  gpuUtilizationRatio: number;
  /** …for this long. Seeds: 5m. */
  gpuUtilizationFor: string;
  /** GPU memory used ÷ total above which a GPU is nearly full (ratio). Default 0.9. */
  gpuMemoryRatio: number;
  /** GPU temperature, °C (H100/H200 slow down near 87 °C). Default 85. */
  gpuTemperatureCelsius: number;
  /** p99 request latency SLO inside the server, seconds. Default 0.1 (100 ms). */
  latencyP99SloSeconds: number;
  /** Mean queue delay above which a growing queue alerts, seconds. Default 0.05. */
  queueDelaySeconds: number;
  /** …when it also rose by more than this over the last 10 minutes, seconds (noise-proof "growing"). Default 0.005. */
  queueDelayGrowthSeconds: number;
  /** Server-error ratio (5xx ÷ all requests) that alerts. Default 0.01 (1 %). */
  errorRatio: number;
  /** A model without a READY version for this long alerts. Default 2m. */
  modelNotReadyFor: string;
  /** A camera not streaming (stalled, reconnecting, failed, starved) for this long alerts. Default 2m. */
  cameraDownFor: string;
  /** Dropped ÷ sampled frames per camera that alerts. Default 0.05 (5 %). */
  cameraDropRatio: number;
  /** Replicas that must be up (the plan's replica count, `osprey plan --emit`). Default 1. */
  minReplicas: number;
  /** A scrape target down for this long alerts. Default 1m. */
  replicaDownFor: string;
}

/** The defaults: the seeds' values (90 % GPU utilization for 5 minutes) and common SRE starting points. */
export const DEFAULT_ALERT_THRESHOLDS: Readonly<AlertThresholds> = Object.freeze({
  job: 'osprey',
  gpuUtilizationRatio: 0.9,
  gpuUtilizationFor: '5m',
  gpuMemoryRatio: 0.9,
  gpuTemperatureCelsius: 85,
  latencyP99SloSeconds: 0.1,
  queueDelaySeconds: 0.05,
  queueDelayGrowthSeconds: 0.005,
  errorRatio: 0.01,
  modelNotReadyFor: '2m',
  cameraDownFor: '2m',
  cameraDropRatio: 0.05,
  minReplicas: 1,
  replicaDownFor: '1m',
});

/** One recording rule. */
export interface RecordingRule {
  record: string;
  expr: string;
  labels?: Record<string, string>;
}

/** One alerting rule, plus the series it compares (`signal`), which returns data whenever the inputs exist. */
export interface AlertingRule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: { summary: string; description: string };
  /**
   * The alert's input without its threshold (not written to the rule file): on a live Prometheus it returns series
   * whenever the metrics it needs are scraped, firing or not. test/deploy/prometheus-live checks it does.
   */
  signal: string;
  /** The alert needs a GPU (its signal is absent on CPU-only hosts). */
  gpu?: boolean;
}

export interface RuleGroup<R> {
  name: string;
  interval?: string;
  rules: R[];
}

/** `a or on(gpu_uuid) b` over the DCGM figure (renamed UUID → gpu_uuid, scaled) and Osprey's own, one per GPU. */
function gpuEither(dcgmExpr: string, osprey: string): string {
  return `max by (gpu_uuid, gpu) (label_replace(${dcgmExpr}, "gpu_uuid", "$1", "${DCGM_UUID_LABEL}", "(.+)") or on (gpu_uuid) ${osprey})`;
}

function dcgm(osprey: string): (typeof DCGM_MAPPING)[number] {
  return DCGM_MAPPING.find((m) => m.osprey === osprey)!;
}

/** Recording rules (one group): what the alerts and the dashboard read. */
export function recordingRules(t: AlertThresholds = DEFAULT_ALERT_THRESHOLDS): RuleGroup<RecordingRule> {
  const job = `{job="${t.job}"}`;
  const sel = (extra = '') => `{job="${t.job}"${extra ? `, ${extra}` : ''}}`;
  const quantile = (q: number, metric: string) => `histogram_quantile(${q}, sum by (model, le) (rate(${metric}_bucket${job}[5m])))`;
  const util = dcgm(METRIC.gpuUtilization);
  const used = dcgm(METRIC.gpuMemoryUsedBytes);
  const temp = dcgm(METRIC.gpuTemperature);
  const rules: RecordingRule[] = [
    { record: 'model:nv_inference_count:rate1m', expr: `sum by (model) (rate(${METRIC.inferenceCount}${job}[1m]))` },
    { record: 'model:osprey_requests:rate1m', expr: `sum by (model, outcome) (rate(${METRIC.requestsTotal}${job}[1m]))` },
    { record: 'model:osprey_request_duration_seconds:p50_5m', expr: quantile(0.5, METRIC.requestDuration) },
    { record: 'model:osprey_request_duration_seconds:p95_5m', expr: quantile(0.95, METRIC.requestDuration) },
    { record: 'model:osprey_request_duration_seconds:p99_5m', expr: quantile(0.99, METRIC.requestDuration) },
    { record: 'model:osprey_queue_duration_seconds:p99_5m', expr: quantile(0.99, METRIC.queueDuration) },
    {
      record: 'model:osprey_queue_duration_seconds:mean_5m',
      expr: `sum by (model) (rate(${METRIC.queueDuration}_sum${job}[5m])) / sum by (model) (rate(${METRIC.queueDuration}_count${job}[5m]))`,
    },
    {
      record: 'model:osprey_request_errors:ratio_rate5m',
      expr: `sum by (model) (rate(${METRIC.requestsTotal}${sel('outcome="server_error"')}[5m])) / sum by (model) (rate(${METRIC.requestsTotal}${job}[5m]))`,
    },
    {
      record: 'model:osprey_batch_size:mean_5m',
      expr: `sum by (model) (rate(${METRIC.batchSize}_sum${job}[5m])) / sum by (model) (rate(${METRIC.batchSize}_count${job}[5m]))`,
    },
    { record: 'gpu:utilization:ratio', expr: gpuEither(`${util.dcgm} / 100`, METRIC.gpuUtilization) },
    { record: 'gpu:memory_used:bytes', expr: gpuEither(`${used.dcgm} * ${used.scale}`, METRIC.gpuMemoryUsedBytes) },
    { record: 'gpu:memory_total:bytes', expr: gpuEither(`(DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE) * 1048576`, METRIC.gpuMemoryTotalBytes) },
    { record: 'gpu:memory_used:ratio', expr: 'gpu:memory_used:bytes / gpu:memory_total:bytes' },
    { record: 'gpu:temperature:celsius', expr: gpuEither(temp.dcgm, METRIC.gpuTemperature) },
    {
      record: 'camera:osprey_stream_frames_dropped:ratio_rate5m',
      expr:
        `sum by (camera) (rate(${STREAM_METRIC.frames}${sel('stage="dropped"')}[5m])) / ` +
        `sum by (camera) (rate(${STREAM_METRIC.frames}${sel('stage="sampled"')}[5m]))`,
    },
  ];
  return { name: 'osprey.recording', rules };
}

/** Alerting rules (one group). */
export function alertingRules(t: AlertThresholds = DEFAULT_ALERT_THRESHOLDS): RuleGroup<AlertingRule> {
  const job = `{job="${t.job}"}`;
  const pct = (r: number) => `${Math.round(r * 1000) / 10}%`;
  const downStates = 'stalled|reconnecting|failed|starved';
  const rules: AlertingRule[] = [
    {
      alert: 'OspreyGpuUtilizationHigh',
      signal: 'gpu:utilization:ratio',
      expr: `gpu:utilization:ratio > ${t.gpuUtilizationRatio}`,
      for: t.gpuUtilizationFor,
      labels: { severity: 'warning' },
      annotations: {
        summary: `GPU {{ $labels.gpu }} utilization above ${pct(t.gpuUtilizationRatio)} for ${t.gpuUtilizationFor}`,
        description: 'GPU {{ $labels.gpu_uuid }} is at {{ $value | humanizePercentage }}: it has no headroom left for bursts or a failed replica. Add GPUs (osprey plan) or move load.',
      },
      gpu: true,
    },
    {
      alert: 'OspreyGpuMemoryHigh',
      signal: 'gpu:memory_used:ratio',
      expr: `gpu:memory_used:ratio > ${t.gpuMemoryRatio}`,
      for: '5m',
      labels: { severity: 'warning' },
      annotations: {
        summary: `GPU {{ $labels.gpu }} memory above ${pct(t.gpuMemoryRatio)}`,
        description: 'GPU {{ $labels.gpu_uuid }} memory is {{ $value | humanizePercentage }} used: another instance or a larger batch profile will not fit.',
      },
      gpu: true,
    },
    {
      alert: 'OspreyGpuTemperatureHigh',
      signal: 'gpu:temperature:celsius',
      expr: `gpu:temperature:celsius > ${t.gpuTemperatureCelsius}`,
      for: '5m',
      labels: { severity: 'warning' },
      annotations: {
        summary: `GPU {{ $labels.gpu }} above ${t.gpuTemperatureCelsius} °C`,
        description: 'GPU {{ $labels.gpu_uuid }} is at {{ $value }} °C: near the slowdown temperature, clocks (and throughput) drop. Check cooling.',
      },
      gpu: true,
    },
    {
      alert: 'OspreyLatencyP99AboveSLO',
      signal: 'model:osprey_request_duration_seconds:p99_5m',
      expr: `model:osprey_request_duration_seconds:p99_5m > ${t.latencyP99SloSeconds}`,
      for: '5m',
      labels: { severity: 'critical' },
      annotations: {
        summary: `Model {{ $labels.model }} p99 latency above the ${t.latencyP99SloSeconds * 1000} ms SLO`,
        description: 'p99 request latency inside the servers is {{ $value | humanizeDuration }} over 5 minutes (SLO ' + `${t.latencyP99SloSeconds * 1000} ms). Check queue delay and GPU utilization; add replicas (osprey plan).`,
      },
    },
    {
      alert: 'OspreyQueueDelayGrowing',
      signal: 'model:osprey_queue_duration_seconds:mean_5m',
      // deriv × 600 s: the rise over 10 minutes of the least-squares line, so noise around a steady queue stays quiet.
      expr: `model:osprey_queue_duration_seconds:mean_5m > ${t.queueDelaySeconds} and deriv(model:osprey_queue_duration_seconds:mean_5m[10m]) * 600 > ${t.queueDelayGrowthSeconds}`,
      for: '5m',
      labels: { severity: 'warning' },
      annotations: {
        summary: `Model {{ $labels.model }} queue delay above ${t.queueDelaySeconds * 1000} ms and growing`,
        description: 'Requests wait {{ $value | humanizeDuration }} on average in the scheduler queue and the wait keeps growing: arrivals exceed what the instances execute. Add instances or replicas.',
      },
    },
    {
      alert: 'OspreyErrorRatioHigh',
      signal: 'model:osprey_request_errors:ratio_rate5m',
      expr: `model:osprey_request_errors:ratio_rate5m > ${t.errorRatio}`,
      for: '5m',
      labels: { severity: 'critical' },
      annotations: {
        summary: `Model {{ $labels.model }} server errors above ${pct(t.errorRatio)}`,
        description: '{{ $value | humanizePercentage }} of requests fail with a server error (5xx; client errors are not counted). See nv_inference_request_failure{reason} for the codes.',
      },
    },
    {
      alert: 'OspreyModelNotReady',
      signal: `max by (model) (${METRIC.modelReady}${job})`,
      expr: `max by (model) (${METRIC.modelReady}${job}) == 0`,
      for: t.modelNotReadyFor,
      labels: { severity: 'critical' },
      annotations: {
        summary: 'Model {{ $labels.model }} is not ready on any replica',
        description: `No replica has a READY version of {{ $labels.model }} for ${t.modelNotReadyFor}: it failed to load or was unloaded. POST /v2/repository/index shows the reason.`,
      },
    },
    {
      alert: 'OspreyModelSwapRolledBack',
      signal: `sum by (model) (increase(${ROUTING_METRIC.modelSwaps}${job}[15m]))`,
      expr: `sum by (model) (increase(${ROUTING_METRIC.modelSwaps}{job="${t.job}", outcome=~"rolled_back|rollback_failed"}[15m])) > 0`,
      labels: { severity: 'warning' },
      annotations: {
        summary: 'A new version of {{ $labels.model }} was rolled back',
        description: 'A swap to a new version of {{ $labels.model }} was rolled back during its probation (osprey_model_rollbacks_total{reason} says why: error_rate or latency). The previous version serves.',
      },
    },
    {
      alert: 'OspreyCameraDown',
      signal: `max by (camera, state) (${STREAM_METRIC.state}${job})`,
      expr: `max by (camera, state) (${STREAM_METRIC.state}{job="${t.job}", state=~"${downStates}"}) == 1`,
      for: t.cameraDownFor,
      labels: { severity: 'critical' },
      annotations: {
        summary: 'Camera {{ $labels.camera }} is {{ $labels.state }}',
        description: `Camera {{ $labels.camera }} has not been streaming for ${t.cameraDownFor} (state {{ $labels.state }}). GET /api/cameras gives the reason code.`,
      },
    },
    {
      alert: 'OspreyCameraDroppingFrames',
      signal: 'camera:osprey_stream_frames_dropped:ratio_rate5m',
      expr: `camera:osprey_stream_frames_dropped:ratio_rate5m > ${t.cameraDropRatio}`,
      for: '5m',
      labels: { severity: 'warning' },
      annotations: {
        summary: `Camera {{ $labels.camera }} drops more than ${pct(t.cameraDropRatio)} of its frames`,
        description: 'Camera {{ $labels.camera }} drops {{ $value | humanizePercentage }} of sampled frames (queue full, oldest first): inference does not keep up with its fps.',
      },
    },
    {
      alert: 'OspreyReplicaDown',
      signal: `up${job}`,
      expr: `up${job} == 0`,
      for: t.replicaDownFor,
      labels: { severity: 'warning' },
      annotations: {
        summary: 'Osprey replica {{ $labels.instance }} is down',
        description: `Prometheus has not scraped {{ $labels.instance }} for ${t.replicaDownFor}: the process is gone or its /metrics does not answer.`,
      },
    },
    {
      alert: 'OspreyReplicasMissing',
      signal: `count(up${job} == 1) or vector(0)`,
      expr: `(count(up${job} == 1) or vector(0)) < ${t.minReplicas}`,
      for: t.replicaDownFor,
      labels: { severity: 'critical' },
      annotations: {
        summary: `Fewer than ${t.minReplicas} Osprey replica(s) up`,
        description: `Only {{ $value }} replica(s) answer, the plan needs ${t.minReplicas}: the redundancy is spent.`,
      },
    },
  ];
  return { name: 'osprey.alerts', rules };
}

/**
 * The rule file as an object (`groups:` of Prometheus' format), ready for YAML. One group: Prometheus evaluates a
 * group's rules in order, so each alert reads the recording rules of the same evaluation (in separate groups it
 * would read the previous one's, a lag that also makes promtool's results depend on group order).
 */
export function ruleFile(t: AlertThresholds = DEFAULT_ALERT_THRESHOLDS): { groups: Array<RuleGroup<RecordingRule | Omit<AlertingRule, 'signal' | 'gpu'>>> } {
  return {
    groups: [
      {
        name: 'osprey',
        rules: [...recordingRules(t).rules, ...alertingRules(t).rules.map(({ signal: _s, gpu: _g, ...rule }) => rule)],
      },
    ],
  };
}

/** A scrape target of the local setup. */
export interface ScrapeTarget {
  /** `host:port` of a replica's /metrics (its HTTP port, or --metrics-port). */
  address: string;
  /** Extra labels, e.g. `{ replica: 'r0' }`. */
  labels?: Record<string, string>;
}

/**
 * A prometheus.yml for the local setup: scrapes each replica's /metrics (job {@link AlertThresholds.job}) and
 * loads the rule files. `scrapeInterval` defaults to 15s (the tests use 1s).
 */
export function prometheusConfig(options: { targets: readonly ScrapeTarget[]; ruleFiles: readonly string[]; scrapeInterval?: string; job?: string; bearerTokenFile?: string }): Record<string, unknown> {
  const interval = options.scrapeInterval ?? '15s';
  return {
    global: { scrape_interval: interval, evaluation_interval: interval },
    rule_files: [...options.ruleFiles],
    scrape_configs: [
      {
        job_name: options.job ?? DEFAULT_ALERT_THRESHOLDS.job,
        metrics_path: '/metrics',
        ...(options.bearerTokenFile ? { authorization: { type: 'Bearer', credentials_file: options.bearerTokenFile } } : {}),
        static_configs: options.targets.map((t) => ({ targets: [t.address], ...(t.labels ? { labels: t.labels } : {}) })),
      },
    ],
  };
}
