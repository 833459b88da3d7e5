/**
 * The embedded event store: one SQLite database (better-sqlite3, WAL journal) plus JPEG snapshots on disk, with
 * retention limits (count and age), and the webhook / MQTT outbox in the same database, so pending deliveries survive
 * restarts and stay bounded. The default store of `osprey streams`; one process (several replicas share a
 * PostgreSQL store instead, pg-store.ts). Schema: migrations.ts; interface and tables: store.ts.
 *
 * Two kinds of events: `rule` (a rule fired: camera, rule, class, track id, time, box, snapshot) and `state`
 * (a camera's health changed: from → to, reason, error code).
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { OspreyError } from '../core/errors.js';
import { SQLITE_MIGRATIONS } from './migrations.js';
import {
  SnapshotFolder,
  idempotencyKey,
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

export type { EventQuery, EventStore, NewEvent, StoredEvent } from './store.js';

/** A database row of `events` (both stores). */
export interface EventRow {
  id: number;
  kind: string;
  camera: string;
  rule: string;
  rule_type: string | null;
  class_name: string | null;
  class_id: number | null;
  track_id: number | null;
  score: number | null;
  x1: number | null;
  y1: number | null;
  x2: number | null;
  y2: number | null;
  time_ms: number;
  snapshot: string | null;
  latency_ms: number | null;
  details: string | Record<string, unknown>;
  idempotency_key: string | null;
}

export const rowToEvent = (r: EventRow): StoredEvent => ({
  id: Number(r.id),
  kind: r.kind as 'rule' | 'state',
  camera: r.camera,
  rule: r.rule,
  ruleType: r.rule_type,
  className: r.class_name,
  classId: r.class_id,
  trackId: r.track_id === null ? null : Number(r.track_id),
  score: r.score,
  box: r.x1 === null ? null : [r.x1, r.y1!, r.x2!, r.y2!],
  time: new Date(Number(r.time_ms)).toISOString(),
  timeMs: Number(r.time_ms),
  snapshot: r.snapshot,
  latencyMs: r.latency_ms,
  details: typeof r.details === 'string' ? (JSON.parse(r.details) as Record<string, unknown>) : r.details,
  idempotencyKey: r.idempotency_key,
});

/** The event's columns, as named parameters (both stores). */
export function eventParams(e: NewEvent): Record<string, string | number | null> {
  return {
    kind: e.kind,
    camera: e.camera,
    rule: e.rule,
    ruleType: e.ruleType,
    className: e.className,
    classId: e.classId,
    trackId: e.trackId,
    score: e.score,
    x1: e.box?.[0] ?? null,
    y1: e.box?.[1] ?? null,
    x2: e.box?.[2] ?? null,
    y2: e.box?.[3] ?? null,
    timeMs: Math.round(e.timeMs),
    snapshot: e.snapshot ?? null,
    latencyMs: e.latencyMs,
    details: JSON.stringify(e.details ?? {}),
    idempotencyKey: e.idempotencyKey ?? idempotencyKey(e),
  };
}

export class SqliteEventStore extends SnapshotFolder implements EventStore {
  readonly kind = 'sqlite' as const;
  readonly db: Database.Database;
  latencyObserver?: (op: string, seconds: number) => void;
  private readonly insertStmt: Database.Statement;
  private inserts = 0;

