/**
 * Camera leases in PostgreSQL: several `osprey streams` replicas share one camera list; each camera runs on the one
 * replica that holds its lease.
 *
 * - A lease is a row of `camera_leases` (migrations.ts): holder (replica id), fencing token (incremented at every
 *   acquisition, so monotonic per camera), acquired / renewed / expiry times on the server's clock, failovers, and the
 *   camera's position (a file camera's last committed frame: media time, tracker and rule state).
 * - Every `renewMs` (default ttlMs / 3) a replica heartbeats (`stream_replicas`: capacity, expiry), renews the leases
 *   it holds (`WHERE holder = me AND token = mine AND not expired`; a lease not renewed is lost and its camera
 *   stopped), computes every live replica's fair share of the cameras (largest remainder over capacities, the same
 *   answer on every replica), claims free or expired leases up to its share, in its {@link preference} order (`FOR UPDATE
 *   SKIP LOCKED`: two replicas never take the same row) and releases leases above its share (a replica that joined gets them at its next tick).
 * - A replica that stops renewing (killed, frozen, partitioned) loses its cameras within the TTL: their leases expire
 *   and the others claim them, counting a failover. Its writes after that are refused in their own transaction by the
 *   fencing check (pg-store.ts, `OSPREY_ERR_LEASE_LOST`).
 * - SIGTERM releases every lease at once (holder NULL, position kept), so the others take over without waiting for
 *   the TTL.
 *
 * Choice: row leases with a TTL rather than advisory locks. An advisory lock lives as long as a connection, so a frozen
 * process with an open TCP connection keeps its cameras until the kernel's keepalive gives up (minutes), no fencing
 * token comes with it, and nothing can be stored with it; a row lease expires on the server's clock and carries the
 * token and the position.
 */
import { createHash } from 'node:crypto';
import { OspreyError } from '../core/errors.js';
import type { LeasesConfig } from './config.js';
import type { PostgresEventStore } from './pg-store.js';
import { NOW_MS } from './pg-store.js';
import type { RuleEngineSnapshot } from './rules.js';
import type { Fence } from './store.js';
import type { TrackerSnapshot } from './tracker.js';

/** Where a file camera resumes: the state after its last frame whose events are committed. */
export interface LeasePosition {
  /** Media time of that frame, ms. */
  mediaTimeMs: number;
  /** Wall-clock time of media time 0 (event times are anchorMs + mediaTimeMs on every replica). */
  anchorMs: number;
  tracker: TrackerSnapshot;
  rules: RuleEngineSnapshot;
  /** The file has been read to its end (non-looping): the next holder does not start it again. */
  ended?: boolean;
}

export interface HeldLease {
  camera: string;
  token: number;
  acquiredMs: number;
  position: LeasePosition | null;
  failovers: number;
  /** The replica whose expired lease this one replaced (a failover), else null. */
  takenFrom: string | null;
}

export interface LeaseRow {
  camera: string;
  holder: string | null;
  token: number;
  acquiredMs: number;
  renewedMs: number;
  expiresMs: number;
  failovers: number;
  /** ms since acquisition (0 when free), on the server's clock. */
  leaseAgeMs: number;
  /** Media time of the stored position, ms (file cameras), else null. */
  positionMs: number | null;
}

export interface ReplicaRow {
  replica: string;
  capacity: number;
  heartbeatMs: number;
  alive: boolean;
}

export interface LeaseHooks {
  /** Starts a camera this replica now holds. */
  acquire(lease: HeldLease): void;
  /** Stops a camera (lease lost, released for balance or shutdown) and resolves with the position to store. */
  release(camera: string, why: 'lost' | 'rebalance' | 'shutdown'): Promise<LeasePosition | null>;
  /** The latest committed position of a held camera (stored with each renewal). */
  position(camera: string): LeasePosition | null;
  /** This replica's capacity (cameras; see LeasesConfig.maxCameras). */
  capacity(): number;
  /** Lease changes, for logs and metrics. */
  onChange?(e: { camera: string; change: 'acquired' | 'lost' | 'released'; token: number; takenFrom?: string | null }): void;
}

