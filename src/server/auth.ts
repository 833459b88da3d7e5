/**
 * Access control of `osprey serve`: which API groups need credentials, and the check itself, shared by the HTTP
 * and gRPC front ends (and the streams control routes of `osprey serve --cameras`).
 *
 * API groups use Triton's names (`--http-restricted-api` / `--grpc-restricted-protocol`): `health`, `metadata`,
 * `inference`, `model-config`, `model-repository`, `statistics`, plus Osprey's `metrics` (`/metrics`) and
 * `camera-control` (the streams API routes that change cameras and rules). A restriction names groups and the
 * credential they need:
 * - a **bearer token** (`Authorization: Bearer <token>`; gRPC metadata `authorization`), tokens from a file (one per
 *   line, `#` comments) or the `OSPREY_AUTH_TOKEN` environment variable — the secure choice, since command lines are
 *   visible to every user of the machine (`ps`);
 * - or Triton's **header key=value** form (`--http-restricted-api model-repository:admin-key=secret`).
 *
 * Credentials are compared in constant time (SHA-256 digests of both sides through `crypto.timingSafeEqual`, so
 * neither the content nor the length of a token leaks through timing). Tokens never appear in logs, errors or
 * metrics: {@link describeRestrictions} names only groups and header names.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { OspreyError } from '../core/errors.js';

/** The API groups (Triton's restricted-API names, plus Osprey's `metrics` and `camera-control`). */
export const API_GROUPS = ['health', 'metadata', 'inference', 'model-config', 'model-repository', 'statistics', 'metrics', 'camera-control'] as const;
export type ApiGroup = (typeof API_GROUPS)[number];

/** Groups a bearer token protects when none are named: the control and admin routes. */
export const DEFAULT_RESTRICTED_GROUPS: readonly ApiGroup[] = ['model-repository', 'camera-control'];

/** Environment variable holding bearer tokens (comma- or newline-separated). */
export const AUTH_TOKEN_ENV = 'OSPREY_AUTH_TOKEN';

/** One restriction: these groups need this credential. */
export interface Restriction {
  groups: ReadonlySet<ApiGroup>;
  /** `bearer`: `authorization: Bearer <token>` with one of the tokens; `header`: `<name>: <value>`. */
  kind: 'bearer' | 'header';
  /** Header (HTTP) / metadata key (gRPC), lower case. */
  header: string;
  /** SHA-256 digests of the accepted secrets (never the secrets themselves). */
  digests: readonly Buffer[];
}

/** Headers of a request, as node:http or grpc-js metadata give them (lower-case keys). */
export type CredentialHeaders = Readonly<Record<string, string | string[] | Buffer | undefined>>;

const digest = (s: string | Buffer): Buffer => createHash('sha256').update(s).digest();

/** Constant-time membership of a presented secret among accepted digests. */
function matchesAny(presented: string, digests: readonly Buffer[]): boolean {
  const d = digest(presented);
  let ok = false;
  for (const want of digests) ok = timingSafeEqual(d, want) || ok; // no early exit: every digest is compared
  return ok;
}

/** Parses a list of group names (`model-repository,statistics`), refusing unknown ones. */
export function parseApiGroups(text: string, where: string): Set<ApiGroup> {
  const out = new Set<ApiGroup>();
  for (const raw of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (!(API_GROUPS as readonly string[]).includes(raw)) {
      throw new OspreyError('OSPREY_ERR_USAGE', `${where}: unknown API group '${raw}' (one of ${API_GROUPS.join(', ')})`);
    }
    out.add(raw as ApiGroup);
  }
  if (out.size === 0) throw new OspreyError('OSPREY_ERR_USAGE', `${where}: name at least one API group (${API_GROUPS.join(', ')})`);
  return out;
}

/**
 * Triton's restricted-API form `GROUPS:KEY=VALUE`, e.g. `model-repository,statistics:admin-key=s3cret`.
 * @throws OspreyError `OSPREY_ERR_USAGE` naming the flag (the value is never echoed).
 */
export function parseTritonRestriction(spec: string, flag: string): Restriction {
  const colon = spec.indexOf(':');
  const eq = spec.indexOf('=', colon + 1);
  if (colon <= 0 || eq <= colon + 1 || eq === spec.length - 1) {
    throw new OspreyError('OSPREY_ERR_USAGE', `${flag} takes <api group>[,<api group>...]:<key>=<value> (e.g. model-repository:admin-key=<secret>)`);
  }
  const header = spec.slice(colon + 1, eq).trim().toLowerCase();
  if (!/^[a-z0-9-]+$/.test(header)) throw new OspreyError('OSPREY_ERR_USAGE', `${flag}: '${header}' is not a valid header name`);
  return { groups: parseApiGroups(spec.slice(0, colon), flag), kind: 'header', header, digests: [digest(spec.slice(eq + 1))] };
}

/**
 * Reads bearer tokens: one per line of `file` (blank lines and `#` comments skipped) and/or the
 * {@link AUTH_TOKEN_ENV} variable (comma- or newline-separated).
 * @throws OspreyError `OSPREY_ERR_FILE_NOT_FOUND` (file unreadable), `OSPREY_ERR_USAGE` (no token, or a token under
 *   16 characters: too easy to guess).
 */
