/**
 * The MQTT event sink against a real broker: Debian's mosquitto (installed by scripts/setup.sh) on 127.0.0.1, a real
 * MQTT.js subscriber, a real SQLite events file. Covers delivery in event order to the per-camera topics, a broker that
 * is down when the events happen (events kept, retried, delivered once the broker is up, by itself), and config errors.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { connect, type MqttClient } from 'mqtt';
import { isOspreyError } from '../../src/core/errors.js';
import { parseStreamsConfig } from '../../src/streams/config.js';
import { SqliteEventStore, type NewEvent } from '../../src/streams/events.js';
import { MqttSink } from '../../src/streams/sinks.js';
import { startMosquitto, type Daemon } from '../support/processes.js';
import { freePort, waitFor } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'osprey-mqtt-'));
const brokers: Daemon[] = [];
after(async () => {
  await Promise.all(brokers.map((b) => b.stop()));
  rmSync(dir, { recursive: true, force: true });
});

const ev = (i: number): NewEvent => ({
  kind: 'rule', camera: i % 2 ? 'dock' : 'gate', rule: 'zone-a', ruleType: 'zone', className: 'person', classId: 0, trackId: i, score: 0.9,
  box: [1, 2, 3, 4], timeMs: Date.now(), latencyMs: 12, details: {},
});

const mqttConfig = (url: string, extra: Record<string, unknown> = {}) => parseStreamsConfig({ cameras: [], mqtt: [{ url, ...extra }] }).mqtt[0]!;


/** A subscriber to `osprey/#` that records [topic, payload] in arrival order. */
async function subscribe(port: number): Promise<{ client: MqttClient; got: Array<[string, Record<string, unknown>]> }> {
  const got: Array<[string, Record<string, unknown>]> = [];
  const client = connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 });
  client.on('message', (topic, payload) => got.push([topic, JSON.parse(payload.toString()) as Record<string, unknown>]));
  await new Promise<void>((res, rej) => {
    client.once('connect', () => res());
    client.once('error', rej);
  });
  await client.subscribeAsync('osprey/#', { qos: 1 });
  return { client, got };
}

test('mqtt: events are published as JSON to osprey/events/{camera}, in event order, QoS 1', async () => {
  const port = await freePort();
  const broker = await startMosquitto(port);
  brokers.push(broker);
  const sub = await subscribe(port);
  const store = new SqliteEventStore(join(dir, 'pub.db'), join(dir, 'snaps'), { maxEvents: 100, maxAgeHours: 1 });
  const sink = new MqttSink(store, mqttConfig(`mqtt://127.0.0.1:${port}`), 'mqtt[0]', 20);
  try {
    sink.start();
    const stored = [0, 1, 2, 3].map((i) => store.insertSync(ev(i)).event!);
    for (const e of stored) await sink.enqueue(e, { snapshotUrl: `/api/events/${e.id}/snapshot.jpg` });
    await waitFor(() => sub.got.length === 4, 10000, 'four messages at the subscriber');
    assert.deepEqual(sub.got.map(([t]) => t), ['osprey/events/gate', 'osprey/events/dock', 'osprey/events/gate', 'osprey/events/dock']);
    assert.deepEqual(sub.got.map(([, p]) => p['id']), stored.map((e) => e.id));
    assert.equal(sub.got[0]![1]['snapshotUrl'], `/api/events/${stored[0]!.id}/snapshot.jpg`);
    assert.equal(sub.got[1]![1]['className'], 'person');
    const st = sink.stats();
    assert.equal(st.delivered, 4);
    assert.equal(st.pending, 0);
    assert.match(st.url, /^mqtt:\/\/127\.0\.0\.1:\d+ osprey\/events\/\{camera\}$/);
  } finally {
    await sink.stop();
    await store.close();
    await sub.client.endAsync();
    await broker.stop();
  }
});

test('mqtt: broker down when events happen → kept in the outbox and retried; delivered in order once it is up', async () => {
  const port = await freePort();
  const store = new SqliteEventStore(join(dir, 'down.db'), join(dir, 'snaps'), { maxEvents: 100, maxAgeHours: 1 });
  const sink = new MqttSink(store, mqttConfig(`mqtt://127.0.0.1:${port}`, { topic: 'osprey/{camera}/{rule}', initialDelayMs: 100, maxDelayMs: 300, maxAttempts: 100, timeoutMs: 2000 }), 'mqtt[0]', 20);
  let sub: Awaited<ReturnType<typeof subscribe>> | undefined;
  let broker: Daemon | undefined;
  try {
    sink.start();
    const stored = [0, 1, 2].map((i) => store.insertSync(ev(i)).event!);
    for (const e of stored) await sink.enqueue(e);
    await waitFor(() => sink.stats().attempts >= 3, 10000, 'delivery attempts against the absent broker');
    const down = sink.stats();
    assert.equal(down.pending, 3, 'every event waits in the outbox');
    assert.equal(down.delivered, 0);
    assert.match(down.lastError ?? '', /not connected to mqtt:\/\/127\.0\.0\.1/);
    assert.equal(store.countSync(), 3, 'events are stored whatever the broker does');
    broker = await startMosquitto(port);
    brokers.push(broker);
    sub = await subscribe(port); // before the sink's client reconnects (its reconnect period is 1 s)
    await waitFor(() => sink.stats().delivered === 3, 15000, 'delivery once the broker is up');
    await waitFor(() => sub!.got.length === 3, 5000, 'three messages at the subscriber');
    assert.deepEqual(sub.got.map(([t]) => t), ['osprey/gate/zone-a', 'osprey/dock/zone-a', 'osprey/gate/zone-a']);
    assert.deepEqual(sub.got.map(([, p]) => p['id']), stored.map((e) => e.id), 'in event order');
    assert.equal(sink.stats().pending, 0);
  } finally {
    await sink.stop();
    await store.close();
    await sub?.client.endAsync();
    await broker?.stop();
  }
});

test('mqtt config errors name the key path', () => {
  const bad = (m: Record<string, unknown>, re: RegExp) =>
    assert.throws(() => parseStreamsConfig({ cameras: [], mqtt: [m] }), (e: unknown) => isOspreyError(e) && e.code === 'OSPREY_ERR_CONFIG' && re.test(e.message));
  bad({ url: 'http://127.0.0.1:1883' }, /^mqtt\[0\]\.url: expected an mqtt:\/\/ or mqtts:\/\/ URL/);
  bad({ url: 'mqtt://127.0.0.1:1883', qos: 3 }, /^mqtt\[0\]\.qos/);
  bad({ url: 'mqtt://127.0.0.1:1883', topic: 'osprey/#' }, /^mqtt\[0\]\.topic: expected a topic without wildcards/);
  bad({ url: 'mqtt://127.0.0.1:1883', port: 1 }, /^mqtt\[0\]/);
  assert.throws(() => parseStreamsConfig({ cameras: [], mqtt: { url: 'mqtt://x' } }), /mqtt: expected a list/);
  const ok = mqttConfig('mqtts://broker.example:8883', { qos: 0, retain: true, username: 'u', password: 'p' });
  assert.equal(ok.qos, 0);
  assert.equal(ok.retain, true);
  assert.equal(ok.topic, 'osprey/events/{camera}');
});
