/**
 * The streams runtime: every camera of a cameras.yaml, one shared {@link FrameInferer} (one dynamic batcher, so
 * frames of all cameras batch together), per-camera ByteTrack tracker and rule engine, the event store, the
 * webhook sinks, live annotated previews and Prometheus metrics. Cameras are added, changed and removed at run time
 * without touching the others.
 *
 * Emits `event` ({@link StoredEvent}, rule firings and state changes), `preview` (`{ camera, jpeg }`), `frame`
 * ({@link FrameSummary}, after every processed frame and its rules), `cameraAdded` / `cameraRemoved` (camera id) and
 * `rulesChanged` (camera id). Integrations (the OPC UA server, Sparkplug B) listen to these; they add no code here.
 */
import { EventEmitter } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { FRAME_LATENCY_BUCKETS_SECONDS, STREAM_METRIC } from '../metrics/names.js';
import { OspreyError } from '../core/errors.js';
import { redactDeep, redactText, redactUrl, secretsOf } from '../core/redact.js';
import { annotatedJpeg } from './annotate.js';
import { CAMERA_STATES, Camera, type ProcessedFrame, type StateChange } from './camera.js';
import { DEFAULTS, parseCamera, validateRulesInFrame, type CameraConfig, type RuleConfig, type StreamsConfig } from './config.js';
import { EventStore, type StoredEvent } from './events.js';
import type { FrameInferer } from './inferer.js';
import { RuleEngine } from './rules.js';
import { ByteTracker, type TrackedObject } from './tracker.js';
import { MqttSink, WebhookSink, type OutboxSink } from './sinks.js';

/** Metric names of the streams runtime (Prometheus base units). */
export { STREAM_METRIC };


/** What one processed frame left behind, for integrations (`frame` event). */
export interface FrameSummary {
  camera: string;
  /** Tracked objects after this frame (source pixels). */
  objects: readonly TrackedObject[];
  /** Detections the model returned for the frame (before tracking). */
  detections: number;
  /** Frame arrival, `Date.now()` ms. */
  frameTimeMs: number;
  /** Detections, tracks and rules done, `Date.now()` ms. */
  readyAtMs: number;
}

interface CameraRuntime {
  camera: Camera;
  tracker: ByteTracker;
  rules: RuleEngine;
  lastObjects: TrackedObject[];
  previewAtMs: number;
  previewBusy: boolean;
  jpeg: Buffer | null;
  jpegSeq: number;
}

export interface StreamManagerOptions {
  config: StreamsConfig;
  inferer: FrameInferer | null;
  /** prom-client registry to register the stream metrics in (the server's). Default: none (no metrics). */
  registry?: Registry;
  ffmpegPath?: string;
  /** For logs (pino-like). Every string in what is logged is redacted first. */
  log?: StreamsLog;
}

/** The logger the streams runtime writes to (pino's shape). */
export interface StreamsLog {
  info(o: object, msg?: string): void;
  warn(o: object, msg?: string): void;
}

export class StreamManager extends EventEmitter {
  readonly store: EventStore;
  readonly webhooks: WebhookSink[];
  readonly mqttSinks: MqttSink[];
  /** Every event sink (webhooks, then MQTT). */
  readonly sinks: OutboxSink[];
  private readonly cams = new Map<string, CameraRuntime>();
  private readonly inferer: FrameInferer | null;
  private config: StreamsConfig;
  private readonly metrics: {
    stateChanges?: Counter<'camera' | 'to' | 'reason'>;
    latency?: Histogram<'camera'>;
    events?: Counter<'camera' | 'rule'>;
  } = {};
  private readonly startedAtMs = Date.now();
  private snapshotWrites = new Set<Promise<void>>();
  private stopped = false;
  private started = false;
  /** Secret values of every configured URL and sink credential ever seen by this manager (for redaction). */
  private readonly secrets = new Set<string>();
  private readonly log: StreamsLog | undefined;

