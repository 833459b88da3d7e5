/**
 * The server's Prometheus registry (prom-client): per model+version request, batch, queue and compute metrics,
 * instance utilisation, process CPU/memory (prom-client's default metrics) and GPU metrics from nvidia-smi when a
 * GPU is present. Names live in {@link METRIC}.
 *
 * One registry per server (not prom-client's global one), so several servers can live in one process (tests).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { ERROR_CATALOGUE, type ErrorCode } from '../core/errors.js';
import type { BatcherObserver } from '../scheduler/dynamic-batcher.js';
import { queryGpus, type GpuReading } from './gpu.js';
import { BATCH_SIZE_BUCKETS, LATENCY_BUCKETS_SECONDS, METRIC } from './names.js';

/** What the metrics read at scrape time (the repository's loaded versions). */
export interface MetricsSource {
  versions(): Array<{
    model: string;
    version: number;
    state: string;
    pendingRequests: number;
    /** Per instance: busy time, batches run, whether it is running one now, the GPU it is pinned to (null/absent: CPU). */
    instances: Array<{ busyNs: number; executions?: number; busy?: boolean; gpu?: number | null }>;
  }>;
  /** Every model the repository knows, loaded or not, with whether it has a READY version (`osprey_model_ready`). */
  models?(): Promise<Array<{ model: string; ready: boolean }>>;
  /** What `GET /v2/health/ready` answers (`osprey_server_ready`). */
  ready?(): boolean;
  /** Requests a graceful shutdown would wait for (`osprey_inflight_requests`). */
  inFlightRequests?(): number;
}

/** `osprey_requests_total`'s `outcome` label values. */
export const REQUEST_OUTCOMES = ['success', 'client_error', 'server_error'] as const;
export type RequestOutcome = (typeof REQUEST_OUTCOMES)[number];

/** A failure's outcome from the catalogue's HTTP status: 4xx = the client's request was wrong, else the server's. */
export function failureOutcome(reason: string | undefined): RequestOutcome {
  const entry = reason !== undefined ? ERROR_CATALOGUE[reason as ErrorCode] : undefined;
  return entry && entry.http >= 400 && entry.http < 500 ? 'client_error' : 'server_error';
}

type MV = { model: string; version: string };

/** `{ gpu: "1" }` for an instance pinned to GPU 1; nothing for a CPU instance (so CPU series keep their labels). */
function gpuLabel(inst: { gpu?: number | null }): { gpu?: string } {
  return inst.gpu !== undefined && inst.gpu !== null ? { gpu: String(inst.gpu) } : {};
}

export interface ServerMetricsOptions {
  /** Collect process CPU/memory/event-loop metrics (prom-client defaults). Default true. */
  processMetrics?: boolean;
  /** Read GPU metrics from nvidia-smi when present. Default true. */
  gpuMetrics?: boolean;
}

export class ServerMetrics {
  readonly registry = new Registry();
  private source: MetricsSource | undefined;
  private readonly success: Counter<'model' | 'version'>;
  private readonly failure: Counter<'model' | 'version' | 'reason'>;
  private readonly inferences: Counter<'model' | 'version'>;
  private readonly executions: Counter<'model' | 'version'>;
  private readonly requestUs: Counter<'model' | 'version'>;
  private readonly queueUs: Counter<'model' | 'version'>;
  private readonly inputUs: Counter<'model' | 'version'>;
  private readonly inferUs: Counter<'model' | 'version'>;
  private readonly outputUs: Counter<'model' | 'version'>;
  private readonly batchSize: Histogram<'model' | 'version'>;
  private readonly queueSeconds: Histogram<'model' | 'version'>;
  private readonly requestSeconds: Histogram<'model' | 'version'>;
  private readonly computeSeconds: Histogram<'model' | 'version' | 'phase'>;
  private readonly images: Counter<'model' | 'version'>;
  private readonly detections: Counter<'model' | 'version'>;
  private readonly requests: Counter<'model' | 'version' | 'outcome'>;
  private readonly requestsSeen = new Set<string>();
  private readonly lastBusy = new Map<string, { busyNs: number; at: number }>();
  private gpuProbe: Promise<GpuReading[] | null> | undefined;

