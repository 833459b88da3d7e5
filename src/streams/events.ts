/**
 * Event storage: an embedded SQLite database (better-sqlite3, WAL journal) plus JPEG snapshots on disk, with
 * retention limits (count and age), and the webhook outbox (kept in the same database so pending deliveries
 * survive restarts and stay bounded).
 *
 * Two kinds of events: `rule` (a rule fired: camera, rule, class, track id, time, box, snapshot) and `state`
 * (a camera's health changed: from → to, reason, error code).
 */
import Database from 'better-sqlite3';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { OspreyError } from '../core/errors.js';
import type { BoxXYXY } from '../core/types.js';

export interface StoredEvent {
  id: number;
  kind: 'rule' | 'state';
  camera: string;
  /** Rule name (`rule`), or the new state (`state`). */
  rule: string;
  ruleType: string | null;
  className: string | null;
  classId: number | null;
  trackId: number | null;
  score: number | null;
  /** Box in source pixels, xyxy. */
  box: BoxXYXY | null;
  /** ISO 8601 time of the frame that fired the rule (or of the state change). */
  time: string;
  timeMs: number;
  /** Snapshot path relative to the snapshots folder, or null. */
  snapshot: string | null;
  /** Frame arrival → event stored, ms. */
  latencyMs: number | null;
  details: Record<string, unknown>;
}

export type NewEvent = Omit<StoredEvent, 'id' | 'time' | 'snapshot'> & { snapshot?: string | null };

export interface EventQuery {
  camera?: string;
  className?: string;
  kind?: 'rule' | 'state';
  rule?: string;
  /** Inclusive bounds, ms since epoch. */
  sinceMs?: number;
  untilMs?: number;
  /** Only events with id > afterId (polling). */
  afterId?: number;
  /** Default 100, at most 1000. */
  limit?: number;
}

interface Row {
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
  details: string;
}

const rowToEvent = (r: Row): StoredEvent => ({
  id: r.id,
  kind: r.kind as 'rule' | 'state',
  camera: r.camera,
  rule: r.rule,
  ruleType: r.rule_type,
  className: r.class_name,
  classId: r.class_id,
  trackId: r.track_id,
  score: r.score,
  box: r.x1 === null ? null : [r.x1, r.y1!, r.x2!, r.y2!],
  time: new Date(r.time_ms).toISOString(),
  timeMs: r.time_ms,
  snapshot: r.snapshot,
  latencyMs: r.latency_ms,
  details: JSON.parse(r.details) as Record<string, unknown>,
});

export class EventStore {
  readonly db: Database.Database;
  private insertStmt: Database.Statement;
  private inserts = 0;

