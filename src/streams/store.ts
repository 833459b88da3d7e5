/**
 * The event store of the streams runtime, as one interface over two databases:
 *
 * - SQLite (better-sqlite3, one file, WAL journal) — the embedded default, one process ({@link SqliteEventStore} in
 *   events.ts);
 * - PostgreSQL (npm `pg`) — one store shared by several `osprey streams` replicas ({@link PostgresEventStore} in
 *   pg-store.ts), which also holds the camera leases (leases.ts).
 *
 * What is stored (the same tables in both, created by the versioned migrations of migrations.ts):
 * - `events`: rule hits (`kind = 'rule'`: camera, rule, class, track, box, frame time, snapshot reference) and
 *   camera state changes (`kind = 'state'`), each with a deterministic {@link idempotencyKey} under a unique
 *   constraint: writing the same event twice (a camera replayed on another replica after a failover) stores it once;
 * - `tracks`: one row per (camera, track id) that fired a rule: class, first and last event time, event count;
 * - `camera_health`: the history of camera state changes (from, to, reason code, time);
 * - `outbox`: the webhook / MQTT deliveries, written in the same transaction as their event, claimed by one
 *   dispatcher at a time (`claimed_by`, `claimed_until_ms`) so a row is delivered once even with several replicas.
 *
 * Every method is async (PostgreSQL is a server); the SQLite store answers at once.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
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
  /** Deterministic key (see {@link idempotencyKey}); null only for rows written before schema version 2. */
  idempotencyKey: string | null;
}

export type NewEvent = Omit<StoredEvent, 'id' | 'time' | 'snapshot' | 'idempotencyKey'> & { snapshot?: string | null; idempotencyKey?: string };

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

/** One outbox delivery to write with its event, in the same transaction. */
export interface OutboxWrite {
  /** Outbox key of the sink, e.g. `webhooks[0]`, `mqtt[0]`. */
  sink: string;
  /** Rows kept for this sink; the oldest rows beyond it are dropped (counted in {@link InsertResult.dropped}). */
  maxSize: number;
  /** Extra fields of the payload, from the stored event (e.g. its snapshot URL, which needs the event id). */
  extra?: (event: StoredEvent) => Record<string, unknown>;
}

/** The lease an event write must still hold, checked in the write's transaction by the PostgreSQL store (the SQLite store serves one process without leases and ignores it). */
export interface Fence {
  camera: string;
  /** Replica id of the writer. */
  holder: string;
  /** Fencing token of the writer's lease (monotonic per camera). */
  token: number;
}

export interface InsertOptions {
  outbox?: readonly OutboxWrite[];
  fence?: Fence;
}

export interface InsertResult {
  /** The stored event, or null when an event with the same idempotency key was already stored (nothing written). */
  event: StoredEvent | null;
  /** Outbox rows dropped per sink by the bound. */
  dropped: Record<string, number>;
}

export interface OutboxRow {
  id: number;
  eventId: number;
  payload: string;
  attempts: number;
  nextAttemptMs: number;
}

/** Head of a sink's outbox for a dispatcher: a row it now holds, a row to wait for, or nothing pending. */
export type OutboxClaim = { row: OutboxRow } | { waitUntilMs: number } | null;

export interface TrackRow {
  camera: string;
  trackId: number;
  className: string | null;
  firstMs: number;
  lastMs: number;
  events: number;
}

export interface HealthRow {
  camera: string;
  timeMs: number;
  from: string;
  to: string;
  reasonCode: string | null;
  eventId: number;
}

