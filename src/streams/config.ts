/**
 * `cameras.yaml`: the configuration of `osprey streams` (and `osprey serve --cameras`).
 *
 * Validated once, by hand, so every error names the key path that is wrong
 * (`cameras[1].rules[0].zone[2]: expected [x, y] ...`, code `OSPREY_ERR_CONFIG`). Defaults live in
 * {@link DEFAULTS} and nowhere else. Precedence: CLI options > file.
 *
 * @example
 * ```yaml
 * model: ../shared/data/models/yolov8n.onnx
 * defaults: { fps: 5, queueSize: 4 }
 * events: { database: ./osprey-events.db, snapshots: ./snapshots, retention: { maxEvents: 10000, maxAgeHours: 168 } }
 * webhooks: [{ url: http://127.0.0.1:9000/hook, timeoutMs: 2000, maxAttempts: 5 }]
 * mqtt: [{ url: mqtt://127.0.0.1:1883, topic: 'factory/{camera}/events', qos: 1 }]
 * cameras:
 *   - id: door
 *     url: rtsp://127.0.0.1:8554/door
 *     rtspTransport: tcp
 *     rules:
 *       - { name: person-at-door, type: zone, zone: [[0,0],[400,0],[400,432],[0,432]], classes: [person], minDwellMs: 1000 }
 *       - { name: car-crossing, type: line, line: [[384,0],[384,432]], direction: left-to-right, classes: [car] }
 * ```
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { OspreyError } from '../core/errors.js';
import { isSensitiveName, redactText, redactUrl, secretsOf } from '../core/redact.js';
import { STORE_DEFAULTS, parseLeases, parseStore, type LeasesConfig, type StoreConfig } from './store-config.js';

export { parseStore, type LeasesConfig, type StoreConfig };

/** Reconnect policy: exponential backoff with jitter (delay = min(maxDelayMs, initialDelayMs × 2^(attempt−1)) ± jitter). */
export interface ReconnectConfig {
  /** First retry delay. Default 500 ms. */
  initialDelayMs: number;
  /** Cap of the delay (a hard cap: the jitter only shortens delays). Default 30000 ms. */
  maxDelayMs: number;
  /**
   * Consecutive failed attempts before the camera is `failed`; 0 = retry forever. Default 0: a live camera that is
   * down comes back by itself whenever it returns (configuration errors fail at once whatever this says).
   */
  maxAttempts: number;
  /** Relative jitter in [0, 1]: the delay is multiplied by a uniform factor in [1 − jitter, 1]. Default 0.2. */
  jitter: number;
}

export type LineDirection = 'any' | 'left-to-right' | 'right-to-left';

interface RuleBase {
  /** Unique per camera. */
  name: string;
  /** Class names that trigger the rule; empty = any class. */
  classes: string[];
  /** Minimum detection confidence for the track to count. Default 0.25. */
  minConfidence: number;
  /** After the rule fires, it stays quiet for this long (any track). Default 0. */
  cooldownMs: number;
  /** De-duplication: a firing whose box has IoU ≥ dedupIoU with a firing of the same rule within dedupWindowMs is dropped (track-id switches). Default 0.7 / 5000 ms. */
  dedupIoU: number;
  dedupWindowMs: number;
}

/** A polygon zone in source pixels; the track's anchor (bottom-centre of its box) must stay inside for `minDwellMs`. */
export interface ZoneRule extends RuleBase {
  type: 'zone';
  /** Polygon vertices `[x, y]` in source pixels, at least 3. */
  zone: Array<[number, number]>;
  /** Minimum continuous time inside the zone before the rule fires. Default 0. */
  minDwellMs: number;
}

/**
 * A line crossing in source pixels. Sides are as seen on screen when walking from `line[0]` to `line[1]`
 * (image y axis points down): `left-to-right` fires when the track's anchor goes from the left side to the right side.
 */
export interface LineRule extends RuleBase {
  type: 'line';
  line: [[number, number], [number, number]];
  direction: LineDirection;
}

export type RuleConfig = ZoneRule | LineRule;

