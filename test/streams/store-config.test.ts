/** `store:` / `leases:` of cameras.yaml and the `--store` flag: defaults, forms, errors naming the key path, no password echoed. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { OspreyError } from '../../src/core/errors.js';
import { parseStreamsConfig } from '../../src/streams/config.js';
import { parseLeases, parseStore } from '../../src/streams/store-config.js';

const configError = (re: RegExp, secret?: string) => (e: OspreyError) => e.code === 'OSPREY_ERR_CONFIG' && re.test(e.message) && (!secret || !e.message.includes(secret));

test('store: sqlite by default; postgres as a mapping or a bare URL (the --store form)', () => {
  assert.deepEqual(parseStreamsConfig({ cameras: [] }).store, { kind: 'sqlite' });
  assert.deepEqual(parseStore('sqlite'), { kind: 'sqlite' });
  assert.deepEqual(parseStore('postgres://u:pw@db:5432/osprey'), { kind: 'postgres', url: 'postgres://u:pw@db:5432/osprey', maxConnections: 8 });
  assert.deepEqual(parseStreamsConfig({ cameras: [], store: { kind: 'postgres', url: 'postgresql://db/osprey', maxConnections: 3 } }).store, { kind: 'postgres', url: 'postgresql://db/osprey', maxConnections: 3 });
});

test('store: errors name the key path and never repeat the password', () => {
  assert.throws(() => parseStore({ kind: 'postgres', url: 'mysql://u:hunter2-secret@h/db' }), configError(/^store\.url: expected a postgres:\/\/ URL .*"mysql:\/\/u:\*\*\*@h\/db"/, 'hunter2-secret'));
  assert.throws(() => parseStore('mysql://u:hunter2-secret@h/db', '--store'), configError(/^--store\.url:/, 'hunter2-secret'));
  assert.throws(() => parseStore({ kind: 'oracle' }), configError(/^store\.kind: expected sqlite or postgres, got "oracle"/));
  assert.throws(() => parseStore({ kind: 'sqlite', url: 'postgres://h/db' }), configError(/^store\.url: a sqlite store takes its file from events\.database/));
  assert.throws(() => parseStore({ kind: 'postgres', url: 'postgres://h/db', pool: 3 }), configError(/^store\.pool: unknown key \(allowed: kind, url, maxConnections\)/));
  assert.throws(() => parseStore({ kind: 'postgres', url: 'postgres://h/db', maxConnections: 0 }), configError(/^store\.maxConnections: must be in 1\.\.100, got 0/));
  assert.throws(() => parseStore(42), configError(/^store: expected a mapping/));
});

test('leases: defaults (10 s TTL, renew TTL/3, measured capacity); renewMs must be below ttlMs', () => {
  assert.deepEqual(parseLeases(undefined), { ttlMs: 10000, renewMs: 3333, maxCameras: 0 });
  assert.deepEqual(parseLeases({ ttlMs: 4000 }), { ttlMs: 4000, renewMs: 1333, maxCameras: 0 });
  assert.deepEqual(parseStreamsConfig({ cameras: [], leases: { ttlMs: 6000, renewMs: 1000, maxCameras: 4 } }).leases, { ttlMs: 6000, renewMs: 1000, maxCameras: 4 });
  assert.throws(() => parseLeases({ ttlMs: 3000, renewMs: 3000 }), configError(/^leases\.renewMs: must be < ttlMs \(3000\), got 3000/));
  assert.throws(() => parseLeases({ ttlMs: 100 }), configError(/^leases\.ttlMs: must be in 500\.\./));
  assert.throws(() => parseLeases({ ttl: 5 }), configError(/^leases\.ttl: unknown key/));
});
