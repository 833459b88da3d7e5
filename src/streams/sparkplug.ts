/**
 * Sparkplug B edge node over an MQTT sink's connection (Eclipse Sparkplug 3.0; payloads encoded by Eclipse Tahu's
 * `sparkplug-payload`). Osprey is the edge node `{groupId}/{edgeNodeId}`; each camera is a device.
 *
 * Topics (namespace `spBv1.0`):
 * ```
 * spBv1.0/{groupId}/NBIRTH/{edgeNodeId}            on every connect (and rebirth): bdSeq, Node Control/Rebirth, …
 * spBv1.0/{groupId}/DBIRTH/{edgeNodeId}/{camera}   after NBIRTH, per camera: every metric with its datatype and value
 * spBv1.0/{groupId}/DDATA/{edgeNodeId}/{camera}    on change: only the metrics that changed
 * spBv1.0/{groupId}/DDEATH/{edgeNodeId}/{camera}   when a camera is removed
 * spBv1.0/{groupId}/NDEATH/{edgeNodeId}            the connection's MQTT last will (and sent on a clean stop)
 * spBv1.0/{groupId}/NCMD/{edgeNodeId}              subscribed: `Node Control/Rebirth` = true → NBIRTH + DBIRTHs again
 * ```
 * Sequence numbers: NBIRTH has seq 0, every later NBIRTH/DBIRTH/DDATA/DDEATH the next one modulo 256; NDEATH carries
 * none. bdSeq: a UInt64 metric of NBIRTH and NDEATH, the same in both for one connection, incremented for every MQTT
 * CONNECT (0..255, wrapping) and kept in the events database so a restarted Osprey does not repeat the last one.
 *
 * Metrics of a camera (device): `State`, `Fault`, `Health/ReasonCode`, `Health/Reason`, `Fps`, `DroppedFrames`,
 * `ProcessedFrames`, `LatencyMs`, `LastDetectionTime`, `Zones/{rule}/Total`, `Zones/{rule}/{class}`,
 * `Rules/{rule}/Active`, `Rules/{rule}/HitCount`, `Rules/{rule}/LastHit`, `Rules/{rule}/Severity`. Each metric's
 * timestamp is when its value was known (detections ready for frame data). State, counts and rules go out at once;
 * the frame-rate metrics (`Fps`, `DroppedFrames`, `ProcessedFrames`, `LatencyMs`) at most every
 * `telemetryIntervalMs`. Data messages are QoS 0 (the spec's choice); the will is QoS 1.
 */
import type { MqttClient } from 'mqtt';
import { createRequire } from 'node:module';
import type { UMetric, UPayload } from 'sparkplug-payload/lib/sparkplugbpayload.js';
import type { SparkplugConfig } from './config.js';
import type { StreamManager, StreamsLog } from './manager.js';
import { ScadaModel, TELEMETRY_KEYS, type CameraPoint, type PointChange } from './scada-model.js';
import type { MqttSink } from './sinks.js';

// sparkplug-payload is CommonJS with a namespace getter.
const sparkplug = (createRequire(import.meta.url)('sparkplug-payload') as { get(ns: string): { encodePayload(p: UPayload): Uint8Array; decodePayload(b: Uint8Array): UPayload } }).get('spBv1.0')!;

/** Encodes a Sparkplug B payload (Tahu's protobuf). */
export const encodeSparkplugPayload = (p: UPayload): Buffer => Buffer.from(sparkplug.encodePayload(p));
/** Decodes a Sparkplug B payload; 64-bit integers come back as `Long`. */
export const decodeSparkplugPayload = (b: Uint8Array): UPayload => sparkplug.decodePayload(b);

type MetricType = UMetric['type'];
interface MetricValue {
  type: MetricType;
  value: UMetric['value'];
  /** Frame-rate metric (sent on the telemetry timer). */
  telemetry?: boolean;
}

