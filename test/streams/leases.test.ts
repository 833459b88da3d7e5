/**
 * Camera leases over a real PostgreSQL server (test/support/postgres.ts): three coordinators share six cameras by
 * fair share; one stops renewing and loses its cameras to the others within the TTL (failovers counted, fencing
 * tokens bumped, its writes refused); it comes back and the cameras rebalance; positions travel with the lease;
 * SIGTERM-style stop releases at once. The hooks here only record what the coordinator asks the manager to do.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { OspreyError } from '../../src/core/errors.js';
import { fairShares, LeaseCoordinator, measuredCapacity, steadyCapacity, type LeaseHooks, type LeasePosition } from '../../src/streams/leases.js';
import { PostgresEventStore } from '../../src/streams/pg-store.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';

const dir = mkdtempSync(join(tmpdir(), 'osprey-leases-'));
let pg: TestPostgres;
let store: PostgresEventStore;
before(async () => {
  pg = await startPostgres();
  store = await PostgresEventStore.open({ url: pg.url, snapshotsDir: join(dir, 'snaps'), retention: { maxEvents: 1000, maxAgeHours: 1 } });
});
after(async () => {
  await store?.close();
  pg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('fair shares: largest remainder by capacity, the same on every replica, summing to the camera count', () => {
  const s = (n: number, caps: Record<string, number>) => Object.fromEntries(fairShares(n, Object.entries(caps).map(([replica, capacity]) => ({ replica, capacity }))));
  assert.deepEqual(s(6, { a: 1, b: 1, c: 1 }), { a: 2, b: 2, c: 2 });
  assert.deepEqual(s(7, { c: 1, a: 1, b: 1 }), { a: 3, b: 2, c: 2 });
  assert.deepEqual(s(6, { a: 4, b: 2 }), { a: 4, b: 2 });
  assert.deepEqual(s(5, { a: 3, b: 1, c: 1 }), { a: 3, b: 1, c: 1 });
  assert.deepEqual(s(6, { a: 0, b: 0 }), { a: 3, b: 3 });
  assert.deepEqual(s(0, { a: 1 }), { a: 0 });
});

test('measured capacity: cameras = engine frames/s over camera fps, at least 1; heartbeated again only past ±25 %', () => {
  assert.equal(measuredCapacity(null, 5), 1, 'nothing measured yet: one camera');
  assert.equal(measuredCapacity(47.9, 5), 9);
  assert.equal(measuredCapacity(3, 5), 1);
  assert.equal(steadyCapacity(null, 9), 9);
  assert.equal(steadyCapacity(9, 10), 9, 'noise does not move the shares');
  assert.equal(steadyCapacity(9, 12), 12);
  assert.equal(steadyCapacity(9, 6), 6);
});

function replica(id: string, cameras: string[], ttlMs: number) {
  const running = new Map<string, number>();
  const log: string[] = [];
  const positions = new Map<string, LeasePosition>();
  const received = new Map<string, LeasePosition | null>();
  const hooks: LeaseHooks = {
    acquire: (l) => {
      running.set(l.camera, l.token);
      received.set(l.camera, l.position);
      log.push(`acquire ${l.camera}${l.takenFrom ? ` from ${l.takenFrom}` : ''}`);
    },
    release: async (camera, why) => {
      running.delete(camera);
      log.push(`${why} ${camera}`);
      return positions.get(camera) ?? null;
    },
    position: (camera) => positions.get(camera) ?? null,
    capacity: () => 1,
  };
  const co = new LeaseCoordinator(store, id, cameras, { ttlMs, renewMs: Math.round(ttlMs / 3), maxCameras: 0 }, hooks);
  return { co, running, log, positions, received };
}

test('three replicas share six cameras; one stops renewing → the others take its cameras within the TTL, fence it out; it returns → rebalance', async () => {
  const cams = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6'];
  const ttl = 1500;
  const [a, b, c] = ['ra', 'rb', 'rc'].map((id) => replica(id, cams, ttl)) as [ReturnType<typeof replica>, ReturnType<typeof replica>, ReturnType<typeof replica>];
  await a.co.setCameras(cams);
  // Every replica heartbeats first (as they do within one renew period of starting), then claims its share.
  for (let round = 0; round < 3; round++) for (const r of [a, b, c]) await r.co.tick();
  assert.deepEqual([a.running.size, b.running.size, c.running.size], [2, 2, 2], 'fair share of 6 over 3');
  const all = new Set([...a.running.keys(), ...b.running.keys(), ...c.running.keys()]);
  assert.equal(all.size, 6, 'every camera held exactly once');
  // a holds a position for one camera; it is stored with the renewal.
  const aCam = [...a.running.keys()][0]!;
  const pos: LeasePosition = { mediaTimeMs: 4200, anchorMs: 1000, tracker: { tracks: [], nextId: 7, frame: 21 }, rules: { state: [], lastFiredMs: [], recent: [] } };
  a.positions.set(aCam, pos);
  await a.co.tick();
  const aFence = a.co.fence(aCam)!;
  // a stops renewing (frozen). b and c keep ticking; within the TTL (+ one renew period) a's cameras move.
  const t0 = Date.now();
  while (b.running.size + c.running.size < 6) {
    if (Date.now() - t0 > ttl + 2 * (ttl / 3) + 1000) assert.fail(`takeover took longer than the TTL: b ${[...b.running.keys()]}, c ${[...c.running.keys()]}`);
    await sleep(ttl / 3);
    await b.co.tick();
    await c.co.tick();
  }
  const takeoverMs = Date.now() - t0;
  assert.ok(takeoverMs <= ttl + (2 * ttl) / 3 + 500, `taken over in ${takeoverMs} ms (TTL ${ttl} ms)`);
  assert.deepEqual([b.running.size, c.running.size], [3, 3]);
  assert.equal(b.co.failovers + c.co.failovers, 2, 'two failovers (a held two cameras)');
  const newHolder = b.running.has(aCam) ? b : c;
  assert.deepEqual(newHolder.received.get(aCam), pos, 'the position travels with the lease');
  assert.ok(newHolder.running.get(aCam)! > aFence.token, 'the fencing token moved on');
  // a's write with its old token is refused in the write's transaction.
  await assert.rejects(
    store.insert({ kind: 'rule', camera: aCam, rule: 'z', ruleType: 'zone', className: 'person', classId: 0, trackId: 1, score: 1, box: [0, 0, 1, 1], timeMs: 5, latencyMs: 0, details: {} }, { fence: aFence }),
    (e: OspreyError) => e.code === 'OSPREY_ERR_LEASE_LOST',
  );
  // a wakes up: its renewals fail, it stops its cameras (lost), then its share is 2 again: the others release, it claims.
  await a.co.tick();
  assert.ok(a.log.filter((l) => l.startsWith('lost')).length === 2, a.log.join('; '));
  for (let round = 0; round < 3; round++) for (const r of [b, c, a]) await r.co.tick();
  assert.deepEqual([a.running.size, b.running.size, c.running.size], [2, 2, 2], 'rebalanced after the replica came back');
  const { leases, replicas } = await a.co.list();
  assert.equal(leases.length, 6);
  assert.ok(leases.every((l) => l.holder !== null && l.leaseAgeMs >= 0));
  assert.equal(leases.reduce((s, l) => s + l.failovers, 0), 2);
  assert.deepEqual(replicas.map((r) => [r.replica, r.alive]), [['ra', true], ['rb', true], ['rc', true]]);
  // SIGTERM: stop releases at once, the others claim at their next tick without waiting for the TTL.
  await c.co.stop();
  assert.equal(c.running.size, 0);
  await a.co.tick();
  await b.co.tick();
  assert.deepEqual([a.running.size, b.running.size], [3, 3]);
  assert.equal((await a.co.list()).leases.reduce((s, l) => s + l.failovers, 0), 2, 'a release is not a failover');
  await a.co.stop();
  await b.co.stop();
});
