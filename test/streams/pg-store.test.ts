/**
 * The event store over a real PostgreSQL server (initdb + pg_ctl in a temp folder, test/support/postgres.ts) and,
 * for the same contract, over SQLite: versioned migrations, the query API the routes use, idempotency keys under a
 * unique constraint, event + outbox rows in one transaction, outbox claims shared by two dispatchers (two replicas'
 * webhook sinks over one database deliver each row once, in order), and a wrong password that never appears in the
 * error.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { OspreyError } from '../../src/core/errors.js';
import { parseStore, parseStreamsConfig } from '../../src/streams/config.js';
import { SqliteEventStore } from '../../src/streams/events.js';
import { SCHEMA_VERSION, SQLITE_MIGRATIONS } from '../../src/streams/migrations.js';
import { PostgresEventStore, openEventStore } from '../../src/streams/pg-store.js';
import { WebhookSink } from '../../src/streams/sinks.js';
import { idempotencyKey, type EventStore, type NewEvent } from '../../src/streams/store.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';
import { waitFor } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'osprey-pgstore-'));
let pg: TestPostgres;
before(async () => {
  pg = await startPostgres();
});
after(() => {
  pg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const retention = { maxEvents: 1000, maxAgeHours: 1 };
const ev = (i: number, t0: number, extra: Partial<NewEvent> = {}): NewEvent => ({
  kind: 'rule', camera: i % 2 ? 'dock' : 'gate', rule: 'zone-a', ruleType: 'zone', className: i % 3 ? 'person' : 'car', classId: 0, trackId: i, score: 0.9,
  box: [1, 2, 3, 4], timeMs: t0 + i * 1000, latencyMs: 12, details: { n: i }, ...extra,
});

let dbSeq = 0;
/** A fresh database on the test server (CREATE DATABASE through the admin connection). */
async function freshPgUrl(): Promise<string> {
  const name = `t${++dbSeq}`;
  const admin = new PostgresEventStore({ url: pg.url, snapshotsDir: join(dir, 'snaps'), retention });
  await admin.pool.query(`CREATE DATABASE ${name}`);
  await admin.close();
  return pg.url.replace(/\/osprey$/, `/${name}`);
}

const stores: Array<[string, () => Promise<EventStore>]> = [
  ['sqlite', async () => new SqliteEventStore(join(dir, `s${++dbSeq}.db`), join(dir, 'snaps'), retention)],
  ['postgres', async () => PostgresEventStore.open({ url: await freshPgUrl(), snapshotsDir: join(dir, 'snaps'), retention })],
];

