/**
 * Credentials on the streams control routes: `osprey streams --auth-token-file` (the standalone runtime) and
 * `osprey serve --cameras` (the server's policy covers the routes the cameras add). Real fastify on 127.0.0.1,
 * a real camera manager over an unreachable RTSP source (model-free: sources and supervision only).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AccessPolicy, bearerRestriction } from '../../src/server/auth.js';
import { parseStreamsConfig } from '../../src/streams/config.js';
import { startStreamsRuntime, type StreamsRuntime } from '../../src/streams/runtime.js';

const TOKEN = 'streams-token-0123456789abcdef';

describe('streams control routes need the bearer token when one is configured', () => {
  let rt: StreamsRuntime;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'osprey-streams-auth-'));
    const config = parseStreamsConfig({ events: { database: join(dir, 'events.db'), snapshots: join(dir, 'snapshots') }, cameras: [{ id: 'cam1', url: 'rtsp://127.0.0.1:9/none', reconnect: { initialDelayMs: 60_000 } }] }, dir);
    rt = await startStreamsRuntime({ config, model: null, host: '127.0.0.1', port: 0, accessPolicy: new AccessPolicy([bearerRestriction([TOKEN], ['camera-control'])]) });
  });
  after(async () => {
    await rt?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('GET routes stay open; restart without or with a wrong token → 401 OSPREY_ERR_UNAUTHENTICATED; with the token it runs', async () => {
    assert.equal((await fetch(`${rt.url}/api/cameras`)).status, 200);
    assert.equal((await fetch(`${rt.url}/health`)).status, 200);
    const none = await fetch(`${rt.url}/api/cameras/cam1/restart`, { method: 'POST' });
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer');
    assert.equal(((await none.json()) as { error: { code: string } }).error.code, 'OSPREY_ERR_UNAUTHENTICATED');
    const wrong = await fetch(`${rt.url}/api/cameras/cam1`, { method: 'DELETE', headers: { authorization: 'Bearer not-the-token-0123456789' } });
    assert.equal(wrong.status, 401);
    assert.equal(rt.manager.list().length, 1, 'the camera is still there');
    const ok = await fetch(`${rt.url}/api/cameras/cam1/restart`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.ok(ok.status < 300, `restart with the token answered ${ok.status}`);
  });
});
