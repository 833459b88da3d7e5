/**
 * `cameras.yaml`: the configuration of `osprey streams` (and `osprey serve --cameras`).
 *
 * Validated once: {@link CAMERAS_CONFIG_SCHEMA} (TypeBox, like the model config) checks types, ranges and keys, the
 * code below the meaning (URL shapes, geometry, duplicate ids); every error names the key path that is wrong
 * (`cameras[1].rules[0].zone[2]: expected [x, y] ...`, code `OSPREY_ERR_CONFIG`, details `{ keyPath }`, plus `file`
 * from {@link loadStreamsConfig}; src/core/config-errors.ts). Defaults live in
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
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { configError, describeSchemaError, joinKeyPath, ROOT_KEY_PATH } from '../core/config-errors.js';
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
  /**
   * Severity of the rule's alarm (OPC UA Alarms & Conditions: 1 = lowest … 1000 = highest; Sparkplug carries the same
   * number). Default 500.
   */
  severity: number;
  /**
   * After a firing the rule (and its alarm) stays active at least this long; a zone rule also stays active while an
   * object of its classes is inside. Default 5000 ms.
   */
  alarmHoldMs: number;
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
  /** Sparkplug B edge node over this sink's broker connection (docs/scada.md); absent = plain JSON events only. */
  sparkplug?: SparkplugConfig;
}

/** Sparkplug B (Eclipse Sparkplug 3.0) edge node: topics `spBv1.0/{groupId}/{NBIRTH|DBIRTH|DDATA|…}/{edgeNodeId}[/{camera}]`. */
export interface SparkplugConfig {
  /** Sparkplug group id (no `/`, `+`, `#`). */
  groupId: string;
  /** Sparkplug edge node id (no `/`, `+`, `#`). */
  edgeNodeId: string;
  /** Frame-rate metrics (fps, latency, frame counters) go out at most this often; state, counts and rules at once. Default 1000 ms. */
  telemetryIntervalMs: number;
}

/** OPC UA message security modes (Part 4 `MessageSecurityMode`). */
export const OPCUA_SECURITY_MODES = ['None', 'Sign', 'SignAndEncrypt'] as const;
export type OpcUaSecurityMode = (typeof OPCUA_SECURITY_MODES)[number];
/** OPC UA security policies Osprey offers (node-opcua's names; Basic128Rsa15/Basic256 are deprecated and not offered). */
export const OPCUA_SECURITY_POLICIES = ['Basic256Sha256', 'Aes128_Sha256_RsaOaep', 'Aes256_Sha256_RsaPss'] as const;
export type OpcUaSecurityPolicy = (typeof OPCUA_SECURITY_POLICIES)[number];

/** An OPC UA user: the name and the SHA-256 digest of the password (the password itself is not kept). */
export interface OpcUaUser {
  username: string;
  /** SHA-256 of the password, hex. */
  passwordSha256: string;
}

