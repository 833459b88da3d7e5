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
import { DEFAULTS, isFileSource, parseCamera, validateRulesInFrame, type CameraConfig, type RuleConfig, type StreamsConfig } from './config.js';
import { SqliteEventStore } from './events.js';
import { LeaseCoordinator, measuredCapacity, requirePostgres, type HeldLease, type LeaseHooks, type LeasePosition, type LeaseRow, type ReplicaRow } from './leases.js';
import { PostgresEventStore } from './pg-store.js';
import type { EventStore, Fence, NewEvent, OutboxWrite, StoredEvent } from './store.js';
import type { FrameInferer } from './inferer.js';
import { RuleEngine } from './rules.js';
import { ByteTracker, type TrackedObject } from './tracker.js';
import { MqttSink, WebhookSink, defaultHolder, type OutboxSink } from './sinks.js';

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
  /** Event writes of this camera, in order (each waits for the previous one). */
  writes: Promise<void>;
  /** File source: frame times are `anchorMs + mediaTimeMs` (the same on every replica that resumes it). */
  isFile: boolean;
  anchorMs: number;
  /** File source: state after the last frame whose events are committed (stored with the lease). */
  committed: LeasePosition | null;
  /** A write of this camera failed: the committed position stops advancing (a resume replays from before it). */
  writeFailed: boolean;
  /** The lease this camera runs under (lease mode), else null. */
  lease: HeldLease | null;
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
  /**
   * An opened event store (PostgreSQL: {@link openEventStore}); the manager owns it from then on and closes it.
   * Default: the SQLite store of `config.events`.
   */
  store?: EventStore;
  /** Dispatcher / replica id written in outbox claims (and leases). Default `<host>:<pid>`. */
  replicaId?: string;
  /**
   * Share the cameras with the other replicas through leases (needs a PostgreSQL store): this manager runs only the
   * cameras it holds. Default false (every camera of the config runs here).
   */
  leases?: boolean;
  /**
   * Frames per second this replica's engine can process, measured (null before enough frames): its lease capacity is
   * this over the cameras' mean fps when `leases.maxCameras` is 0.
   */
  measuredFramesPerSecond?: () => number | null;
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
    writeFailures?: Counter<'camera' | 'reason'>;
    failovers?: Counter<'camera'>;
  } = {};
  /** Writes in flight (all cameras), awaited by {@link stop} and {@link flush}. */
  private readonly pendingWrites = new Set<Promise<void>>();
  private readonly startedAtMs = Date.now();
  private snapshotWrites = new Set<Promise<void>>();
  private stopped = false;
  private started = false;
  /** Secret values of every configured URL and sink credential ever seen by this manager (for redaction). */
  private readonly secrets = new Set<string>();
  private readonly log: StreamsLog | undefined;
  /** Camera leases (lease mode), else null. */
  readonly leases: LeaseCoordinator | null = null;
  readonly replicaId: string;

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
    this.store = opts.store ?? new SqliteEventStore(opts.config.events.database, opts.config.events.snapshots, opts.config.events.retention);
    const holder = opts.replicaId ?? defaultHolder();
    this.replicaId = holder;
    if (opts.leases) {
      if (!(this.store instanceof PostgresEventStore)) requirePostgres(this.store.kind);
      this.leases = new LeaseCoordinator(this.store as PostgresEventStore, holder, opts.config.cameras.map((c) => c.id), opts.config.leases, this.leaseHooks());
    }
    this.webhooks = opts.config.webhooks.map((w, i) => new WebhookSink(this.store, w, `webhooks[${i}]`, 200, holder));
    this.mqttSinks = (opts.config.mqtt ?? []).map((m, i) => new MqttSink(this.store, m, `mqtt[${i}]`, 200, holder));
    this.sinks = [...this.webhooks, ...this.mqttSinks];
    if (opts.registry) this.registerMetrics(opts.registry);
  }

  /**
   * Starts the webhook sinks and every enabled camera — in lease mode, the cameras of this replica's first claim
   * (resolves once it is done).
   */
  async start(): Promise<void> {
    this.store.applyRetention().catch((err: Error) => this.log?.warn({ err: err.message }, 'event retention failed'));
    for (const w of this.sinks) void w.start();
    this.started = true;
    if (this.leases) {
      await this.leases.start();
      return;
    }
    for (const c of this.config.cameras) this.addCameraConfig(c);
  }

  private leaseHooks(): LeaseHooks {
    return {
      acquire: (lease) => {
        const c = this.config.cameras.find((x) => x.id === lease.camera);
        if (!c || this.stopped) return;
        this.log?.info({ camera: c.id, replica: this.replicaId, token: lease.token, takenFrom: lease.takenFrom, resumeAtMs: lease.position?.mediaTimeMs ?? null }, lease.takenFrom ? 'camera taken over' : 'camera lease acquired');
        if (lease.takenFrom) this.metrics.failovers?.inc({ camera: c.id });
        this.addCameraConfig(c, lease);
      },
      release: async (camera, why) => {
        const rt = this.cams.get(camera);
        if (!rt) return null;
        this.cams.delete(camera);
        this.log?.info({ camera, replica: this.replicaId, why }, why === 'lost' ? 'camera lease lost' : 'camera lease released');
        await rt.camera.stop(why === 'shutdown' ? 'shutdown' : 'stopped');
        await rt.writes;
        return rt.committed;
      },
      position: (camera) => this.cams.get(camera)?.committed ?? null,
      capacity: () => {
        if (this.config.leases.maxCameras > 0) return this.config.leases.maxCameras;
        const fps = this.config.cameras.reduce((a, c) => a + c.fps, 0) / Math.max(1, this.config.cameras.length);
        return measuredCapacity(this.opts.measuredFramesPerSecond?.() ?? null, fps);
      },
    };
  }

  /** Lease table of every camera and replica (lease mode), for `GET /api/streams/leases` and the dashboard. */
  async leaseTable(): Promise<{ replica: string; leases: LeaseRow[]; replicas: ReplicaRow[]; failovers: number; lastError: string | null } | null> {
    if (!this.leases) return null;
    return { replica: this.replicaId, ...(await this.leases.list()), failovers: this.leases.failovers, lastError: this.leases.lastError };
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
    const checks = { started: this.started, notStopping: !this.stopped, eventDatabase: this.store.isOpen };
    const cameras: Record<string, number> = { total: this.cams.size };
    for (const r of this.cams.values()) cameras[r.camera.state] = (cameras[r.camera.state] ?? 0) + 1;
    return { ready: Object.values(checks).every(Boolean), checks, cameras };
  }

  /** Stops cameras, sinks, waits for snapshot writes and closes the database. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    // Leases first: each held camera stops, its writes finish, its position is stored and its lease released.
    await this.leases?.stop().catch((err: Error) => this.log?.warn({ err: err.message }, 'releasing camera leases failed'));
    this.stopped = true;
    await Promise.all([...this.cams.values()].map((r) => r.camera.stop('shutdown')));
    await Promise.all(this.sinks.map((w) => w.stop()));
    await this.flush();
    await Promise.all([...this.snapshotWrites]);
    await this.store.close();
  }

  /** Waits for every event write started so far (all cameras). */
  async flush(): Promise<void> {
    while (this.pendingWrites.size > 0) await Promise.all([...this.pendingWrites]);
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
    return [...this.cams.values()].map((r) => ({
      ...r.camera.toJSON(),
      tracks: r.tracker.size,
      previewSeq: r.jpegSeq,
      ...(r.lease ? { lease: { replica: this.replicaId, token: r.lease.token, acquiredMs: r.lease.acquiredMs, takenFrom: r.lease.takenFrom, failovers: r.lease.failovers } } : {}),
    }));
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
    this.refuseInLeaseMode('add');
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

  /**
   * With leases the camera list is the replicas' shared cameras.yaml: a change through one replica's API would not
   * reach the others.
   * @throws OspreyError `OSPREY_ERR_INVALID_ARGUMENT`.
   */
  private refuseInLeaseMode(what: 'add' | 'replace' | 'remove'): void {
    if (this.leases) throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `cannot ${what} a camera through the API of replica ${JSON.stringify(this.replicaId)}: with leases the cameras are those of the cameras.yaml every replica reads; change it there and restart the replicas one by one`);
  }

  /** Replaces a camera's configuration (restarts only that camera). */
  async updateCamera(id: string, raw: unknown): Promise<Camera> {
    this.refuseInLeaseMode('replace');
    this.camera(id);
    const c = parseCamera({ ...(raw as object), id }, 'camera', this.cameraDefaults());
    this.addSecrets(c.url);
    await this.removeCamera(id);
    this.config = { ...this.config, cameras: [...this.config.cameras, c] };
    return this.addCameraConfig(c);
  }

  async removeCamera(id: string): Promise<void> {
    this.refuseInLeaseMode('remove');
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
  async stats(): Promise<Record<string, unknown>> {
    const [events, stateEvents] = await Promise.all([this.store.count('rule'), this.store.count('state')]);
    const mem = process.memoryUsage();
    const cams = [...this.cams.values()].map((r) => r.camera);
    const sum = (k: 'decoded' | 'sampled' | 'dropped' | 'processed'): number => cams.reduce((a, c) => a + c.counters[k], 0);
    return {
      uptimeSeconds: Math.round((Date.now() - this.startedAtMs) / 1000),
      cameras: cams.length,
      streaming: cams.filter((c) => c.state === 'streaming').length,
      starved: cams.filter((c) => c.state === 'starved').length,
      frames: { decoded: sum('decoded'), sampled: sum('sampled'), dropped: sum('dropped'), processed: sum('processed') },
      events,
      stateEvents,
      store: { kind: this.store.kind, location: this.redact(this.store.location) },
      ...(this.leases ? { leases: { replica: this.replicaId, held: this.leases.held.size, failovers: this.leases.failovers, lastError: this.leases.lastError } } : {}),
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

  private addCameraConfig(c: CameraConfig, lease: HeldLease | null = null): Camera {
    const isFile = isFileSource(c.url);
    const pos = isFile ? lease?.position ?? null : null;
    // A file camera resumes on the frame after its last committed one: ffmpeg seeks two frames (of 1000 / fps ms)
    // before it, on the same grid, and the frames up to the committed one are skipped.
    const periodMs = 1000 / c.fps;
    const startAtMs = pos ? Math.max(0, Math.round(pos.mediaTimeMs / periodMs) - 2) * periodMs : 0;
    const camera = new Camera(c, {
      inferer: this.inferer,
      ...(this.opts.ffmpegPath ? { ffmpegPath: this.opts.ffmpegPath } : {}),
      ...(pos ? { startAtMs, skipThroughMs: pos.mediaTimeMs } : {}),
    });
    const rt: CameraRuntime = {
      camera, tracker: new ByteTracker(c.tracker), rules: new RuleEngine(c.rules), lastObjects: [], writes: Promise.resolve(),
      isFile, anchorMs: pos?.anchorMs ?? Date.now(), committed: pos, writeFailed: false, lease,
      previewAtMs: 0, previewBusy: false, jpeg: null, jpegSeq: 0,
    };
    if (pos) {
      rt.tracker.restore(pos.tracker);
      rt.rules.restore(pos.rules);
    }
    this.cams.set(c.id, rt);
    camera.on('state', (s: StateChange) => this.onState(rt, s));
    camera.on('processed', (p: ProcessedFrame) => this.onProcessed(rt, p));
    camera.on('inferError', (e: OspreyError) => this.log?.warn({ camera: c.id, code: e.code }, e.message));
    this.emit('cameraAdded', c.id);
    if (c.enabled && !pos?.ended) camera.start();
    return camera;
  }

  private onState(rt: CameraRuntime, s: StateChange): void {
    if (this.stopped || !this.store.isOpen) return;
    if (s.to === 'reconnecting' || s.to === 'failed' || s.from === 'reconnecting') rt.tracker.reset();
    if (rt.isFile && s.to === 'stopped' && s.reasonCode === 'end_of_file') {
      // Read to its end: a replica that takes the camera over later leaves it stopped.
      rt.writes = rt.writes.then(() => {
        if (rt.committed && !rt.writeFailed) rt.committed = { ...rt.committed, ended: true };
      });
    }
    this.metrics.stateChanges?.inc({ camera: s.camera, to: s.to, reason: s.reasonCode });
    this.write(rt, {
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
  }

  /**
   * Stores an event with its outbox rows (one transaction), after the camera's previous writes; then emits it. A
   * duplicate (same idempotency key) is neither emitted nor sent again. A write the store refuses is logged and
   * counted; the camera goes on.
   */
  private write(rt: CameraRuntime, e: NewEvent, extra?: (ev: StoredEvent) => Record<string, unknown>, after?: (ev: StoredEvent) => void): void {
    const outbox: OutboxWrite[] = this.sinks.map((w) => w.outboxWrite(extra));
    const fence = this.fenceFor(e.camera);
    const p = rt.writes.then(async () => {
      if (!this.store.isOpen) return;
      try {
        const { event, dropped } = await this.store.insert(e, { outbox, ...(fence ? { fence } : {}) });
        if (!event) return;
        for (const w of this.sinks) w.written(dropped[w.sink] ?? 0);
        after?.(event);
        this.emit('event', event);
      } catch (err) {
        const oe = err instanceof OspreyError ? err : new OspreyError('OSPREY_ERR_EVENT_STORE', String((err as Error)?.message ?? err));
        this.metrics.writeFailures?.inc({ camera: e.camera, reason: oe.code === 'OSPREY_ERR_LEASE_LOST' ? 'lease_lost' : 'store_error' });
        this.log?.warn({ camera: e.camera, code: oe.code, idempotencyKey: e.idempotencyKey }, oe.message);
        rt.writeFailed = true;
        this.onWriteFailed(e.camera, oe, fence);
      }
    });
    rt.writes = p;
    this.pendingWrites.add(p);
    void p.finally(() => this.pendingWrites.delete(p));
  }

  /** The lease an event write of this camera must hold (none without leases). */
  private fenceFor(camera: string): Fence | undefined {
    if (!this.leases) return undefined;
    // Not held (lost a moment ago, camera stopping): a token no lease has, so the store refuses the write.
    return this.leases.fence(camera) ?? { camera, holder: this.replicaId, token: -1 };
  }

  /** A write of this camera was fenced out: the lease is gone, stop the camera now. */
  private onWriteFailed(camera: string, err: OspreyError, fence: Fence | undefined): void {
    if (err.code === 'OSPREY_ERR_LEASE_LOST' && fence && this.leases) void this.leases.fencedOut(camera, fence.token);
  }

  private onProcessed(rt: CameraRuntime, p: ProcessedFrame): void {
    if (this.stopped || !this.cams.has(p.camera)) return;
    // Time base: a file camera's media time (from its anchor), the same on every replica; a live camera's arrival time.
    const frameMs = rt.isFile ? rt.anchorMs + p.frame.mediaTimeMs : p.frame.receivedAtMs;
    const objects = rt.tracker.update(p.result.detections, frameMs);
    rt.lastObjects = objects;
    this.metrics.latency?.observe({ camera: p.camera }, p.latencyMs / 1000);
    const firings = rt.rules.evaluate(objects, frameMs);
    for (const f of firings) {
      const snapshot = this.store.snapshotPathFor(p.camera, f.rule, f.trackId, f.atMs);
      const latencyMs = performance.now() - p.frame.receivedAtPerfMs;
      const boxes = objects.map((o) => ({ box: o.box, label: `${o.className} #${o.trackId}`, highlight: o.trackId === f.trackId }));
      this.write(
        rt,
        {
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
          details: { ...(f.dwellMs !== undefined ? { dwellMs: Math.round(f.dwellMs) } : {}), ...(f.direction ? { direction: f.direction } : {}), batchSize: p.result.batchSize, ...(rt.isFile ? { mediaTimeMs: p.frame.mediaTimeMs } : {}) },
        },
        (ev) => ({ snapshotUrl: `/api/events/${ev.id}/snapshot.jpg` }),
        () => {
          // Stored (not a duplicate, not fenced out): count it and write its snapshot.
          this.metrics.events?.inc({ camera: p.camera, rule: f.rule });
          const write = annotatedJpeg(p.pixels, p.info.geometry, boxes, { rules: rt.rules.ruleList.filter((r) => r.name === f.rule), quality: 80 })
            .then((jpeg) => writeFile(this.store.ensureSnapshotDir(snapshot), jpeg))
            .catch((err: Error) => this.log?.warn({ camera: p.camera, err: err.message }, 'snapshot write failed'))
            .finally(() => this.snapshotWrites.delete(write));
          this.snapshotWrites.add(write);
        },
      );
    }
    if (rt.isFile) {
      // The resume point: state after this frame, committed once this frame's events are.
      const snap: LeasePosition = { mediaTimeMs: p.frame.mediaTimeMs, anchorMs: rt.anchorMs, tracker: rt.tracker.snapshot(), rules: rt.rules.snapshot() };
      rt.writes = rt.writes.then(() => {
        if (!rt.writeFailed) rt.committed = snap;
      });
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
        if (!mgr.store.isOpen) return;
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
    this.metrics.failovers = new Counter({ name: STREAM_METRIC.failovers, help: 'Cameras this replica took over from a replica whose lease expired.', labelNames: ['camera'], registers: [registry] });
    new Gauge({
      name: STREAM_METRIC.leasesHeld,
      help: 'Camera leases this replica holds (lease mode; 0 otherwise).',
      registers: [registry],
      collect() {
        this.set(mgr.leases?.held.size ?? 0);
      },
    });
    this.metrics.writeFailures = new Counter({ name: STREAM_METRIC.eventWriteFailures, help: 'Events not written: lease_lost (fenced out: another replica holds the camera) or store_error.', labelNames: ['camera', 'reason'], registers: [registry] });
    const storeLatency = new Histogram({
      name: STREAM_METRIC.storeLatency,
      help: 'Duration of one event-store operation (SQLite or PostgreSQL), seconds, by operation.',
      labelNames: ['store', 'op'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    });
    this.store.latencyObserver = (op, seconds) => storeLatency.observe({ store: this.store.kind, op }, seconds);
  }
}

export { DEFAULTS };
export type { StoredEvent };
