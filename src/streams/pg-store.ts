/**
 * The PostgreSQL event store (npm `pg`, a connection pool): the same tables, migrations and query API as the SQLite
 * store (store.ts, migrations.ts), shared by every `osprey streams` replica of a site. It also holds the camera
 * leases (leases.ts), so an event write can check its writer's lease — the fencing token — in the same transaction.
 *
 * - Idempotency: `INSERT … ON CONFLICT (idempotency_key) DO NOTHING`; a replayed event writes nothing, its outbox rows
 *   neither.
 * - Outbox claims: the head row of a sink is locked (`FOR UPDATE`) and claimed for one dispatcher until
 *   `claimed_until_ms`; another replica waits for the claim to end, so a row is sent by one replica at a time and
 *   removed by the one that delivered it. A replica that dies mid-delivery leaves a claim that expires: that row is
 *   sent again (at-least-once at that one point, as any outbox; receivers get the idempotency key in the payload).
 * - Times of leases and claims are the server's clock (`clock_timestamp()`), so replicas with skewed clocks agree.
 *
 * Errors of the server (down, refused, bad password) are `OSPREY_ERR_EVENT_STORE` with the URL redacted.
 */
import pg from 'pg';
import { OspreyError } from '../core/errors.js';
import { redactText, redactUrl, secretsOf } from '../core/redact.js';
import type { StoreConfig } from './config.js';
import { SqliteEventStore, eventParams, rowToEvent, type EventRow } from './events.js';
import { POSTGRES_MIGRATIONS } from './migrations.js';
import {
  SnapshotFolder,
  outboxPayload,
  type EventQuery,
  type EventStore,
  type HealthRow,
  type InsertOptions,
  type InsertResult,
  type NewEvent,
  type OutboxClaim,
  type StoredEvent,
  type TrackRow,
} from './store.js';

/** Milliseconds since the epoch on the server's clock. */
export const NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';

/** Key of the advisory lock that serializes migrations across replicas. */
const MIGRATION_LOCK = 7_302_615_001;

const INT8 = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format))) as typeof pg.types.getTypeParser,
};

