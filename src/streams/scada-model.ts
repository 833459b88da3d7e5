/**
 * The plant-device view of the streams runtime, shared by the OPC UA server (opcua.ts) and the Sparkplug B edge node
 * (sparkplug.ts): one {@link CameraPoint} per camera (state, health, rates, per-class counts in zones, rules), kept
 * up to date from the {@link StreamManager}'s events only (`frame`, `event`, `cameraAdded`, `cameraRemoved`,
 * `rulesChanged`), so neither integration adds code to the manager.
 *
 * Rule activity (an alarm's ActiveState): a rule goes active when it fires and stays active for at least its
 * `alarmHoldMs`; a zone rule also stays active while an object of its classes (at its `minConfidence`) is inside the
 * zone. Counts in zones use the same anchor as the rules (bottom-centre of the box, `anchorOf`).
 *
 * Emits `added` ({@link CameraPoint}), `removed` (camera id), `rebuilt` ({@link CameraPoint}: its rules changed,
 * the layout of its points with them), `changed` ({@link PointChange}) and `alarm` ({@link AlarmChange}).
 */
import { EventEmitter } from 'node:events';
import { CAMERA_STATES, type CameraState } from './camera.js';
import type { RuleConfig } from './config.js';
import type { StoredEvent } from './events.js';
import type { FrameSummary, StreamManager, StreamsLog } from './manager.js';
import { anchorOf, pointInPolygon } from './rules.js';

/** States in which a camera does not deliver frames to the model (SCADA's "fault"). */
export const FAULT_STATES: readonly CameraState[] = ['starved', 'stalled', 'reconnecting', 'failed'];

export interface ZonePoint {
  rule: string;
  /** The rule's classes; empty = any class (then only `total`). */
  classes: readonly string[];
  /** Objects inside per class (anchor in the polygon), for each class of the rule. */
  counts: Record<string, number>;
  /** Objects inside of any of the rule's classes. */
  total: number;
}

export interface RulePoint {
  name: string;
  type: 'zone' | 'line';
  /** 1..1000 (the rule's `severity`). */
  severity: number;
  active: boolean;
  /** Firings since this process started. */
  hitCount: number;
  /** Time of the frame of the last firing, `Date.now()` ms; null before the first. */
  lastHitMs: number | null;
}

/** One camera as a plant device sees it. */
export interface CameraPoint {
  id: string;
  name: string;
  state: CameraState;
  /** True in {@link FAULT_STATES}. */
  fault: boolean;
  /** Stable reason code of the state (health.ts) and its human text (≤ 1 KB, credentials redacted). */
  healthReasonCode: string;
  healthReason: string;
  /** Processed frames per second over the camera's sliding window. */
  fps: number;
  /** Frames dropped from the camera's full queue (oldest first) since it was added. */
  droppedFrames: number;
  processedFrames: number;
  /** Mean frame arrival → detections latency over the window, ms; null when no frame was processed in it. */
  latencyMs: number | null;
  /** Arrival time of the last frame in which the model detected anything, `Date.now()` ms; null before. */
  lastDetectionTimeMs: number | null;
  zones: ZonePoint[];
  rules: RulePoint[];
}

/** Keys of a {@link CameraPoint} that change at frame rate (sent on a timer by Sparkplug). */
export const TELEMETRY_KEYS = ['fps', 'droppedFrames', 'processedFrames', 'latencyMs'] as const;

export interface PointChange {
  camera: string;
  point: CameraPoint;
  /** Top-level keys whose value changed (`zones` / `rules`: any entry). */
  keys: ReadonlySet<keyof CameraPoint>;
  /** When the change was known (`Date.now()` ms): detections ready for frame data, the state change's time otherwise. */
  atMs: number;
}

export interface AlarmChange {
  camera: string;
  rule: RulePoint;
  /** The firing that raised it (absent when it clears). */
  event?: StoredEvent;
  atMs: number;
}

interface Tracked {
  point: CameraPoint;
  rules: RuleConfig[];
  /** Per rule: time the hold of its last firing ends. */
  holdUntilMs: Map<string, number>;
  /** Per zone rule: objects inside now. */
  occupied: Map<string, boolean>;
}