  constructor(options: ServerMetricsOptions = {}) {
    const r = [this.registry];
    const mv = ['model', 'version'] as const;
    this.success = new Counter({ name: METRIC.requestSuccess, help: 'Number of successful inference requests', labelNames: mv, registers: r });
    this.failure = new Counter({ name: METRIC.requestFailure, help: 'Number of failed inference requests, by Osprey error code', labelNames: [...mv, 'reason'], registers: r });
    this.inferences = new Counter({ name: METRIC.inferenceCount, help: 'Number of inferences performed (batch elements)', labelNames: mv, registers: r });
    this.executions = new Counter({ name: METRIC.execCount, help: 'Number of model executions performed (batches)', labelNames: mv, registers: r });
    this.requestUs = new Counter({ name: METRIC.requestDurationUs, help: 'Cumulative inference request duration in microseconds', labelNames: mv, registers: r });
    this.queueUs = new Counter({ name: METRIC.queueDurationUs, help: 'Cumulative inference queuing duration in microseconds', labelNames: mv, registers: r });
    this.inputUs = new Counter({ name: METRIC.computeInputDurationUs, help: 'Cumulative compute input duration in microseconds', labelNames: mv, registers: r });
    this.inferUs = new Counter({ name: METRIC.computeInferDurationUs, help: 'Cumulative compute inference duration in microseconds', labelNames: mv, registers: r });
    this.outputUs = new Counter({ name: METRIC.computeOutputDurationUs, help: 'Cumulative compute output duration in microseconds', labelNames: mv, registers: r });
    this.batchSize = new Histogram({ name: METRIC.batchSize, help: 'Batch elements per model execution', labelNames: mv, buckets: [...BATCH_SIZE_BUCKETS], registers: r });
    this.queueSeconds = new Histogram({ name: METRIC.queueDuration, help: 'Time a request waited in the scheduler queue, seconds', labelNames: mv, buckets: [...LATENCY_BUCKETS_SECONDS], registers: r });
    this.requestSeconds = new Histogram({ name: METRIC.requestDuration, help: 'Request time inside the server, seconds', labelNames: mv, buckets: [...LATENCY_BUCKETS_SECONDS], registers: r });
    this.computeSeconds = new Histogram({ name: METRIC.computeDuration, help: 'Compute time per execution by phase (input, infer, output), seconds', labelNames: [...mv, 'phase'], buckets: [...LATENCY_BUCKETS_SECONDS], registers: r });
    this.images = new Counter({ name: METRIC.imagesTotal, help: 'Images received by the detect route', labelNames: mv, registers: r });
    this.detections = new Counter({ name: METRIC.detectionsTotal, help: 'Detections returned by the detect route', labelNames: mv, registers: r });
    this.requests = new Counter({ name: METRIC.requestsTotal, help: 'Requests finished, by outcome (success, client_error = 4xx, server_error = 5xx)', labelNames: [...mv, 'outcome'], registers: r });

    const self = this;
    new Gauge({
      name: METRIC.pendingRequests,
      help: 'Number of inference requests queued in the scheduler',
      labelNames: mv,
      registers: r,
      collect() {
        this.reset();
        for (const v of self.source?.versions() ?? []) this.set({ model: v.model, version: String(v.version) }, v.pendingRequests);
      },
    });
    new Counter({
      name: METRIC.instanceBusySeconds,
      help: 'Time each engine instance spent executing batches, seconds',
      labelNames: [...mv, 'instance', 'gpu'],
      registers: r,
      collect() {
        this.reset();
        for (const v of self.source?.versions() ?? []) {
          v.instances.forEach((inst, i) => this.inc({ model: v.model, version: String(v.version), instance: String(i), ...gpuLabel(inst) }, inst.busyNs / 1e9));
        }
      },
    });
    // per-GPU sums over the instances pinned to each GPU (nothing on a CPU-only server)
    const perGpu = (pick: (inst: { busyNs: number; executions?: number; busy?: boolean }) => number) => {
      const out: Array<{ labels: { model: string; version: string; gpu: string }; value: number }> = [];
      for (const v of self.source?.versions() ?? []) {
        const sums = new Map<number, number>();
        for (const inst of v.instances) if (inst.gpu !== undefined && inst.gpu !== null) sums.set(inst.gpu, (sums.get(inst.gpu) ?? 0) + pick(inst));
        for (const [gpu, value] of [...sums].sort((a, b) => a[0] - b[0])) out.push({ labels: { model: v.model, version: String(v.version), gpu: String(gpu) }, value });
      }
      return out;
    };
    new Counter({
      name: METRIC.gpuBusySeconds,
      help: 'Time the engine instances pinned to each GPU spent executing batches, summed, seconds',
      labelNames: [...mv, 'gpu'],
      registers: r,
      collect() {
        this.reset();
        for (const { labels, value } of perGpu((i) => i.busyNs / 1e9)) this.inc(labels, value);
      },
    });
    new Counter({
      name: METRIC.gpuExecutions,
      help: 'Batches executed by the engine instances pinned to each GPU',
      labelNames: [...mv, 'gpu'],
      registers: r,
      collect() {
        this.reset();
        for (const { labels, value } of perGpu((i) => i.executions ?? 0)) this.inc(labels, value);
      },
    });
    new Gauge({
      name: METRIC.gpuBusyInstances,
      help: 'Engine instances executing a batch now on each GPU',
      labelNames: [...mv, 'gpu'],
      registers: r,
      collect() {
        this.reset();
        for (const { labels, value } of perGpu((i) => (i.busy ? 1 : 0))) this.set(labels, value);
      },
    });
    new Gauge({
      name: METRIC.instanceUtilization,
      help: 'Fraction of time each engine instance was executing since the previous scrape (0..1)',
      labelNames: [...mv, 'instance', 'gpu'],
      registers: r,
      collect() {
        this.reset();
        const now = performance.now();
        for (const v of self.source?.versions() ?? []) {
          v.instances.forEach((inst, i) => {
            const key = `${v.model}\u0000${v.version}\u0000${i}`;
            const prev = self.lastBusy.get(key);
            self.lastBusy.set(key, { busyNs: inst.busyNs, at: now });
            if (prev && now > prev.at) {
              const ratio = Math.min(1, Math.max(0, (inst.busyNs - prev.busyNs) / 1e6 / (now - prev.at)));
              this.set({ model: v.model, version: String(v.version), instance: String(i), ...gpuLabel(inst) }, ratio);
            }
          });
        }
      },
    });
    new Gauge({
      name: METRIC.modelState,
      help: 'Loaded model versions (1 per version, label state)',
      labelNames: [...mv, 'state'],
      registers: r,
      collect() {
        this.reset();
        for (const v of self.source?.versions() ?? []) this.set({ model: v.model, version: String(v.version), state: v.state }, 1);
      },
    });

    new Gauge({
      name: METRIC.modelReady,
      help: 'Models the repository knows: 1 while the model has a READY version, 0 otherwise (failed to load, unloaded, loading)',
      labelNames: ['model'],
      registers: r,
      async collect() {
        const models = (await self.source?.models?.()) ?? [];
        this.reset();
        for (const m of models) this.set({ model: m.model }, m.ready ? 1 : 0);
      },
    });
    new Gauge({
      name: METRIC.serverReady,
      help: 'What GET /v2/health/ready answers: 1 ready, 0 not ready (loading or draining)',
      registers: r,
      collect() {
        const src = self.source;
        if (src?.ready) this.set(src.ready() ? 1 : 0);
      },
    });
    new Gauge({
      name: METRIC.inFlightRequests,
      help: 'Inference and repository requests in flight (HTTP and gRPC); what a graceful shutdown waits for',
      registers: r,
      collect() {
        const src = self.source;
        if (src?.inFlightRequests) this.set(src.inFlightRequests());
      },
    });

    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    if (options.gpuMetrics ?? true) this.registerGpuMetrics();
  }