/** Tracker keys settable per camera (ByteTrack's names in camelCase; defaults in `DEFAULT_TRACKER_OPTIONS`). */
export interface TrackerConfig {
  highThreshold?: number;
  lowThreshold?: number;
  newTrackThreshold?: number;
  matchIoU?: number;
  lowMatchIoU?: number;
  maxLostFrames?: number;
  /** Matches before a new track is reported (2 = ByteTrack; 1 suits low-fps streams, where objects move far between frames). */
  minHits?: number;
}

const TRACKER_KEYS = ['highThreshold', 'lowThreshold', 'newTrackThreshold', 'matchIoU', 'lowMatchIoU', 'maxLostFrames', 'minHits'] as const;

export interface CameraConfig {
  /** `[A-Za-z0-9_-]{1,64}`, unique. */
  id: string;
  /** Display name. Default: the id. */
  name: string;
  /** `rtsp://`, `rtsps://`, `http(s)://`, `file://` or a file path (resolved against the config file's folder). */
  url: string;
  /** RTSP transport. Default `tcp`. */
  rtspTransport: 'tcp' | 'udp';
  /** Files: start again at the end. Default true. */
  loop: boolean;
  /** Files: read at the native frame rate (ffmpeg `-re`). Default true. */
  realtime: boolean;
  /** Passed to ffmpeg as `-hwaccel <value>` (e.g. `cuda`, `vaapi`, `auto`). Default none. */
  hwaccel?: string;
  /** Extra ffmpeg input options, inserted before `-i`. Default []. */
  inputArgs: string[];
  /** Target frames per second sent to inference. Default 5. */
  fps: number;
  /** Bounded frame queue (drop-oldest) between the decoder and inference. Default 2. */
  queueSize: number;
  /** Scheduler priority (1 = highest, Triton's convention). Default 1. */
  priority: number;
  /** No frame for this long while streaming → `stalled` → reconnect. Default 5000 ms. */
  stallTimeoutMs: number;
  /** No first frame within this long after starting → the attempt failed. Default 10000 ms. */
  connectTimeoutMs: number;
  /**
   * Frames arrive but none has come back from the model for this long → `starved` (strict priority: higher-priority
   * cameras or requests take all the capacity). Back to `streaming` with the next processed frame. Default 10000 ms.
   */
  starvationTimeoutMs: number;
  reconnect: ReconnectConfig;
  /** Detection confidence threshold for this camera. Default 0.25. */
  confThreshold: number;
  rules: RuleConfig[];
  /** ByteTrack options for this camera (see `ByteTracker`); unset keys keep the tracker's defaults. */
  tracker: TrackerConfig;
  /** Start the camera. Default true. */
  enabled: boolean;
}

export interface EventsConfig {
  /** SQLite database file. Default `osprey-events.db` beside the config. */
  database: string;
  /** Folder of JPEG snapshots. Default `snapshots` beside the config. */
  snapshots: string;
  retention: { maxEvents: number; maxAgeHours: number };
}

export interface WebhookConfig {
  url: string;
  /** Per-attempt timeout. Default 5000 ms. */
  timeoutMs: number;
  /** Attempts before an event is given up on this webhook. Default 8. */
  maxAttempts: number;
  /** First retry delay; doubles each attempt up to maxDelayMs. Default 1000 / 60000 ms. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** Outbox bound (rows kept for this webhook); the oldest pending rows are dropped beyond it. Default 10000. */
  outboxMaxSize: number;
  headers: Record<string, string>;
}

/**
 * An MQTT sink: each event published as JSON (the webhook body) to `topic`, through the same outbox, retries and
 * bound as a webhook (at-least-once with QoS ≥ 1: a publish that times out is retried and may arrive twice).
 */
export interface MqttSinkConfig {
  /** Broker URL, `mqtt://host:1883` or `mqtts://host:8883`. */
  url: string;
  /** Topic template; `{camera}`, `{rule}` and `{kind}` are replaced per event. Default `osprey/events/{camera}`. */
  topic: string;
  /** MQTT QoS 0, 1 or 2. Default 1. */
  qos: 0 | 1 | 2;
  retain: boolean;
  clientId?: string;
  username?: string;
  password?: string;
  /** Per-publish timeout (until the broker acknowledges). Default 5000 ms. */
  timeoutMs: number;
  maxAttempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
  outboxMaxSize: number;
}