  /**
   * Opens (creating file and folder) and migrates the database.
   * @param file SQLite file (created with its folder); `:memory:` works for tools.
   * @param snapshotsDir folder of JPEG snapshots (created).
   * @throws OspreyError `OSPREY_ERR_CONFIG` when the database cannot be opened.
   */
  constructor(
    readonly file: string,
    snapshotsDir: string,
    readonly retention: { maxEvents: number; maxAgeHours: number },
  ) {
    super(snapshotsDir);
    try {
      if (file !== ':memory:') mkdirSync(dirname(resolve(file)), { recursive: true });
      this.db = new Database(file);
    } catch (err) {
      throw new OspreyError('OSPREY_ERR_CONFIG', `events.database: cannot open ${file}: ${(err as Error).message}`, { keyPath: 'events.database' });
    }
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.migrateSync();
    this.insertStmt = this.db.prepare(`INSERT OR IGNORE INTO events (kind, camera, rule, rule_type, class_name, class_id, track_id, score, x1, y1, x2, y2, time_ms, snapshot, latency_ms, details, idempotency_key)
      VALUES (@kind, @camera, @rule, @ruleType, @className, @classId, @trackId, @score, @x1, @y1, @x2, @y2, @timeMs, @snapshot, @latencyMs, @details, @idempotencyKey)`);
  }

  get location(): string {
    return this.file;
  }

  get isOpen(): boolean {
    return this.db.open;
  }

  private migrateSync(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms INTEGER NOT NULL)');
    const current = this.versionSync();
    for (const m of SQLITE_MIGRATIONS) {
      if (m.version <= current) continue;
      this.db.transaction(() => {
        this.db.exec(m.sql);
        this.db.prepare('INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
      })();
    }
  }

