/**
 * Camera supervision against real components: GStreamer's RTSP server on 127.0.0.1 serving the shared MP4s (with RTSP
 * Basic authentication where a test needs it), real ffmpeg, closed ports, an HTML page, missing files. No model here
 * (frames are counted through); the inference path is covered by pipeline.test.ts and starvation.test.ts.
 */
import assert from 'node:assert/strict';
import { createReadStream, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { after, test } from 'node:test';
import { Camera, type StateChange } from '../../src/streams/camera.js';
import { parseCamera } from '../../src/streams/config.js';
import { buildFfmpegArgs, ffmpegLetterboxGeometry } from '../../src/streams/frame-source.js';
import { CAR_VIDEO, PERSON_VIDEO, freePort, startRtspServer, waitFor } from './helpers.js';

const SMALL = { frameSize: { width: 160, height: 160 } };
const cameras: Camera[] = [];
after(async () => {
  await Promise.all(cameras.map((c) => c.stop()));
});

function camera(raw: Record<string, unknown>): { cam: Camera; states: StateChange[] } {
  const cam = new Camera(parseCamera({ fps: 2, ...raw }, 'cameras[0]'), { inferer: null, ...SMALL });
  const states: StateChange[] = [];
  cam.on('state', (s: StateChange) => states.push(s));
  cameras.push(cam);
  return { cam, states };
}

test('ffmpeg letterbox geometry mirrors the filter chain (768×432 → 640×640)', () => {
  const g = ffmpegLetterboxGeometry(768, 432, 640, 640);
  assert.deepEqual([g.resizedWidth, g.resizedHeight, g.padLeft, g.padTop, g.padRight, g.padBottom], [640, 360, 0, 140, 0, 140]);
  const args = buildFfmpegArgs({ url: 'rtsp://h/x', rtspTransport: 'udp', width: 640, height: 640, format: 'rgbf32-planar', fps: 5, hwaccel: 'cuda' });
  assert.deepEqual(args.slice(args.indexOf('-hwaccel'), args.indexOf('-hwaccel') + 2), ['-hwaccel', 'cuda']);
  assert.equal(args[args.indexOf('-rtsp_transport') + 1], 'udp');
  assert.match(args[args.indexOf('-filter_complex') + 1]!, /split=2\[m\]\[p\];\[m\]format=gbrpf32le,shuffleplanes=2:0:1\[mo\]$/);
  assert.deepEqual(args.slice(-2), ['rawvideo', 'pipe:3'], 'rgb24 copy on pipe:3');
  const rgb = buildFfmpegArgs({ url: '/x.mp4', loop: true, width: 320, height: 320, format: 'rgb24', fps: 5 });
  assert.deepEqual(rgb.slice(rgb.indexOf('-re'), rgb.indexOf('-re') + 3), ['-re', '-stream_loop', '-1']);
  assert.deepEqual(rgb.slice(-5), ['-pix_fmt', 'rgb24', '-f', 'rawvideo', 'pipe:1']);
});

test('two RTSP cameras stream; stopping one server moves only that camera to reconnecting; restarting brings it back', async (t) => {
  const s1 = await startRtspServer({ cam: CAR_VIDEO });
  let s1b: Awaited<ReturnType<typeof startRtspServer>> | null = null;
  const s2 = await startRtspServer({ cam: PERSON_VIDEO });
  t.after(async () => {
    await s1.stop();
    await s1b?.stop();
    await s2.stop();
  });
  const reconnect = { initialDelayMs: 200, maxDelayMs: 1000, maxAttempts: 0, jitter: 0.2 };
  const a = camera({ id: 'a', url: s1.url('cam'), rtspTransport: 'tcp', reconnect, stallTimeoutMs: 2000 });
  const b = camera({ id: 'b', url: s2.url('cam'), rtspTransport: 'udp', reconnect, stallTimeoutMs: 10000 });
  a.cam.start();
  b.cam.start();
  await waitFor(() => a.cam.counters.processed >= 2 && b.cam.counters.processed >= 2, 15000, 'both cameras to process frames');
  assert.equal(a.cam.state, 'streaming');
  assert.equal(b.cam.state, 'streaming');
  assert.deepEqual(a.cam.info && [a.cam.info.srcWidth, a.cam.info.srcHeight], [768, 432]);

  await s1.stop();
  await waitFor(() => a.cam.state === 'reconnecting' || a.cam.state === 'starting', 8000, 'camera a to reconnect');
  const bBefore = b.cam.counters.processed;
  await waitFor(() => b.cam.counters.processed >= bBefore + 2, 8000, 'camera b to keep streaming');
  assert.equal(b.cam.state, 'streaming');
  assert.ok(a.states.some((s) => s.to === 'reconnecting' && s.error?.code === 'OSPREY_ERR_CAMERA'), 'state change carries the error');

  s1b = await startRtspServer({ cam: CAR_VIDEO }, s1.port);
  const aBefore = a.cam.counters.processed;
  await waitFor(() => a.cam.state === 'streaming' && a.cam.counters.processed > aBefore, 15000, 'camera a to come back by itself');
  const seq = a.states.map((s) => s.to);
  assert.deepEqual(seq.slice(0, 2), ['starting', 'streaming']);
  assert.ok(seq.lastIndexOf('streaming') > seq.indexOf('reconnecting'));
  assert.ok(a.cam.counters.reconnects >= 1);
  assert.ok(!b.states.some((s) => s.to !== 'starting' && s.to !== 'streaming'), `camera b never left streaming: ${b.states.map((s) => s.to)}`);
  await a.cam.stop();
  await b.cam.stop();
  assert.equal(a.cam.state, 'stopped');
});

test('a camera URL that never answers ends in failed after maxAttempts, without affecting a streaming camera', async (t) => {
  // A TCP server that accepts and never says a word: the RTSP handshake never completes.
  const sockets: Socket[] = [];
  const silent = createTcpServer((s) => sockets.push(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const port = (silent.address() as { port: number }).port;
  const s2 = await startRtspServer({ cam: PERSON_VIDEO });
  t.after(async () => {
    sockets.forEach((s) => s.destroy());
    await new Promise((r) => silent.close(r));
    await s2.stop();
  });
  const good = camera({ id: 'good', url: s2.url('cam') });
  const dead = camera({ id: 'dead', url: `rtsp://127.0.0.1:${port}/never`, connectTimeoutMs: 600, reconnect: { initialDelayMs: 50, maxDelayMs: 100, maxAttempts: 2 } });
  good.cam.start();
  dead.cam.start();
  await waitFor(() => dead.cam.state === 'failed', 10000, 'the silent camera to fail');
  assert.equal(dead.cam.lastError?.code, 'OSPREY_ERR_CAMERA');
  assert.match(dead.cam.lastError!.message, /gave up after 2 attempts/);
  assert.equal(dead.cam.reasonCode, 'gave_up');
  const retry = dead.states.find((s) => s.to === 'reconnecting')!;
  assert.equal(retry.reasonCode, 'no_frames');
  assert.match(retry.reason, /^no frames for 0\.\d s after the start \(connectTimeoutMs 600\); attempt 2\/2 in 0\.\d s$/);
  assert.deepEqual(dead.states.map((s) => s.to), ['starting', 'reconnecting', 'starting', 'failed']);
  await waitFor(() => good.cam.counters.processed >= 2, 20000, `the good camera to stream (${good.cam.state}, ${JSON.stringify(good.cam.counters)}, ${good.cam.lastError?.message})`);
  assert.equal(good.cam.state, 'streaming');
});

test('a non-video URL (an HTTP page) ends in failed with OSPREY_ERR_CAMERA naming ffmpeg\'s reason', async (t) => {
  const http = createHttpServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<html><body>not a video</body></html>');
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => http.close(r)));
  const port = (http.address() as { port: number }).port;
  const { cam } = camera({ id: 'html', url: `http://127.0.0.1:${port}/index.html`, reconnect: { initialDelayMs: 20, maxDelayMs: 50, maxAttempts: 2 } });
  cam.start();
  await waitFor(() => cam.state === 'failed', 10000, 'the camera to fail');
  assert.equal(cam.lastError?.code, 'OSPREY_ERR_CAMERA');
  assert.match(cam.lastError!.message, /Invalid data|invalid|could not find codec|not/i);
  assert.match(cam.lastError!.message, /last: decode_error: /);
});

test('a stalled RTSP server (connection open, no frames) trips the no-frame watchdog: stalled → reconnecting → streaming once it resumes', async (t) => {
  const s = await startRtspServer({ cam: PERSON_VIDEO });
  t.after(() => s.stop());
  const { cam, states } = camera({ id: 'stall', url: s.url('cam'), stallTimeoutMs: 2000, connectTimeoutMs: 5000, reconnect: { initialDelayMs: 100, maxDelayMs: 300, maxAttempts: 0 } });
  cam.start();
  await waitFor(() => cam.state === 'streaming' && cam.counters.processed >= 1, 20000, 'streaming');
  s.pause();
  await waitFor(() => states.some((x) => x.to === 'stalled'), 10000, 'the watchdog to see the stall');
  await waitFor(() => cam.state === 'reconnecting' || cam.state === 'starting', 10000, 'a reconnect');
  s.resume();
  const before = cam.counters.processed;
  await waitFor(() => cam.state === 'streaming' && cam.counters.processed > before, 30000, 'the camera back after the server resumes');
  const seq = states.map((x) => x.to);
  assert.ok(seq.indexOf('stalled') < seq.lastIndexOf('streaming'), seq.join(' → '));
  const stalled = states.find((x) => x.to === 'stalled')!;
  assert.equal(stalled.reasonCode, 'no_frames');
  assert.match(stalled.reason, /^no frames for \d+\.\d s \(stallTimeoutMs 2000\)$/, 'a stall says "no frames for N s", not ffmpeg\'s banner');
  const after = states[states.indexOf(stalled) + 1]!;
  assert.deepEqual([after.to, after.reasonCode], ['reconnecting', 'no_frames']);
  assert.doesNotMatch(after.reason, /Input #|Stream #|Duration/);
});

test('an HTTP video source streams (ffmpeg over HTTP)', async (t) => {
  const size = statSync(CAR_VIDEO).size;
  const http = createHttpServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': size });
    createReadStream(CAR_VIDEO).pipe(res);
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => { http.closeAllConnections(); http.close(r); }));
  const port = (http.address() as { port: number }).port;
  const { cam } = camera({ id: 'http', url: `http://127.0.0.1:${port}/car.mp4` });
  cam.start();
  await waitFor(() => cam.state === 'streaming' && cam.counters.processed >= 2, 20000, 'the HTTP camera to stream');
  assert.deepEqual(cam.info && [cam.info.srcWidth, cam.info.srcHeight], [768, 432]);
});