/**
 * Shares of `n` cameras over replicas by capacity: largest remainder, ties broken by replica id, so every replica
 * computes the same shares and they sum to `n`.
 */
export function fairShares(n: number, replicas: ReadonlyArray<{ replica: string; capacity: number }>): Map<string, number> {
  const list = [...replicas].sort((a, b) => (a.replica < b.replica ? -1 : a.replica > b.replica ? 1 : 0));
  const total = list.reduce((s, r) => s + Math.max(0, r.capacity), 0);
  const out = new Map<string, number>();
  if (list.length === 0) return out;
  if (total <= 0) {
    list.forEach((r, i) => out.set(r.replica, Math.floor(n / list.length) + (i < n % list.length ? 1 : 0)));
    return out;
  }
  const quotas = list.map((r) => ({ r: r.replica, q: (n * Math.max(0, r.capacity)) / total }));
  let given = 0;
  for (const x of quotas) {
    out.set(x.r, Math.floor(x.q));
    given += Math.floor(x.q);
  }
  const byRemainder = [...quotas].sort((a, b) => b.q - Math.floor(b.q) - (a.q - Math.floor(a.q)) || (a.r < b.r ? -1 : 1));
  for (let i = 0; given < n; i = (i + 1) % byRemainder.length, given++) out.set(byRemainder[i]!.r, out.get(byRemainder[i]!.r)! + 1);
  return out;
}

/**
 * A replica's preference order of cameras (rendezvous hashing: md5 of `camera/replica`): it claims in this order and
 * releases from its end, so each replica keeps a stable, spread set of cameras (not the first ones by name).
 */
export const preference = (camera: string, replica: string): string => createHash('md5').update(`${camera}/${replica}`).digest('hex');

/**
 * A replica's capacity in cameras from its measured inference rate: `floor(framesPerSecond / cameraFps)`, at least 1.
 * @param framesPerSecond frames the replica's engine processes per second at most (measured), or null before any.
 * @param cameraFps mean target fps of the cameras.
 */
export function measuredCapacity(framesPerSecond: number | null, cameraFps: number): number {
  if (framesPerSecond === null || !Number.isFinite(framesPerSecond) || framesPerSecond <= 0 || cameraFps <= 0) return 1;
  return Math.max(1, Math.floor(framesPerSecond / cameraFps));
}

/** The capacity to heartbeat: the previous one unless the new one differs by more than 25 % (no churn on noise). */
export function steadyCapacity(previous: number | null, next: number): number {
  if (previous === null || previous <= 0) return next;
  return Math.abs(next - previous) / previous > 0.25 ? next : previous;
}

export class LeaseCoordinator {
  readonly held = new Map<string, HeldLease>();
  /** Leases this replica took over from an expired holder. */
  failovers = 0;
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  private stopped = false;
  lastError: string | null = null;
  /** The capacity last heartbeated (see {@link steadyCapacity}). */
  reportedCapacity: number | null = null;

  constructor(
    private readonly store: PostgresEventStore,
    readonly replicaId: string,
    private cameras: string[],
    readonly config: LeasesConfig,
    private readonly hooks: LeaseHooks,
  ) {}

  /** First tick (claims this replica's share), then one every `renewMs`. @throws OspreyError `OSPREY_ERR_EVENT_STORE`. */
  async start(): Promise<void> {
    await this.store.timed('leases', (c) => c.query('INSERT INTO camera_leases (camera) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING', [this.cameras]));
    await this.tick();
    this.timer = setInterval(() => void this.tick(), this.config.renewMs);
    this.timer.unref();
  }

  /** Camera ids shared by the replicas (a camera added at run time gets a lease row). */
  async setCameras(ids: string[]): Promise<void> {
    this.cameras = [...ids];
    await this.store.timed('leases', (c) => c.query('INSERT INTO camera_leases (camera) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING', [this.cameras]));
  }

  /** The fence an event write of this camera carries, or undefined when this replica does not hold it. */
  fence(camera: string): Fence | undefined {
    const h = this.held.get(camera);
    return h ? { camera, holder: this.replicaId, token: h.token } : undefined;
  }