export interface EventStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Where the data lives, safe to show (file path, or the PostgreSQL URL without its password). */
  readonly location: string;
  readonly snapshotsDir: string;
  readonly retention: { maxEvents: number; maxAgeHours: number };
  /** False once closed (or the connection pool ended). */
  readonly isOpen: boolean;
  /** Called with each operation's duration in seconds (label of `osprey_event_store_latency_seconds`). */
  latencyObserver?: (op: string, seconds: number) => void;
  /** Applies pending migrations (idempotent; concurrent replicas serialize on a lock). */
  migrate(): Promise<void>;
  /** Highest applied migration version. */
  schemaVersion(): Promise<number>;
  /**
   * Stores an event, its track / health rows and its outbox rows in one transaction.
   * @throws OspreyError `OSPREY_ERR_LEASE_LOST` when `fence` is given and the writer no longer holds that lease.
   * @throws OspreyError `OSPREY_ERR_EVENT_STORE` when the database refuses or cannot be reached.
   */
  insert(e: NewEvent, options?: InsertOptions): Promise<InsertResult>;
  get(id: number): Promise<StoredEvent | null>;
  /** Events, newest first. */
  query(q?: EventQuery): Promise<StoredEvent[]>;
  count(kind?: 'rule' | 'state'): Promise<number>;
  tracks(camera: string, limit?: number): Promise<TrackRow[]>;
  healthHistory(camera: string, limit?: number): Promise<HealthRow[]>;
  /** The last Sparkplug B bdSeq the edge node `groupId/edgeNodeId` used, or undefined before its first connect. */
  sparkplugBdSeq(edgeNode: string): Promise<number | undefined>;
  /** Records the bdSeq of the edge node's latest CONNECT (0..255). */
  saveSparkplugBdSeq(edgeNode: string, bdSeq: number): Promise<void>;
  /** Deletes events (and their snapshots) beyond `maxEvents` or older than `maxAgeHours`. Returns how many. */
  applyRetention(nowMs?: number): Promise<number>;

  /** Adds one outbox row for an already stored event (tools and tests; the runtime writes rows with the event). */
  enqueueOutbox(sink: string, event: StoredEvent, extra: Record<string, unknown>, maxSize: number): Promise<number>;
  /**
   * Claims the oldest pending row of a sink for `holder` until `nowMs + claimMs` unless another holder's claim on it
   * is still valid. Rows are delivered strictly oldest first: while the head waits (retry delay, other holder), no
   * younger row is handed out.
   */
  claimOutbox(sink: string, holder: string, claimMs: number): Promise<OutboxClaim>;
  /** Delivered: removes the row (only while `holder` holds it). */
  completeOutbox(id: number, holder: string): Promise<void>;
  /** Failed attempt: records it and frees the row for its retry at `nextAttemptMs`, or marks it `failed` when `nextAttemptMs` is null. */
  failOutboxAttempt(id: number, holder: string, attempts: number, error: string, nextAttemptMs: number | null): Promise<void>;
  outboxCounts(sink: string): Promise<{ pending: number; failed: number }>;

  close(): Promise<void>;

  snapshotPathFor(camera: string, rule: string, trackId: number, timeMs: number): string;
  resolveSnapshot(rel: string): string | null;
  ensureSnapshotDir(rel: string): string;
}

/**
 * The deterministic idempotency key of an event: the same camera, track, rule and frame time give the same key on any
 * replica. Rule events: `<camera>/<trackId>/<rule>/<timeMs>`; state events: `<camera>/state/<to>/<timeMs>`.
 * `timeMs` is the frame's time (a file camera's media time from its start, see camera.ts; a live camera's arrival
 * time), rounded to the millisecond.
 */
export function idempotencyKey(e: Pick<NewEvent, 'kind' | 'camera' | 'rule' | 'trackId' | 'timeMs'>): string {
  const t = Math.round(e.timeMs);
  return e.kind === 'rule' ? `${e.camera}/${e.trackId ?? '-'}/${e.rule}/${t}` : `${e.camera}/state/${e.rule}/${t}`;
}

/** Snapshot file helpers shared by both stores (the JPEGs are files on disk whatever the database). */
export abstract class SnapshotFolder {
  constructor(readonly snapshotsDir: string) {
    mkdirSync(snapshotsDir, { recursive: true });
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

  /** Deletes the snapshot files of removed events (paths outside the snapshots folder are left alone). */
  removeSnapshots(rows: ReadonlyArray<{ snapshot: string | null }>): void {
    for (const o of rows) {
      const abs = o.snapshot ? this.resolveSnapshot(o.snapshot) : null;
      if (abs) rmSync(abs, { force: true });
    }
  }

  ensureSnapshotDir(rel: string): string {
    const abs = join(this.snapshotsDir, rel);
    mkdirSync(dirname(abs), { recursive: true });
    return abs;
  }
}

/** The outbox payload of an event (the webhook body / MQTT message). */
export function outboxPayload(event: StoredEvent, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ ...event, ...extra });
}