for (const [kind, open] of stores) {
  test(`${kind}: migrations to version ${SCHEMA_VERSION}, re-run is a no-op; query API as the routes use it; tracks and health history`, async () => {
    const store = await open();
    try {
      assert.equal(await store.schemaVersion(), SCHEMA_VERSION);
      await store.migrate();
      assert.equal(await store.schemaVersion(), SCHEMA_VERSION);
      const t0 = Date.UTC(2026, 0, 1);
      const stored = [];
      for (let i = 0; i < 6; i++) stored.push((await store.insert(ev(i, t0))).event!);
      assert.deepEqual((await store.query({ camera: 'dock' })).map((e) => e.trackId), [5, 3, 1]);
      assert.deepEqual((await store.query({ className: 'car' })).map((e) => e.trackId), [3, 0]);
      assert.deepEqual((await store.query({ sinceMs: t0 + 2000, untilMs: t0 + 4000 })).map((e) => e.trackId), [4, 3, 2]);
      assert.deepEqual((await store.query({ afterId: stored[4]!.id })).map((e) => e.trackId), [5]);
      assert.deepEqual((await store.query({ limit: 2 })).map((e) => e.trackId), [5, 4]);
      const got = await store.get(stored[2]!.id);
      assert.deepEqual(got, stored[2]);
      assert.equal(got!.idempotencyKey, 'gate/2/zone-a/' + (t0 + 2000));
      assert.deepEqual(got!.details, { n: 2 });
      assert.equal(await store.get(999999), null);
      assert.equal(await store.count('rule'), 6);
      // The same track firing again later: one track row, two events.
      await store.insert(ev(5, t0, { timeMs: t0 + 9000 }));
      const tracks = await store.tracks('dock');
      assert.deepEqual(tracks.find((t) => t.trackId === 5), { camera: 'dock', trackId: 5, className: 'person', firstMs: t0 + 5000, lastMs: t0 + 9000, events: 2 });
      await store.insert({ kind: 'state', camera: 'dock', rule: 'streaming', ruleType: null, className: null, classId: null, trackId: null, score: null, box: null, timeMs: t0 + 100, latencyMs: null, details: { from: 'starting', to: 'streaming', reasonCode: 'frames_arriving' } });
      assert.deepEqual(await store.healthHistory('dock'), [{ camera: 'dock', timeMs: t0 + 100, from: 'starting', to: 'streaming', reasonCode: 'frames_arriving', eventId: (await store.query({ kind: 'state' }))[0]!.id }]);
      assert.equal(await store.count('state'), 1);
    } finally {
      await store.close();
    }
  });

  test(`${kind}: the same idempotency key is stored once, its outbox rows too; event and outbox rows commit together`, async () => {
    const store = await open();
    try {
      const t0 = Date.UTC(2026, 0, 2);
      const outbox = [{ sink: 'webhooks[0]', maxSize: 100, extra: (e: { id: number }) => ({ snapshotUrl: `/api/events/${e.id}/snapshot.jpg` }) }];
      const first = await store.insert(ev(1, t0), { outbox });
      assert.ok(first.event);
      assert.equal(first.event.idempotencyKey, idempotencyKey(ev(1, t0)));
      const again = await store.insert({ ...ev(1, t0), score: 0.5, latencyMs: 99 }, { outbox });
      assert.equal(again.event, null, 'a replayed event (another replica, same frame) writes nothing');
      assert.equal(await store.count(), 1);
      assert.deepEqual(await store.outboxCounts('webhooks[0]'), { pending: 1, failed: 0 });
      const claim = await store.claimOutbox('webhooks[0]', 'replica-a', 5000);
      assert.ok(claim && 'row' in claim);
      const payload = JSON.parse(claim.row.payload) as Record<string, unknown>;
      assert.equal(payload['id'], first.event.id);
      assert.equal(payload['idempotencyKey'], first.event.idempotencyKey);
      assert.equal(payload['snapshotUrl'], `/api/events/${first.event.id}/snapshot.jpg`);
      // A second dispatcher sees the head claimed and waits (never overtakes with a younger row).
      await store.insert(ev(3, t0), { outbox });
      const other = await store.claimOutbox('webhooks[0]', 'replica-b', 5000);
      assert.ok(other && 'waitUntilMs' in other, 'the other replica waits for the claim');
      await store.completeOutbox(claim.row.id, 'replica-b');
      assert.deepEqual(await store.outboxCounts('webhooks[0]'), { pending: 2, failed: 0 }, 'only the holder removes its row');
      await store.completeOutbox(claim.row.id, 'replica-a');
      const next = await store.claimOutbox('webhooks[0]', 'replica-b', 5000);
      assert.ok(next && 'row' in next);
      assert.equal((JSON.parse(next.row.payload) as { trackId: number }).trackId, 3);
      await store.failOutboxAttempt(next.row.id, 'replica-b', 1, 'HTTP 503', Date.now() + 60_000);
      const waiting = await store.claimOutbox('webhooks[0]', 'replica-a', 5000);
      assert.ok(waiting && 'waitUntilMs' in waiting && waiting.waitUntilMs > Date.now() + 50_000, 'the retry delay holds for every replica');
    } finally {
      await store.close();
    }
  });

  test(`${kind}: the outbox bound drops the oldest rows in the event's transaction`, async () => {
    const store = await open();
    try {
      const t0 = Date.UTC(2026, 0, 3);
      let dropped = 0;
      for (let i = 0; i < 7; i++) dropped += (await store.insert(ev(i, t0), { outbox: [{ sink: 'mqtt[0]', maxSize: 4 }] })).dropped['mqtt[0]'] ?? 0;
      assert.equal(dropped, 3);
      assert.deepEqual(await store.outboxCounts('mqtt[0]'), { pending: 4, failed: 0 });
      assert.equal(await store.count(), 7, 'events are kept whatever the outbox bound');
    } finally {
      await store.close();
    }
  });
}

test('sqlite: a database of Osprey 0.1 (no schema_migrations) is migrated in place; its rows stay readable', async () => {
  const file = join(dir, 'legacy.db');
  const old = new Database(file);
  old.exec(SQLITE_MIGRATIONS[0]!.sql);
  old.prepare("INSERT INTO events (kind, camera, rule, time_ms, details) VALUES ('rule', 'gate', 'zone-a', 1000, '{}')").run();
  old.close();
  const store = new SqliteEventStore(file, join(dir, 'snaps'), retention);
  try {
    assert.equal(await store.schemaVersion(), SCHEMA_VERSION);
    const [row] = await store.query();
    assert.equal(row!.camera, 'gate');
    assert.equal(row!.idempotencyKey, null);
    assert.ok((await store.insert(ev(1, 5000))).event);
  } finally {
    await store.close();
  }
});