  /** One round: heartbeat, renew, claim up to the fair share, release above it. Never rejects (errors are kept in lastError). */
  tick(): Promise<void> {
    if (this.ticking) return this.ticking;
    this.ticking = this.round()
      .then(() => {
        this.lastError = null;
      })
      .catch((err: unknown) => {
        this.lastError = (err as Error).message;
      })
      .finally(() => {
        this.ticking = null;
      });
    return this.ticking;
  }

  private async round(): Promise<void> {
    if (this.stopped) return;
    const ttl = this.config.ttlMs;
    const capacity = (this.reportedCapacity = steadyCapacity(this.reportedCapacity, this.hooks.capacity()));
    await this.store.timed('heartbeat', (c) =>
      c.query(
        `INSERT INTO stream_replicas (replica, capacity, heartbeat_ms, expires_ms) VALUES ($1, $2, ${NOW_MS}, ${NOW_MS} + $3)
         ON CONFLICT (replica) DO UPDATE SET capacity = excluded.capacity, heartbeat_ms = excluded.heartbeat_ms, expires_ms = excluded.expires_ms`,
        [this.replicaId, capacity, ttl],
      ),
    );
    // Renew what is held; what cannot be renewed is lost (expired and maybe taken by another replica).
    for (const [camera, h] of [...this.held]) {
      if (this.stopped) return;
      const pos = this.hooks.position(camera);
      const r = await this.store.timed('renewLease', (c) =>
        c.query(`UPDATE camera_leases SET renewed_ms = ${NOW_MS}, expires_ms = ${NOW_MS} + $4, position = COALESCE($5::jsonb, position) WHERE camera = $1 AND holder = $2 AND token = $3 AND expires_ms > ${NOW_MS}`, [camera, this.replicaId, h.token, ttl, pos ? JSON.stringify(pos) : null]),
      );
      if (r.rowCount === 0) await this.lose(camera, h);
    }
    const live = await this.store.timed('replicas', async (c) => (await c.query<{ replica: string; capacity: number }>(`SELECT replica, capacity FROM stream_replicas WHERE expires_ms > ${NOW_MS}`)).rows);
    if (!live.some((r) => r.replica === this.replicaId)) live.push({ replica: this.replicaId, capacity });
    const share = fairShares(this.cameras.length, live).get(this.replicaId) ?? 0;
    if (this.held.size < share) {
      const got = await this.store.timed('claimLeases', async (c) =>
        (
          await c.query<{ camera: string; token: number; acquired_ms: number; position: LeasePosition | null; failovers: number; prev: string | null }>(
            `WITH f AS (
               SELECT camera, holder AS prev FROM camera_leases
               WHERE camera = ANY($1::text[]) AND (holder IS NULL OR expires_ms <= ${NOW_MS}) AND NOT (holder IS NOT NULL AND holder = $2 AND camera = ANY($5::text[]))
               ORDER BY md5(camera || '/' || $2) LIMIT $3 FOR UPDATE SKIP LOCKED)
             UPDATE camera_leases l SET holder = $2, token = l.token + 1, acquired_ms = ${NOW_MS}, renewed_ms = ${NOW_MS}, expires_ms = ${NOW_MS} + $4,
               failovers = l.failovers + (CASE WHEN f.prev IS NOT NULL AND f.prev <> $2 THEN 1 ELSE 0 END)
             FROM f WHERE l.camera = f.camera
             RETURNING l.camera, l.token, l.acquired_ms, l.position, l.failovers, f.prev`,
            [this.cameras, this.replicaId, share - this.held.size, ttl, [...this.held.keys()]],
          )
        ).rows,
      );
      for (const g of got) {
        const takenFrom = g.prev !== null && g.prev !== this.replicaId ? g.prev : null;
        if (takenFrom) this.failovers++;
        const lease: HeldLease = { camera: g.camera, token: g.token, acquiredMs: g.acquired_ms, position: g.position, failovers: g.failovers, takenFrom };
        this.held.set(g.camera, lease);
        this.hooks.onChange?.({ camera: g.camera, change: 'acquired', token: g.token, takenFrom });
        this.hooks.acquire(lease);
      }
    } else if (this.held.size > share) {
      // Above the share (a replica joined): release the excess; its holder-to-be claims them at its next tick.
      const excess = [...this.held.keys()].sort((x, y) => preference(x, this.replicaId).localeCompare(preference(y, this.replicaId))).slice(share);
      for (const camera of excess) await this.release(camera, 'rebalance');
    }
  }

