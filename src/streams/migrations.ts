/**
 * Versioned schema migrations of the event store, one list per database. A store applies, in order and each in its
 * own transaction, every migration above the highest version recorded in `schema_migrations` (version, name,
 * applied_ms). Versions are the same in both lists so `schemaVersion()` means the same schema whatever the database;
 * a migration only adds (no data is rewritten), so an older Osprey keeps reading a newer database.
 *
 * - 1 `baseline`: events, outbox (SQLite: the tables of Osprey ≤ 0.1, created only where missing).
 * - 2 `idempotency-tracks-health`: `events.idempotency_key` + unique index, `tracks`, `camera_health`, outbox claims.
 * - 3 `camera-leases`: `camera_leases` (holder, fencing token, expiry, position of a file camera) and
 *   `stream_replicas` (heartbeat and capacity of each replica). Used with PostgreSQL only; SQLite gets the tables so
 *   both schemas stay one.
 * - 4 `sparkplug-bdseq`: `sparkplug_node` — the last Sparkplug B bdSeq each edge node used (a restart continues it).
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'baseline',
    sql: `
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
      CREATE INDEX IF NOT EXISTS outbox_due ON outbox (sink, status, next_attempt_ms);`,
  },
  {
    version: 2,
    name: 'idempotency-tracks-health',
    sql: `
      ALTER TABLE events ADD COLUMN idempotency_key TEXT;
      CREATE UNIQUE INDEX events_idempotency_key ON events (idempotency_key);
      CREATE TABLE tracks (
        camera TEXT NOT NULL, track_id INTEGER NOT NULL, class_name TEXT,
        first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL, events INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (camera, track_id)
      );
      CREATE INDEX tracks_last ON tracks (last_ms);
      CREATE TABLE camera_health (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        camera TEXT NOT NULL, time_ms INTEGER NOT NULL, from_state TEXT NOT NULL, to_state TEXT NOT NULL,
        reason_code TEXT, event_id INTEGER NOT NULL
      );
      CREATE INDEX camera_health_camera_time ON camera_health (camera, time_ms);
      ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
      ALTER TABLE outbox ADD COLUMN claimed_until_ms INTEGER NOT NULL DEFAULT 0;`,
  },
  {
    version: 3,
    name: 'camera-leases',
    sql: `
      CREATE TABLE camera_leases (
        camera TEXT PRIMARY KEY, holder TEXT, token INTEGER NOT NULL DEFAULT 0,
        acquired_ms INTEGER NOT NULL DEFAULT 0, renewed_ms INTEGER NOT NULL DEFAULT 0, expires_ms INTEGER NOT NULL DEFAULT 0,
        failovers INTEGER NOT NULL DEFAULT 0, position TEXT
      );
      CREATE TABLE stream_replicas (
        replica TEXT PRIMARY KEY, capacity REAL NOT NULL, heartbeat_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL
      );`,
  },
  {
    version: 4,
    name: 'sparkplug-bdseq',
    sql: `
      CREATE TABLE IF NOT EXISTS sparkplug_node (edge_node TEXT PRIMARY KEY, bd_seq INTEGER NOT NULL);`,
  },
];

export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'baseline',
    sql: `
      CREATE TABLE events (
        id BIGSERIAL PRIMARY KEY,
        kind TEXT NOT NULL, camera TEXT NOT NULL, rule TEXT NOT NULL, rule_type TEXT,
        class_name TEXT, class_id INTEGER, track_id BIGINT, score DOUBLE PRECISION,
        x1 DOUBLE PRECISION, y1 DOUBLE PRECISION, x2 DOUBLE PRECISION, y2 DOUBLE PRECISION,
        time_ms BIGINT NOT NULL, snapshot TEXT, latency_ms DOUBLE PRECISION, details JSONB NOT NULL DEFAULT '{}'
      );
      CREATE INDEX events_camera_time ON events (camera, time_ms);
      CREATE INDEX events_time ON events (time_ms);
      CREATE INDEX events_class_time ON events (class_name, time_ms);
      CREATE TABLE outbox (
        id BIGSERIAL PRIMARY KEY,
        sink TEXT NOT NULL, event_id BIGINT NOT NULL, payload TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, next_attempt_ms BIGINT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending', last_error TEXT, created_ms BIGINT NOT NULL
      );
      CREATE INDEX outbox_due ON outbox (sink, status, id);`,
  },
  {
    version: 2,
    name: 'idempotency-tracks-health',
    sql: `
      ALTER TABLE events ADD COLUMN idempotency_key TEXT;
      CREATE UNIQUE INDEX events_idempotency_key ON events (idempotency_key);
      CREATE TABLE tracks (
        camera TEXT NOT NULL, track_id BIGINT NOT NULL, class_name TEXT,
        first_ms BIGINT NOT NULL, last_ms BIGINT NOT NULL, events INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (camera, track_id)
      );
      CREATE INDEX tracks_last ON tracks (last_ms);
      CREATE TABLE camera_health (
        id BIGSERIAL PRIMARY KEY,
        camera TEXT NOT NULL, time_ms BIGINT NOT NULL, from_state TEXT NOT NULL, to_state TEXT NOT NULL,
        reason_code TEXT, event_id BIGINT NOT NULL
      );
      CREATE INDEX camera_health_camera_time ON camera_health (camera, time_ms);
      ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
      ALTER TABLE outbox ADD COLUMN claimed_until_ms BIGINT NOT NULL DEFAULT 0;`,
  },
  {
    version: 3,
    name: 'camera-leases',
    sql: `
      CREATE TABLE camera_leases (
        camera TEXT PRIMARY KEY, holder TEXT, token BIGINT NOT NULL DEFAULT 0,
        acquired_ms BIGINT NOT NULL DEFAULT 0, renewed_ms BIGINT NOT NULL DEFAULT 0, expires_ms BIGINT NOT NULL DEFAULT 0,
        failovers INTEGER NOT NULL DEFAULT 0, position JSONB
      );
      CREATE TABLE stream_replicas (
        replica TEXT PRIMARY KEY, capacity DOUBLE PRECISION NOT NULL, heartbeat_ms BIGINT NOT NULL, expires_ms BIGINT NOT NULL
      );`,
  },
  {
    version: 4,
    name: 'sparkplug-bdseq',
    sql: `
      CREATE TABLE sparkplug_node (edge_node TEXT PRIMARY KEY, bd_seq INTEGER NOT NULL);`,
  },
];

/** The schema version this Osprey writes (the highest migration). */
export const SCHEMA_VERSION = Math.max(...SQLITE_MIGRATIONS.map((m) => m.version));