/** Every metric of a camera, by Sparkplug metric name. */
export function cameraMetrics(p: CameraPoint): Map<string, MetricValue> {
  const m = new Map<string, MetricValue>();
  m.set('State', { type: 'String', value: p.state });
  m.set('Fault', { type: 'Boolean', value: p.fault });
  m.set('Health/ReasonCode', { type: 'String', value: p.healthReasonCode });
  m.set('Health/Reason', { type: 'String', value: p.healthReason });
  m.set('Fps', { type: 'Double', value: p.fps, telemetry: true });
  m.set('DroppedFrames', { type: 'UInt64', value: p.droppedFrames, telemetry: true });
  m.set('ProcessedFrames', { type: 'UInt64', value: p.processedFrames, telemetry: true });
  m.set('LatencyMs', { type: 'Double', value: p.latencyMs, telemetry: true });
  m.set('LastDetectionTime', { type: 'DateTime', value: p.lastDetectionTimeMs });
  for (const z of p.zones) {
    m.set(`Zones/${z.rule}/Total`, { type: 'UInt32', value: z.total });
    for (const c of z.classes) m.set(`Zones/${z.rule}/${c}`, { type: 'UInt32', value: z.counts[c] ?? 0 });
  }
  for (const r of p.rules) {
    m.set(`Rules/${r.name}/Active`, { type: 'Boolean', value: r.active });
    m.set(`Rules/${r.name}/HitCount`, { type: 'UInt64', value: r.hitCount });
    m.set(`Rules/${r.name}/LastHit`, { type: 'DateTime', value: r.lastHitMs });
    m.set(`Rules/${r.name}/Severity`, { type: 'UInt16', value: r.severity });
  }
  return m;
}

const metric = (name: string, v: MetricValue, timestamp: number): UMetric =>
  v.value === null ? { name, type: v.type, value: null, isNull: true, timestamp } : { name, type: v.type, value: v.value, timestamp };

export interface SparkplugEdgeNodeOptions {
  manager: StreamManager;
  /** The MQTT sink whose connection carries Sparkplug (its `sparkplug` config). */
  sink: MqttSink;
  config: SparkplugConfig;
  log?: StreamsLog;
}

/** One Sparkplug B edge node. {@link attach} it before the sink starts (the will is part of CONNECT). */
export class SparkplugEdgeNode {
  private readonly model: ScadaModel;
  private readonly topic: (type: string, device?: string) => string;
  private client: MqttClient | null = null;
  private seq = 0;
  private bdSeq: number;
  /** Last values sent per camera (what DDATA diffs against). */
  private readonly sent = new Map<string, Map<string, MetricValue['value']>>();
  private lastTelemetryMs = 0;
  private readonly timer: NodeJS.Timeout;
  private stopped = false;
  /** Messages published (births, data, deaths), for stats and tests. */
  readonly counts = { NBIRTH: 0, DBIRTH: 0, DDATA: 0, DDEATH: 0, NDEATH: 0 };

  constructor(private readonly o: SparkplugEdgeNodeOptions) {
    const { groupId, edgeNodeId } = o.config;
    this.topic = (type, device) => `spBv1.0/${groupId}/${type}/${edgeNodeId}${device ? `/${device}` : ''}`;
    // Until init() reads the last one this node used from the store.
    this.bdSeq = -1;
    this.model = new ScadaModel(o.manager, undefined, o.log);
    // A failure here must never reach the pipelines (the manager emits these events): log it.
    const guard = <A>(what: string, fn: (a: A) => void) => (a: A) => {
      try {
        fn(a);
      } catch (err) {
        o.log?.warn({ err: (err as Error).message, what }, 'Sparkplug publish failed');
      }
    };
    this.model.on('added', guard('added', (p: CameraPoint) => this.birthDevice(p)));
    this.model.on('rebuilt', guard('rebuilt', (p: CameraPoint) => this.birthDevice(p)));
    this.model.on('removed', guard('removed', (id: string) => this.deathDevice(id)));
    this.model.on('changed', guard('changed', (c: PointChange) => this.onChange(c)));
    const interval = Math.max(50, o.config.telemetryIntervalMs);
    this.timer = setInterval(() => this.flushTelemetry(), interval);
    this.timer.unref();
  }

  /** Reads the last bdSeq this edge node used: the first CONNECT takes the next one (Sparkplug 3.0: bdSeq per CONNECT). */
  async init(): Promise<void> {
    const { groupId, edgeNodeId } = this.o.config;
    const last = await this.o.manager.store.sparkplugBdSeq(`${groupId}/${edgeNodeId}`);
    this.bdSeq = last ?? -1;
  }

  /** Hooks into the sink's connection: the NDEATH will, births on connect, NCMD. */
  attach(): void {
    this.o.sink.mqtt.session = {
      will: () => {
        this.bdSeq = (this.bdSeq + 1) % 256;
        const { groupId, edgeNodeId } = this.o.config;
        if (this.o.manager.store.isOpen) {
          this.o.manager.store.saveSparkplugBdSeq(`${groupId}/${edgeNodeId}`, this.bdSeq).catch((err: Error) => this.o.log?.warn({ err: err.message }, 'Sparkplug bdSeq not saved'));
        }
        return { topic: this.topic('NDEATH'), payload: this.ndeathPayload(), qos: 1, retain: false };
      },
      connected: (client) => {
        this.client = client;
        client.subscribe(this.topic('NCMD'), { qos: 1 });
        this.birthAll();
      },
      message: (topic, payload) => this.onCommand(topic, payload),
    };
  }