test('postgres: a fence the writer no longer holds refuses the event and its outbox rows (OSPREY_ERR_LEASE_LOST)', async () => {
  const store = await PostgresEventStore.open({ url: await freshPgUrl(), snapshotsDir: join(dir, 'snaps'), retention });
  try {
    const t0 = Date.UTC(2026, 0, 4);
    await store.pool.query(`INSERT INTO camera_leases (camera, holder, token, acquired_ms, renewed_ms, expires_ms) VALUES ('gate', 'replica-b', 2, 0, 0, 9e15)`);
    const outbox = [{ sink: 'webhooks[0]', maxSize: 100 }];
    await assert.rejects(store.insert(ev(0, t0), { outbox, fence: { camera: 'gate', holder: 'replica-a', token: 1 } }), (e: OspreyError) => e.code === 'OSPREY_ERR_LEASE_LOST' && /replica-a/.test(e.message));
    assert.equal(await store.count(), 0);
    assert.deepEqual(await store.outboxCounts('webhooks[0]'), { pending: 0, failed: 0 });
    const ok = await store.insert(ev(0, t0), { outbox, fence: { camera: 'gate', holder: 'replica-b', token: 2 } });
    assert.ok(ok.event);
    await store.pool.query(`UPDATE camera_leases SET expires_ms = 0 WHERE camera = 'gate'`);
    await assert.rejects(store.insert(ev(2, t0), { fence: { camera: 'gate', holder: 'replica-b', token: 2 } }), (e: OspreyError) => e.code === 'OSPREY_ERR_LEASE_LOST', 'an expired lease fences too');
  } finally {
    await store.close();
  }
});

test('postgres: two replicas\' webhook sinks over one database deliver every event exactly once, in order', async () => {
  const received: number[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      received.push((JSON.parse(body) as { trackId: number }).trackId);
      setTimeout(() => res.writeHead(200).end(), 5); // a receiver that takes a moment
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
  const cfg = parseStreamsConfig({ cameras: [], webhooks: [{ url, timeoutMs: 2000, initialDelayMs: 20, maxDelayMs: 40 }] }).webhooks[0]!;
  const dbUrl = await freshPgUrl();
  const a = await PostgresEventStore.open({ url: dbUrl, snapshotsDir: join(dir, 'snaps'), retention });
  const b = await PostgresEventStore.open({ url: dbUrl, snapshotsDir: join(dir, 'snaps'), retention });
  const sa = new WebhookSink(a, cfg, 'webhooks[0]', 10, 'replica-a');
  const sb = new WebhookSink(b, cfg, 'webhooks[0]', 10, 'replica-b');
  try {
    await Promise.all([sa.start(), sb.start()]);
    const t0 = Date.UTC(2026, 0, 5);
    const n = 40;
    for (let i = 0; i < n; i++) {
      const store = i % 2 ? a : b;
      const sink = i % 2 ? sa : sb;
      const r = await store.insert(ev(i, t0), { outbox: [sink.outboxWrite()] });
      sink.written(r.dropped['webhooks[0]'] ?? 0);
    }
    await waitFor(async () => (await a.outboxCounts('webhooks[0]')).pending === 0, 20000, 'every row delivered');
    assert.deepEqual(received, Array.from({ length: n }, (_, i) => i), 'each event once, in event order');
    assert.equal(sa.stats().delivered + sb.stats().delivered, n);
    assert.ok(sa.stats().delivered > 0 && sb.stats().delivered > 0, `both replicas delivered (a ${sa.stats().delivered}, b ${sb.stats().delivered})`);
  } finally {
    await Promise.all([sa.stop(), sb.stop()]);
    await Promise.all([a.close(), b.close()]);
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test('postgres: a wrong password or an absent server is OSPREY_ERR_EVENT_STORE without the password', async () => {
  const bad = pg.url.replace(encodeURIComponent(pg.password), 'not-the-password-3141');
  await assert.rejects(openEventStore({ events: { database: join(dir, 'x.db'), snapshots: join(dir, 'snaps'), retention }, store: parseStore(bad) }), (e: OspreyError) => {
    assert.equal(e.code, 'OSPREY_ERR_EVENT_STORE');
    assert.ok(!e.message.includes('not-the-password-3141'), e.message);
    assert.match(e.message, /127\.0\.0\.1/);
    return true;
  });
  const absent = `postgres://osprey:hunter2-secret@127.0.0.1:1/osprey`;
  await assert.rejects(PostgresEventStore.open({ url: absent, snapshotsDir: join(dir, 'snaps'), retention, connectTimeoutMs: 1000 }), (e: OspreyError) => e.code === 'OSPREY_ERR_EVENT_STORE' && !e.message.includes('hunter2-secret') && /cannot connect/.test(e.message));
  assert.deepEqual(parseStreamsConfig({ cameras: [], store: { kind: 'postgres', url: pg.url } }).store, { kind: 'postgres', url: pg.url, maxConnections: 8 });
});