  /**
   * @param file SQLite file (created with its folder); `:memory:` works for tools.
   * @param snapshotsDir folder of JPEG snapshots (created).
   * @throws OspreyError `OSPREY_ERR_CONFIG` when the database cannot be opened.
   */
  constructor(
    readonly file: string,
    readonly snapshotsDir: string,
    readonly retention: { maxEvents: number; maxAgeHours: number },
  ) {
    try {
      if (file !== ':memory:') mkdirSync(dirname(resolve(file)), { recursive: true });
      mkdirSync(snapshotsDir, { recursive: true });
      this.db = new Database(file);
    } catch (err) {
      throw new OspreyError('OSPREY_ERR_CONFIG', `events.database: cannot open ${file}: ${(err as Error).message}`, { keyPath: 'events.database' });
    }
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL, camera TEXT NOT NULL, rule TEXT NOT NULL, rule_type TEXT,
        class_name TEXT, class_id INTEGER, track_id INTEGER, score REAL,
        x1 REAL, y1 REAL, x2 REAL, y2 REAL,
        time_ms INTEGER NOT NULL, snapshot TEXT, latency_ms REAL, details TEXT NOT NULL DEFAULT '{}'
      );
      CREATE INDEX IF NOT EXISTS events_camera_time ON events (camera, time_ms);
      CREATE INDEX IF NOT EXISTS events_time ON events (time_ms);
      CREATE INDEX IF NOT EXISTS events_class_time ON events (class_name, time_ms);
      CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sink TEXT NOT NULL, event_id INTEGER NOT NULL, payload TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, next_attempt_ms INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending', last_error TEXT, created_ms INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS outbox_due ON outbox (sink, status, next_attempt_ms);
    `);
    this.insertStmt = this.db.prepare(`INSERT INTO events (kind, camera, rule, rule_type, class_name, class_id, track_id, score, x1, y1, x2, y2, time_ms, snapshot, latency_ms, details)
      VALUES (@kind, @camera, @rule, @ruleType, @className, @classId, @trackId, @score, @x1, @y1, @x2, @y2, @timeMs, @snapshot, @latencyMs, @details)`);
  }

  /** Stores an event; returns it with its id. Applies retention every 100 inserts. */
  insert(e: NewEvent): StoredEvent {
    const info = this.insertStmt.run({
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
    });
    if (++this.inserts % 100 === 0) this.applyRetention();
    return { ...e, id: Number(info.lastInsertRowid), time: new Date(e.timeMs).toISOString(), snapshot: e.snapshot ?? null };
  }

  /** Snapshot path for an event (relative to the snapshots folder): `<camera>/<yyyy-mm-dd>/<timeMs>-<rule>-<track>.jpg`. */
  snapshotPathFor(camera: string, rule: string, trackId: number, timeMs: number): string {
    const day = new Date(timeMs).toISOString().slice(0, 10);
    return `${camera}/${day}/${Math.round(timeMs)}-${rule.replace(/[^A-Za-z0-9_-]/g, '_')}-${trackId}.jpg`;
  }

  /** Absolute path of a snapshot, refusing paths that leave the snapshots folder. */
  resolveSnapshot(rel: string): string | null {
    const abs = resolve(this.snapshotsDir, rel);
    const r = relative(resolve(this.snapshotsDir), abs);
    return r.startsWith('..') || r.includes(`..${sep}`) ? null : abs;
  }

  ensureSnapshotDir(rel: string): string {
    const abs = join(this.snapshotsDir, rel);
    mkdirSync(dirname(abs), { recursive: true });
    return abs;
  }

  get(id: number): StoredEvent | null {
    const r = this.db.prepare('SELECT * FROM events WHERE id = ?').get(id) as Row | undefined;
    return r ? rowToEvent(r) : null;
  }

  /** Events, newest first. */
  query(q: EventQuery = {}): StoredEvent[] {
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
    return (this.db.prepare(sql).all(params) as Row[]).map(rowToEvent);
  }

  count(kind?: 'rule' | 'state'): number {
    const r = (kind ? this.db.prepare('SELECT COUNT(*) AS n FROM events WHERE kind = ?').get(kind) : this.db.prepare('SELECT COUNT(*) AS n FROM events').get()) as { n: number };
    return r.n;
  }

  /** Deletes events (and their snapshots) beyond `maxEvents` or older than `maxAgeHours`. Returns how many. */
  applyRetention(nowMs = Date.now()): number {
    const cutoff = nowMs - this.retention.maxAgeHours * 3600_000;
    const old = this.db.prepare('SELECT id, snapshot FROM events WHERE time_ms < ? OR id <= (SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?)').all(cutoff, this.retention.maxEvents) as Array<{ id: number; snapshot: string | null }>;
    if (old.length === 0) return 0;
    const del = this.db.prepare('DELETE FROM events WHERE id = ?');
    this.db.transaction(() => old.forEach((o) => del.run(o.id)))();
    for (const o of old) {
      if (!o.snapshot) continue;
      const abs = this.resolveSnapshot(o.snapshot);
      if (abs) rmSync(abs, { force: true });
    }
    return old.length;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