/** The OPC UA server of `osprey streams` / `osprey serve --cameras` (off unless `opcua:` is in cameras.yaml). */
export interface OpcUaConfig {
  /** TCP port (`opc.tcp://host:port/`). Default 4840 (IANA's OPC UA port). */
  port: number;
  /** Listen address (also the host of the endpoint URLs). Default: the HTTP server's `--host` (127.0.0.1). */
  host?: string;
  /** Users allowed in (username/password identity tokens). Passwords come from `passwordFile` or `passwordEnv`. */
  users: OpcUaUser[];
  /** Anonymous sessions (read-only: methods still need a user). Default false. */
  allowAnonymous: boolean;
  /** Offered security modes. Default [Sign, SignAndEncrypt]; `None` only when listed. */
  securityModes: OpcUaSecurityMode[];
  /** Offered security policies (with Sign/SignAndEncrypt). Default all of {@link OPCUA_SECURITY_POLICIES}. */
  securityPolicies: OpcUaSecurityPolicy[];
  /** Certificate store (own certificate and key, trusted/ and rejected/ client certificates, users/ for X509 users). Default `opcua-pki` beside the events database. */
  certificateDir: string;
  /** Trust client certificates not yet in the trusted folder (test benches only). Default false: they land in `rejected/`. */
  acceptUnknownCertificates: boolean;
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
  /** OPC UA server (docs/scada.md); absent = off. */
  opcua?: OpcUaConfig;
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
  rule: { minConfidence: 0.25, cooldownMs: 0, minDwellMs: 0, dedupIoU: 0.7, dedupWindowMs: 5000, direction: 'any' as LineDirection, severity: 500, alarmHoldMs: 5000 },
  events: { database: 'osprey-events.db', snapshots: 'snapshots', retention: { maxEvents: 10000, maxAgeHours: 168 } },
  ...STORE_DEFAULTS,
  webhook: { timeoutMs: 5000, maxAttempts: 8, initialDelayMs: 1000, maxDelayMs: 60000, outboxMaxSize: 10000 },
  mqtt: { topic: 'osprey/events/{camera}', qos: 1 as const, retain: false },
  sparkplug: { telemetryIntervalMs: 1000 },
  opcua: { port: 4840, allowAnonymous: false, securityModes: ['Sign', 'SignAndEncrypt'] as OpcUaSecurityMode[], securityPolicies: [...OPCUA_SECURITY_POLICIES] as OpcUaSecurityPolicy[], certificateDir: 'opcua-pki', acceptUnknownCertificates: false },
  previewFps: 2,
} as const;

const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

function fail(path: string, message: string): never {
  // Messages quote values; credentials in them (URL userinfo, tokens) never leave (src/core/redact.ts).
  throw configError('', path || ROOT_KEY_PATH, redactText(message));
}

// ---- The schema of cameras.yaml (TypeBox): types, ranges and keys; meaning (URLs, geometry, duplicates) in code ----
const Num = (o: { min?: number; max?: number; exclusiveMin?: boolean; integer?: boolean } = {}) => {
  const opts = { ...(o.min !== undefined ? (o.exclusiveMin ? { exclusiveMinimum: o.min } : { minimum: o.min }) : {}), ...(o.max !== undefined ? { maximum: o.max } : {}) };
  return Type.Optional(o.integer ? Type.Integer(opts) : Type.Number(opts));
};
const Str = Type.String({ minLength: 1 });
const Bool = Type.Optional(Type.Boolean());
const StrList = Type.Optional(Type.Array(Str, { typeMessage: 'expected a list of strings' }));
const Strict = { additionalProperties: false };
const Point = Type.Tuple([Type.Number(), Type.Number()], { message: 'expected [x, y] (two numbers, source pixels)' });

const RuleSchema = Type.Object(
  {
    name: Str,
    type: Type.Union([Type.Literal('zone'), Type.Literal('line')]),
    classes: StrList,
    minConfidence: Num({ min: 0, max: 1 }),
    cooldownMs: Num({ min: 0 }),
    dedupIoU: Num({ min: 0, max: 1 }),
    dedupWindowMs: Num({ min: 0 }),
    severity: Num({ min: 1, max: 1000, integer: true }),
    alarmHoldMs: Num({ min: 0 }),
    zone: Type.Optional(Type.Array(Point, { typeMessage: 'required: a list of [x, y] points (source pixels)' })),
    minDwellMs: Num({ min: 0 }),
    line: Type.Optional(Type.Array(Point, { typeMessage: 'required: two points [[x1, y1], [x2, y2]] (source pixels)' })),
    direction: Type.Optional(Type.Union([Type.Literal('any'), Type.Literal('left-to-right'), Type.Literal('right-to-left')])),
  },
  { ...Strict, typeMessage: 'expected a mapping' },
);

const ReconnectSchema = Type.Object({ initialDelayMs: Num({ min: 0 }), maxDelayMs: Num({ min: 0 }), maxAttempts: Num({ min: 0, integer: true }), jitter: Num({ min: 0, max: 1 }) }, Strict);
const Unit = Num({ min: 0, max: 1 });
const TrackerSchema = Type.Object(
  { highThreshold: Unit, lowThreshold: Unit, newTrackThreshold: Unit, matchIoU: Unit, lowMatchIoU: Unit, maxLostFrames: Num({ min: 0, integer: true }), minHits: Num({ min: 1, integer: true }) },
  Strict,
);

