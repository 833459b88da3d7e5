/**
 * Credential redaction for every text that leaves the process (error messages, logs, stored events, API bodies,
 * metrics, pages, webhook/MQTT payloads).
 *
 * The rule (documented in docs/streams.md § Credentials):
 * 1. **URL userinfo.** `scheme://user:password@host` → `scheme://user:***@host` (the user name stays, so an
 *    operator sees which account failed); `scheme://secret@host` (userinfo without a password, e.g. an API key used
 *    as user name) → `scheme://***@host`. The userinfo ends at the last `@` before the first `/`, `?`, `#`, quote or
 *    white space, so an unencoded `@` inside a password is hidden too.
 * 2. **Sensitive parameters.** In any `name=value` (URL query strings, fragments, and free text alike), the value is
 *    replaced by `***` when the name contains, case-insensitively, one of {@link SENSITIVE_PARAM_WORDS}: `token`,
 *    `auth`, `pass`, `pwd`, `secret`, `key`, `sig`, `credential`, `session`, `jwt` — so `token`, `access_token`,
 *    `password`, `passwd`, `api_key`, `apiKey`, `signature`, `X-Amz-Signature`, `X-Amz-Credential`, `sessionid`,
 *    `auth`, `authorization` are all covered. Over-matching (e.g. `keyframe=`) only hides a harmless value.
 * 3. **HTTP credentials in text.** `Authorization: Basic …` / `Bearer …` / `Digest …` → `Authorization: ***`.
 * 4. **Known secrets.** The values {@link secretsOf} extracts from the configured URLs (passwords, userinfo tokens,
 *    sensitive parameter values; raw and percent-decoded) are replaced by `***` wherever they appear, when they are at
 *    least {@link MIN_LITERAL_SECRET_LENGTH} characters long (shorter ones would mangle ordinary words; rules 1–3 still
 *    hide them inside URLs and `name=value` pairs).
 *
 * Idempotent: redacting a redacted text changes nothing. Pure TS: no imports.
 *
 * @example
 *   redactUrl('rtsp://admin:s3cret@10.0.0.5/stream?token=abc&ch=1') // 'rtsp://admin:***@10.0.0.5/stream?token=***&ch=1'
 *   redactText("rtsp://admin:s3cret@10.0.0.5/x: Server returned 401 Unauthorized") // 'rtsp://admin:***@10.0.0.5/x: Server returned 401 Unauthorized'
 */

/** What a hidden value is replaced by. */
export const REDACTED = '***';

/** A parameter whose name contains one of these (case-insensitive) has its value hidden. */
export const SENSITIVE_PARAM_WORDS = ['token', 'auth', 'pass', 'pwd', 'secret', 'key', 'sig', 'credential', 'session', 'jwt'] as const;

/** Known secrets shorter than this are hidden only by the URL and `name=value` rules, not wherever they occur. */
export const MIN_LITERAL_SECRET_LENGTH = 4;

const SENSITIVE_NAME = new RegExp(SENSITIVE_PARAM_WORDS.join('|'), 'i');

/** True when a parameter or key name names a secret (rule 2), e.g. `password`, `api_key`, `X-Amz-Signature`. */
export function isSensitiveName(name: string): boolean {
  return SENSITIVE_NAME.test(name);
}

/** `scheme://` then the userinfo (up to the last `@` before a delimiter). */
const URL_USERINFO_RE = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#'"<>@]*(?:@[^\s/?#'"<>@]*)*)@/gi;

/** `name=value`: name made of word characters, `.` or `-`; value up to a separator. */
const PARAM_RE = /([A-Za-z0-9_.-]+)=([^&;#\s'"<>,)]*)/g;

const AUTH_HEADER_RE = /\b((?:proxy-)?authorization)(\s*[:=]\s*)(?:(?:basic|bearer|digest|negotiate|token)\s+)?[^\s,;'"]+/gi;

function redactUserinfo(userinfo: string): string {
  if (userinfo === REDACTED || userinfo.endsWith(`:${REDACTED}`)) return userinfo;
  const colon = userinfo.indexOf(':');
  if (colon < 0) return userinfo === '' ? '' : REDACTED;
  return `${userinfo.slice(0, colon)}:${REDACTED}`;
}

function redactPatterns(text: string): string {
  return text
    .replace(URL_USERINFO_RE, (_m, scheme: string, userinfo: string) => `${scheme}${redactUserinfo(userinfo)}@`)
    .replace(AUTH_HEADER_RE, (_m, name: string, sep: string) => `${name}${sep}${REDACTED}`)
    .replace(PARAM_RE, (m, name: string, value: string) => (value !== '' && value !== REDACTED && SENSITIVE_NAME.test(name) ? `${name}=${REDACTED}` : m));
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Hides credentials in a text (rules 1–4 of the module doc).
 * @param secrets known secret values (e.g. from {@link secretsOf} of every configured URL); optional.
 * @returns the text with every credential replaced by `***`; the same string when there is none.
 */
export function redactText(text: string, secrets: Iterable<string> = []): string {
  let out = redactPatterns(text);
  const literal = [...new Set(secrets)].filter((s) => s.length >= MIN_LITERAL_SECRET_LENGTH && s !== REDACTED).sort((a, b) => b.length - a.length);
  if (literal.length > 0) out = out.replace(new RegExp(literal.map(escapeRe).join('|'), 'g'), REDACTED);
  return out;
}

/**
 * Hides credentials in one URL (rules 1–2): `rtsp://user:pass@host/x?token=t` → `rtsp://user:***@host/x?token=***`.
 * A string that is not a URL is returned with rule 2 applied (e.g. a file path `a/b?key=1` keeps its path).
 */
export function redactUrl(url: string): string {
  return redactPatterns(url);
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/**
 * The secret values inside a URL: the userinfo password (or the whole userinfo when it has no `:`), and the values
 * of its sensitive parameters — each raw and percent-decoded. Feed them to {@link redactText} so that a secret is
 * hidden even where a tool prints it outside of its URL.
 *
 * @example secretsOf('rtsp://admin:p%40ss@h/x?token=abc') // ['p%40ss', 'p@ss', 'abc']
 */
export function secretsOf(url: string): string[] {
  const out = new Set<string>();
  const add = (v: string): void => {
    if (!v || v === REDACTED) return;
    out.add(v);
    out.add(decode(v));
  };
  for (const m of url.matchAll(URL_USERINFO_RE)) {
    const userinfo = m[2] ?? '';
    const colon = userinfo.indexOf(':');
    add(colon < 0 ? userinfo : userinfo.slice(colon + 1));
  }
  for (const m of url.matchAll(PARAM_RE)) {
    if (SENSITIVE_NAME.test(m[1] ?? '')) add(m[2] ?? '');
  }
  return [...out].filter(Boolean);
}

/**
 * {@link redactText} applied to every string inside a JSON-like value (objects, arrays; other values kept), e.g. the
 * `details` of an event before it is stored. Returns a new value; the input is not changed.
 */
export function redactDeep<T>(value: T, secrets: Iterable<string> = []): T {
  const list = [...secrets];
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return redactText(v, list);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, walk(x)]));
    }
    return v;
  };
  return walk(value) as T;
}