export async function readBearerTokens(options: { file?: string; env?: NodeJS.ProcessEnv }): Promise<string[]> {
  const tokens: string[] = [];
  if (options.file !== undefined) {
    const text = await readFile(options.file, 'utf8').catch(() => {
      throw new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `${options.file}: cannot read the auth token file`, { path: options.file });
    });
    for (const line of text.split(/\r?\n/)) {
      const t = line.trim();
      if (t && !t.startsWith('#')) tokens.push(t);
    }
    if (tokens.length === 0) throw new OspreyError('OSPREY_ERR_USAGE', `${options.file}: the auth token file holds no token`);
  }
  const fromEnv = (options.env ?? process.env)[AUTH_TOKEN_ENV];
  if (fromEnv !== undefined) tokens.push(...fromEnv.split(/[,\n]/).map((s) => s.trim()).filter(Boolean));
  for (const [i, t] of tokens.entries()) {
    if (t.length < 16) throw new OspreyError('OSPREY_ERR_USAGE', `auth token ${i + 1} is shorter than 16 characters; use a random one (e.g. \`openssl rand -hex 32\`)`);
  }
  return tokens;
}

/** A bearer-token restriction over `groups`. */
export function bearerRestriction(tokens: readonly string[], groups: Iterable<ApiGroup> = DEFAULT_RESTRICTED_GROUPS): Restriction {
  return { groups: new Set(groups), kind: 'bearer', header: 'authorization', digests: tokens.map((t) => digest(t)) };
}

function headerValue(headers: CredentialHeaders, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  if (Array.isArray(v)) return v[0];
  return Buffer.isBuffer(v) ? v.toString('utf8') : v;
}

/**
 * The access policy: a request to a group passes when it satisfies every restriction naming that group.
 *
 * @example
 *   const policy = new AccessPolicy([bearerRestriction(['0123456789abcdef0123'])]);
 *   policy.check('model-repository', { authorization: 'Bearer 0123456789abcdef0123' }); // passes
 *   policy.check('model-repository', {}); // throws OSPREY_ERR_UNAUTHENTICATED
 */
export class AccessPolicy {
  constructor(readonly restrictions: readonly Restriction[] = []) {}

  /** True when `group` needs credentials. */
  isRestricted(group: ApiGroup): boolean {
    return this.restrictions.some((r) => r.groups.has(group));
  }

  /**
   * @throws OspreyError `OSPREY_ERR_UNAUTHENTICATED` (401 / UNAUTHENTICATED) when a restriction on `group` is not met;
   *   the message names the group and the header expected, never a secret.
   */
  check(group: ApiGroup, headers: CredentialHeaders): void {
    for (const r of this.restrictions) {
      if (!r.groups.has(group)) continue;
      const raw = headerValue(headers, r.header);
      let presented: string | undefined = raw;
      if (r.kind === 'bearer') {
        const m = raw === undefined ? null : /^Bearer[ ]+(\S+)\s*$/i.exec(raw);
        presented = m ? m[1] : undefined;
      }
      if (presented === undefined || !matchesAny(presented, r.digests)) {
        const how = r.kind === 'bearer' ? "an 'Authorization: Bearer <token>' header (gRPC: 'authorization' metadata)" : `the '${r.header}' header (gRPC: metadata)`;
        throw new OspreyError('OSPREY_ERR_UNAUTHENTICATED', `the '${group}' API needs credentials: send ${how} with a value the server accepts`, { group });
      }
    }
  }
}

/** What is restricted, for the startup log (group and header names only). */
export function describeRestrictions(policy: AccessPolicy): Array<{ groups: string[]; credential: string }> {
  return policy.restrictions.map((r) => ({ groups: [...r.groups], credential: r.kind === 'bearer' ? `bearer token (${r.digests.length})` : `header ${r.header}` }));
}

/**
 * The API group of an HTTP route (method + path without the query string), Triton's grouping.
 * Unknown paths map to `metadata` (they answer 404 anyway).
 */
export function httpApiGroup(method: string, path: string): ApiGroup {
  if (path.startsWith('/v2/health/')) return 'health';
  if (path.startsWith('/v2/repository/')) return 'model-repository';
  if (path === '/metrics') return 'metrics';
  if (path.startsWith('/api/')) return method === 'GET' || method === 'HEAD' ? 'metadata' : 'camera-control';
  if (/^\/v2\/models\/[^/]+(\/versions\/[^/]+)?\/(infer|detect)$/.test(path)) return 'inference';
  if (/^\/v2\/models\/[^/]+(\/versions\/[^/]+)?\/config$/.test(path)) return 'model-config';
  if (/^\/v2\/models(\/[^/]+(\/versions\/[^/]+)?)?\/stats$/.test(path)) return 'statistics';
  return 'metadata';
}

/** The API group of a gRPC method of `inference.GRPCInferenceService` or `grpc.health.v1.Health`. */
export function grpcApiGroup(method: string): ApiGroup {
  switch (method) {
    case 'ServerLive':
    case 'ServerReady':
    case 'Check':
    case 'Watch':
      return 'health';
    case 'ModelInfer':
    case 'ModelStreamInfer':
      return 'inference';
    case 'ModelConfig':
      return 'model-config';
    case 'ModelStatistics':
      return 'statistics';
    case 'RepositoryIndex':
    case 'RepositoryModelLoad':
    case 'RepositoryModelUnload':
      return 'model-repository';
    default:
      return 'metadata';
  }
}