  /** Where scrape-time gauges read from. */
  attach(source: MetricsSource): void {
    this.source = source;
  }

  private registerGpuMetrics(): void {
    // Probe once; the gauges exist only if nvidia-smi answers.
    this.gpuProbe = queryGpus();
    void this.gpuProbe.then((first) => {
      if (!first) return;
      const r = [this.registry];
      const labels = ['gpu_uuid', 'gpu'] as const;
      let cache: { at: number; value: Promise<GpuReading[] | null> } | undefined;
      const read = (): Promise<GpuReading[] | null> => {
        const now = Date.now();
        if (!cache || now - cache.at > 1000) cache = { at: now, value: queryGpus() };
        return cache.value;
      };
      const gauge = (name: string, help: string, pick: (g: GpuReading) => number | null) =>
        new Gauge({
          name,
          help,
          labelNames: labels,
          registers: r,
          async collect() {
            this.reset();
            for (const g of (await read()) ?? []) {
              const v = pick(g);
              if (v !== null) this.set({ gpu_uuid: g.uuid, gpu: String(g.index) }, v);
            }
          },
        });
      gauge(METRIC.gpuUtilization, 'GPU utilization rate (0..1)', (g) => g.utilization);
      gauge(METRIC.gpuMemoryUsedBytes, 'GPU used memory, bytes', (g) => g.memoryUsedBytes);
      gauge(METRIC.gpuMemoryTotalBytes, 'GPU total memory, bytes', (g) => g.memoryTotalBytes);
      gauge(METRIC.gpuPowerUsage, 'GPU power usage, watts', (g) => g.powerWatts);
      gauge(METRIC.gpuPowerLimit, 'GPU power management limit, watts', (g) => g.powerLimitWatts);
      gauge(METRIC.gpuTemperature, 'GPU temperature, degrees Celsius', (g) => g.temperatureCelsius);
    });
  }