const CameraSchema = Type.Object(
  {
    id: Type.String({ pattern: ID_RE.source, message: `must match ${ID_RE.source}` }),
    name: Type.Optional(Str),
    url: Str,
    rtspTransport: Type.Optional(Type.Union([Type.Literal('tcp'), Type.Literal('udp')])),
    loop: Bool,
    realtime: Bool,
    hwaccel: Type.Optional(Str),
    inputArgs: StrList,
    fps: Num({ min: 0, exclusiveMin: true, max: 240 }),
    queueSize: Num({ min: 1, max: 1000, integer: true }),
    priority: Num({ min: 1, integer: true }),
    stallTimeoutMs: Num({ min: 100 }),
    connectTimeoutMs: Num({ min: 100 }),
    starvationTimeoutMs: Num({ min: 100 }),
    reconnect: Type.Optional(ReconnectSchema),
    confThreshold: Num({ min: 0, max: 1 }),
    rules: Type.Optional(Type.Array(RuleSchema, { typeMessage: 'expected a list of rules' })),
    tracker: Type.Optional(TrackerSchema),
    enabled: Bool,
  },
  Strict,
);
const CameraDefaultsSchema = Type.Omit(CameraSchema, ['id', 'name', 'url', 'rules'], Strict);

const SinkRetry = { timeoutMs: Num({ min: 1 }), maxAttempts: Num({ min: 1, integer: true }), initialDelayMs: Num({ min: 0 }), maxDelayMs: Num({ min: 0 }), outboxMaxSize: Num({ min: 1, integer: true }) };
const WebhookSchema = Type.Object({ url: Str, ...SinkRetry, headers: Type.Optional(Type.Record(Type.String(), Type.String(), { message: 'expected a mapping of strings' })) }, Strict);
/** Sparkplug topic ids: UTF-8 without the MQTT separators and wildcards (Sparkplug 3.0, topic namespace). */
const SPARKPLUG_ID_RE = /^[^/+#\s]{1,64}$/;
const SparkplugId = Type.String({ pattern: SPARKPLUG_ID_RE.source, message: 'expected 1–64 characters without /, +, # or spaces (a Sparkplug topic element)' });
const SparkplugSchema = Type.Object({ groupId: SparkplugId, edgeNodeId: SparkplugId, telemetryIntervalMs: Num({ min: 0 }) }, { ...Strict, typeMessage: 'expected a mapping with groupId and edgeNodeId' });
const MqttSchema = Type.Object(
  {
    url: Str,
    topic: Type.Optional(Str),
    qos: Num({ min: 0, max: 2, integer: true }),
    retain: Bool,
    clientId: Type.Optional(Str),
    username: Type.Optional(Str),
    password: Type.Optional(Str),
    ...SinkRetry,
    sparkplug: Type.Optional(SparkplugSchema),
  },
  Strict,
);
const literals = <T extends string>(xs: readonly T[]) => Type.Union(xs.map((x) => Type.Literal(x)), { message: `expected one of ${xs.join(', ')}` });
const OpcUaUserSchema = Type.Object({ username: Str, passwordFile: Type.Optional(Str), passwordEnv: Type.Optional(Str) }, { ...Strict, typeMessage: 'expected a mapping { username, passwordFile | passwordEnv }' });
const OpcUaSchema = Type.Object(
  {
    port: Num({ min: 1, max: 65535, integer: true }),
    host: Type.Optional(Str),
    users: Type.Optional(Type.Array(OpcUaUserSchema, { typeMessage: 'expected a list of { username, passwordFile | passwordEnv }' })),
    allowAnonymous: Bool,
    securityModes: Type.Optional(Type.Array(literals(OPCUA_SECURITY_MODES), { minItems: 1 })),
    securityPolicies: Type.Optional(Type.Array(literals(OPCUA_SECURITY_POLICIES), { minItems: 1 })),
    certificateDir: Type.Optional(Str),
    acceptUnknownCertificates: Bool,
  },
  { ...Strict, typeMessage: 'expected a mapping (port, users, securityModes, …)' },
);
const EventsSchema = Type.Object(
  { database: Type.Optional(Str), snapshots: Type.Optional(Str), retention: Type.Optional(Type.Object({ maxEvents: Num({ min: 1, integer: true }), maxAgeHours: Num({ min: 0, exclusiveMin: true }) }, Strict)) },
  Strict,
);

/** The whole of cameras.yaml (JSON Schema through TypeBox; `CAMERAS_CONFIG_SCHEMA` is exported for editors and docs). */
export const CAMERAS_CONFIG_SCHEMA = Type.Object(
  {
    model: Type.Optional(Str),
    defaults: Type.Optional(CameraDefaultsSchema),
    cameras: Type.Array(CameraSchema, { requiredMessage: 'required: a list of cameras', typeMessage: 'required: a list of cameras' }),
    events: Type.Optional(EventsSchema),
    store: Type.Optional(Type.Unknown()),
    leases: Type.Optional(Type.Object({ ttlMs: Num({ min: 500, integer: true }), renewMs: Num({ min: 100, integer: true }), maxCameras: Num({ min: 0, integer: true }) }, Strict)),
    webhooks: Type.Optional(Type.Array(WebhookSchema)),
    mqtt: Type.Optional(Type.Array(MqttSchema)),
    opcua: Type.Optional(OpcUaSchema),
    previewFps: Num({ min: 0, exclusiveMin: true, max: 30 }),
  },
  { ...Strict, typeMessage: 'expected a mapping with a `cameras` list' },
);

/** Checks `raw` against `schema`; the first violation as OSPREY_ERR_CONFIG at `path` + its key path. */
function check<T extends TSchema>(schema: T, raw: unknown, path: string): asserts raw is Static<T> {
  const bad = describeSchemaError(schema, raw, { isSensitiveKey: isSensitiveName, redact: redactText });
  if (!bad) return;
  const sub = bad.keyPath === ROOT_KEY_PATH ? '' : bad.keyPath;
  fail(!path ? sub : !sub ? path : sub.startsWith('[') ? `${path}${sub}` : `${path}.${sub}`, bad.message);
}

const join = joinKeyPath;

/** Validates one rule object (also used by the HTTP API). @throws OspreyError `OSPREY_ERR_CONFIG` naming the key path. */
export function parseRule(raw: unknown, path: string): RuleConfig {
  check(RuleSchema, raw, path);
  const d = DEFAULTS.rule;
  const base: RuleBase = {
    name: raw.name,
    classes: raw.classes ?? [],
    minConfidence: raw.minConfidence ?? d.minConfidence,
    cooldownMs: raw.cooldownMs ?? d.cooldownMs,
    dedupIoU: raw.dedupIoU ?? d.dedupIoU,
    dedupWindowMs: raw.dedupWindowMs ?? d.dedupWindowMs,
    severity: raw.severity ?? d.severity,
    alarmHoldMs: raw.alarmHoldMs ?? d.alarmHoldMs,
  };
  if (raw.type === 'zone') {
    if (raw.line !== undefined || raw.direction !== undefined) fail(join(path, 'line'), 'a zone rule takes `zone`, not `line`/`direction`');
    const z = raw.zone;
    if (!z) fail(join(path, 'zone'), 'required: a list of [x, y] points (source pixels)');
    if (z.length < 3) fail(join(path, 'zone'), `a polygon needs at least 3 points, got ${z.length}`);
    return { ...base, type: 'zone', zone: z.map(([x, y]) => [x, y] as [number, number]), minDwellMs: raw.minDwellMs ?? d.minDwellMs };
  }
  if (raw.zone !== undefined || raw.minDwellMs !== undefined) fail(join(path, 'zone'), 'a line rule takes `line`, not `zone`/`minDwellMs`');
  const l = raw.line;
  if (!l || l.length !== 2) fail(join(path, 'line'), 'required: two points [[x1, y1], [x2, y2]] (source pixels)');
  const [a, b] = [l[0]!, l[1]!];
  if (a[0] === b[0] && a[1] === b[1]) fail(join(path, 'line'), 'the two points are the same');
  return { ...base, type: 'line', line: [[a[0], a[1]], [b[0], b[1]]], direction: raw.direction ?? d.direction };
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

type CameraDefaults = Partial<Omit<CameraConfig, 'id' | 'name' | 'url' | 'rules'>>;

/** Validates one camera object (also used by the HTTP API). @throws OspreyError `OSPREY_ERR_CONFIG` naming the key path. */
export function parseCamera(raw: unknown, path: string, defaults: CameraDefaults = {}, baseDir = process.cwd()): CameraConfig {
  check(CameraSchema, raw, path);
  const id = raw.id;
  let url = raw.url;
  checkUrlShape(url, join(path, 'url'));
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined) url = isAbsolute(url) ? url : resolve(baseDir, url);
  const d = { ...DEFAULTS.camera, ...defaults };
  const rd = { ...DEFAULTS.reconnect, ...(defaults.reconnect ?? {}) };
  const rc = raw.reconnect ?? {};
  const reconnect: ReconnectConfig = {
    initialDelayMs: rc.initialDelayMs ?? rd.initialDelayMs,
    maxDelayMs: rc.maxDelayMs ?? rd.maxDelayMs,
    maxAttempts: rc.maxAttempts ?? rd.maxAttempts,
    jitter: rc.jitter ?? rd.jitter,
  };
  const rules = (raw.rules ?? []).map((r, i) => parseRule(r, join(join(path, 'rules'), i)));
  const seen = new Set<string>();
  rules.forEach((r, i) => {
    if (seen.has(r.name)) fail(join(join(join(path, 'rules'), i), 'name'), `duplicate rule name ${JSON.stringify(r.name)}`);
    seen.add(r.name);
  });
  const tracker: TrackerConfig = { ...(d.tracker ?? {}) };
  for (const k of TRACKER_KEYS) if (raw.tracker?.[k] !== undefined) tracker[k] = raw.tracker[k];
  const inputArgs = raw.inputArgs ?? [];
  const hwaccel = raw.hwaccel ?? d.hwaccel;
  return {
    id,
    name: raw.name ?? id,
    url,
    rtspTransport: raw.rtspTransport ?? d.rtspTransport,
    loop: raw.loop ?? d.loop,
    realtime: raw.realtime ?? d.realtime,
    ...(hwaccel ? { hwaccel } : {}),
    inputArgs: inputArgs.length ? inputArgs : [...(d.inputArgs ?? [])],
    fps: raw.fps ?? d.fps,
    queueSize: raw.queueSize ?? d.queueSize,
    priority: raw.priority ?? d.priority,
    stallTimeoutMs: raw.stallTimeoutMs ?? d.stallTimeoutMs,
    connectTimeoutMs: raw.connectTimeoutMs ?? d.connectTimeoutMs,
    starvationTimeoutMs: raw.starvationTimeoutMs ?? d.starvationTimeoutMs,
    reconnect,
    confThreshold: raw.confThreshold ?? d.confThreshold,
    rules,
    tracker,
    enabled: raw.enabled ?? d.enabled,
  };
}

/**
 * Validates a parsed cameras.yaml document.
 * @param baseDir folder relative paths are resolved against (the config file's folder).
 * @throws OspreyError `OSPREY_ERR_CONFIG` whose message starts with the key path (e.g. `cameras[0].fps: must be > 0, got 0`).
 */
export function parseStreamsConfig(doc: unknown, baseDir = process.cwd()): StreamsConfig {
  refuseWrittenPasswords(doc);
  check(CAMERAS_CONFIG_SCHEMA, doc, '');
  const model = doc.model === undefined ? undefined : resolve(baseDir, doc.model);
  // Defaults go through the camera parser on a placeholder camera (same defaults and meaning checks).
  const defCam = parseCamera({ ...(doc.defaults ?? {}), id: 'defaults', url: 'rtsp://defaults' }, 'defaults', {}, baseDir);
  const { id: _i, name: _n, url: _u, rules: _r, ...defaults } = defCam;
  const cameras = doc.cameras.map((c, i) => parseCamera(c, join('cameras', i), defaults, baseDir));
  const ids = new Set<string>();
  cameras.forEach((c, i) => {
    if (ids.has(c.id)) fail(`cameras[${i}].id`, `duplicate camera id ${JSON.stringify(c.id)}`);
    ids.add(c.id);
  });
  const ev = doc.events ?? {};
  const de = DEFAULTS.events;
  const events: EventsConfig = {
    database: resolve(baseDir, ev.database ?? de.database),
    snapshots: resolve(baseDir, ev.snapshots ?? de.snapshots),
    retention: { maxEvents: ev.retention?.maxEvents ?? de.retention.maxEvents, maxAgeHours: ev.retention?.maxAgeHours ?? de.retention.maxAgeHours },
  };
  const webhooks = (doc.webhooks ?? []).map((w, i) => parseWebhook(w, join('webhooks', i)));
  const mqtt = (doc.mqtt ?? []).map((m, i) => parseMqtt(m, join('mqtt', i)));
  const edgeNodes = new Set<string>();
  mqtt.forEach((m, i) => {
    if (!m.sparkplug) return;
    const key = `${m.url} ${m.sparkplug.groupId}/${m.sparkplug.edgeNodeId}`;
    if (edgeNodes.has(key)) fail(`mqtt[${i}].sparkplug.edgeNodeId`, `duplicate Sparkplug edge node ${JSON.stringify(`${m.sparkplug.groupId}/${m.sparkplug.edgeNodeId}`)} on the same broker (each edge node has one connection)`);
    edgeNodes.add(key);
  });
  const opcua = doc.opcua === undefined ? undefined : parseOpcUa(doc.opcua, 'opcua', baseDir, dirname(events.database));
  // `store` takes a mapping or the --store flag's URL string: store-config.ts checks it (both forms, URL redaction).
  const store = parseStore(doc.store);
  const leases = parseLeases(doc.leases);
  return { ...(model ? { model } : {}), cameras, events, store, leases, webhooks, mqtt, ...(opcua ? { opcua } : {}), cameraDefaults: defaults, previewFps: doc.previewFps ?? DEFAULTS.previewFps };
}

function parseMqtt(raw: Static<typeof MqttSchema>, path: string): MqttSinkConfig {
  const url = raw.url;
  if (!/^mqtts?:\/\/[^/]+/.test(url)) fail(join(path, 'url'), `expected an mqtt:// or mqtts:// URL, got ${JSON.stringify(redactUrl(url))}`);
  const topic = raw.topic ?? DEFAULTS.mqtt.topic;
  if (/[#+]/.test(topic)) fail(join(path, 'topic'), `expected a topic without wildcards (+, #), got ${JSON.stringify(topic)}`);
  const d = DEFAULTS.webhook;
  return {
    url,
    topic,
    qos: (raw.qos ?? DEFAULTS.mqtt.qos) as 0 | 1 | 2,
    retain: raw.retain ?? DEFAULTS.mqtt.retain,
    ...(raw.clientId !== undefined ? { clientId: raw.clientId } : {}),
    ...(raw.username !== undefined ? { username: raw.username } : {}),
    ...(raw.password !== undefined ? { password: raw.password } : {}),
    timeoutMs: raw.timeoutMs ?? d.timeoutMs,
    maxAttempts: raw.maxAttempts ?? d.maxAttempts,
    initialDelayMs: raw.initialDelayMs ?? d.initialDelayMs,
    maxDelayMs: raw.maxDelayMs ?? d.maxDelayMs,
    outboxMaxSize: raw.outboxMaxSize ?? d.outboxMaxSize,
    ...(raw.sparkplug ? { sparkplug: { groupId: raw.sparkplug.groupId, edgeNodeId: raw.sparkplug.edgeNodeId, telemetryIntervalMs: raw.sparkplug.telemetryIntervalMs ?? DEFAULTS.sparkplug.telemetryIntervalMs } } : {}),
  };
}

/** A `password:` under `opcua.users[i]` gets its own message (before the schema would call it an unknown key). */
function refuseWrittenPasswords(doc: unknown): void {
  const users = (doc as { opcua?: { users?: unknown } } | null)?.opcua?.users;
  if (!Array.isArray(users)) return;
  users.forEach((u, i) => {
    if (u && typeof u === 'object' && 'password' in u) fail(`opcua.users[${i}].password`, 'passwords are not written in cameras.yaml; use passwordFile or passwordEnv');
  });
}

/**
 * The `opcua:` section after the schema. Passwords are read here (so a missing file or variable fails at start,
 * naming the key) and only their SHA-256 digests are kept.
 */
function parseOpcUa(raw: Static<typeof OpcUaSchema>, path: string, baseDir: string, dataDir: string): OpcUaConfig {
  const d = DEFAULTS.opcua;
  const allowAnonymous = raw.allowAnonymous ?? d.allowAnonymous;
  const users = (raw.users ?? []).map((u, i): OpcUaUser => {
    const up = join(join(path, 'users'), i);
    if ((u.passwordFile === undefined) === (u.passwordEnv === undefined)) fail(up, 'give exactly one of passwordFile or passwordEnv');
    let password: string;
    if (u.passwordFile !== undefined) {
      const file = resolve(baseDir, u.passwordFile);
      try {
        password = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        fail(join(up, 'passwordFile'), `cannot read ${JSON.stringify(file)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    } else {
      const v = process.env[u.passwordEnv!];
      if (v === undefined || v === '') fail(join(up, 'passwordEnv'), `environment variable ${u.passwordEnv} is not set`);
      password = v;
    }
    if (password.length < 8) fail(up, `the password of ${JSON.stringify(u.username)} is shorter than 8 characters`);
    return { username: u.username, passwordSha256: createHash('sha256').update(password).digest('hex') };
  });
  const names = new Set<string>();
  users.forEach((u, i) => {
    if (names.has(u.username)) fail(join(join(join(path, 'users'), i), 'username'), `duplicate user ${JSON.stringify(u.username)}`);
    names.add(u.username);
  });
  if (users.length === 0 && !allowAnonymous) fail(join(path, 'users'), 'no user can log in: add users (username + passwordFile or passwordEnv), or set allowAnonymous: true (read-only)');
  return {
    port: raw.port ?? d.port,
    ...(raw.host ? { host: raw.host } : {}),
    users,
    allowAnonymous,
    securityModes: [...(raw.securityModes ?? d.securityModes)],
    securityPolicies: [...(raw.securityPolicies ?? d.securityPolicies)],
    certificateDir: raw.certificateDir === undefined ? resolve(dataDir, d.certificateDir) : resolve(baseDir, raw.certificateDir),
    acceptUnknownCertificates: raw.acceptUnknownCertificates ?? d.acceptUnknownCertificates,
  };
}

function parseWebhook(raw: Static<typeof WebhookSchema>, path: string): WebhookConfig {
  const url = raw.url;
  if (!/^https?:\/\//.test(url)) fail(join(path, 'url'), `expected an http:// or https:// URL, got ${JSON.stringify(redactUrl(url))}`);
  const d = DEFAULTS.webhook;
  return {
    url,
    timeoutMs: raw.timeoutMs ?? d.timeoutMs,
    maxAttempts: raw.maxAttempts ?? d.maxAttempts,
    initialDelayMs: raw.initialDelayMs ?? d.initialDelayMs,
    maxDelayMs: raw.maxDelayMs ?? d.maxDelayMs,
    outboxMaxSize: raw.outboxMaxSize ?? d.outboxMaxSize,
    headers: raw.headers ?? {},
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
    throw new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `${file}: cannot read the cameras config (${(err as Error).message})`, { file });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    // The YAML parser quotes the offending line, which may hold a camera's password.
    throw configError(file, '', `invalid YAML: ${redactText((err as Error).message)}`);
  }
  try {
    return parseStreamsConfig(doc, dirname(resolve(file)));
  } catch (err) {
    if (err instanceof OspreyError) throw new OspreyError(err.code, `${file}: ${redactText(err.message)}`, { ...err.details, file });
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
