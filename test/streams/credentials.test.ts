/**
 * Credentials never leave the process. `osprey streams` runs as a child process (the CLI, real logs on its stderr)
 * with cameras whose URLs carry real passwords and tokens: one streaming from GStreamer's RTSP server with Basic
 * authentication, one with a wrong password (401), one on a closed port, one HTTP URL with signature/key query
 * parameters that answers 404, and a webhook whose URL carries a token. Then every exit is read and scanned for every
 * secret: the API's JSON (cameras, events, stats, errors of bad requests), every text column of every table of the
 * SQLite file (and its raw bytes), the process's log output, /metrics, the dashboard page in headless Chromium, and the
 * webhook bodies. The same run checks the reason codes, the restart API and button, and the probes.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { chromium, type Browser } from 'playwright-core';
import { MODEL, PERSON_VIDEO, freePort, startRtspServer, waitFor, type RtspServer } from './helpers.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const ENTRY = 'import("./src/cli/main.ts").then((m) => m.main(["node", "osprey", ...process.argv.slice(1)]))';
const PASSWORD = 'S3cr3t-Pa55w0rd';
const SECRETS = {
  password: PASSWORD,
  wrongPassword: 'Wr0ng-Pa55w0rd',
  otherPassword: 'An0ther-Secr3t',
  rtspToken: 'RtspT0ken9876',
  authParam: 'AuthParam5432',
  signature: 'SigValue24680',
  apiKey: 'KeyValue13579',
  hookToken: 'HookT0ken1122',
  hookBearer: 'HookBearer3344',
};
const FULL_FRAME = [[0, 0], [768, 0], [768, 432], [0, 432]];

const dir = mkdtempSync(join(tmpdir(), 'osprey-secrets-'));
let rtsp: RtspServer | null = null;
let child: ChildProcess | null = null;
let browser: Browser | null = null;
const servers: Server[] = [];
after(async () => {
  await browser?.close();
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await rtsp?.stop();
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  rmSync(dir, { recursive: true, force: true });
});

async function listen(handler: Parameters<typeof createServer>[1]): Promise<number> {
  const s = createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as { port: number }).port;
}

/** Every secret found in `text`, by name (empty when clean). */
function leaks(text: string): string[] {
  return Object.entries(SECRETS).filter(([, v]) => text.includes(v)).map(([k]) => k);
}

interface CamJson { id: string; state: string; reasonCode: string; reason: string; url: string; error: { code: string; message: string } | null }

