/**
 * Camera supervision against real components: GStreamer's RTSP server on 127.0.0.1 serving the shared MP4s, real
 * ffmpeg. No model here (frames are counted through); the inference path is covered by pipeline.test.ts.
 */
import assert from 'node:assert/strict';
import { createReadStream, statSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { after, test } from 'node:test';
import { Camera, type StateChange } from '../../src/streams/camera.js';
import { parseCamera } from '../../src/streams/config.js';
import { buildFfmpegArgs, ffmpegLetterboxGeometry } from '../../src/streams/frame-source.js';
import { CAR_VIDEO, PERSON_VIDEO, startRtspServer, waitFor } from './helpers.js';

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
