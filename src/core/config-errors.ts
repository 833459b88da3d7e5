/**
 * One way to report a bad configuration, shared by every config Osprey reads (model `config.json`/`config.yaml`,
 * the repository's `aliases.yaml`, `cameras.yaml`, load requests): the message starts with the file (or "load
 * request"), then the key path in JavaScript notation (`cameras[1].rules[0].zone[2]`, `dynamicBatching.maxQueueDelayMicroseconds`),
 * then what was wrong; `details` carries `{ file, keyPath }` with the same spelling everywhere, and the root of a
 * document is the key path `(root)`.
 */
import type { TSchema } from '@sinclair/typebox';
import { ValueErrorType } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';
import { OspreyError, type ErrorCode } from './errors.js';

/** The key path of a whole document. */
export const ROOT_KEY_PATH = '(root)';

/**
 * `path` + `key` in JavaScript notation.
 * @example joinKeyPath('cameras', 1) === 'cameras[1]'; joinKeyPath('cameras[1]', 'url') === 'cameras[1].url'; joinKeyPath('', 'model') === 'model'
 */
export function joinKeyPath(path: string, key: string | number): string {
  return typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${key}` : key;
}

/**
 * A JSON pointer (RFC 6901, what TypeBox reports: `/cameras/1/url`) as a key path (`cameras[1].url`); `''` → `(root)`.
 */
export function pointerToKeyPath(pointer: string): string {
  const parts = pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  let out = '';
  for (const p of parts) out = /^[0-9]+$/.test(p) ? `${out}[${p}]` : joinKeyPath(out, p);
  return out || ROOT_KEY_PATH;
}

/**
 * The error for a bad key: message `<file>: <keyPath>: <message>` (the file left out when `file` is empty),
 * details `{ file, keyPath }`.
 * @example configError('models/yolo/config.json', 'maxBatchSize', 'expected an integer ≥ 0, got -1')
 */
export function configError(file: string, keyPath: string, message: string, code: ErrorCode = 'OSPREY_ERR_CONFIG'): OspreyError {
  const prefix = [file, keyPath].filter((s) => s !== '').join(': ');
  return new OspreyError(code, prefix ? `${prefix}: ${message}` : message, { ...(file ? { file } : {}), keyPath: keyPath || ROOT_KEY_PATH });
}

const snakeToCamel = (s: string): string => s.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());

/**
 * Checks `raw` against a TypeBox schema; the first violation as a {@link configError} worded by
 * {@link describeSchemaError}, else `undefined`.
 * @param file the file name (or "load request") for the message and `details.file`
 */
export function schemaError(schema: TSchema, raw: unknown, file: string): OspreyError | undefined {
  const bad = describeSchemaError(schema, raw);
  return bad && configError(file, bad.keyPath === ROOT_KEY_PATH ? '' : bad.keyPath, bad.message);
}

/** Options of {@link describeSchemaError}. */
export interface SchemaErrorOptions {
  /** Values under these key names are never repeated in a message (`password: 1234` → `(value hidden)`). */
  isSensitiveKey?: (key: string) => boolean;
  /** Applied to every message (e.g. credential redaction). */
  redact?: (text: string) => string;
}

function schemaAt(root: TSchema, parts: readonly string[]): TSchema | undefined {
  let s: TSchema | undefined = root;
  for (const p of parts) {
    if (!s) return undefined;
    if (s['properties'] && (s['properties'] as Record<string, TSchema>)[p]) s = (s['properties'] as Record<string, TSchema>)[p];
    else if (Array.isArray(s['items'])) s = (s['items'] as TSchema[])[Number(p)];
    else if (s['items']) s = s['items'] as TSchema;
    else if (s['patternProperties']) s = Object.values(s['patternProperties'] as Record<string, TSchema>)[0];
    else return undefined;
  }
  return s;
}

const valueAt = (raw: unknown, parts: readonly string[]): unknown =>
  parts.reduce<unknown>((v, p) => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[p] : undefined), raw);

/**
 * Checks `raw` against a TypeBox schema and words the first violation as Osprey's hand-written validators did
 * (`cameras[1].fps: must be > 0, got 0`, `cameras[0].fsp: unknown key (allowed: id, name, …)`, `…url: required`,
 * `…rtspTransport: expected tcp or udp, got "quic"`). A schema may carry `message` (e.g. `'expected [x, y] (two
 * numbers, source pixels)'`): an error at or below it is reported at its key path with that message and the value
 * found; `typeMessage` words a wrong type exactly there (`'expected a list of rules'`), `requiredMessage` a missing key.
 * @returns `{ keyPath, message }` of the first violation, or undefined when `raw` fits.
 */