  constructor(private readonly opts: StreamManagerOptions) {
    super();
    this.setMaxListeners(0);
    this.config = opts.config;
    this.inferer = opts.inferer;
    for (const c of opts.config.cameras) this.addSecrets(c.url);
    for (const w of opts.config.webhooks) {
      this.addSecrets(w.url);
      for (const v of Object.values(w.headers)) this.addSecrets(v, true);
    }
    for (const m of opts.config.mqtt ?? []) {
      this.addSecrets(m.url);
      if (m.password) this.addSecrets(m.password, true);
    }
    const log = opts.log;
    this.log = log && {
      info: (o, msg) => log.info(this.redactValue(o), msg === undefined ? undefined : this.redact(msg)),
      warn: (o, msg) => log.warn(this.redactValue(o), msg === undefined ? undefined : this.redact(msg)),
    };
    this.store = new EventStore(opts.config.events.database, opts.config.events.snapshots, opts.config.events.retention);
    this.webhooks = opts.config.webhooks.map((w, i) => new WebhookSink(this.store, w, `webhooks[${i}]`));
    this.mqttSinks = (opts.config.mqtt ?? []).map((m, i) => new MqttSink(this.store, m, `mqtt[${i}]`));
    this.sinks = [...this.webhooks, ...this.mqttSinks];
    if (opts.registry) this.registerMetrics(opts.registry);
  }

  /** Starts every enabled camera and the webhook sinks. */
  start(): void {
    this.store.applyRetention();
    for (const w of this.sinks) w.start();
    for (const c of this.config.cameras) this.addCameraConfig(c);
    this.started = true;
  }

  /**
   * Hides credentials in a text leaving the process: the documented rule of `src/core/redact.ts` plus every secret of
   * the configured camera URLs and sinks (also those of cameras added or removed at run time).
   */
  redact(text: string): string {
    return redactText(text, this.secrets);
  }

  /** {@link redact} on every string of a JSON-like value. */
  redactValue<T>(value: T): T {
    return redactDeep(value, this.secrets);
  }

  private addSecrets(value: string, whole = false): void {
    for (const s of secretsOf(value)) this.secrets.add(s);
    if (whole) {
      // A header value such as `Bearer abc…`: the credential is its last word.
      const word = value.trim().split(/\s+/).pop();
      if (word) this.secrets.add(word);
    }
  }

  /**
   * Readiness for probes (`GET /ready`): started, not shutting down, event database open. Cameras that are down do
   * not make the process unready (restarting or unrouting the pod would not bring a camera back); their states and
   * reasons are in the answer.
   */
  readiness(): { ready: boolean; checks: Record<string, boolean>; cameras: Record<string, number> } {
    const checks = { started: this.started, notStopping: !this.stopped, eventDatabase: this.store.db.open };
    const cameras: Record<string, number> = { total: this.cams.size };
    for (const r of this.cams.values()) cameras[r.camera.state] = (cameras[r.camera.state] ?? 0) + 1;
    return { ready: Object.values(checks).every(Boolean), checks, cameras };
  }

  /** Stops cameras, sinks, waits for snapshot writes and closes the database. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all([...this.cams.values()].map((r) => r.camera.stop('shutdown')));
    await Promise.all(this.sinks.map((w) => w.stop()));
    await Promise.all([...this.snapshotWrites]);
    this.store.close();
  }

  get previewFps(): number {
    return this.config.previewFps;
  }

  cameraIds(): string[] {
    return [...this.cams.keys()];
  }

  camera(id: string): Camera {
    const r = this.cams.get(id);
    if (!r) throw new OspreyError('OSPREY_ERR_CAMERA_NOT_FOUND', `unknown camera ${JSON.stringify(id)}`, { camera: id });
    return r.camera;
  }

  /** Cameras as JSON for the API. */
  list(): Array<Record<string, unknown>> {
    return [...this.cams.values()].map((r) => ({ ...r.camera.toJSON(), tracks: r.tracker.size, previewSeq: r.jpegSeq }));
  }

  /** Latest annotated JPEG of a camera and its sequence number. */
  preview(id: string): { jpeg: Buffer | null; seq: number } {
    const r = this.cams.get(id);
    if (!r) throw new OspreyError('OSPREY_ERR_CAMERA_NOT_FOUND', `unknown camera ${JSON.stringify(id)}`, { camera: id });
    return { jpeg: r.jpeg, seq: r.jpegSeq };
  }