  private versionSync(): number {
    return (this.db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations').get() as { v: number }).v;
  }

  /** Migrations run when the store opens; this is for the interface (idempotent). */
  async migrate(): Promise<void> {
    this.migrateSync();
  }

  async schemaVersion(): Promise<number> {
    return this.versionSync();
  }

  /** Stores an event (once per idempotency key) with its track, health and outbox rows, in one transaction. Applies retention every 100 inserts. */
  async insert(e: NewEvent, options: InsertOptions = {}): Promise<InsertResult> {
    const t0 = performance.now();
    try {
      return this.insertSync(e, options);
    } finally {
      this.latencyObserver?.('insert', (performance.now() - t0) / 1000);
    }
  }

  /** {@link insert}, synchronously (SQLite only). */
  insertSync(e: NewEvent, options: InsertOptions = {}): InsertResult {
    const dropped: Record<string, number> = {};
    const p = eventParams(e);
    const event = this.db.transaction((): StoredEvent | null => {
      const info = this.insertStmt.run(p);
      if (info.changes === 0) return null;
      const ev: StoredEvent = { ...e, id: Number(info.lastInsertRowid), time: new Date(Number(p['timeMs'])).toISOString(), timeMs: Number(p['timeMs']), snapshot: e.snapshot ?? null, idempotencyKey: String(p['idempotencyKey']) };
      if (e.kind === 'rule' && e.trackId !== null) {
        this.db.prepare(`INSERT INTO tracks (camera, track_id, class_name, first_ms, last_ms, events) VALUES (?, ?, ?, ?, ?, 1)
          ON CONFLICT (camera, track_id) DO UPDATE SET last_ms = MAX(last_ms, excluded.last_ms), first_ms = MIN(first_ms, excluded.first_ms), events = events + 1`).run(e.camera, e.trackId, e.className, ev.timeMs, ev.timeMs);
      } else if (e.kind === 'state') {
        const from = typeof e.details['from'] === 'string' ? e.details['from'] : '';
        const reason = typeof e.details['reasonCode'] === 'string' ? e.details['reasonCode'] : null;
        this.db.prepare('INSERT INTO camera_health (camera, time_ms, from_state, to_state, reason_code, event_id) VALUES (?, ?, ?, ?, ?, ?)').run(e.camera, ev.timeMs, from, e.rule, reason, ev.id);
      }
      for (const o of options.outbox ?? []) dropped[o.sink] = this.enqueueSync(o.sink, ev, o.extra?.(ev) ?? {}, o.maxSize);
      return ev;
    })();
    if (event && ++this.inserts % 100 === 0) this.applyRetentionSync();
    return { event, dropped };
  }

  async get(id: number): Promise<StoredEvent | null> {
    const r = this.db.prepare('SELECT * FROM events WHERE id = ?').get(id) as EventRow | undefined;
    return r ? rowToEvent(r) : null;
  }

  async query(q: EventQuery = {}): Promise<StoredEvent[]> {
    return this.querySync(q);
  }

  /** {@link query}, synchronously (SQLite only). */
  querySync(q: EventQuery = {}): StoredEvent[] {
    const where: string[] = [];
    const params: Record<string, unknown> = {};
    if (q.camera) (where.push('camera = @camera'), (params['camera'] = q.camera));
    if (q.className) (where.push('class_name = @className'), (params['className'] = q.className));
    if (q.kind) (where.push('kind = @kind'), (params['kind'] = q.kind));
    if (q.rule) (where.push('rule = @rule'), (params['rule'] = q.rule));
    if (q.sinceMs !== undefined) (where.push('time_ms >= @sinceMs'), (params['sinceMs'] = Math.floor(q.sinceMs)));
    if (q.untilMs !== undefined) (where.push('time_ms <= @untilMs'), (params['untilMs'] = Math.ceil(q.untilMs)));
    if (q.afterId !== undefined) (where.push('id > @afterId'), (params['afterId'] = q.afterId));
    params['limit'] = Math.max(1, Math.min(1000, q.limit ?? 100));
    const sql = `SELECT * FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT @limit`;
    return (this.db.prepare(sql).all(params) as EventRow[]).map(rowToEvent);
  }

  async sparkplugBdSeq(edgeNode: string): Promise<number | undefined> {
    return (this.db.prepare('SELECT bd_seq FROM sparkplug_node WHERE edge_node = ?').get(edgeNode) as { bd_seq: number } | undefined)?.bd_seq;
  }

  async saveSparkplugBdSeq(edgeNode: string, bdSeq: number): Promise<void> {
    if (!this.db.open) return;
    this.db.prepare('INSERT INTO sparkplug_node (edge_node, bd_seq) VALUES (?, ?) ON CONFLICT(edge_node) DO UPDATE SET bd_seq = excluded.bd_seq').run(edgeNode, bdSeq);
  }

  async count(kind?: 'rule' | 'state'): Promise<number> {
    return this.countSync(kind);
  }

  /** {@link count}, synchronously (SQLite only). */
  countSync(kind?: 'rule' | 'state'): number {
    const r = (kind ? this.db.prepare('SELECT COUNT(*) AS n FROM events WHERE kind = ?').get(kind) : this.db.prepare('SELECT COUNT(*) AS n FROM events').get()) as { n: number };
    return r.n;
  }

  async tracks(camera: string, limit = 100): Promise<TrackRow[]> {
    const rows = this.db.prepare('SELECT * FROM tracks WHERE camera = ? ORDER BY last_ms DESC LIMIT ?').all(camera, limit) as Array<{ camera: string; track_id: number; class_name: string | null; first_ms: number; last_ms: number; events: number }>;
    return rows.map((r) => ({ camera: r.camera, trackId: r.track_id, className: r.class_name, firstMs: r.first_ms, lastMs: r.last_ms, events: r.events }));
  }

  async healthHistory(camera: string, limit = 100): Promise<HealthRow[]> {
    const rows = this.db.prepare('SELECT * FROM camera_health WHERE camera = ? ORDER BY id DESC LIMIT ?').all(camera, limit) as Array<{ camera: string; time_ms: number; from_state: string; to_state: string; reason_code: string | null; event_id: number }>;
    return rows.map((r) => ({ camera: r.camera, timeMs: r.time_ms, from: r.from_state, to: r.to_state, reasonCode: r.reason_code, eventId: r.event_id }));
  }

  async applyRetention(nowMs = Date.now()): Promise<number> {
    return this.applyRetentionSync(nowMs);
  }

  private applyRetentionSync(nowMs = Date.now()): number {
    const cutoff = nowMs - this.retention.maxAgeHours * 3600_000;
    const old = this.db.prepare('SELECT id, snapshot FROM events WHERE time_ms < ? OR id <= (SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?)').all(cutoff, this.retention.maxEvents) as Array<{ id: number; snapshot: string | null }>;
    this.db.prepare('DELETE FROM tracks WHERE last_ms < ?').run(cutoff);
    this.db.prepare('DELETE FROM camera_health WHERE time_ms < ?').run(cutoff);
    if (old.length === 0) return 0;
    const del = this.db.prepare('DELETE FROM events WHERE id = ?');
    this.db.transaction(() => old.forEach((o) => del.run(o.id)))();
    this.removeSnapshots(old);
    return old.length;
  }

  async enqueueOutbox(sink: string, event: StoredEvent, extra: Record<string, unknown>, maxSize: number): Promise<number> {
    return this.enqueueSync(sink, event, extra, maxSize);
  }

  private enqueueSync(sink: string, event: StoredEvent, extra: Record<string, unknown>, maxSize: number): number {
    const now = Date.now();
    this.db.prepare('INSERT INTO outbox (sink, event_id, payload, next_attempt_ms, created_ms) VALUES (?, ?, ?, ?, ?)').run(sink, event.id, outboxPayload(event, extra), now, now);
    const n = (this.db.prepare('SELECT COUNT(*) AS n FROM outbox WHERE sink = ?').get(sink) as { n: number }).n;
    if (n <= maxSize) return 0;
    return this.db.prepare('DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE sink = ? ORDER BY id ASC LIMIT ?)').run(sink, n - maxSize).changes;
  }

  async claimOutbox(sink: string, holder: string, claimMs: number): Promise<OutboxClaim> {
    const now = Date.now();
    return this.db.transaction((): OutboxClaim => {
      const row = this.db.prepare("SELECT id, event_id, payload, attempts, next_attempt_ms, claimed_by, claimed_until_ms FROM outbox WHERE sink = ? AND status = 'pending' ORDER BY id ASC LIMIT 1").get(sink) as
        | { id: number; event_id: number; payload: string; attempts: number; next_attempt_ms: number; claimed_by: string | null; claimed_until_ms: number }
        | undefined;
      if (!row) return null;
      if (row.next_attempt_ms > now) return { waitUntilMs: row.next_attempt_ms };
      if (row.claimed_by !== null && row.claimed_by !== holder && row.claimed_until_ms > now) return { waitUntilMs: row.claimed_until_ms };
      this.db.prepare('UPDATE outbox SET claimed_by = ?, claimed_until_ms = ? WHERE id = ?').run(holder, now + claimMs, row.id);
      return { row: { id: row.id, eventId: row.event_id, payload: row.payload, attempts: row.attempts, nextAttemptMs: row.next_attempt_ms } };
    })();
  }

  async completeOutbox(id: number, holder: string): Promise<void> {
    if (this.db.open) this.db.prepare('DELETE FROM outbox WHERE id = ? AND claimed_by = ?').run(id, holder);
  }

  async failOutboxAttempt(id: number, holder: string, attempts: number, error: string, nextAttemptMs: number | null): Promise<void> {
    if (!this.db.open) return;
    if (nextAttemptMs === null) this.db.prepare("UPDATE outbox SET attempts = ?, status = 'failed', last_error = ?, claimed_by = NULL, claimed_until_ms = 0 WHERE id = ? AND claimed_by = ?").run(attempts, error, id, holder);
    else this.db.prepare('UPDATE outbox SET attempts = ?, next_attempt_ms = ?, last_error = ?, claimed_by = NULL, claimed_until_ms = 0 WHERE id = ? AND claimed_by = ?').run(attempts, Math.round(nextAttemptMs), error, id, holder);
  }

  async outboxCounts(sink: string): Promise<{ pending: number; failed: number }> {
    if (!this.db.open) return { pending: 0, failed: 0 };
    const count = (status: string): number => (this.db.prepare('SELECT COUNT(*) AS n FROM outbox WHERE sink = ? AND status = ?').get(sink, status) as { n: number }).n;
    return { pending: count('pending'), failed: count('failed') };
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
