/**
 * The Grafana dashboard of an Osprey fleet (JSON model, schemaVersion 39: Grafana 10/11) and its provisioning
 * files. `deploy/grafana/dashboards/osprey.json` is this module's output (kept in sync by test/deploy/files.test.ts).
 *
 * Panels read the recording rules of deploy/prometheus (`model:*`, `gpu:*`, `camera:*`) where one exists, so the
 * dashboard needs those rules loaded (as kubernetes-mixin dashboards do), and raw Osprey metrics for per-replica
 * views. Template variables: `datasource` (a Prometheus data source), `model` (regex, default all), `job`.
 * GPU panels show "No data" on hosts without a GPU: the series are absent, not zero.
 */
import { DEFAULT_ALERT_THRESHOLDS } from './prometheus.js';
import { METRIC, ROUTING_METRIC, STREAM_METRIC } from '../metrics/names.js';

/** One query of a panel. */
interface Target {
  expr: string;
  legendFormat: string;
  format?: 'time_series' | 'heatmap' | 'table';
  instant?: boolean;
}

interface PanelSpec {
  title: string;
  description: string;
  type: 'timeseries' | 'heatmap' | 'stat' | 'state-timeline' | 'table';
  unit: string;
  targets: Target[];
  /** Width in grid columns (of 24). Default 8. */
  w?: number;
  /** A red threshold line at this value. */
  threshold?: number;
  /** Stacked bars (counts per interval). */
  bars?: boolean;
}

const DS = { type: 'prometheus', uid: '${datasource}' };