  /**
   * Adds a camera at run time (body = one camera of cameras.yaml).
   * @throws OspreyError `OSPREY_ERR_CONFIG` (key path), `OSPREY_ERR_INVALID_ARGUMENT` (the id exists).
   */
  addCamera(raw: unknown): Camera {
    const c = parseCamera(raw, 'camera', this.cameraDefaults());
    this.addSecrets(c.url);
    if (this.cams.has(c.id)) throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `camera ${JSON.stringify(c.id)} exists; use PUT /api/cameras/${c.id} to change it`, { camera: c.id });
    this.config = { ...this.config, cameras: [...this.config.cameras, c] };
    return this.addCameraConfig(c);
  }

  /**
   * Restarts one camera (also from `failed`): its ffmpeg is stopped and started again with a fresh attempt count;
   * the tracker starts over. The other cameras are not touched.
   */
  async restartCamera(id: string): Promise<Camera> {
    const r = this.cams.get(id);
    if (!r) throw new OspreyError('OSPREY_ERR_CAMERA_NOT_FOUND', `unknown camera ${JSON.stringify(id)}`, { camera: id });
    r.tracker.reset();
    await r.camera.restart();
    return r.camera;
  }

  /** Replaces a camera's configuration (restarts only that camera). */
  async updateCamera(id: string, raw: unknown): Promise<Camera> {
    this.camera(id);
    const c = parseCamera({ ...(raw as object), id }, 'camera', this.cameraDefaults());
    this.addSecrets(c.url);
    await this.removeCamera(id);
    this.config = { ...this.config, cameras: [...this.config.cameras, c] };
    return this.addCameraConfig(c);
  }

  async removeCamera(id: string): Promise<void> {
    const r = this.cams.get(id);
    if (!r) throw new OspreyError('OSPREY_ERR_CAMERA_NOT_FOUND', `unknown camera ${JSON.stringify(id)}`, { camera: id });
    this.cams.delete(id);
    this.config = { ...this.config, cameras: this.config.cameras.filter((c) => c.id !== id) };
    await r.camera.stop('removed');
    this.emit('cameraRemoved', id);
  }

  /**
   * Replaces a camera's rules at run time (zone drawing). Points must lie inside the frame once its size is known.
   * @throws OspreyError `OSPREY_ERR_CONFIG` (key path), `OSPREY_ERR_ZONE` (outside the frame).
   */
  setRules(id: string, rules: RuleConfig[]): void {
    const r = this.cams.get(id);
    if (!r) throw new OspreyError('OSPREY_ERR_CAMERA_NOT_FOUND', `unknown camera ${JSON.stringify(id)}`, { camera: id });
    const info = r.camera.info;
    if (info) validateRulesInFrame(rules, info.srcWidth, info.srcHeight);
    r.camera.config = { ...r.camera.config, rules };
    r.rules.setRules(rules);
    this.emit('rulesChanged', id);
  }

  /** Server/runtime stats for the dashboard. */
  stats(): Record<string, unknown> {
    const mem = process.memoryUsage();
    const cams = [...this.cams.values()].map((r) => r.camera);
    const sum = (k: 'decoded' | 'sampled' | 'dropped' | 'processed'): number => cams.reduce((a, c) => a + c.counters[k], 0);
    return {
      uptimeSeconds: Math.round((Date.now() - this.startedAtMs) / 1000),
      cameras: cams.length,
      streaming: cams.filter((c) => c.state === 'streaming').length,
      starved: cams.filter((c) => c.state === 'starved').length,
      frames: { decoded: sum('decoded'), sampled: sum('sampled'), dropped: sum('dropped'), processed: sum('processed') },
      events: this.store.count('rule'),
      stateEvents: this.store.count('state'),
      webhooks: this.webhooks.map((w) => this.redactValue({ ...w.stats(), url: redactUrl(w.stats().url) })),
      mqtt: this.mqttSinks.map((w) => this.redactValue({ ...w.stats(), url: redactUrl(w.stats().url) })),
      memory: { rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, externalBytes: mem.external, arrayBuffersBytes: mem.arrayBuffers },
      model: this.inferer ? { inputWidth: this.inferer.inputWidth, inputHeight: this.inferer.inputHeight, frameFormat: this.inferer.frameFormat } : null,
      gpu: null,
    };
  }

  private cameraDefaults(): Partial<CameraConfig> {
    return this.config.cameraDefaults;
  }

  private addCameraConfig(c: CameraConfig): Camera {
    const camera = new Camera(c, { inferer: this.inferer, ...(this.opts.ffmpegPath ? { ffmpegPath: this.opts.ffmpegPath } : {}) });
    const rt: CameraRuntime = { camera, tracker: new ByteTracker(c.tracker), rules: new RuleEngine(c.rules), lastObjects: [], previewAtMs: 0, previewBusy: false, jpeg: null, jpegSeq: 0 };
    this.cams.set(c.id, rt);
    camera.on('state', (s: StateChange) => this.onState(rt, s));
    camera.on('processed', (p: ProcessedFrame) => this.onProcessed(rt, p));
    camera.on('inferError', (e: OspreyError) => this.log?.warn({ camera: c.id, code: e.code }, e.message));
    this.emit('cameraAdded', c.id);
    if (c.enabled) camera.start();
    return camera;
  }

  private onState(rt: CameraRuntime, s: StateChange): void {
    if (this.stopped || !this.store.db.open) return;
    if (s.to === 'reconnecting' || s.to === 'failed' || s.from === 'reconnecting') rt.tracker.reset();
    this.metrics.stateChanges?.inc({ camera: s.camera, to: s.to, reason: s.reasonCode });
    const ev = this.store.insert({
      kind: 'state',
      camera: s.camera,
      rule: s.to,
      ruleType: null,
      className: null,
      classId: null,
      trackId: null,
      score: null,
      box: null,
      timeMs: s.at,
      latencyMs: null,
      // One bounded reason per row (≤ 1 KB, redacted by the camera and again here); the error's text is the reason.
      details: this.redactValue({ from: s.from, to: s.to, reasonCode: s.reasonCode, reason: s.reason, attempt: s.attempt, ...(s.error ? { error: { code: s.error.code } } : {}) }),
    });
    this.log?.info({ camera: s.camera, from: s.from, to: s.to, reasonCode: s.reasonCode, reason: s.reason, error: s.error?.code }, 'camera state');
    this.emit('event', ev);
    for (const w of this.sinks) w.enqueue(ev);
  }

  private onProcessed(rt: CameraRuntime, p: ProcessedFrame): void {
    if (this.stopped || !this.cams.has(p.camera)) return;
    const objects = rt.tracker.update(p.result.detections, p.frame.receivedAtMs);
    rt.lastObjects = objects;
    this.metrics.latency?.observe({ camera: p.camera }, p.latencyMs / 1000);
    const firings = rt.rules.evaluate(objects, p.frame.receivedAtMs);
    for (const f of firings) {
      const snapshot = this.store.snapshotPathFor(p.camera, f.rule, f.trackId, f.atMs);
      const latencyMs = performance.now() - p.frame.receivedAtPerfMs;
      const ev = this.store.insert({
        kind: 'rule',
        camera: p.camera,
        rule: f.rule,
        ruleType: f.ruleType,
        className: f.className,
        classId: f.classId,
        trackId: f.trackId,
        score: f.score,
        box: f.box,
        timeMs: f.atMs,
        snapshot,
        latencyMs,
        details: { ...(f.dwellMs !== undefined ? { dwellMs: Math.round(f.dwellMs) } : {}), ...(f.direction ? { direction: f.direction } : {}), batchSize: p.result.batchSize },
      });
      this.metrics.events?.inc({ camera: p.camera, rule: f.rule });
      const boxes = objects.map((o) => ({ box: o.box, label: `${o.className} #${o.trackId}`, highlight: o.trackId === f.trackId }));
      const write = annotatedJpeg(p.pixels, p.info.geometry, boxes, { rules: rt.rules.ruleList.filter((r) => r.name === f.rule), quality: 80 })
        .then((jpeg) => writeFile(this.store.ensureSnapshotDir(snapshot), jpeg))
        .catch((err: Error) => this.log?.warn({ camera: p.camera, err: err.message }, 'snapshot write failed'))
        .finally(() => this.snapshotWrites.delete(write));
      this.snapshotWrites.add(write);
      this.emit('event', ev);
      for (const w of this.sinks) w.enqueue(ev, { snapshotUrl: `/api/events/${ev.id}/snapshot.jpg` });
    }
    const summary: FrameSummary = { camera: p.camera, objects, detections: p.result.detections.length, frameTimeMs: p.frame.receivedAtMs, readyAtMs: Date.now() };
    this.emit('frame', summary);
    // Live preview at previewFps (never more than one encode in flight per camera).
    const now = Date.now();
    if (!rt.previewBusy && now - rt.previewAtMs >= 1000 / this.config.previewFps) {
      rt.previewBusy = true;
      rt.previewAtMs = now;
      const boxes = objects.map((o) => ({ box: o.box, label: `${o.className} #${o.trackId} ${o.score.toFixed(2)}` }));
      annotatedJpeg(p.pixels, p.info.geometry, boxes, { rules: rt.rules.ruleList, quality: 70 })
        .then((jpeg) => {
          rt.jpeg = jpeg;
          rt.jpegSeq++;
          this.emit('preview', { camera: p.camera, jpeg, seq: rt.jpegSeq });
        })
        .catch((err: Error) => this.log?.warn({ camera: p.camera, err: err.message }, 'preview encode failed'))
        .finally(() => (rt.previewBusy = false));
    }
  }

  private registerMetrics(registry: Registry): void {
    const mgr = this;
    const existing = registry.getSingleMetric(STREAM_METRIC.frames);
    if (existing) return; // one manager per registry
    new Counter({
      name: STREAM_METRIC.frames,
      help: 'Frames per camera and stage: decoded (from ffmpeg), sampled (to the queue), dropped (queue full, oldest first), processed (inferred).',
      labelNames: ['camera', 'stage'],
      registers: [registry],
      collect() {
        this.reset();
        for (const r of mgr.cams.values()) {
          for (const stage of ['decoded', 'sampled', 'dropped', 'processed'] as const) this.inc({ camera: r.camera.id, stage }, r.camera.counters[stage]);
        }
      },
    });
    new Gauge({
      name: STREAM_METRIC.state,
      help: `Camera health state: 1 for the current state (${CAMERA_STATES.join(', ')}).`,
      labelNames: ['camera', 'state'],
      registers: [registry],
      collect() {
        this.reset();
        for (const r of mgr.cams.values()) for (const s of CAMERA_STATES) this.set({ camera: r.camera.id, state: s }, r.camera.state === s ? 1 : 0);
      },
    });
    new Gauge({
      name: STREAM_METRIC.fps,
      help: 'Processed frames per second per camera, over a sliding window of real frames (5 s, or 5 frame periods at low fps); 0 when none.',
      labelNames: ['camera'],
      registers: [registry],
      collect() {
        this.reset();
        for (const r of mgr.cams.values()) this.set({ camera: r.camera.id }, r.camera.fps);
      },
    });
    new Gauge({
      name: STREAM_METRIC.decodedFps,
      help: 'Frames per second arriving from the source (after ffmpeg\'s fps filter), over the same window; 0 when none.',
      labelNames: ['camera'],
      registers: [registry],
      collect() {
        this.reset();
        for (const r of mgr.cams.values()) this.set({ camera: r.camera.id }, r.camera.decodedFps);
      },
    });
    new Gauge({
      name: STREAM_METRIC.outbox,
      help: 'Event sink (webhook, MQTT) outbox rows per sink and status (pending, failed).',
      labelNames: ['sink', 'status'],
      registers: [registry],
      collect() {
        this.reset();
        if (!mgr.store.db.open) return;
        for (const w of mgr.sinks) {
          const s = w.stats();
          this.set({ sink: w.sink, status: 'pending' }, s.pending);
          this.set({ sink: w.sink, status: 'failed' }, s.failed);
        }
      },
    });
    this.metrics.stateChanges = new Counter({ name: STREAM_METRIC.stateChanges, help: 'Camera state changes, by new state and reason code.', labelNames: ['camera', 'to', 'reason'], registers: [registry] });
    this.metrics.latency = new Histogram({
      name: STREAM_METRIC.latency,
      help: 'Frame arrival to detections ready, seconds.',
      labelNames: ['camera'],
      buckets: [...FRAME_LATENCY_BUCKETS_SECONDS],
      registers: [registry],
    });
    this.metrics.events = new Counter({ name: STREAM_METRIC.events, help: 'Rule events.', labelNames: ['camera', 'rule'], registers: [registry] });
  }
}

export { DEFAULTS };
export type { StoredEvent };