test('no password or token appears in the API, SQLite, logs, /metrics, the dashboard or webhook bodies', async () => {
  rtsp = await startRtspServer({ cam: PERSON_VIDEO }, undefined, { user: 'admin', password: PASSWORD });
  const hooks: string[] = [];
  const hookTargets: string[] = [];
  const hookPort = await listen((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      hookTargets.push(req.url ?? '');
      hooks.push(body);
      res.writeHead(204).end();
    });
  });
  const notFoundPort = await listen((_req, res) => res.writeHead(404, { 'content-type': 'text/plain' }).end('no such video'));
  const closed = await freePort();
  const config = {
    model: MODEL,
    events: { database: join(dir, 'events.db'), snapshots: join(dir, 'snaps') },
    webhooks: [{ url: `http://127.0.0.1:${hookPort}/hook?token=${SECRETS.hookToken}`, initialDelayMs: 100, headers: { authorization: `Bearer ${SECRETS.hookBearer}` } }],
    defaults: { fps: 2, reconnect: { initialDelayMs: 200, maxDelayMs: 1000 }, tracker: { minHits: 1 } },
    cameras: [
      { id: 'good', url: `rtsp://admin:${PASSWORD}@127.0.0.1:${rtsp.port}/cam?token=${SECRETS.rtspToken}`, rules: [{ name: 'person-in-room', type: 'zone', zone: FULL_FRAME, classes: ['person'], minConfidence: 0.4 }] },
      { id: 'wrongpw', url: `rtsp://admin:${SECRETS.wrongPassword}@127.0.0.1:${rtsp.port}/cam` },
      { id: 'refused', url: `rtsp://viewer:${SECRETS.otherPassword}@127.0.0.1:${closed}/live?auth=${SECRETS.authParam}` },
      { id: 'httpcam', url: `http://127.0.0.1:${notFoundPort}/v.mp4?signature=${SECRETS.signature}&key=${SECRETS.apiKey}` },
    ],
  };
  const yaml = join(dir, 'cameras.yaml');
  writeFileSync(yaml, JSON.stringify(config, null, 2)); // JSON is YAML
  let logs = '';
  child = spawn(process.execPath, ['--import', 'tsx', '-e', ENTRY, 'streams', '--config', yaml, '--port', '0', '--ep', 'cpu', '--log-level', 'debug'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (logs += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
  await waitFor(() => /"url":"http:\/\/127\.0\.0\.1:\d+"/.test(logs), 60000, `the server to listen (${logs})`);
  const url = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(logs)![1]!;
  const get = async (path: string) => (await fetch(`${url}${path}`)).text();
  const cameras = async () => (JSON.parse(await get('/api/cameras')) as { cameras: CamJson[] }).cameras;
  const cam = async (id: string) => (await cameras()).find((c) => c.id === id)!;

  // Probes.
  assert.deepEqual(await (await fetch(`${url}/health`)).json(), { status: 'ok' });
  await waitFor(async () => (await fetch(`${url}/ready`)).status === 200, 10000, 'ready');
  const ready = (await (await fetch(`${url}/ready`)).json()) as { status: string; checks: Record<string, boolean>; cameras: Record<string, number> };
  assert.equal(ready.status, 'ready');
  assert.deepEqual(ready.checks, { started: true, notStopping: true, eventDatabase: true, model: true, notClosing: true });
  assert.equal(ready.cameras['total'], 4);

  // Every camera reaches its classified state.
  await waitFor(async () => {
    const c = await cameras();
    const by = (id: string) => c.find((x) => x.id === id)!;
    return by('good').state === 'streaming' && by('wrongpw').reasonCode === 'unauthorized' && by('refused').reasonCode === 'connection_refused' && by('httpcam').reasonCode === 'not_found';
  }, 40000, 'the four cameras to reach their states').catch(async (err: Error) => {
    throw new Error(`${err.message}: ${await get('/api/cameras')}`);
  });
  const wrong = await cam('wrongpw');
  assert.equal(wrong.url, `rtsp://admin:***@127.0.0.1:${rtsp.port}/cam`);
  assert.match(wrong.error!.message, /^unauthorized: .*401 Unauthorized/);
  assert.equal((await cam('httpcam')).url, `http://127.0.0.1:${notFoundPort}/v.mp4?signature=***&key=***`);
  await waitFor(async () => (JSON.parse(await get('/api/events?kind=rule')) as { events: unknown[] }).events.length >= 1, 60000, 'a rule event from the good camera');

  // Bad requests that carry credentials: the errors do not repeat them.
  const post = (path: string, body: unknown, method = 'POST') => fetch(`${url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const badShape = await post('/api/cameras', { id: 'typo', url: `rtsp//admin:${PASSWORD}@127.0.0.1/x?token=${SECRETS.rtspToken}` });
  assert.equal(badShape.status, 400);
  const badShapeText = await badShape.text();
  assert.match(badShapeText, /OSPREY_ERR_CONFIG.*did you mean \\"rtsp:\/\/admin:\*\*\*@127\.0\.0\.1\/x\?token=\*\*\*\\"/);
  const badScheme = await post('/api/cameras/wrongpw', { url: `rtps://admin:${SECRETS.wrongPassword}@127.0.0.1/x` }, 'PUT');
  assert.equal(badScheme.status, 400);
  const badSchemeText = await badScheme.text();
  const missing = await post('/api/cameras/nope/restart', {});
  assert.equal(missing.status, 404);
  assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'OSPREY_ERR_CAMERA_NOT_FOUND');

  // Restart through the API.
  const restarted = await fetch(`${url}/api/cameras/wrongpw/restart`, { method: 'POST' });
  assert.equal(restarted.status, 200);
  const hasRestart = async () => (JSON.parse(await get('/api/events?kind=state&camera=wrongpw&limit=1000')) as { events: Array<{ details: { reasonCode: string } }> }).events.filter((e) => e.details.reasonCode === 'restarted').length;
  await waitFor(async () => (await hasRestart()) >= 1, 5000, 'a restarted state event');

  // The dashboard: tiles with the reasons, health events shown, and the Restart button.
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${url}/dashboard/`);
  await page.check('#show-state');
  await page.waitForFunction("(document.querySelector('.camera[data-camera=\"wrongpw\"] .camera-error')?.textContent ?? '').startsWith('unauthorized: ')", undefined, { timeout: 15000 });
  await page.waitForFunction("(document.querySelector('.camera[data-camera=\"refused\"] .camera-error')?.textContent ?? '').startsWith('connection_refused: ')", undefined, { timeout: 15000 });
  await page.waitForSelector('#events li.state-event:not([hidden])', { timeout: 15000 });
  const before = await hasRestart();
  await page.click('.camera[data-camera="wrongpw"] button.restart');
  await waitFor(async () => (await hasRestart()) > before, 10000, 'the dashboard button to restart the camera');
  await new Promise((r) => setTimeout(r, 1500)); // one more refresh of the page with the new state events
  const dashboard = `${await page.content()}\n${await page.evaluate('document.body.innerText')}`;
  assert.match(dashboard, /unauthorized/);
  assert.deepEqual(pageErrors, []);

  // Collect every exit while running.
  await waitFor(() => hooks.some((h) => h.includes('"kind":"state"')) && hooks.some((h) => h.includes('"kind":"rule"')), 20000, 'webhook deliveries of state and rule events');
  const api = [
    await get('/api/cameras'),
    ...(await Promise.all(['good', 'wrongpw', 'refused', 'httpcam'].map((id) => get(`/api/cameras/${id}`)))),
    await get('/api/events?limit=1000'),
    await get('/api/streams/stats'),
    await get('/ready'),
    badShapeText,
    badSchemeText,
  ].join('\n');
  const metrics = await get('/metrics');
  assert.match(metrics, /osprey_stream_state_changes_total\{camera="wrongpw",to="reconnecting",reason="unauthorized"\} [1-9]/);

  // Stop (SIGTERM): readiness goes first, then the process exits cleanly.
  const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  assert.equal(await exited, 0, logs.slice(-2000));

  // SQLite: every text column of every table, and the raw bytes of the files.
  const db = new Database(join(dir, 'events.db'), { readonly: true });
  let rows = 0;
  let stored = '';
  try {
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((t) => t.name);
    assert.ok(tables.includes('events') && tables.includes('outbox'));
    for (const table of tables) {
      for (const row of db.prepare(`SELECT * FROM "${table}"`).all() as Array<Record<string, unknown>>) {
        rows++;
        for (const v of Object.values(row)) if (typeof v === 'string') stored += `${v}\n`;
      }
    }
  } finally {
    db.close();
  }
  assert.ok(rows > 10, `rows scanned: ${rows}`);
  assert.match(stored, /unauthorized/);
  let raw = '';
  for (const f of ['events.db', 'events.db-wal']) if (existsSync(join(dir, f))) raw += readFileSync(join(dir, f)).toString('latin1');

  for (const [what, text] of Object.entries({ api, sqlite: stored, sqliteFiles: raw, logs, metrics, dashboard, webhooks: hooks.join('\n') })) {
    assert.ok(text.length > 0, `${what}: nothing collected`);
    assert.deepEqual(leaks(text), [], `${what} leaks a secret`);
  }
  // The hook URL's token did go where it must (the request line of the receiver), just nowhere else.
  assert.equal(hookTargets[0], `/hook?token=${SECRETS.hookToken}`);
  assert.match(logs, /"reasonCode":"unauthorized"/, 'state changes are logged, redacted');
});
