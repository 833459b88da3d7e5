/**
 * Event store (real SQLite file, WAL) with retention, and the webhook outbox against real HTTP servers on
 * 127.0.0.1: one that never answers (timeouts), one that fails then recovers.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseStreamsConfig } from '../../src/streams/config.js';
import { SqliteEventStore, type NewEvent } from '../../src/streams/events.js';
import { WebhookSink } from '../../src/streams/sinks.js';
import { waitFor } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'osprey-events-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const ev = (i: number, timeMs = Date.now()): NewEvent => ({
  kind: 'rule', camera: i % 2 ? 'a' : 'b', rule: 'z', ruleType: 'zone', className: i % 3 ? 'person' : 'car', classId: 0, trackId: i, score: 0.9,
  box: [1, 2, 3, 4], timeMs, latencyMs: 12, details: {},
});

async function listen(handler: (res: ServerResponse, n: number) => void): Promise<{ server: Server; url: string; hits: () => number }> {
  let n = 0;
  const server = createServer((req, res) => {
    req.resume();
    handler(res, ++n);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`, hits: () => n };
}

const webhookConfig = (url: string, extra: Record<string, unknown>) => parseStreamsConfig({ cameras: [], webhooks: [{ url, ...extra }] }).webhooks[0]!;

test('events: query by camera, class, time and id; retention by count removes rows and snapshot files', async () => {
  const store = new SqliteEventStore(join(dir, 'q.db'), join(dir, 'snaps'), { maxEvents: 4, maxAgeHours: 1 });
  try {
    const t0 = Date.now();
    const stored = [0, 1, 2, 3, 4, 5].map((i) => {
      const snapshot = store.snapshotPathFor('a', 'z', i, t0 + i);
      writeFileSync(store.ensureSnapshotDir(snapshot), 'jpeg');
      return store.insertSync({ ...ev(i, t0 + i * 1000), snapshot }).event!;
    });
    assert.deepEqual(store.querySync({ camera: 'a' }).map((e) => e.trackId), [5, 3, 1]);
    assert.deepEqual(store.querySync({ className: 'car' }).map((e) => e.trackId), [3, 0]);
    assert.deepEqual(store.querySync({ sinceMs: t0 + 2000, untilMs: t0 + 4000 }).map((e) => e.trackId), [4, 3, 2]);
    assert.deepEqual(store.querySync({ afterId: stored[4]!.id }).map((e) => e.trackId), [5]);
    assert.equal(await store.applyRetention(), 2);
    assert.equal(store.countSync(), 4);
    assert.ok(!existsSync(join(dir, 'snaps', stored[0]!.snapshot!)) && existsSync(join(dir, 'snaps', stored[5]!.snapshot!)));
    assert.equal(store.resolveSnapshot('../../etc/passwd'), null);
    // Age limit (the 5th row is also over maxEvents: 2 removed, the old one among them).
    store.insertSync(ev(9, t0 - 2 * 3600_000));
    assert.equal(await store.applyRetention(), 2);
    assert.ok(!store.querySync().some((e) => e.trackId === 9));
  } finally {
    await store.close();
  }
});

test('webhook that times out: events are kept, retried with backoff, bounded by maxAttempts and outboxMaxSize', async () => {
  const hang = await listen(() => {
    /* never answers */
  });
  const store = new SqliteEventStore(join(dir, 'hang.db'), join(dir, 'snaps'), { maxEvents: 100, maxAgeHours: 1 });
  const sink = new WebhookSink(store, webhookConfig(hang.url, { timeoutMs: 150, maxAttempts: 3, initialDelayMs: 20, maxDelayMs: 50, outboxMaxSize: 5 }), 'webhooks[0]', 20);
  try {
    sink.start();
    for (let i = 0; i < 8; i++) await sink.enqueue(store.insertSync(ev(i)).event!);
    assert.equal(store.countSync(), 8, 'every event is stored whatever the webhook does');
    assert.equal(sink.stats().dropped, 3, 'outbox bounded to 5 rows, oldest dropped');
    await waitFor(() => sink.stats().failed === 5, 20000, 'every outbox row to exhaust its attempts');
    const rows = store.db.prepare('SELECT attempts, status, last_error FROM outbox').all() as Array<{ attempts: number; status: string; last_error: string }>;
    assert.equal(rows.length, 5);
    for (const r of rows) {
      assert.equal(r.attempts, 3);
      assert.equal(r.status, 'failed');
      assert.match(r.last_error, /timed out after 150 ms/);
    }
    assert.ok(sink.stats().attempts >= 15, '3 attempts per kept row (a dropped row may have had one too)');
    assert.ok(hang.hits() >= 15, 'the receiver saw every attempt');
  } finally {
    await sink.stop();
    await store.close();
    hang.server.closeAllConnections();
    await new Promise((r) => hang.server.close(r));
  }
});

test('webhook that fails then recovers: pending rows survive a restart and are delivered in order', async () => {
  const received: number[] = [];
  let up = false;
  const srv = await listen((res) => {
    if (!up) return void res.writeHead(503).end();
    res.writeHead(200).end();
  });
  srv.server.removeAllListeners('request');
  srv.server.on('request', (req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      if (!up) return void res.writeHead(503).end();
      received.push((JSON.parse(body) as { trackId: number }).trackId);
      res.writeHead(200).end();
    });
  });
  const file = join(dir, 'recover.db');
  const cfg = webhookConfig(srv.url, { timeoutMs: 1000, maxAttempts: 50, initialDelayMs: 20, maxDelayMs: 40 });
  let store = new SqliteEventStore(file, join(dir, 'snaps'), { maxEvents: 100, maxAgeHours: 1 });
  let sink = new WebhookSink(store, cfg, 'webhooks[0]', 20);
  try {
    sink.start();
    for (let i = 0; i < 3; i++) await sink.enqueue(store.insertSync(ev(i)).event!);
    await waitFor(() => sink.stats().attempts >= 3, 5000, 'failed attempts');
    assert.equal(sink.stats().pending, 3);
    assert.match(sink.stats().lastError ?? '', /HTTP 503/);
    // Restart: the outbox is in the database file.
    await sink.stop();
    await store.close();
    store = new SqliteEventStore(file, join(dir, 'snaps'), { maxEvents: 100, maxAgeHours: 1 });
    sink = new WebhookSink(store, cfg, 'webhooks[0]', 20);
    up = true;
    await sink.start();
    await waitFor(() => sink.stats().pending === 0, 5000, 'delivery after recovery');
    assert.deepEqual(received, [0, 1, 2]);
  } finally {
    await sink.stop();
    await store.close();
    await new Promise((r) => srv.server.close(r));
  }
});
