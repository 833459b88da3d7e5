/**
 * The `store:` and `leases:` sections of cameras.yaml (and the `--store` flag), validated here so the store and the
 * leases keep their checks in one module: every error is `OSPREY_ERR_CONFIG` naming the key path, and a URL's
 * password is never repeated (src/core/redact.ts). Defaults: {@link STORE_DEFAULTS} (part of config.ts's DEFAULTS).
 *
 * @example
 * ```yaml
 * store: { kind: postgres, url: postgres://osprey:secret@db:5432/osprey, maxConnections: 8 }
 * leases: { ttlMs: 10000, renewMs: 3333, maxCameras: 0 }
 * ```
 */
import { OspreyError } from '../core/errors.js';
import { redactText, redactUrl } from '../core/redact.js';

/**
 * Where events, tracks, camera health, the outbox (and, with PostgreSQL, the camera leases) are kept: `sqlite` (the
 * default: the `events.database` file, one process) or `postgres` (one server shared by replicas).
 */
export type StoreConfig = { kind: 'sqlite' } | { kind: 'postgres'; url: string; maxConnections: number };

/** Camera leases (PostgreSQL store, `--replica-id`): cameras shared by several replicas. */
export interface LeasesConfig {
  /** Lease time to live; a replica that stops renewing loses its cameras within it. Default 10000 ms. */
  ttlMs: number;
  /** Renewal period. Default ttlMs / 3. */
  renewMs: number;
  /**
   * This replica's capacity in cameras for the fair share; 0 = measured: the engine's frames per second (instances /
   * model compute time per frame, from the batcher's statistics after 20 frames; 1 camera before) over the cameras'
   * mean fps, heartbeated again only when it moves by more than 25 %. Default 0.
   */
  maxCameras: number;
}

export const STORE_DEFAULTS = {
  store: { kind: 'sqlite' as const, maxConnections: 8 },
  leases: { ttlMs: 10000, maxCameras: 0 },
} as const;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const at = (path: string, key: string): string => `${path}.${key}`;

function fail(path: string, message: string): never {
  throw new OspreyError('OSPREY_ERR_CONFIG', `${path}: ${redactText(message)}`, { keyPath: path });
}

function keys(o: Obj, allowed: readonly string[], path: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) fail(at(path, k), `unknown key (allowed: ${allowed.join(', ')})`);
}

function int(o: Obj, key: string, path: string, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = o[key];
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(at(path, key), `expected an integer, got ${JSON.stringify(v)}`);
  if (v < min || v > max) fail(at(path, key), `must be in ${min}..${max === Number.MAX_SAFE_INTEGER ? '' : max}, got ${v}`);
  return v;
}

/**
 * `store:` — `{ kind: sqlite }` (default) or `{ kind: postgres, url: postgres://user:password@host:5432/db }`; a bare
 * `postgres://` URL string (or `sqlite`) is accepted too: the `--store` flag's form.
 * @throws OspreyError `OSPREY_ERR_CONFIG` naming the key path; the URL's password is never repeated.
 */
export function parseStore(raw: unknown, path = 'store'): StoreConfig {
  if (raw === undefined) return { kind: 'sqlite' };
  const o: Obj = typeof raw === 'string' ? (/^sqlite$/i.test(raw) ? { kind: 'sqlite' } : { kind: 'postgres', url: raw }) : isObj(raw) ? raw : fail(path, 'expected a mapping { kind: sqlite | postgres, url }');
  keys(o, ['kind', 'url', 'maxConnections'], path);
  const kind = o['kind'] ?? STORE_DEFAULTS.store.kind;
  if (kind === 'sqlite') {
    if (o['url'] !== undefined) fail(at(path, 'url'), 'a sqlite store takes its file from events.database, not a url');
    return { kind: 'sqlite' };
  }
  if (kind !== 'postgres') fail(at(path, 'kind'), `expected sqlite or postgres, got ${JSON.stringify(kind)}`);
  const url = o['url'];
  if (typeof url !== 'string' || !/^postgres(ql)?:\/\/[^/]/i.test(url)) {
    fail(at(path, 'url'), `expected a postgres:// URL (postgres://user@host:5432/database, the password after the user), got ${typeof url === 'string' ? JSON.stringify(redactUrl(url)) : '(not a string)'}`);
  }
  try {
    new URL(url);
  } catch {
    fail(at(path, 'url'), `not a valid URL: ${JSON.stringify(redactUrl(url))}`);
  }
  return { kind: 'postgres', url, maxConnections: int(o, 'maxConnections', path, STORE_DEFAULTS.store.maxConnections, 1, 100) };
}

/**
 * `leases:` — `{ ttlMs ≥ 500 (default 10000), renewMs ≥ 100 and < ttlMs (default ttlMs / 3), maxCameras ≥ 0 (default 0 = measured) }`.
 * @throws OspreyError `OSPREY_ERR_CONFIG` naming the key path.
 */
export function parseLeases(raw: unknown, path = 'leases'): LeasesConfig {
  const d = STORE_DEFAULTS.leases;
  if (raw === undefined) return { ttlMs: d.ttlMs, renewMs: Math.round(d.ttlMs / 3), maxCameras: d.maxCameras };
  if (!isObj(raw)) fail(path, 'expected a mapping { ttlMs, renewMs, maxCameras }');
  keys(raw, ['ttlMs', 'renewMs', 'maxCameras'], path);
  const ttlMs = int(raw, 'ttlMs', path, d.ttlMs, 500);
  const renewMs = int(raw, 'renewMs', path, Math.round(ttlMs / 3), 100);
  if (renewMs >= ttlMs) fail(at(path, 'renewMs'), `must be < ttlMs (${ttlMs}), got ${renewMs}`);
  return { ttlMs, renewMs, maxCameras: int(raw, 'maxCameras', path, d.maxCameras, 0) };
}
