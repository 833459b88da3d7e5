/**
 * Sparkplug B over the MQTT sink with real processes on loopback: Debian's mosquitto (scripts/setup.sh), GStreamer's
 * RTSP server serving the shared car video, `osprey streams` as a real child process (src/cli/main.ts through tsx,
 * yolov8n on ONNX Runtime CPU), and an MQTT.js subscriber decoding every `spBv1.0/#` message with Eclipse Tahu's
 * sparkplug-payload. Checks: NBIRTH first (seq 0, bdSeq), then a DBIRTH per camera with every metric's datatype; DDATA
 * on change with seq increasing by one modulo 256; the rule's Active metric turning true when the car enters the zone;
 * DDEATH when a camera is removed through the API; SIGKILL of the Osprey process → NDEATH from the broker's last will
 * with the NBIRTH's bdSeq; a restarted Osprey births with the next bdSeq. A second, in-process test drives 300 DBIRTHs
 * (rules changed 300 times) to see seq wrap 255 → 0. Prints the latency from detections ready (the metric's
 * timestamp) to the DDATA at the subscriber.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { connect, type MqttClient } from 'mqtt';
import { isOspreyError } from '../../src/core/errors.js';
import { parseStreamsConfig } from '../../src/streams/config.js';
import { StreamManager } from '../../src/streams/manager.js';
import { startScada } from '../../src/streams/scada.js';
import { decodeSparkplugPayload } from '../../src/streams/sparkplug.js';
import { startMosquitto } from '../support/processes.js';
import { CAR_VIDEO, MODEL, freePort, startRtspServer, waitFor, type RtspServer } from './helpers.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const ENTRY = 'import("./src/cli/main.ts").then((m) => m.main(["node", "osprey", ...process.argv.slice(1)]))';
const FULL_FRAME = [[0, 0], [768, 0], [768, 432], [0, 432]];

interface Msg {
  topic: string;
  type: string;
  device: string | undefined;
  seq: number | null;
  metrics: Array<{ name: string; type: string; value: unknown; timestamp: number | null }>;
  arrivedAtMs: number;
}

let dir: string;
let brokerPort: number;
const children: ChildProcess[] = [];
let rtsp: RtspServer | undefined;
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await rtsp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const num = (v: unknown): number | null => (v === null || v === undefined ? null : typeof v === 'number' ? v : Number((v as { toString(): string }).toString()));

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'osprey-sparkplug-'));
  brokerPort = await freePort();
  children.push((await startMosquitto(brokerPort)).child);
});

/** A subscriber to spBv1.0/# decoding every payload, in arrival order. */
async function subscribe(): Promise<{ client: MqttClient; got: Msg[] }> {
  const got: Msg[] = [];
  const client = connect(`mqtt://127.0.0.1:${brokerPort}`, { reconnectPeriod: 0 });
  client.on('message', (topic, payload) => {
    const [, , type, , device] = topic.split('/');
    const p = decodeSparkplugPayload(payload);
    got.push({
      topic,
      type: type!,
      device,
      seq: num(p.seq),
      metrics: (p.metrics ?? []).map((m) => ({ name: m.name!, type: m.type, value: m.isNull ? null : typeof m.value === 'object' && m.value !== null ? num(m.value) : m.value, timestamp: num(m.timestamp) })),
      arrivedAtMs: Date.now(),
    });
  });
  await new Promise<void>((res, rej) => {
    client.once('connect', () => res());
    client.once('error', rej);
  });
  await client.subscribeAsync('spBv1.0/#', { qos: 1 });
  return { client, got };
}

function startOsprey(config: string, httpPort: number): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', ENTRY, 'streams', '--config', config, '--ep', 'cpu', '--port', String(httpPort), '--log-level', 'warn'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  child.once('exit', (code, sig) => {
    if (code) process.stderr.write(`osprey exited ${code} ${sig}: ${err}\n`);
  });
  children.push(child);
  return child;
}

const metric = (m: Msg, name: string) => m.metrics.find((x) => x.name === name);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))]!;