  /** The current bdSeq (the one of the current or next connection). */
  get birthDeathSeq(): number {
    return this.bdSeq;
  }

  /** Graceful stop: NDEATH (the broker drops the will on a clean disconnect), then stop listening. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    this.model.close();
    const c = this.client;
    if (c?.connected) {
      await new Promise<void>((res) => c.publish(this.topic('NDEATH'), this.ndeathPayload(), { qos: 1 }, () => res()));
      this.counts.NDEATH++;
    }
    this.o.sink.mqtt.session = null;
  }

  private ndeathPayload(): Buffer {
    return encodeSparkplugPayload({ timestamp: Date.now(), metrics: [{ name: 'bdSeq', type: 'UInt64', value: this.bdSeq }] });
  }

  private nextSeq(): number {
    const s = this.seq;
    this.seq = (this.seq + 1) % 256;
    return s;
  }

  private publish(type: keyof SparkplugEdgeNode['counts'], device: string | undefined, metrics: UMetric[]): void {
    const c = this.client;
    if (!c?.connected || this.stopped) return;
    const payload = encodeSparkplugPayload({ timestamp: Date.now(), metrics, seq: this.nextSeq() });
    c.publish(this.topic(type, device), payload, { qos: 0 });
    this.counts[type]++;
  }

  private birthAll(): void {
    if (this.stopped) return;
    this.seq = 0;
    const now = Date.now();
    this.model.refreshTelemetry();
    const points = this.model.points();
    this.publish('NBIRTH', undefined, [
      { name: 'bdSeq', type: 'UInt64', value: this.bdSeq, timestamp: now },
      { name: 'Node Control/Rebirth', type: 'Boolean', value: false, timestamp: now },
      { name: 'Node Info/Product', type: 'String', value: 'Osprey streams', timestamp: now },
      { name: 'Node Info/Cameras', type: 'UInt32', value: points.length, timestamp: now },
    ]);
    this.lastTelemetryMs = now;
    for (const p of points) this.birthDevice(p);
  }

  private birthDevice(p: CameraPoint): void {
    if (!this.client?.connected) return;
    const now = Date.now();
    const all = cameraMetrics(p);
    this.publish('DBIRTH', p.id, [...all].map(([name, v]) => metric(name, v, now)));
    this.sent.set(p.id, new Map([...all].map(([k, v]) => [k, v.value])));
  }

  private deathDevice(id: string): void {
    this.sent.delete(id);
    this.publish('DDEATH', id, []);
  }

  private onChange(c: PointChange): void {
    const withTelemetry = c.atMs - this.lastTelemetryMs >= this.o.config.telemetryIntervalMs;
    const onlyTelemetry = [...c.keys].every((k) => (TELEMETRY_KEYS as readonly string[]).includes(k));
    if (onlyTelemetry && !withTelemetry) return;
    this.sendDiff(c.point, c.atMs, withTelemetry);
  }

  private flushTelemetry(): void {
    const now = Date.now();
    if (now - this.lastTelemetryMs < this.o.config.telemetryIntervalMs) return;
    this.model.refreshTelemetry();
    for (const p of this.model.points()) this.sendDiff(p, now, true);
    this.lastTelemetryMs = now;
  }

  private sendDiff(p: CameraPoint, atMs: number, withTelemetry: boolean): void {
    const sent = this.sent.get(p.id);
    if (!sent || !this.client?.connected) return;
    const changed: UMetric[] = [];
    for (const [name, v] of cameraMetrics(p)) {
      if (v.telemetry && !withTelemetry) continue;
      if (sent.get(name) === v.value) continue;
      sent.set(name, v.value);
      changed.push(metric(name, v, atMs));
    }
    if (withTelemetry) this.lastTelemetryMs = atMs;
    if (changed.length > 0) this.publish('DDATA', p.id, changed);
  }

  private onCommand(topic: string, payload: Buffer): void {
    if (topic !== this.topic('NCMD')) return;
    let p: UPayload;
    try {
      p = decodeSparkplugPayload(payload);
    } catch (err) {
      this.o.log?.warn({ topic, err: (err as Error).message }, 'Sparkplug NCMD: undecodable payload ignored');
      return;
    }
    if (p.metrics?.some((m) => m.name === 'Node Control/Rebirth' && m.value === true)) {
      this.o.log?.info({ topic }, 'Sparkplug rebirth requested');
      this.birthAll();
    }
  }
}
