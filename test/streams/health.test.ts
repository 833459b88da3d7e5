/**
 * Reason classification and bounds (src/streams/health.ts) on ffmpeg 5.1's own stderr lines, as captured from real
 * runs against GStreamer's RTSP server, a closed port, an HTML page and a missing file (camera-rtsp.test.ts and
 * credentials.test.ts check the same classes end to end).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_REASON_BYTES, boundText, classifySourceFailure, stderrSummary } from '../../src/streams/health.js';

const live = { exitCode: 1, isFile: false, streamed: false };

test('each ffmpeg failure gets its stable reason code and a human text', () => {
  const cases: Array<[string, string, boolean]> = [
    ['[rtsp @ 0x55d3cb8d0980] method DESCRIBE failed: 401 Unauthorized\nrtsp://admin:***@127.0.0.1:18554/cam: Server returned 401 Unauthorized (authorization failed)', 'unauthorized', false],
    ['[rtsp @ 0x55d6ca066980] method DESCRIBE failed: 404 Not Found\nrtsp://127.0.0.1:18554/nope: Server returned 404 Not Found', 'not_found', false],
    ['[tcp @ 0x559dea73a5c0] Connection to tcp://127.0.0.1:18554?timeout=0 failed: Connection refused\nrtsp://127.0.0.1:18554/cam: Connection refused', 'connection_refused', false],
    ['[tcp @ 0x1] Connection to tcp://10.255.255.1:554 failed: Connection timed out', 'unreachable', false],
    ['http://127.0.0.1:8000/index.html: Invalid data found when processing input', 'decode_error', false],
    ['spawn failed: spawn ffmpeg ENOENT', 'config_error', true],
  ];
  for (const [stderr, code, permanent] of cases) {
    const c = classifySourceFailure({ ...live, stderrTail: stderr });
    assert.equal(c.reasonCode, code, stderr);
    assert.equal(c.permanent, permanent, stderr);
    assert.doesNotMatch(c.message, /0x[0-9a-f]{6,}/, 'no per-run pointers');
  }
  const file = classifySourceFailure({ exitCode: 1, isFile: true, streamed: false, stderrTail: '/data/x.mp4: No such file or directory' });
  assert.deepEqual([file.reasonCode, file.errorCode, file.permanent], ['file_not_found', 'OSPREY_ERR_FILE_NOT_FOUND', true]);
  const notVideo = classifySourceFailure({ exitCode: 1, isFile: true, streamed: false, stderrTail: '/data/x.mp4: Invalid data found when processing input' });
  assert.deepEqual([notVideo.reasonCode, notVideo.permanent], ['decode_error', true], 'a file that is not a video will not become one');
  assert.equal(classifySourceFailure({ exitCode: 0, isFile: false, streamed: true, stderrTail: '' }).reasonCode, 'stream_ended');
  assert.equal(classifySourceFailure({ exitCode: 8, isFile: false, streamed: false, stderrTail: 'something odd' }).reasonCode, 'source_error');
});

test('a stall says "no frames for N s", not ffmpeg\'s banner or old decoder warnings', () => {
  const banner = [
    "Input #0, rtsp, from 'rtsp://127.0.0.1:8554/cam':",
    '  Metadata:',
    '    title           : Session streamed with GStreamer',
    '  Duration: N/A, start: 0.080000, bitrate: N/A',
    '  Stream #0:0: Video: h264 (Baseline), yuv420p, 768x432, 12.50 fps, 12.50 tbr, 90k tbn',
    'Stream mapping:',
    '[h264 @ 0x55] decode_slice_header error',
    "Output #0, rawvideo, to 'pipe:1':",
  ].join('\n');
  const c = classifySourceFailure({ exitCode: null, isFile: false, streamed: true, stderrTail: banner, watchdog: { noFrameForMs: 5210, limit: 'stallTimeoutMs', limitMs: 5000 } });
  assert.equal(c.reasonCode, 'no_frames');
  assert.equal(c.message, 'no frames for 5.2 s (stallTimeoutMs 5000)');
  const start = classifySourceFailure({ exitCode: null, isFile: false, streamed: false, stderrTail: '', watchdog: { noFrameForMs: 10040, limit: 'connectTimeoutMs', limitMs: 10000 } });
  assert.equal(start.message, 'no frames for 10.0 s after the start (connectTimeoutMs 10000)');
  assert.equal(stderrSummary(banner), '[h264] decode_slice_header error');
});

test('reasons are bounded to 1 KB on a character boundary', () => {
  const long = 'é'.repeat(5000);
  const b = boundText(long);
  assert.ok(Buffer.byteLength(b, 'utf8') <= MAX_REASON_BYTES);
  assert.ok(b.endsWith('…'));
  assert.ok(!b.includes('\uFFFD'));
  assert.equal(boundText('short'), 'short');
  const flood = Array.from({ length: 500 }, (_, i) => `[rtsp @ 0x1] line ${i}: Connection refused`).join('\n');
  const c = classifySourceFailure({ ...live, stderrTail: flood });
  assert.ok(c.message.length < 400, `three lines at most: ${c.message.length}`);
});