test('sparkplug: births first, DDATA with increasing seq, rule Active on the car, DDEATH on removal, NDEATH from the will on SIGKILL, next bdSeq after a restart', async () => {
  rtsp = await startRtspServer({ cars: CAR_VIDEO });
  const httpPort = await freePort();
  const config = join(dir, 'cameras.yaml');
  writeFileSync(
    config,
    [
      `model: ${MODEL}`,
      `events: { database: ${join(dir, 'events.db')}, snapshots: ${join(dir, 'snapshots')} }`,
      `mqtt: [{ url: "mqtt://127.0.0.1:${brokerPort}", topic: "osprey/events/{camera}", sparkplug: { groupId: plant, edgeNodeId: osprey-1, telemetryIntervalMs: 500 } }]`,
      'cameras:',
      `  - id: cars`,
      `    url: ${rtsp.url('cars')}`,
      '    fps: 4',
      '    tracker: { minHits: 1, highThreshold: 0.3, newTrackThreshold: 0.3 }',
      `    rules: [{ name: car-in-lot, type: zone, zone: ${JSON.stringify(FULL_FRAME)}, classes: [car], minConfidence: 0.3, severity: 700, alarmHoldMs: 1000 }]`,
      `  - { id: spare, url: ${CAR_VIDEO}, enabled: false }`,
      '',
    ].join('\n'),
  );
  const sub = await subscribe();
  try {
    const osprey = startOsprey(config, httpPort);
    await waitFor(() => sub.got.filter((m) => m.type === 'DBIRTH').length >= 2, 30000, 'NBIRTH and two DBIRTHs');
    const [nbirth, ...rest] = sub.got;
    assert.equal(nbirth!.type, 'NBIRTH', 'the node birth comes first');
    assert.equal(nbirth!.topic, 'spBv1.0/plant/NBIRTH/osprey-1');
    assert.equal(nbirth!.seq, 0);
    const bdSeq = metric(nbirth!, 'bdSeq');
    assert.equal(bdSeq?.type, 'UInt64');
    assert.equal(bdSeq?.value, 0, 'first connection of this edge node: bdSeq 0');
    assert.equal(metric(nbirth!, 'Node Control/Rebirth')?.value, false);
    assert.deepEqual(rest.slice(0, 2).map((m) => m.type), ['DBIRTH', 'DBIRTH'], 'a DBIRTH per camera right after NBIRTH, before any data');
    const dbirths = rest.slice(0, 2);
    assert.deepEqual(dbirths.map((m) => m.device).sort(), ['cars', 'spare']);
    const carsBirth = dbirths.find((m) => m.device === 'cars')!;
    const types = Object.fromEntries(carsBirth.metrics.map((m) => [m.name, m.type]));
    assert.deepEqual(
      { State: types['State'], Fault: types['Fault'], Fps: types['Fps'], DroppedFrames: types['DroppedFrames'], LastDetectionTime: types['LastDetectionTime'], zone: types['Zones/car-in-lot/car'], active: types['Rules/car-in-lot/Active'], hits: types['Rules/car-in-lot/HitCount'], severity: types['Rules/car-in-lot/Severity'] },
      { State: 'String', Fault: 'Boolean', Fps: 'Double', DroppedFrames: 'UInt64', LastDetectionTime: 'DateTime', zone: 'UInt32', active: 'Boolean', hits: 'UInt64', severity: 'UInt16' },
      'DBIRTH defines every metric with its datatype',
    );
    assert.equal(metric(carsBirth, 'Rules/car-in-lot/Severity')?.value, 700);

    const activeData = () => sub.got.find((m) => m.type === 'DDATA' && m.device === 'cars' && metric(m, 'Rules/car-in-lot/Active')?.value === true);
    await waitFor(() => activeData() !== undefined, 40000, 'DDATA with Rules/car-in-lot/Active = true');
    const act = activeData()!;
    assert.ok(Number(metric(act, 'Rules/car-in-lot/HitCount')?.value) >= 1, 'the hit count goes out with it');
    assert.ok(sub.got.some((m) => m.type === 'DDATA' && metric(m, 'State')?.value === 'streaming'), 'state changes go out as DDATA');

    const del = await fetch(`http://127.0.0.1:${httpPort}/api/cameras/spare`, { method: 'DELETE' });
    assert.ok(del.status < 300, `DELETE answered ${del.status}`);
    await waitFor(() => sub.got.some((m) => m.type === 'DDEATH' && m.device === 'spare'), 5000, 'DDEATH of the removed camera');

    // Sequence numbers: every message of this session after NBIRTH is the previous + 1 (mod 256).
    const seqs = sub.got.filter((m) => m.type !== 'NDEATH').map((m) => m.seq!);
    seqs.forEach((s, i) => i > 0 && assert.equal(s, (seqs[i - 1]! + 1) % 256, `seq ${seqs.slice(Math.max(0, i - 3), i + 1).join(',')}`));

    // Latency: detections ready (the metric's timestamp) → DDATA at this subscriber, for frame-driven metrics.
    const lat = sub.got
      .filter((m) => m.type === 'DDATA')
      .flatMap((m) => m.metrics.filter((x) => x.name === 'LastDetectionTime' || x.name.startsWith('Zones/') || x.name.endsWith('/Active')).map((x) => m.arrivedAtMs - x.timestamp!));
    assert.ok(lat.length >= 2 && lat.every((x) => x >= 0), `latencies ${lat.join(',')}`);
    console.log(`# Sparkplug: detections ready → DDATA at the subscriber: median ${median(lat)} ms, p95 ${pct(lat, 0.95)} ms, max ${Math.max(...lat)} ms over ${lat.length} metrics; ${sub.got.filter((m) => m.type === 'DDATA').length} DDATA messages`);

    // SIGKILL: no clean NDEATH from Osprey; the broker publishes the will.
    const killedAt = Date.now();
    osprey.kill('SIGKILL');
    await waitFor(() => sub.got.some((m) => m.type === 'NDEATH'), 10000, 'NDEATH from the last will');
    const ndeath = sub.got.find((m) => m.type === 'NDEATH')!;
    assert.equal(ndeath.topic, 'spBv1.0/plant/NDEATH/osprey-1');
    assert.equal(metric(ndeath, 'bdSeq')?.value, 0, 'NDEATH carries the bdSeq of the NBIRTH');
    assert.equal(ndeath.seq, null, 'NDEATH has no seq');
    console.log(`# Sparkplug: SIGKILL → NDEATH (will) at the subscriber after ${ndeath.arrivedAtMs - killedAt} ms`);

    // A restarted Osprey: the next bdSeq (kept in the events database), seq from 0 again.
    const before2 = sub.got.length;
    const again = startOsprey(config, httpPort);
    await waitFor(() => sub.got.slice(before2).some((m) => m.type === 'NBIRTH'), 30000, 'NBIRTH after the restart');
    const nb2 = sub.got.slice(before2).find((m) => m.type === 'NBIRTH')!;
    assert.equal(metric(nb2, 'bdSeq')?.value, 1, 'bdSeq incremented on the new connection');
    assert.equal(nb2.seq, 0);
    // A clean stop (SIGTERM) publishes NDEATH itself, with the same bdSeq.
    again.kill('SIGTERM');
    await waitFor(() => sub.got.slice(before2).some((m) => m.type === 'NDEATH'), 10000, 'NDEATH on a clean stop');
    assert.equal(metric(sub.got.slice(before2).find((m) => m.type === 'NDEATH')!, 'bdSeq')?.value, 1);
  } finally {
    await sub.client.endAsync();
  }
});