export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database` (the password never leaves: see src/core/redact.ts). */
  url: string;
  snapshotsDir: string;
  retention: { maxEvents: number; maxAgeHours: number };
  /** Pool size. Default 8. */
  maxConnections?: number;
  /** Connection timeout. Default 5000 ms. */
  connectTimeoutMs?: number;
}

export class PostgresEventStore extends SnapshotFolder implements EventStore {
  readonly kind = 'postgres' as const;
  readonly pool: pg.Pool;
  readonly location: string;
  readonly retention: { maxEvents: number; maxAgeHours: number };
  /** Called with each operation's duration (seconds), for `osprey_event_store_latency_seconds`. */
  latencyObserver?: (op: string, seconds: number) => void;
  private closed = false;
  private inserts = 0;
  private readonly secrets: string[];

  constructor(options: PostgresStoreOptions) {
    super(options.snapshotsDir);
    this.location = redactUrl(options.url);
    this.secrets = secretsOf(options.url);
    this.retention = options.retention;
    this.pool = new pg.Pool({ connectionString: options.url, max: options.maxConnections ?? 8, connectionTimeoutMillis: options.connectTimeoutMs ?? 5000, types, application_name: 'osprey-streams' });
    // An idle client that loses its server is dropped by the pool; the next query reports the failure.
    this.pool.on('error', () => undefined);
  }

  /**
   * Opens a pool and applies the migrations.
   * @throws OspreyError `OSPREY_ERR_EVENT_STORE` when the server cannot be reached or refuses.
   */
  static async open(options: PostgresStoreOptions): Promise<PostgresEventStore> {
    const store = new PostgresEventStore(options);
    try {
      await store.migrate();
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Wraps a failure of the server as `OSPREY_ERR_EVENT_STORE`, redacted. */
  storeError(err: unknown, what: string): OspreyError {
    if (err instanceof OspreyError) return err;
    const msg = redactText((err as Error)?.message ?? String(err), this.secrets);
    return new OspreyError('OSPREY_ERR_EVENT_STORE', `event store ${this.location}: ${what}: ${msg}`, { store: this.location });
  }

  /** Runs `fn` with one client, timing it. */
  async timed<T>(op: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.closed) throw new OspreyError('OSPREY_ERR_EVENT_STORE', `event store ${this.location}: closed`, { store: this.location });
    const t0 = performance.now();
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw this.storeError(err, 'cannot connect');
    }
    let broken: Error | undefined;
    try {
      return await fn(client);
    } catch (err) {
      // A failure of the server or the connection (not one of ours, such as a lost lease): drop that connection.
      if (!(err instanceof OspreyError) && err instanceof Error) broken = err;
      throw this.storeError(err, op);
    } finally {
      client.release(broken);
      this.latencyObserver?.(op, (performance.now() - t0) / 1000);
    }
  }

  /** Runs `fn` in one transaction (BEGIN … COMMIT, ROLLBACK on any error). */
  async tx<T>(op: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.timed(op, async (c) => {
      await c.query('BEGIN');
      try {
        const r = await fn(c);
        await c.query('COMMIT');
        return r;
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  async migrate(): Promise<void> {
    await this.timed('migrate', async (c) => {
      await c.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      try {
        await c.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)');
        const cur = (await c.query<{ v: number }>('SELECT COALESCE(MAX(version), 0)::int AS v FROM schema_migrations')).rows[0]!.v;
        for (const m of POSTGRES_MIGRATIONS) {
          if (m.version <= cur) continue;
          await c.query('BEGIN');
          try {
            await c.query(m.sql);
            await c.query(`INSERT INTO schema_migrations (version, name, applied_ms) VALUES ($1, $2, ${NOW_MS})`, [m.version, m.name]);
            await c.query('COMMIT');
          } catch (err) {
            await c.query('ROLLBACK').catch(() => undefined);
            throw new OspreyError('OSPREY_ERR_EVENT_STORE', `event store ${this.location}: migration ${m.version} (${m.name}) failed: ${redactText((err as Error).message, this.secrets)}`, { store: this.location });
          }
        }
      } finally {
        await c.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
      }
    });
  }

  async schemaVersion(): Promise<number> {
    return this.timed('schemaVersion', async (c) => (await c.query<{ v: number }>('SELECT COALESCE(MAX(version), 0)::int AS v FROM schema_migrations')).rows[0]!.v);
  }

  async insert(e: NewEvent, options: InsertOptions = {}): Promise<InsertResult> {
    const p = eventParams(e);
    const dropped: Record<string, number> = {};
    const event = await this.tx('insert', async (c): Promise<StoredEvent | null> => {
      if (options.fence) {
        const f = options.fence;
        // FOR SHARE: a replica taking the camera over (UPDATE of this row) waits until this write commits.
        const held = await c.query(`SELECT 1 FROM camera_leases WHERE camera = $1 AND holder = $2 AND token = $3 AND expires_ms > ${NOW_MS} FOR SHARE`, [f.camera, f.holder, f.token]);
        if (held.rowCount === 0) {
          throw new OspreyError('OSPREY_ERR_LEASE_LOST', `camera ${JSON.stringify(f.camera)}: replica ${JSON.stringify(f.holder)} no longer holds lease token ${f.token}; event not written`, { camera: f.camera, replica: f.holder, token: f.token });
        }
      }
      const r = await c.query<{ id: number }>(
        `INSERT INTO events (kind, camera, rule, rule_type, class_name, class_id, track_id, score, x1, y1, x2, y2, time_ms, snapshot, latency_ms, details, idempotency_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16::jsonb, $17)
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING id`,
        [p['kind'], p['camera'], p['rule'], p['ruleType'], p['className'], p['classId'], p['trackId'], p['score'], p['x1'], p['y1'], p['x2'], p['y2'], p['timeMs'], p['snapshot'], p['latencyMs'], p['details'], p['idempotencyKey']],
      );
      if (r.rowCount === 0) return null;
      const ev: StoredEvent = { ...e, id: r.rows[0]!.id, time: new Date(Number(p['timeMs'])).toISOString(), timeMs: Number(p['timeMs']), snapshot: e.snapshot ?? null, idempotencyKey: String(p['idempotencyKey']) };
      if (e.kind === 'rule' && e.trackId !== null) {
        await c.query(
          `INSERT INTO tracks (camera, track_id, class_name, first_ms, last_ms, events) VALUES ($1, $2, $3, $4, $4, 1)
           ON CONFLICT (camera, track_id) DO UPDATE SET last_ms = GREATEST(tracks.last_ms, excluded.last_ms), first_ms = LEAST(tracks.first_ms, excluded.first_ms), events = tracks.events + 1`,
          [e.camera, e.trackId, e.className, ev.timeMs],
        );
      } else if (e.kind === 'state') {
        const from = typeof e.details['from'] === 'string' ? e.details['from'] : '';
        const reason = typeof e.details['reasonCode'] === 'string' ? e.details['reasonCode'] : null;
        await c.query('INSERT INTO camera_health (camera, time_ms, from_state, to_state, reason_code, event_id) VALUES ($1, $2, $3, $4, $5, $6)', [e.camera, ev.timeMs, from, e.rule, reason, ev.id]);
      }
      for (const o of options.outbox ?? []) dropped[o.sink] = await this.enqueueWith(c, o.sink, ev, o.extra?.(ev) ?? {}, o.maxSize);
      return ev;
    });
    if (event && ++this.inserts % 100 === 0) void this.applyRetention().catch(() => undefined);
    return { event, dropped };
  }

  private async enqueueWith(c: pg.PoolClient, sink: string, event: StoredEvent, extra: Record<string, unknown>, maxSize: number): Promise<number> {
    await c.query(`INSERT INTO outbox (sink, event_id, payload, next_attempt_ms, created_ms) VALUES ($1, $2, $3, ${NOW_MS}, ${NOW_MS})`, [sink, event.id, outboxPayload(event, extra)]);
    const n = (await c.query<{ n: number }>('SELECT COUNT(*)::int AS n FROM outbox WHERE sink = $1', [sink])).rows[0]!.n;
    if (n <= maxSize) return 0;
    const d = await c.query('DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE sink = $1 ORDER BY id ASC LIMIT $2)', [sink, n - maxSize]);
    return d.rowCount ?? 0;
  }

  async get(id: number): Promise<StoredEvent | null> {
    return this.timed('get', async (c) => {
      const r = await c.query<EventRow>('SELECT * FROM events WHERE id = $1', [id]);
      return r.rows[0] ? rowToEvent(r.rows[0]) : null;
    });
  }

  async query(q: EventQuery = {}): Promise<StoredEvent[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, v: unknown): void => {
      params.push(v);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (q.camera) add('camera = ?', q.camera);
    if (q.className) add('class_name = ?', q.className);
    if (q.kind) add('kind = ?', q.kind);
    if (q.rule) add('rule = ?', q.rule);
    if (q.sinceMs !== undefined) add('time_ms >= ?', Math.floor(q.sinceMs));
    if (q.untilMs !== undefined) add('time_ms <= ?', Math.ceil(q.untilMs));
    if (q.afterId !== undefined) add('id > ?', q.afterId);
    params.push(Math.max(1, Math.min(1000, q.limit ?? 100)));
    const sql = `SELECT * FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT $${params.length}`;
    return this.timed('query', async (c) => (await c.query<EventRow>(sql, params)).rows.map(rowToEvent));
  }

  async sparkplugBdSeq(edgeNode: string): Promise<number | undefined> {
    return this.timed('sparkplugBdSeq', async (c) => (await c.query<{ bd_seq: number }>('SELECT bd_seq FROM sparkplug_node WHERE edge_node = $1', [edgeNode])).rows[0]?.bd_seq);
  }

  async saveSparkplugBdSeq(edgeNode: string, bdSeq: number): Promise<void> {
    await this.timed('saveSparkplugBdSeq', async (c) => {
      await c.query('INSERT INTO sparkplug_node (edge_node, bd_seq) VALUES ($1, $2) ON CONFLICT (edge_node) DO UPDATE SET bd_seq = EXCLUDED.bd_seq', [edgeNode, bdSeq]);
    });
  }

  async count(kind?: 'rule' | 'state'): Promise<number> {
    return this.timed('count', async (c) => {
      const r = kind ? await c.query<{ n: number }>('SELECT COUNT(*)::int AS n FROM events WHERE kind = $1', [kind]) : await c.query<{ n: number }>('SELECT COUNT(*)::int AS n FROM events');
      return r.rows[0]!.n;
    });
  }

  async tracks(camera: string, limit = 100): Promise<TrackRow[]> {
    return this.timed('tracks', async (c) => {
      const r = await c.query<{ camera: string; track_id: number; class_name: string | null; first_ms: number; last_ms: number; events: number }>('SELECT * FROM tracks WHERE camera = $1 ORDER BY last_ms DESC LIMIT $2', [camera, limit]);
      return r.rows.map((x) => ({ camera: x.camera, trackId: x.track_id, className: x.class_name, firstMs: x.first_ms, lastMs: x.last_ms, events: x.events }));
    });
  }

  async healthHistory(camera: string, limit = 100): Promise<HealthRow[]> {
    return this.timed('healthHistory', async (c) => {
      const r = await c.query<{ camera: string; time_ms: number; from_state: string; to_state: string; reason_code: string | null; event_id: number }>('SELECT * FROM camera_health WHERE camera = $1 ORDER BY id DESC LIMIT $2', [camera, limit]);
      return r.rows.map((x) => ({ camera: x.camera, timeMs: x.time_ms, from: x.from_state, to: x.to_state, reasonCode: x.reason_code, eventId: x.event_id }));
    });
  }

  async applyRetention(nowMs = Date.now()): Promise<number> {
    const cutoff = nowMs - this.retention.maxAgeHours * 3600_000;
    const removed = await this.tx('retention', async (c) => {
      await c.query('DELETE FROM tracks WHERE last_ms < $1', [cutoff]);
      await c.query('DELETE FROM camera_health WHERE time_ms < $1', [cutoff]);
      const r = await c.query<{ id: number; snapshot: string | null }>(
        'DELETE FROM events WHERE time_ms < $1 OR id <= (SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET $2) RETURNING id, snapshot',
        [cutoff, this.retention.maxEvents],
      );
      return r.rows;
    });
    this.removeSnapshots(removed);
    return removed.length;
  }

  async enqueueOutbox(sink: string, event: StoredEvent, extra: Record<string, unknown>, maxSize: number): Promise<number> {
    return this.tx('enqueueOutbox', (c) => this.enqueueWith(c, sink, event, extra, maxSize));
  }

  async claimOutbox(sink: string, holder: string, claimMs: number): Promise<OutboxClaim> {
    return this.tx('claimOutbox', async (c): Promise<OutboxClaim> => {
      const r = await c.query<{ id: number; event_id: number; payload: string; attempts: number; next_attempt_ms: number; claimed_by: string | null; claimed_until_ms: number; now_ms: number }>(
        `SELECT id, event_id, payload, attempts, next_attempt_ms, claimed_by, claimed_until_ms, ${NOW_MS} AS now_ms FROM outbox
         WHERE sink = $1 AND status = 'pending' ORDER BY id ASC LIMIT 1 FOR UPDATE`,
        [sink],
      );
      const row = r.rows[0];
      if (!row) return null;
      const toLocal = (serverMs: number): number => Date.now() + (serverMs - row.now_ms);
      if (row.next_attempt_ms > row.now_ms) return { waitUntilMs: toLocal(row.next_attempt_ms) };
      if (row.claimed_by !== null && row.claimed_by !== holder && row.claimed_until_ms > row.now_ms) return { waitUntilMs: toLocal(row.claimed_until_ms) };
      await c.query(`UPDATE outbox SET claimed_by = $2, claimed_until_ms = ${NOW_MS} + $3 WHERE id = $1`, [row.id, holder, Math.round(claimMs)]);
      return { row: { id: row.id, eventId: row.event_id, payload: row.payload, attempts: row.attempts, nextAttemptMs: row.next_attempt_ms } };
    });
  }

  async completeOutbox(id: number, holder: string): Promise<void> {
    await this.timed('completeOutbox', (c) => c.query('DELETE FROM outbox WHERE id = $1 AND claimed_by = $2', [id, holder]));
  }

  async failOutboxAttempt(id: number, holder: string, attempts: number, error: string, nextAttemptMs: number | null): Promise<void> {
    await this.timed('failOutboxAttempt', (c) =>
      nextAttemptMs === null
        ? c.query("UPDATE outbox SET attempts = $3, status = 'failed', last_error = $4, claimed_by = NULL, claimed_until_ms = 0 WHERE id = $1 AND claimed_by = $2", [id, holder, attempts, error])
        : c.query(`UPDATE outbox SET attempts = $3, next_attempt_ms = ${NOW_MS} + $5, last_error = $4, claimed_by = NULL, claimed_until_ms = 0 WHERE id = $1 AND claimed_by = $2`, [id, holder, attempts, error, Math.max(0, Math.round(nextAttemptMs - Date.now()))]),
    );
  }

  async outboxCounts(sink: string): Promise<{ pending: number; failed: number }> {
    if (this.closed) return { pending: 0, failed: 0 };
    return this.timed('outboxCounts', async (c) => {
      const r = await c.query<{ status: string; n: number }>('SELECT status, COUNT(*)::int AS n FROM outbox WHERE sink = $1 GROUP BY status', [sink]);
      const get = (s: string): number => r.rows.find((x) => x.status === s)?.n ?? 0;
      return { pending: get('pending'), failed: get('failed') };
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end().catch(() => undefined);
  }
}

/**
 * Opens the store a streams config names: SQLite (`events.database`, the default) or PostgreSQL (`store.url`, pool
 * opened and migrated).
 * @throws OspreyError `OSPREY_ERR_CONFIG` (SQLite file cannot be opened), `OSPREY_ERR_EVENT_STORE` (PostgreSQL
 *   unreachable, refused, migration failed; the URL redacted).
 */
export async function openEventStore(config: { events: { database: string; snapshots: string; retention: { maxEvents: number; maxAgeHours: number } }; store: StoreConfig }): Promise<EventStore> {
  if (config.store.kind === 'postgres') {
    return PostgresEventStore.open({ url: config.store.url, snapshotsDir: config.events.snapshots, retention: config.events.retention, maxConnections: config.store.maxConnections });
  }
  return new SqliteEventStore(config.events.database, config.events.snapshots, config.events.retention);
}