test('live sources retry forever by default: a camera down for longer than the old 10-attempt window comes back by itself, its fps 0 meanwhile', async (t) => {
  const port = await freePort();
  let server: Awaited<ReturnType<typeof startRtspServer>> | null = null;
  t.after(async () => server?.stop());
  // Short backoff so the test is fast; maxAttempts is left at its default.
  const { cam, states } = camera({ id: 'comeback', url: `rtsp://127.0.0.1:${port}/cam`, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
  assert.equal(cam.config.reconnect.maxAttempts, 0);
  server = await startRtspServer({ cam: CAR_VIDEO }, port);
  cam.start();
  await waitFor(() => cam.state === 'streaming' && cam.counters.processed >= 3, 20000, 'streaming');
  assert.ok(cam.fps > 0);
  await server.stop();
  server = null;
  const downAt = Date.now();
  await waitFor(() => cam.counters.reconnects >= 12, 30000, 'more than 10 failed attempts');
  assert.notEqual(cam.state, 'failed');
  const refused = states.filter((s) => s.to === 'reconnecting' && s.reasonCode === 'connection_refused');
  assert.ok(refused.length >= 10, `connection refused while the server is down: ${states.map((s) => s.reasonCode).join(',')}`);
  assert.match(refused.at(-1)!.reason, /^connection refused: nothing listens on the camera's host and port; ffmpeg: .*Connection refused; attempt \d+ in 0\.\d s$/);
  assert.ok(cam.nextAttemptAtMs === null || cam.nextAttemptAtMs - Date.now() <= 200);
  // No frame for a whole window: the rate is 0 and the latency null (not the last value before the outage).
  await waitFor(() => Date.now() - downAt > cam.rateWindowMs + 200, 15000, 'one rate window without frames');
  assert.equal(cam.fps, 0);
  assert.equal(cam.decodedFps, 0);
  assert.equal(cam.latencyMs, null);
  assert.equal((cam.toJSON() as { fps: number }).fps, 0);
  server = await startRtspServer({ cam: CAR_VIDEO }, port);
  const before = cam.counters.processed;
  await waitFor(() => cam.state === 'streaming' && cam.counters.processed > before, 20000, 'the camera to come back by itself');
  assert.equal(cam.attempt, 0);
  assert.equal(cam.lastError, null);
});

test('failure reasons are classified from ffmpeg: unauthorized (401), not found (404), connection refused, with the password never in the text', async (t) => {
  const s = await startRtspServer({ cam: PERSON_VIDEO }, undefined, { user: 'admin', password: 'Corr3ctHorse' });
  t.after(() => s.stop());
  const closed = await freePort();
  const reconnect = { initialDelayMs: 100, maxDelayMs: 200 };
  const good = camera({ id: 'auth-ok', url: `rtsp://admin:Corr3ctHorse@127.0.0.1:${s.port}/cam` });
  const bad = camera({ id: 'auth-bad', url: `rtsp://admin:Wr0ngHorse@127.0.0.1:${s.port}/cam`, reconnect });
  const none = camera({ id: 'auth-none', url: `rtsp://127.0.0.1:${s.port}/cam`, reconnect });
  const missing = camera({ id: 'missing', url: `rtsp://admin:Corr3ctHorse@127.0.0.1:${s.port}/nothing-here?token=Tok3nXyz`, reconnect });
  const refused = camera({ id: 'refused', url: `rtsp://admin:Corr3ctHorse@127.0.0.1:${closed}/cam`, reconnect });
  for (const c of [good, bad, none, missing, refused]) c.cam.start();
  const firstRetry = (c: typeof bad) => c.states.find((x) => x.to === 'reconnecting');
  await waitFor(() => [bad, none, missing, refused].every((c) => firstRetry(c)), 20000, 'every bad camera to fail once');
  assert.equal(firstRetry(bad)!.reasonCode, 'unauthorized');
  assert.equal(firstRetry(none)!.reasonCode, 'unauthorized');
  assert.equal(firstRetry(missing)!.reasonCode, 'not_found');
  assert.equal(firstRetry(refused)!.reasonCode, 'connection_refused');
  assert.match(firstRetry(bad)!.reason, /^unauthorized: the camera refused the credentials .*; ffmpeg: .*rtsp:\/\/admin:\*\*\*@127\.0\.0\.1:\d+\/cam: Server returned 401 Unauthorized/);
  await waitFor(() => good.cam.state === 'streaming', 20000, 'the camera with the right password to stream');
  for (const c of [good, bad, none, missing, refused]) {
    const text = JSON.stringify([c.states, c.cam.toJSON()]);
    for (const secret of ['Corr3ctHorse', 'Wr0ngHorse', 'Tok3nXyz']) assert.ok(!text.includes(secret), `${c.cam.id}: ${secret} in ${text}`);
  }
  assert.equal((good.cam.toJSON() as { url: string }).url, `rtsp://admin:***@127.0.0.1:${s.port}/cam`);
});

test('a missing file is a configuration error: failed at once (no retries, whatever maxAttempts), and a restart picks the file up once it exists', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'osprey-missing-'));
  try {
    const file = join(dir, 'later.mp4');
    const { cam, states } = camera({ id: 'file', url: file });
    cam.start();
    await waitFor(() => cam.state === 'failed', 5000, 'failed');
    assert.deepEqual(states.map((x) => [x.to, x.reasonCode]), [['starting', 'started'], ['failed', 'file_not_found']]);
    assert.equal(cam.lastError?.code, 'OSPREY_ERR_FILE_NOT_FOUND');
    assert.equal(cam.counters.reconnects, 0);
    symlinkSync(PERSON_VIDEO, file);
    await cam.restart();
    assert.equal(states.at(-1)!.reasonCode, 'restarted');
    await waitFor(() => cam.state === 'streaming', 20000, 'the restarted camera to stream');
    await cam.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