test('sparkplug: seq wraps 255 → 0 (300 DBIRTHs from rule changes, in process) and config errors name the key path', async () => {
  const cfg = parseStreamsConfig(
    {
      events: { database: join(dir, 'wrap.db'), snapshots: join(dir, 'snaps') },
      mqtt: [{ url: `mqtt://127.0.0.1:${brokerPort}`, sparkplug: { groupId: 'plant', edgeNodeId: 'wrap' } }],
      cameras: [{ id: 'a', url: CAR_VIDEO, enabled: false }],
    },
    dir,
  );
  const sub = await subscribe();
  const manager = new StreamManager({ config: cfg, inferer: null });
  const scada = await startScada(manager, cfg);
  await manager.start();
  try {
    await waitFor(() => sub.got.some((m) => m.type === 'DBIRTH' && /\/wrap(\/|$)/.test(m.topic)), 10000, 'the births');
    for (let i = 0; i < 300; i++) manager.setRules('a', [{ name: `z${i}`, type: 'zone', zone: [[0, 0], [10, 0], [10, 10]], classes: ['car'], minConfidence: 0.3, cooldownMs: 0, minDwellMs: 0, dedupIoU: 0.7, dedupWindowMs: 5000, severity: 500, alarmHoldMs: 0 }]);
    const mine = () => sub.got.filter((m) => /\/wrap(\/|$)/.test(m.topic));
    await waitFor(() => mine().length >= 302, 10000, '302 messages (NBIRTH + 301 DBIRTH)');
    assert.deepEqual(scada.sparkplug[0]!.counts, { NBIRTH: 1, DBIRTH: 301, DDATA: 0, DDEATH: 0, NDEATH: 0 });
    const seqs = mine().map((m) => m.seq!);
    assert.deepEqual(seqs.slice(0, 3), [0, 1, 2]);
    assert.ok(seqs.includes(255) && seqs[seqs.indexOf(255) + 1] === 0, 'seq wraps from 255 to 0');
    seqs.forEach((s, i) => i > 0 && assert.equal(s, (seqs[i - 1]! + 1) % 256));
    assert.equal(Math.max(...seqs), 255);
  } finally {
    await scada.stop();
    await manager.stop();
    await sub.client.endAsync();
  }
  const bad = (sp: unknown, re: RegExp) =>
    assert.throws(() => parseStreamsConfig({ cameras: [], mqtt: [{ url: 'mqtt://127.0.0.1:1883', sparkplug: sp }] }), (e: unknown) => isOspreyError(e) && e.code === 'OSPREY_ERR_CONFIG' && re.test(e.message), String(re));
  bad({ edgeNodeId: 'x' }, /^mqtt\[0\]\.sparkplug\.groupId: required/);
  bad({ groupId: 'plant/1', edgeNodeId: 'x' }, /^mqtt\[0\]\.sparkplug\.groupId: expected 1–64 characters without \/, \+, #/);
  bad({ groupId: 'p', edgeNodeId: 'x', telemetryIntervalMs: -1 }, /^mqtt\[0\]\.sparkplug\.telemetryIntervalMs: must be ≥ 0/);
  bad({ groupId: 'p', edgeNodeId: 'x', bdSeq: 3 }, /^mqtt\[0\]\.sparkplug\.bdSeq: unknown key/);
});