export interface StreamsConfig {
  /** Model path (resolved against the config folder); `--model` overrides it. */
  model?: string;
  cameras: CameraConfig[];
  events: EventsConfig;
  store: StoreConfig;
  leases: LeasesConfig;
  webhooks: WebhookConfig[];
  /** MQTT sinks (optional). */
  mqtt: MqttSinkConfig[];
  /** Live preview (dashboard) frames per second per camera. Default 2. */
  previewFps: number;
  /** The file's `defaults` section, applied to cameras added at run time too. */
  cameraDefaults: Partial<CameraConfig>;
}

/** The one place defaults are written. */
export const DEFAULTS = {
  camera: {
    rtspTransport: 'tcp' as const,
    loop: true,
    realtime: true,
    fps: 5,
    queueSize: 2,
    priority: 1,
    stallTimeoutMs: 5000,
    connectTimeoutMs: 10000,
    starvationTimeoutMs: 10000,
    confThreshold: 0.25,
    enabled: true,
  },
  reconnect: { initialDelayMs: 500, maxDelayMs: 30000, maxAttempts: 0, jitter: 0.2 },
  rule: { minConfidence: 0.25, cooldownMs: 0, minDwellMs: 0, dedupIoU: 0.7, dedupWindowMs: 5000, direction: 'any' as LineDirection },
  events: { database: 'osprey-events.db', snapshots: 'snapshots', retention: { maxEvents: 10000, maxAgeHours: 168 } },
  ...STORE_DEFAULTS,
  webhook: { timeoutMs: 5000, maxAttempts: 8, initialDelayMs: 1000, maxDelayMs: 60000, outboxMaxSize: 10000 },
  mqtt: { topic: 'osprey/events/{camera}', qos: 1 as const, retain: false },
  previewFps: 2,
} as const;

const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

function fail(path: string, message: string): never {
  // Messages quote values; credentials in them (URL userinfo, tokens) never leave (src/core/redact.ts).
  throw new OspreyError('OSPREY_ERR_CONFIG', `${path || '<root>'}: ${redactText(message)}`, { keyPath: path });
}