export class ScadaModel extends EventEmitter {
  private readonly cams = new Map<string, Tracked>();
  private readonly timer: NodeJS.Timeout;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private readonly subscriptions: Array<[string, (...a: any[]) => void]> = [];

  /**
   * @param tickMs how often holds are checked without frames (a line rule's alarm clears on time). Default 250 ms.
   * @param log where a failure of this view (or of a listener of it) goes: it never reaches the pipelines.
   */
  constructor(private readonly manager: StreamManager, tickMs = 250, log?: StreamsLog) {
    super();
    this.setMaxListeners(0);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const on = (name: string, fn: (...a: any[]) => void) => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const safe = (...a: any[]) => {
        try {
          fn(...a);
        } catch (err) {
          log?.warn({ event: name, err: (err as Error).message }, 'SCADA view update failed');
        }
      };
      manager.on(name, safe);
      this.subscriptions.push([name, safe]);
    };
    on('cameraAdded', (id: string) => this.add(id));
    on('cameraRemoved', (id: string) => this.remove(id));
    on('rulesChanged', (id: string) => this.rebuild(id));
    on('frame', (f: FrameSummary) => this.onFrame(f));
    on('event', (e: StoredEvent) => (e.kind === 'state' ? this.onState(e) : this.onFiring(e)));
    for (const id of manager.cameraIds()) this.add(id);
    this.timer = setInterval(() => this.tick(Date.now()), tickMs);
    this.timer.unref();
  }

  /** Stops listening to the manager. */
  close(): void {
    clearInterval(this.timer);
    for (const [name, fn] of this.subscriptions) this.manager.off(name, fn);
    this.subscriptions.length = 0;
  }

  points(): CameraPoint[] {
    return [...this.cams.values()].map((t) => t.point);
  }

  point(id: string): CameraPoint | undefined {
    return this.cams.get(id)?.point;
  }

  /** Refreshes the frame-rate values of every camera from the cameras (no event). */
  refreshTelemetry(): void {
    for (const t of this.cams.values()) this.readCamera(t.point);
  }

  private readCamera(p: CameraPoint): void {
    // A camera being removed reports its last state change after the manager dropped it.
    if (!this.manager.cameraIds().includes(p.id)) return;
    const cam = this.manager.camera(p.id);
    p.fps = Math.round(cam.fps * 100) / 100;
    p.droppedFrames = cam.counters.dropped;
    p.processedFrames = cam.counters.processed;
    const l = cam.latencyMs;
    p.latencyMs = l === null ? null : Math.round(l * 100) / 100;
  }

  private add(id: string): void {
    const cam = this.manager.camera(id);
    const rules = [...cam.config.rules];
    const point: CameraPoint = {
      id,
      name: cam.config.name,
      state: cam.state,
      fault: FAULT_STATES.includes(cam.state),
      healthReasonCode: cam.reasonCode,
      healthReason: cam.reason,
      fps: 0,
      droppedFrames: 0,
      processedFrames: 0,
      latencyMs: null,
      lastDetectionTimeMs: null,
      zones: zonesOf(rules),
      rules: rules.map((r) => ({ name: r.name, type: r.type, severity: r.severity, active: false, hitCount: 0, lastHitMs: null })),
    };
    this.readCamera(point);
    this.cams.set(id, { point, rules, holdUntilMs: new Map(), occupied: new Map() });
    this.emit('added', point);
  }

  private remove(id: string): void {
    if (this.cams.delete(id)) this.emit('removed', id);
  }

  private rebuild(id: string): void {
    const t = this.cams.get(id);
    if (!t) return;
    const rules = [...this.manager.camera(id).config.rules];
    const old = new Map(t.point.rules.map((r) => [r.name, r]));
    t.rules = rules;
    t.point.zones = zonesOf(rules);
    t.point.rules = rules.map((r) => {
      const o = old.get(r.name);
      return { name: r.name, type: r.type, severity: r.severity, active: false, hitCount: o?.hitCount ?? 0, lastHitMs: o?.lastHitMs ?? null };
    });
    t.holdUntilMs.clear();
    t.occupied.clear();
    this.emit('rebuilt', t.point);
  }

  private onState(e: StoredEvent): void {
    const t = this.cams.get(e.camera);
    if (!t) return;
    const p = t.point;
    const state = e.rule as CameraState;
    if (!CAMERA_STATES.includes(state)) return;
    p.state = state;
    p.fault = FAULT_STATES.includes(state);
    p.healthReasonCode = String(e.details['reasonCode'] ?? '');
    p.healthReason = String(e.details['reason'] ?? '');
    this.readCamera(p);
    this.emit('changed', { camera: p.id, point: p, keys: new Set<keyof CameraPoint>(['state', 'fault', 'healthReasonCode', 'healthReason', ...TELEMETRY_KEYS]), atMs: e.timeMs } satisfies PointChange);
  }

  private onFiring(e: StoredEvent): void {
    const t = this.cams.get(e.camera);
    const r = t?.point.rules.find((x) => x.name === e.rule);
    const cfg = t?.rules.find((x) => x.name === e.rule);
    if (!t || !r || !cfg) return;
    r.hitCount++;
    r.lastHitMs = e.timeMs;
    t.holdUntilMs.set(r.name, Date.now() + cfg.alarmHoldMs);
    const atMs = Date.now();
    if (!r.active) {
      r.active = true;
      this.emit('alarm', { camera: t.point.id, rule: r, event: e, atMs } satisfies AlarmChange);
    }
    this.emit('changed', { camera: t.point.id, point: t.point, keys: new Set<keyof CameraPoint>(['rules']), atMs } satisfies PointChange);
  }

  private onFrame(f: FrameSummary): void {
    const t = this.cams.get(f.camera);
    if (!t) return;
    const p = t.point;
    const keys = new Set<keyof CameraPoint>(TELEMETRY_KEYS);
    this.readCamera(p);
    if (f.detections > 0) {
      p.lastDetectionTimeMs = f.frameTimeMs;
      keys.add('lastDetectionTimeMs');
    }
    for (const z of p.zones) {
      const rule = t.rules.find((r) => r.name === z.rule);
      if (!rule || rule.type !== 'zone') continue;
      const counts: Record<string, number> = Object.fromEntries(z.classes.map((c) => [c, 0]));
      let total = 0;
      for (const o of f.objects) {
        if (o.score < rule.minConfidence || (z.classes.length > 0 && !z.classes.includes(o.className))) continue;
        const [x, y] = anchorOf(o.box);
        if (!pointInPolygon(x, y, rule.zone)) continue;
        total++;
        if (o.className in counts) counts[o.className]!++;
      }
      if (total !== z.total || z.classes.some((c) => counts[c] !== z.counts[c])) keys.add('zones');
      z.counts = counts;
      z.total = total;
      t.occupied.set(z.rule, total > 0);
    }
    this.emit('changed', { camera: p.id, point: p, keys, atMs: f.readyAtMs } satisfies PointChange);
    this.tick(f.readyAtMs, f.camera);
  }

  /** Clears rules whose hold ended (and, for zones, whose zone is empty). */
  private tick(nowMs: number, only?: string): void {
    for (const t of this.cams.values()) {
      if (only !== undefined && t.point.id !== only) continue;
      let changed = false;
      for (const r of t.point.rules) {
        if (!r.active) continue;
        const held = (t.holdUntilMs.get(r.name) ?? 0) > nowMs;
        if (held || (r.type === 'zone' && t.occupied.get(r.name))) continue;
        r.active = false;
        changed = true;
        this.emit('alarm', { camera: t.point.id, rule: r, atMs: nowMs } satisfies AlarmChange);
      }
      if (changed) this.emit('changed', { camera: t.point.id, point: t.point, keys: new Set<keyof CameraPoint>(['rules']), atMs: nowMs } satisfies PointChange);
    }
  }
}

function zonesOf(rules: readonly RuleConfig[]): ZonePoint[] {
  return rules.filter((r) => r.type === 'zone').map((r) => ({ rule: r.name, classes: [...r.classes], counts: Object.fromEntries(r.classes.map((c) => [c, 0])), total: 0 }));
}
