/**
 * One way to report a bad configuration, shared by every config Osprey reads (model `config.json`/`config.yaml`,
 * the repository's `aliases.yaml`, `cameras.yaml`, load requests): the message starts with the file (or "load
 * request"), then the key path in JavaScript notation (`cameras[1].rules[0].zone[2]`, `dynamicBatching.maxQueueDelayMicroseconds`),
 * then what was wrong; `details` carries `{ file, keyPath }` with the same spelling everywhere, and the root of a
 * document is the key path `(root)`.
 */
import { Type, type TSchema } from '@sinclair/typebox';
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
 * Checks `raw` against a TypeBox schema; the first violation as a {@link configError} (unknown keys named as such,
 * with a camelCase hint when the key is a snake_case spelling of one), else `undefined`.
 * @param file the file name (or "load request") for the message and `details.file`
 */
export function schemaError(schema: TSchema, raw: unknown, file: string): OspreyError | undefined {
  const first = Value.Errors(schema, raw).First();
  if (!first) return undefined;
  const keyPath = pointerToKeyPath(first.path);
  const last = first.path.split('/').pop() ?? '';
  if (first.value !== undefined && /unexpected property|additional/i.test(first.message) && Value.Check(Type.String(), last)) {
    const camel = snakeToCamel(last);
    const hint = camel !== last ? ` (Osprey config keys are Triton's in camelCase: did you mean '${camel}'?)` : '';
    return new OspreyError('OSPREY_ERR_CONFIG', `${file ? `${file}: ` : ''}unknown key '${keyPath}'${hint}`, { ...(file ? { file } : {}), keyPath });
  }
  return configError(file, keyPath, `${first.message.toLowerCase()}, got ${JSON.stringify(first.value)}`);
}
