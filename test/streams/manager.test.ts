/**
 * State events over many retries (StreamManager without a model, real ffmpeg, a real SQLite file): one bounded reason
 * per state row, so the database grows linearly with the number of retries — before, each retry's error text
 * embedded the previous one (23,863 characters after 129 retries, 4.6 MB of state rows in 66 s).
 * Sources: a closed port (connection refused) and an HTML page read by an ffmpeg at `-loglevel debug` (a decode
 * error with several KB of stderr per attempt).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { parseStreamsConfig } from '../../src/streams/config.js';
import { MAX_REASON_BYTES } from '../../src/streams/health.js';
import { SqliteEventStore } from '../../src/streams/events.js';
import { StreamManager } from '../../src/streams/manager.js';
import { freePort, waitFor } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'osprey-manager-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('after many retries each state row holds one reason ≤ 1 KB, and the state rows grow linearly', async (t) => {
  const page = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<html><body>${'not a video '.repeat(200)}</body></html>`);
  });
  await new Promise<void>((r) => page.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => { page.closeAllConnections(); page.close(r); }));
  const pagePort = (page.address() as { port: number }).port;
  const closed = await freePort();
  const db = join(dir, 'events.db');
  const config = parseStreamsConfig({
    events: { database: db, snapshots: join(dir, 'snaps') },
    defaults: { fps: 2, reconnect: { initialDelayMs: 5, maxDelayMs: 20 } },
    cameras: [
      { id: 'refused', url: `rtsp://admin:Refus3dPw@127.0.0.1:${closed}/x` },
      { id: 'html', url: `http://127.0.0.1:${pagePort}/index.html?token=PageT0ken`, inputArgs: ['-loglevel', 'debug'] },
    ],
  });
  const manager = new StreamManager({ config, inferer: null });
  t.after(() => manager.stop());
  manager.start();
  const reconnects = () => Math.min(manager.camera('refused').counters.reconnects, manager.camera('html').counters.reconnects);
  const stateBytes = () => (manager.store as SqliteEventStore).db.prepare("SELECT COUNT(*) AS rows, SUM(length(details)) AS bytes FROM events WHERE kind = 'state'").get() as { rows: number; bytes: number };
  await waitFor(() => reconnects() >= 20, 60000, '20 retries per camera');
  const a = stateBytes();
  await waitFor(() => reconnects() >= 60, 120000, '60 retries per camera');
  const b = stateBytes();
  assert.equal(manager.readiness().ready, true);
  await manager.stop();
  assert.deepEqual(manager.readiness().checks, { started: true, notStopping: false, eventDatabase: false }, 'not ready once shutdown began');

  const perRowFirst = a.bytes / a.rows;
  const perRowLater = (b.bytes - a.bytes) / (b.rows - a.rows);
  assert.ok(b.rows - a.rows >= 80, `rows: ${a.rows} → ${b.rows}`);
  assert.ok(perRowLater < perRowFirst * 1.3, `bytes per state row stay constant: ${perRowFirst.toFixed(0)} then ${perRowLater.toFixed(0)}`);

  const file = new Database(db, { readonly: true });
  t.after(() => file.close());
  const rows = file.prepare("SELECT camera, rule, details FROM events WHERE kind = 'state' ORDER BY id").all() as Array<{ camera: string; rule: string; details: string }>;
  let longest = 0;
  for (const r of rows) {
    const d = JSON.parse(r.details) as { reason: string; reasonCode: string; error?: { code: string; message?: string } };
    longest = Math.max(longest, Buffer.byteLength(d.reason, 'utf8'));
    assert.ok(Buffer.byteLength(d.reason, 'utf8') <= MAX_REASON_BYTES, `${r.camera} ${r.rule}: ${Buffer.byteLength(d.reason)} bytes`);
    assert.ok(r.details.length <= MAX_REASON_BYTES + 256, 'one reason per row, the error holds only its code');
    assert.equal(d.error?.message, undefined);
    assert.ok(!r.details.includes('Refus3dPw') && !r.details.includes('PageT0ken'));
  }
  const retries = (camera: string) => rows.filter((r) => r.camera === camera && r.rule === 'reconnecting').map((r) => JSON.parse(r.details) as { reasonCode: string; reason: string });
  assert.ok(retries('refused').every((d) => d.reasonCode === 'connection_refused'));
  assert.ok(retries('html').every((d) => d.reasonCode === 'decode_error'), JSON.stringify(retries('html').slice(0, 2)));
  assert.match(retries('html').at(-1)!.reason, /^decode error: the source sent data that is not a decodable video; ffmpeg: .*Invalid data found when processing input/);
  for (const id of ['refused', 'html']) {
    const j = manager.camera(id).toJSON() as { reason: string; error: { message: string } };
    assert.ok(Buffer.byteLength(j.reason) <= MAX_REASON_BYTES && Buffer.byteLength(j.error.message) <= MAX_REASON_BYTES);
  }
  const sizeMiB = (file.pragma('page_count', { simple: true }) as number) * (file.pragma('page_size', { simple: true }) as number) / 2 ** 20;
  t.diagnostic(`${rows.length} state rows, ${(b.bytes / 1024).toFixed(0)} KiB of details, longest reason ${longest} B, bytes/row ${perRowFirst.toFixed(0)} → ${perRowLater.toFixed(0)}, database ${sizeMiB.toFixed(2)} MiB`);
});