/** The dashboard's rows and panels. `$model` and `$job` are Grafana variables. */
function rows(sloSeconds: number, gpuUtilization: number): Array<{ title: string; panels: PanelSpec[] }> {
  const job = 'job="$job"';
  const m = 'model=~"$model"';
  return [
    {
      title: 'Traffic and latency',
      panels: [
        {
          title: 'Throughput (images/s)',
          description: 'Batch elements inferred per second per model, all replicas (nv_inference_count).',
          type: 'timeseries',
          unit: 'short',
          targets: [{ expr: `model:nv_inference_count:rate1m{${m}}`, legendFormat: '{{model}}' }],
        },
        {
          title: 'Requests by outcome (req/s)',
          description: 'Requests per second: success, client_error (4xx: the request was wrong), server_error (5xx).',
          type: 'timeseries',
          unit: 'reqps',
          targets: [{ expr: `model:osprey_requests:rate1m{${m}}`, legendFormat: '{{model}} {{outcome}}' }],
        },
        {
          title: 'Server error ratio',
          description: 'Server errors (5xx) ÷ all requests over 5 minutes.',
          type: 'timeseries',
          unit: 'percentunit',
          targets: [{ expr: `model:osprey_request_errors:ratio_rate5m{${m}}`, legendFormat: '{{model}}' }],
          threshold: DEFAULT_ALERT_THRESHOLDS.errorRatio,
        },
        {
          title: 'Request latency p50 / p95 / p99',
          description: `Request time inside the servers (osprey_request_duration_seconds), all replicas. The red line is the p99 SLO (${sloSeconds * 1000} ms).`,
          type: 'timeseries',
          unit: 's',
          w: 12,
          targets: [
            { expr: `model:osprey_request_duration_seconds:p50_5m{${m}}`, legendFormat: '{{model}} p50' },
            { expr: `model:osprey_request_duration_seconds:p95_5m{${m}}`, legendFormat: '{{model}} p95' },
            { expr: `model:osprey_request_duration_seconds:p99_5m{${m}}`, legendFormat: '{{model}} p99' },
          ],
          threshold: sloSeconds,
        },
        {
          title: 'Queue delay (mean, p99)',
          description: 'Time requests wait in the dynamic batcher queue before executing.',
          type: 'timeseries',
          unit: 's',
          w: 12,
          targets: [
            { expr: `model:osprey_queue_duration_seconds:mean_5m{${m}}`, legendFormat: '{{model}} mean' },
            { expr: `model:osprey_queue_duration_seconds:p99_5m{${m}}`, legendFormat: '{{model}} p99' },
          ],
        },
        {
          title: 'Batch size distribution',
          description: 'Batch elements per model execution (osprey_batch_size): how well dynamic batching fills batches.',
          type: 'heatmap',
          unit: 'short',
          w: 12,
          targets: [{ expr: `sum by (le) (increase(${METRIC.batchSize}_bucket{${job}, ${m}}[$__rate_interval]))`, legendFormat: '{{le}}', format: 'heatmap' }],
        },
        {
          title: 'Mean batch size',
          description: 'Mean batch elements per execution over 5 minutes.',
          type: 'timeseries',
          unit: 'short',
          w: 12,
          targets: [{ expr: `model:osprey_batch_size:mean_5m{${m}}`, legendFormat: '{{model}}' }],
        },
      ],
    },
    {
      title: 'Replicas',
      panels: [
        {
          title: 'Replicas up',
          description: 'Scrape targets that answer (up == 1) and that are ready (osprey_server_ready: 0 while loading or draining).',
          type: 'stat',
          unit: 'short',
          targets: [
            { expr: `sum(up{${job}})`, legendFormat: 'up' },
            { expr: `sum(${METRIC.serverReady}{${job}})`, legendFormat: 'ready' },
          ],
        },
        {
          title: 'In-flight requests per replica',
          description: 'Inference and repository requests in flight (what a drain waits for; an HPA metric).',
          type: 'timeseries',
          unit: 'short',
          targets: [{ expr: `sum by (instance) (${METRIC.inFlightRequests}{${job}})`, legendFormat: '{{instance}}' }],
        },
        {
          title: 'Queued requests per replica',
          description: 'Requests queued in the scheduler, not yet executing (nv_inference_pending_request_count).',
          type: 'timeseries',
          unit: 'short',
          targets: [{ expr: `sum by (instance, model) (${METRIC.pendingRequests}{${job}, ${m}})`, legendFormat: '{{instance}} {{model}}' }],
        },
        {
          title: 'Engine instance utilization',
          description: 'Fraction of time each engine instance executed batches since the previous scrape.',
          type: 'timeseries',
          unit: 'percentunit',
          w: 24,
          targets: [{ expr: `${METRIC.instanceUtilization}{${job}, ${m}}`, legendFormat: '{{instance}} {{model}} v{{version}} #{{instance}}' }],
        },
      ],
    },
    {
      title: 'GPUs',
      panels: [
        {
          title: 'GPU utilization',
          description: `Per GPU, from dcgm-exporter (DCGM_FI_DEV_GPU_UTIL) or Osprey (nv_gpu_utilization). Red line: the ${gpuUtilization * 100}% alert. No data on hosts without a GPU.`,
          type: 'timeseries',
          unit: 'percentunit',
          targets: [{ expr: 'gpu:utilization:ratio', legendFormat: 'GPU {{gpu}} {{gpu_uuid}}' }],
          threshold: gpuUtilization,
        },
        {
          title: 'GPU memory used',
          description: 'Per GPU, used and total (DCGM_FI_DEV_FB_USED/FB_FREE or nv_gpu_memory_*_bytes).',
          type: 'timeseries',
          unit: 'bytes',
          targets: [
            { expr: 'gpu:memory_used:bytes', legendFormat: 'GPU {{gpu}} used' },
            { expr: 'gpu:memory_total:bytes', legendFormat: 'GPU {{gpu}} total' },
          ],
        },
        {
          title: 'GPU temperature',
          description: 'Per GPU (DCGM_FI_DEV_GPU_TEMP or osprey_gpu_temperature_celsius).',
          type: 'timeseries',
          unit: 'celsius',
          targets: [{ expr: 'gpu:temperature:celsius', legendFormat: 'GPU {{gpu}}' }],
          threshold: DEFAULT_ALERT_THRESHOLDS.gpuTemperatureCelsius,
        },
      ],
    },
    {
      title: 'Models',
      panels: [
        {
          title: 'Loaded versions',
          description: 'Model versions loaded per replica and their state (osprey_model_state).',
          type: 'table',
          unit: 'short',
          targets: [{ expr: `max by (instance, model, version, state) (${METRIC.modelState}{${job}, ${m}})`, legendFormat: '{{model}} v{{version}} {{state}}', format: 'table', instant: true }],
        },
        {
          title: 'Models ready',
          description: 'Replicas on which each model has a READY version (osprey_model_ready).',
          type: 'timeseries',
          unit: 'short',
          targets: [{ expr: `sum by (model) (${METRIC.modelReady}{${job}, ${m}})`, legendFormat: '{{model}}' }],
        },
        {
          title: 'Version swaps and rollbacks',
          description: 'Swaps to a new version by outcome (switched, confirmed after probation, failed, rolled_back).',
          type: 'timeseries',
          unit: 'short',
          bars: true,
          targets: [{ expr: `sum by (model, outcome) (increase(${ROUTING_METRIC.modelSwaps}{${job}, ${m}}[$__rate_interval]))`, legendFormat: '{{model}} {{outcome}}' }],
        },
      ],
    },
    {
      title: 'Cameras',
      panels: [
        {
          title: 'Camera fps (processed / from source)',
          description: 'Processed frames per second per camera (osprey_stream_fps) and frames arriving from the source.',
          type: 'timeseries',
          unit: 'short',
          targets: [
            { expr: `max by (camera) (${STREAM_METRIC.fps}{${job}})`, legendFormat: '{{camera}} processed' },
            { expr: `max by (camera) (${STREAM_METRIC.decodedFps}{${job}})`, legendFormat: '{{camera}} source' },
          ],
        },
        {
          title: 'Dropped frames',
          description: 'Frames dropped per second (queue full, oldest first) and dropped ÷ sampled over 5 minutes.',
          type: 'timeseries',
          unit: 'short',
          targets: [
            { expr: `sum by (camera) (rate(${STREAM_METRIC.frames}{${job}, stage="dropped"}[$__rate_interval]))`, legendFormat: '{{camera}} dropped/s' },
            { expr: 'camera:osprey_stream_frames_dropped:ratio_rate5m', legendFormat: '{{camera}} drop ratio' },
          ],
        },
        {
          title: 'Camera state',
          description: 'Each camera\'s current state (starting, streaming, starved, stalled, reconnecting, failed, stopped).',
          type: 'state-timeline',
          unit: 'short',
          targets: [{ expr: `max by (camera, state) (${STREAM_METRIC.state}{${job}}) == 1`, legendFormat: '{{camera}} {{state}}' }],
        },
        {
          title: 'Frame latency p99',
          description: 'Frame arrival to detections ready, p99 over 5 minutes per camera.',
          type: 'timeseries',
          unit: 's',
          w: 24,
          targets: [{ expr: `histogram_quantile(0.99, sum by (camera, le) (rate(${STREAM_METRIC.latency}_bucket{${job}}[5m])))`, legendFormat: '{{camera}}' }],
        },
      ],
    },
  ];
}