  /** Resolves once the GPU probe is done (true when GPU metrics are exported). */
  async gpuMetricsReady(): Promise<boolean> {
    return (await this.gpuProbe) !== null && this.gpuProbe !== undefined;
  }

  /** The batcher observer of one model version (batch sizes, queue and compute times). */
  observer(model: string, version: number): BatcherObserver {
    const l: MV = { model, version: String(version) };
    return {
      onBatch: (e) => {
        if (!e.ok) return;
        this.executions.inc(l);
        this.inferences.inc(l, e.batchSize);
        this.batchSize.observe(l, e.batchSize);
        this.inputUs.inc(l, e.computeInputSeconds * 1e6);
        this.inferUs.inc(l, e.computeInferSeconds * 1e6);
        this.outputUs.inc(l, e.computeOutputSeconds * 1e6);
        this.computeSeconds.observe({ ...l, phase: 'input' }, e.computeInputSeconds);
        this.computeSeconds.observe({ ...l, phase: 'infer' }, e.computeInferSeconds);
        this.computeSeconds.observe({ ...l, phase: 'output' }, e.computeOutputSeconds);
      },
      onRequest: (e) => {
        this.queueUs.inc(l, e.queueSeconds * 1e6);
        this.queueSeconds.observe(l, e.queueSeconds);
      },
    };
  }

  /** A request finished (success or failure), with its end-to-end time in the server. */
  requestDone(model: string, version: string, ok: boolean, seconds: number, reason?: string): void {
    const l: MV = { model, version };
    if (ok) this.success.inc(l);
    else this.failure.inc({ ...l, reason: reason ?? 'OSPREY_ERR_INTERNAL' });
    const key = `${model}\u0000${version}`;
    if (!this.requestsSeen.has(key)) {
      // Every outcome exists from the first request on, at 0: ratios are 0, not absent, while nothing fails.
      this.requestsSeen.add(key);
      for (const outcome of REQUEST_OUTCOMES) this.requests.inc({ ...l, outcome }, 0);
    }
    this.requests.inc({ ...l, outcome: ok ? 'success' : failureOutcome(reason) });
    this.requestUs.inc(l, seconds * 1e6);
    this.requestSeconds.observe(l, seconds);
  }

  /** The detect route handled `images` images and returned `detections` detections. */
  detectDone(model: string, version: string, images: number, detections: number): void {
    this.images.inc({ model, version }, images);
    this.detections.inc({ model, version }, detections);
  }

  /** The Prometheus text exposition. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