export function describeSchemaError(root: TSchema, raw: unknown, o: SchemaErrorOptions = {}): { keyPath: string; message: string } | undefined {
  const first = Value.Errors(root, raw).First();
  if (!first) return undefined;
  const parts = first.path.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const redact = o.redact ?? ((t: string) => t);
  const pathOf = (ps: readonly string[]): string => pointerToKeyPath(ps.length ? `/${ps.join('/')}` : '');
  const say = (ps: readonly string[], message: string) => ({ keyPath: pathOf(ps), message: redact(message) });
  const key = parts.at(-1) ?? '';
  const shown = (v: unknown, k = key): string => (o.isSensitiveKey?.(k) ? '(value hidden)' : JSON.stringify(v));
  // A schema with its own wording, at the error or above it.
  for (let n = parts.length; n >= 1; n--) {
    const s = schemaAt(root, parts.slice(0, n));
    if (s && typeof s['message'] === 'string' && first.type !== ValueErrorType.ObjectRequiredProperty) {
      const v = valueAt(raw, parts.slice(0, n));
      return say(parts.slice(0, n), `${s['message'] as string}, got ${shown(v, parts[n - 1])}`);
    }
  }
  const s = first.schema;
  const v = first.value;
  if (first.type === ValueErrorType.ObjectRequiredProperty && typeof s['requiredMessage'] === 'string') return say(parts, s['requiredMessage'] as string);
  if ((first.type === ValueErrorType.Object || first.type === ValueErrorType.Array) && typeof s['typeMessage'] === 'string') return say(parts, s['typeMessage'] as string);
  switch (first.type) {
    case ValueErrorType.ObjectAdditionalProperties: {
      // Triton's config.pbtxt spells keys in snake_case; Osprey's are the same keys in camelCase.
      const camel = snakeToCamel(key);
      const hint = camel !== key && camel in ((s['properties'] ?? {}) as object) ? ` (Osprey config keys are Triton's in camelCase: did you mean '${camel}'?)` : '';
      return say(parts, `unknown key (allowed: ${Object.keys((s['properties'] ?? {}) as object).join(', ')})${hint}`);
    }
    case ValueErrorType.ObjectRequiredProperty:
      return say(parts, 'required');
    case ValueErrorType.Object:
      return say(parts, 'expected a mapping');
    case ValueErrorType.Array:
      return say(parts, 'expected a list');
    case ValueErrorType.Boolean:
      return say(parts, `expected true or false, got ${shown(v)}`);
    case ValueErrorType.String:
    case ValueErrorType.StringMinLength:
      return say(parts, `expected a non-empty string, got ${shown(v)}`);
    case ValueErrorType.Number:
      return say(parts, `expected a number, got ${shown(v)}`);
    case ValueErrorType.Integer:
      return say(parts, typeof v === 'number' && Number.isFinite(v) ? `expected an integer, got ${v}` : `expected a number, got ${shown(v)}`);
    case ValueErrorType.NumberExclusiveMinimum:
    case ValueErrorType.IntegerExclusiveMinimum:
      return say(parts, `must be > ${s['exclusiveMinimum']}, got ${v}`);
    case ValueErrorType.NumberMinimum:
    case ValueErrorType.IntegerMinimum:
      return say(parts, `must be ≥ ${s['minimum']}, got ${v}`);
    case ValueErrorType.NumberMaximum:
    case ValueErrorType.IntegerMaximum:
      return say(parts, `must be ≤ ${s['maximum']}, got ${v}`);
    case ValueErrorType.Union: {
      const options = ((s['anyOf'] ?? []) as TSchema[]).map((x) => x['const']).filter((c) => c !== undefined);
      const list = options.length > 1 ? `${options.slice(0, -1).join(', ')} or ${options.at(-1)}` : 'one of the allowed values';
      return say(parts, `expected ${list}, got ${shown(v)}`);
    }
    default:
      return say(parts, `${first.message.toLowerCase()}, got ${shown(v)}`);
  }
}