/** The dashboard JSON model. */
export function grafanaDashboard(options: { sloSeconds?: number; gpuUtilizationRatio?: number; job?: string } = {}): Record<string, unknown> {
  const slo = options.sloSeconds ?? DEFAULT_ALERT_THRESHOLDS.latencyP99SloSeconds;
  const gpu = options.gpuUtilizationRatio ?? DEFAULT_ALERT_THRESHOLDS.gpuUtilizationRatio;
  const panels: Array<Record<string, unknown>> = [];
  let id = 1;
  let y = 0;
  for (const row of rows(slo, gpu)) {
    panels.push({ id: id++, type: 'row', title: row.title, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] });
    y += 1;
    let x = 0;
    for (const p of row.panels) {
      const w = p.w ?? 8;
      if (x + w > 24) {
        x = 0;
        y += 8;
      }
      const custom: Record<string, unknown> = p.type === 'timeseries' ? { drawStyle: p.bars ? 'bars' : 'line', fillOpacity: p.bars ? 80 : 10, showPoints: 'never', ...(p.threshold !== undefined ? { thresholdsStyle: { mode: 'line' } } : {}) } : {};
      panels.push({
        id: id++,
        type: p.type,
        title: p.title,
        description: p.description,
        datasource: DS,
        gridPos: { h: 8, w, x, y },
        fieldConfig: {
          defaults: {
            unit: p.unit,
            custom,
            thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, ...(p.threshold !== undefined ? [{ color: 'red', value: p.threshold }] : [])] },
          },
          overrides: [],
        },
        options: p.type === 'heatmap' ? { calculate: false, yAxis: { unit: 'short' } } : { legend: { displayMode: 'list', placement: 'bottom' } },
        targets: p.targets.map((t, i) => ({
          refId: String.fromCharCode(65 + i),
          datasource: DS,
          expr: t.expr,
          legendFormat: t.legendFormat,
          ...(t.format ? { format: t.format } : {}),
          ...(t.instant ? { instant: true, range: false } : {}),
        })),
      });
      x += w;
    }
    y += 8;
  }
  return {
    uid: 'osprey-fleet',
    title: 'Osprey: inference fleet',
    description: 'Throughput, latency, queue delay, batching, GPUs, models and cameras of Osprey replicas (deploy/grafana, generated by src/deploy/grafana.ts).',
    tags: ['osprey', 'inference'],
    schemaVersion: 39,
    version: 1,
    editable: true,
    graphTooltip: 1,
    refresh: '10s',
    time: { from: 'now-1h', to: 'now' },
    timezone: 'browser',
    templating: {
      list: [
        { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', current: {}, hide: 0 },
        { name: 'job', label: 'Job', type: 'custom', query: options.job ?? DEFAULT_ALERT_THRESHOLDS.job, current: { text: options.job ?? DEFAULT_ALERT_THRESHOLDS.job, value: options.job ?? DEFAULT_ALERT_THRESHOLDS.job }, hide: 0 },
        {
          name: 'model',
          label: 'Model',
          type: 'query',
          datasource: DS,
          query: { query: `label_values(${METRIC.modelReady}{job="$job"}, model)`, refId: 'models' },
          definition: `label_values(${METRIC.modelReady}{job="$job"}, model)`,
          refresh: 2,
          includeAll: true,
          multi: true,
          allValue: '.*',
          current: { text: 'All', value: '$__all' },
          hide: 0,
        },
      ],
    },
    annotations: { list: [] },
    panels,
  };
}

/** Grafana's dashboard provider (provisioning/dashboards/osprey.yml). */
export function grafanaDashboardProvider(path = '/var/lib/grafana/dashboards/osprey'): Record<string, unknown> {
  return {
    apiVersion: 1,
    providers: [{ name: 'osprey', orgId: 1, folder: 'Osprey', type: 'file', disableDeletion: false, updateIntervalSeconds: 30, allowUiUpdates: false, options: { path, foldersFromFilesStructure: false } }],
  };
}

/** Grafana's Prometheus data source (provisioning/datasources/prometheus.yml). */
export function grafanaDatasource(url = 'http://127.0.0.1:9090'): Record<string, unknown> {
  return {
    apiVersion: 1,
    datasources: [{ name: 'Prometheus', uid: 'prometheus', type: 'prometheus', access: 'proxy', url, isDefault: true, jsonData: { timeInterval: '15s' } }],
  };
}