  private async lose(camera: string, h: HeldLease): Promise<void> {
    if (this.held.get(camera) !== h) return;
    this.held.delete(camera);
    this.hooks.onChange?.({ camera, change: 'lost', token: h.token });
    await this.hooks.release(camera, 'lost');
  }

  /** A write was fenced out: the lease is gone; stop the camera now (the next tick would). */
  async fencedOut(camera: string, token: number): Promise<void> {
    const h = this.held.get(camera);
    if (h && h.token === token) await this.lose(camera, h);
  }

  private async release(camera: string, why: 'rebalance' | 'shutdown'): Promise<void> {
    const h = this.held.get(camera);
    if (!h) return;
    const pos = await this.hooks.release(camera, why);
    this.held.delete(camera);
    await this.store.timed('releaseLease', (c) =>
      c.query('UPDATE camera_leases SET holder = NULL, expires_ms = 0, position = COALESCE($4::jsonb, position) WHERE camera = $1 AND holder = $2 AND token = $3', [camera, this.replicaId, h.token, pos ? JSON.stringify(pos) : null]),
    );
    this.hooks.onChange?.({ camera, change: 'released', token: h.token });
  }

  /** Every lease row (all replicas), for the API and the dashboard. */
  async list(): Promise<{ leases: LeaseRow[]; replicas: ReplicaRow[] }> {
    return this.store.timed('listLeases', async (c) => {
      const l = await c.query<{ camera: string; holder: string | null; token: number; acquired_ms: number; renewed_ms: number; expires_ms: number; failovers: number; position_ms: number | null; now_ms: number }>(
        `SELECT camera, holder, token, acquired_ms, renewed_ms, expires_ms, failovers, (position->>'mediaTimeMs')::double precision AS position_ms, ${NOW_MS} AS now_ms FROM camera_leases ORDER BY camera`,
      );
      const r = await c.query<{ replica: string; capacity: number; heartbeat_ms: number; alive: boolean }>(`SELECT replica, capacity, heartbeat_ms, expires_ms > ${NOW_MS} AS alive FROM stream_replicas ORDER BY replica`);
      return {
        leases: l.rows.map((x) => {
          const live = x.holder !== null && x.expires_ms > x.now_ms;
          return { camera: x.camera, holder: live ? x.holder : null, token: x.token, acquiredMs: x.acquired_ms, renewedMs: x.renewed_ms, expiresMs: x.expires_ms, failovers: x.failovers, leaseAgeMs: live ? x.now_ms - x.acquired_ms : 0, positionMs: x.position_ms };
        }),
        replicas: r.rows.map((x) => ({ replica: x.replica, capacity: x.capacity, heartbeatMs: x.heartbeat_ms, alive: x.alive })),
      };
    });
  }

  /** Stops renewing and releases every lease (SIGTERM): the other replicas take the cameras at their next tick. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.ticking;
    this.stopped = true;
    for (const camera of [...this.held.keys()]) {
      try {
        await this.release(camera, 'shutdown');
      } catch (err) {
        this.lastError = (err as Error).message;
      }
    }
    await this.store.timed('heartbeat', (c) => c.query('DELETE FROM stream_replicas WHERE replica = $1', [this.replicaId])).catch(() => undefined);
  }
}

/** @throws OspreyError `OSPREY_ERR_USAGE` when leases are asked for without a PostgreSQL store. */
export function requirePostgres(kind: string): void {
  if (kind !== 'postgres') throw new OspreyError('OSPREY_ERR_USAGE', '--replica-id shares cameras through leases in PostgreSQL: pass --store postgres://… (or store: { kind: postgres, url } in cameras.yaml)');
}