/** A value is echoed in an error unless its key names a secret (`password: 1234` is never repeated). */
const shown = (key: string, v: unknown): string => (isSensitiveName(key) ? '(value hidden)' : JSON.stringify(v));

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function checkKeys(o: Obj, allowed: readonly string[], path: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) fail(join(path, k), `unknown key (allowed: ${allowed.join(', ')})`);
  }
}
const join = (path: string, key: string | number): string => (typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${key}` : key);

function num(o: Obj, key: string, path: string, def: number, opts: { min?: number; max?: number; integer?: boolean; exclusiveMin?: boolean } = {}): number {
  const v = o[key];
  if (v === undefined) return def;
  const p = join(path, key);
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(p, `expected a number, got ${shown(key, v)}`);
  if (opts.integer && !Number.isInteger(v)) fail(p, `expected an integer, got ${v}`);
  if (opts.min !== undefined && (opts.exclusiveMin ? v <= opts.min : v < opts.min)) fail(p, `must be ${opts.exclusiveMin ? '>' : '≥'} ${opts.min}, got ${v}`);
  if (opts.max !== undefined && v > opts.max) fail(p, `must be ≤ ${opts.max}, got ${v}`);
  return v;
}
function str(o: Obj, key: string, path: string, def?: string): string {
  const v = o[key];
  if (v === undefined) {
    if (def === undefined) fail(join(path, key), 'required');
    return def;
  }
  if (typeof v !== 'string' || v.length === 0) fail(join(path, key), `expected a non-empty string, got ${shown(key, v)}`);
  return v;
}
function bool(o: Obj, key: string, path: string, def: boolean): boolean {
  const v = o[key];
  if (v === undefined) return def;
  if (typeof v !== 'boolean') fail(join(path, key), `expected true or false, got ${shown(key, v)}`);
  return v;
}
function strList(o: Obj, key: string, path: string): string[] {
  const v = o[key];
  if (v === undefined) return [];
  if (!Array.isArray(v)) fail(join(path, key), 'expected a list of strings');
  return v.map((x, i) => {
    if (typeof x !== 'string' || !x) fail(join(join(path, key), i), `expected a non-empty string, got ${JSON.stringify(x)}`);
    return x;
  });
}
function point(v: unknown, path: string): [number, number] {
  if (!Array.isArray(v) || v.length !== 2 || !v.every((n) => typeof n === 'number' && Number.isFinite(n))) {
    fail(path, `expected [x, y] (two numbers, source pixels), got ${JSON.stringify(v)}`);
  }
  return [v[0] as number, v[1] as number];
}

const RULE_KEYS = ['name', 'type', 'classes', 'minConfidence', 'cooldownMs', 'dedupIoU', 'dedupWindowMs', 'zone', 'minDwellMs', 'line', 'direction'];

/** Validates one rule object (also used by the HTTP API). @throws OspreyError `OSPREY_ERR_CONFIG` naming the key path. */
export function parseRule(raw: unknown, path: string): RuleConfig {
  if (!isObj(raw)) fail(path, 'expected a mapping');
  checkKeys(raw, RULE_KEYS, path);
  const name = str(raw, 'name', path);
  const type = str(raw, 'type', path);
  const base: RuleBase = {
    name,
    classes: strList(raw, 'classes', path),
    minConfidence: num(raw, 'minConfidence', path, DEFAULTS.rule.minConfidence, { min: 0, max: 1 }),
    cooldownMs: num(raw, 'cooldownMs', path, DEFAULTS.rule.cooldownMs, { min: 0 }),
    dedupIoU: num(raw, 'dedupIoU', path, DEFAULTS.rule.dedupIoU, { min: 0, max: 1 }),
    dedupWindowMs: num(raw, 'dedupWindowMs', path, DEFAULTS.rule.dedupWindowMs, { min: 0 }),
  };
  if (type === 'zone') {
    if (raw['line'] !== undefined || raw['direction'] !== undefined) fail(join(path, 'line'), 'a zone rule takes `zone`, not `line`/`direction`');
    const z = raw['zone'];
    if (!Array.isArray(z)) fail(join(path, 'zone'), 'required: a list of [x, y] points (source pixels)');
    if (z.length < 3) fail(join(path, 'zone'), `a polygon needs at least 3 points, got ${z.length}`);
    const zone = z.map((p, i) => point(p, join(join(path, 'zone'), i)));
    return { ...base, type: 'zone', zone, minDwellMs: num(raw, 'minDwellMs', path, DEFAULTS.rule.minDwellMs, { min: 0 }) };
  }
  if (type === 'line') {
    if (raw['zone'] !== undefined || raw['minDwellMs'] !== undefined) fail(join(path, 'zone'), 'a line rule takes `line`, not `zone`/`minDwellMs`');
    const l = raw['line'];
    if (!Array.isArray(l) || l.length !== 2) fail(join(path, 'line'), 'required: two points [[x1, y1], [x2, y2]] (source pixels)');
    const a = point(l[0], join(join(path, 'line'), 0));
    const b = point(l[1], join(join(path, 'line'), 1));
    if (a[0] === b[0] && a[1] === b[1]) fail(join(path, 'line'), 'the two points are the same');
    const direction = (raw['direction'] ?? DEFAULTS.rule.direction) as LineDirection;
    if (!['any', 'left-to-right', 'right-to-left'].includes(direction)) fail(join(path, 'direction'), `expected any, left-to-right or right-to-left, got ${JSON.stringify(raw['direction'])}`);
    return { ...base, type: 'line', line: [a, b], direction };
  }
  return fail(join(path, 'type'), `expected zone or line, got ${JSON.stringify(type)}`);
}

/** URL schemes a camera may use (ffmpeg protocols); anything else is refused when the config is read. */
export const CAMERA_SCHEMES = ['rtsp', 'rtsps', 'http', 'https', 'rtmp', 'udp', 'srt', 'file'] as const;

/** True when a camera URL is a local file (a path or `file://`), false for network sources. */
export function isFileSource(url: string): boolean {
  return !/^[a-z][a-z0-9+.-]*:\/\//i.test(url) || /^file:\/\//i.test(url);
}

/** Optimal string alignment distance (Levenshtein + adjacent transpositions). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      // A transposition (rtps → rtsp) counts 1 (optimal string alignment distance).
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * Refuses camera URLs that are almost URLs, which would otherwise be read as file paths: a known scheme followed by
 * something other than `://` (`rtsp//host/x`, `rtsp:/host/x`, `rtsp:host/x`, `rtsp:\\host`), `host:port/path`
 * without a scheme, and unknown schemes (with the nearest known one suggested: `rtps://` → `rtsp://`).
 * Messages never repeat credentials (the suggestion is redacted).
 * @throws OspreyError `OSPREY_ERR_CONFIG` naming the key path, with a suggestion.
 */
export function checkUrlShape(url: string, keyPath: string): void {
  const almost = /^([a-z][a-z0-9+.-]*)(\/\/+|:\/(?!\/)|:\\+|:(?![/\\]))(.*)$/i.exec(url);
  const almostScheme = almost?.[1]?.toLowerCase();
  if (almost && almostScheme && (CAMERA_SCHEMES as readonly string[]).includes(almostScheme)) {
    const rest = almost[3]!;
    const fixed = almostScheme === 'file' ? `file://${almost[2] === ':/' ? '/' : ''}${rest.replace(/^[\\]+/, '')}` : `${almostScheme}://${rest.replace(/^[/\\]+/, '')}`;
    // The value is not a URL yet, so take its secrets from the corrected form.
    fail(keyPath, `${JSON.stringify(redactText(url, secretsOf(fixed)))} looks like a URL with a malformed "://" after the scheme and would be read as a file path; did you mean ${JSON.stringify(redactUrl(fixed))}?`);
  }
  const hostPort = /^([A-Za-z0-9.-]+):(\d{2,5})(\/.*)?$/.exec(url);
  if (hostPort && !/^[a-z]$/i.test(hostPort[1]!)) {
    fail(keyPath, `${JSON.stringify(redactText(url, secretsOf(`rtsp://${url}`)))} looks like host:port without a scheme; did you mean ${JSON.stringify(redactUrl(`rtsp://${url}`))}? (prefix ./ for a file of that name)`);
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme !== undefined && !(CAMERA_SCHEMES as readonly string[]).includes(scheme)) {
    const near = CAMERA_SCHEMES.map((s) => [s, editDistance(scheme, s)] as const).sort((x, y) => x[1] - y[1])[0]!;
    const hint = near[1] <= 2 ? `; did you mean ${JSON.stringify(redactUrl(`${near[0]}://${url.slice(scheme.length + 3)}`))}?` : '';
    fail(keyPath, `unsupported scheme ${scheme}:// (${CAMERA_SCHEMES.join(', ')} or a file path)${hint}`);
  }
}

const CAMERA_KEYS = ['id', 'name', 'url', 'rtspTransport', 'loop', 'realtime', 'hwaccel', 'inputArgs', 'fps', 'queueSize', 'priority', 'stallTimeoutMs', 'connectTimeoutMs', 'starvationTimeoutMs', 'reconnect', 'confThreshold', 'rules', 'tracker', 'enabled'];
type CameraDefaults = Partial<Omit<CameraConfig, 'id' | 'name' | 'url' | 'rules'>>;

/** Validates one camera object (also used by the HTTP API). @throws OspreyError `OSPREY_ERR_CONFIG` naming the key path. */
export function parseCamera(raw: unknown, path: string, defaults: CameraDefaults = {}, baseDir = process.cwd()): CameraConfig {
  if (!isObj(raw)) fail(path, 'expected a mapping');
  checkKeys(raw, CAMERA_KEYS, path);
  const id = str(raw, 'id', path);
  if (!ID_RE.test(id)) fail(join(path, 'id'), `must match ${ID_RE.source}, got ${JSON.stringify(id)}`);
  let url = str(raw, 'url', path);
  checkUrlShape(url, join(path, 'url'));
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined) url = isAbsolute(url) ? url : resolve(baseDir, url);
  const d = { ...DEFAULTS.camera, ...defaults };
  const rtspTransport = (raw['rtspTransport'] ?? d.rtspTransport) as 'tcp' | 'udp';
  if (rtspTransport !== 'tcp' && rtspTransport !== 'udp') fail(join(path, 'rtspTransport'), `expected tcp or udp, got ${JSON.stringify(raw['rtspTransport'])}`);
  const rcRaw = raw['reconnect'] ?? {};
  const rp = join(path, 'reconnect');
  if (!isObj(rcRaw)) fail(rp, 'expected a mapping');
  checkKeys(rcRaw, ['initialDelayMs', 'maxDelayMs', 'maxAttempts', 'jitter'], rp);
  const rd = { ...DEFAULTS.reconnect, ...(defaults.reconnect ?? {}) };
  const reconnect: ReconnectConfig = {
    initialDelayMs: num(rcRaw, 'initialDelayMs', rp, rd.initialDelayMs, { min: 0 }),
    maxDelayMs: num(rcRaw, 'maxDelayMs', rp, rd.maxDelayMs, { min: 0 }),
    maxAttempts: num(rcRaw, 'maxAttempts', rp, rd.maxAttempts, { min: 0, integer: true }),
    jitter: num(rcRaw, 'jitter', rp, rd.jitter, { min: 0, max: 1 }),
  };
  const rulesRaw = raw['rules'] ?? [];
  if (!Array.isArray(rulesRaw)) fail(join(path, 'rules'), 'expected a list of rules');
  const rules = rulesRaw.map((r, i) => parseRule(r, join(join(path, 'rules'), i)));
  const seen = new Set<string>();
  rules.forEach((r, i) => {
    if (seen.has(r.name)) fail(join(join(join(path, 'rules'), i), 'name'), `duplicate rule name ${JSON.stringify(r.name)}`);
    seen.add(r.name);
  });
  const trRaw = raw['tracker'] ?? {};
  const tp = join(path, 'tracker');
  if (!isObj(trRaw)) fail(tp, 'expected a mapping');
  checkKeys(trRaw, TRACKER_KEYS, tp);
  const tracker: TrackerConfig = { ...(d.tracker ?? {}) };
  for (const k of TRACKER_KEYS) {
    if (trRaw[k] === undefined) continue;
    tracker[k] = k === 'maxLostFrames' || k === 'minHits' ? num(trRaw, k, tp, 0, { min: k === 'minHits' ? 1 : 0, integer: true }) : num(trRaw, k, tp, 0, { min: 0, max: 1 });
  }
  const inputArgs = strList(raw, 'inputArgs', path);
  const hwaccel = raw['hwaccel'] === undefined ? d.hwaccel : str(raw, 'hwaccel', path);
  return {
    id,
    name: raw['name'] === undefined ? id : str(raw, 'name', path),
    url,
    rtspTransport,
    loop: bool(raw, 'loop', path, d.loop),
    realtime: bool(raw, 'realtime', path, d.realtime),
    ...(hwaccel ? { hwaccel } : {}),
    inputArgs: inputArgs.length ? inputArgs : [...(d.inputArgs ?? [])],
    fps: num(raw, 'fps', path, d.fps, { min: 0, exclusiveMin: true, max: 240 }),
    queueSize: num(raw, 'queueSize', path, d.queueSize, { min: 1, max: 1000, integer: true }),
    priority: num(raw, 'priority', path, d.priority, { min: 1, integer: true }),
    stallTimeoutMs: num(raw, 'stallTimeoutMs', path, d.stallTimeoutMs, { min: 100 }),
    connectTimeoutMs: num(raw, 'connectTimeoutMs', path, d.connectTimeoutMs, { min: 100 }),
    starvationTimeoutMs: num(raw, 'starvationTimeoutMs', path, d.starvationTimeoutMs, { min: 100 }),
    reconnect,
    confThreshold: num(raw, 'confThreshold', path, d.confThreshold, { min: 0, max: 1 }),
    rules,
    tracker,
    enabled: bool(raw, 'enabled', path, d.enabled),
  };
}

/**
 * Validates a parsed cameras.yaml document.
 * @param baseDir folder relative paths are resolved against (the config file's folder).
 * @throws OspreyError `OSPREY_ERR_CONFIG` whose message starts with the key path (e.g. `cameras[0].fps: must be > 0, got 0`).
 */
export function parseStreamsConfig(doc: unknown, baseDir = process.cwd()): StreamsConfig {
  if (!isObj(doc)) fail('', 'expected a mapping with a `cameras` list');
  checkKeys(doc, ['model', 'defaults', 'cameras', 'events', 'store', 'leases', 'webhooks', 'mqtt', 'previewFps'], '');
  const model = doc['model'] === undefined ? undefined : resolve(baseDir, str(doc, 'model', ''));
  const defRaw = doc['defaults'] ?? {};
  if (!isObj(defRaw)) fail('defaults', 'expected a mapping');
  checkKeys(defRaw, CAMERA_KEYS.filter((k) => !['id', 'name', 'url', 'rules'].includes(k)), 'defaults');
  // Validate defaults through the camera parser on a placeholder camera, so the key paths say `defaults.…`.
  const defCam = parseCamera({ ...defRaw, id: 'defaults', url: 'rtsp://defaults' }, 'defaults', {}, baseDir);
  const { id: _i, name: _n, url: _u, rules: _r, ...defaults } = defCam;
  const camsRaw = doc['cameras'];
  if (!Array.isArray(camsRaw)) fail('cameras', 'required: a list of cameras');
  const cameras = camsRaw.map((c, i) => parseCamera(c, join('cameras', i), defaults, baseDir));
  const ids = new Set<string>();
  cameras.forEach((c, i) => {
    if (ids.has(c.id)) fail(`cameras[${i}].id`, `duplicate camera id ${JSON.stringify(c.id)}`);
    ids.add(c.id);
  });
  const evRaw = doc['events'] ?? {};
  if (!isObj(evRaw)) fail('events', 'expected a mapping');
  checkKeys(evRaw, ['database', 'snapshots', 'retention'], 'events');
  const retRaw = evRaw['retention'] ?? {};
  if (!isObj(retRaw)) fail('events.retention', 'expected a mapping');
  checkKeys(retRaw, ['maxEvents', 'maxAgeHours'], 'events.retention');
  const events: EventsConfig = {
    database: resolve(baseDir, str(evRaw, 'database', 'events', DEFAULTS.events.database)),
    snapshots: resolve(baseDir, str(evRaw, 'snapshots', 'events', DEFAULTS.events.snapshots)),
    retention: {
      maxEvents: num(retRaw, 'maxEvents', 'events.retention', DEFAULTS.events.retention.maxEvents, { min: 1, integer: true }),
      maxAgeHours: num(retRaw, 'maxAgeHours', 'events.retention', DEFAULTS.events.retention.maxAgeHours, { min: 0, exclusiveMin: true }),
    },
  };
  const whRaw = doc['webhooks'] ?? [];
  if (!Array.isArray(whRaw)) fail('webhooks', 'expected a list');
  const webhooks = whRaw.map((w, i) => parseWebhook(w, join('webhooks', i)));
  const mqRaw = doc['mqtt'] ?? [];
  if (!Array.isArray(mqRaw)) fail('mqtt', 'expected a list');
  const mqtt = mqRaw.map((m, i) => parseMqtt(m, join('mqtt', i)));
  const store = parseStore(doc['store']);
  const leases = parseLeases(doc['leases']);
  return { ...(model ? { model } : {}), cameras, events, store, leases, webhooks, mqtt, cameraDefaults: defaults, previewFps: num(doc, 'previewFps', '', DEFAULTS.previewFps, { min: 0, exclusiveMin: true, max: 30 }) };
}

function parseMqtt(raw: unknown, path: string): MqttSinkConfig {
  if (!isObj(raw)) fail(path, 'expected a mapping');
  checkKeys(raw, ['url', 'topic', 'qos', 'retain', 'clientId', 'username', 'password', 'timeoutMs', 'maxAttempts', 'initialDelayMs', 'maxDelayMs', 'outboxMaxSize'], path);
  const url = str(raw, 'url', path);
  if (!/^mqtts?:\/\/[^/]+/.test(url)) fail(join(path, 'url'), `expected an mqtt:// or mqtts:// URL, got ${JSON.stringify(redactUrl(url))}`);
  const topic = str(raw, 'topic', path, DEFAULTS.mqtt.topic);
  if (topic === '' || /[#+]/.test(topic)) fail(join(path, 'topic'), `expected a topic without wildcards (+, #), got ${JSON.stringify(topic)}`);
  const qos = num(raw, 'qos', path, DEFAULTS.mqtt.qos, { min: 0, max: 2, integer: true }) as 0 | 1 | 2;
  const d = DEFAULTS.webhook;
  const opt = (k: 'clientId' | 'username' | 'password') => (raw[k] === undefined ? {} : { [k]: str(raw, k, path) });
  return {
    url,
    topic,
    qos,
    retain: bool(raw, 'retain', path, DEFAULTS.mqtt.retain),
    ...opt('clientId'),
    ...opt('username'),
    ...opt('password'),
    timeoutMs: num(raw, 'timeoutMs', path, d.timeoutMs, { min: 1 }),
    maxAttempts: num(raw, 'maxAttempts', path, d.maxAttempts, { min: 1, integer: true }),
    initialDelayMs: num(raw, 'initialDelayMs', path, d.initialDelayMs, { min: 0 }),
    maxDelayMs: num(raw, 'maxDelayMs', path, d.maxDelayMs, { min: 0 }),
    outboxMaxSize: num(raw, 'outboxMaxSize', path, d.outboxMaxSize, { min: 1, integer: true }),
  };
}

function parseWebhook(raw: unknown, path: string): WebhookConfig {
  if (!isObj(raw)) fail(path, 'expected a mapping');
  checkKeys(raw, ['url', 'timeoutMs', 'maxAttempts', 'initialDelayMs', 'maxDelayMs', 'outboxMaxSize', 'headers'], path);
  const url = str(raw, 'url', path);
  if (!/^https?:\/\//.test(url)) fail(join(path, 'url'), `expected an http:// or https:// URL, got ${JSON.stringify(redactUrl(url))}`);
  const h = raw['headers'] ?? {};
  if (!isObj(h) || !Object.values(h).every((v) => typeof v === 'string')) fail(join(path, 'headers'), 'expected a mapping of strings');
  const d = DEFAULTS.webhook;
  return {
    url,
    timeoutMs: num(raw, 'timeoutMs', path, d.timeoutMs, { min: 1 }),
    maxAttempts: num(raw, 'maxAttempts', path, d.maxAttempts, { min: 1, integer: true }),
    initialDelayMs: num(raw, 'initialDelayMs', path, d.initialDelayMs, { min: 0 }),
    maxDelayMs: num(raw, 'maxDelayMs', path, d.maxDelayMs, { min: 0 }),
    outboxMaxSize: num(raw, 'outboxMaxSize', path, d.outboxMaxSize, { min: 1, integer: true }),
    headers: h as Record<string, string>,
  };
}

/**
 * Reads and validates a cameras.yaml file.
 * @throws OspreyError `OSPREY_ERR_FILE_NOT_FOUND` (unreadable), `OSPREY_ERR_CONFIG` (YAML syntax with line, or a key path).
 */
export function loadStreamsConfig(file: string): StreamsConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `${file}: cannot read the cameras config (${(err as Error).message})`, { path: file });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    // The YAML parser quotes the offending line, which may hold a camera's password.
    throw new OspreyError('OSPREY_ERR_CONFIG', `${file}: invalid YAML: ${redactText((err as Error).message)}`, { path: file });
  }
  try {
    return parseStreamsConfig(doc, dirname(resolve(file)));
  } catch (err) {
    if (err instanceof OspreyError) throw new OspreyError(err.code, `${file}: ${redactText(err.message)}`, { ...err.details, path: file });
    throw err;
  }
}

/**
 * Checks that every rule's points lie inside a `width × height` source frame.
 * @throws OspreyError `OSPREY_ERR_ZONE` naming the rule and the point.
 */
export function validateRulesInFrame(rules: readonly RuleConfig[], width: number, height: number, pathPrefix = 'rules'): void {
  rules.forEach((r, i) => {
    const pts = r.type === 'zone' ? r.zone : r.line;
    const key = r.type === 'zone' ? 'zone' : 'line';
    pts.forEach(([x, y], j) => {
      if (x < 0 || y < 0 || x > width || y > height) {
        throw new OspreyError(
          'OSPREY_ERR_ZONE',
          `${pathPrefix}[${i}].${key}[${j}]: point [${x}, ${y}] of rule ${JSON.stringify(r.name)} is outside the ${width}×${height} frame (source pixels)`,
          { rule: r.name, point: [x, y], width, height },
        );
      }
    });
  });
}
