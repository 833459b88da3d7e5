/** cameras.yaml validation: every error names its key path (OSPREY_ERR_CONFIG); zones outside the frame → OSPREY_ERR_ZONE. */
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { isOspreyError } from '../../src/core/errors.js';
import { backoffDelayMs } from '../../src/streams/camera.js';
import { loadStreamsConfig, parseStreamsConfig, validateRulesInFrame } from '../../src/streams/config.js';
import { FIXTURES } from './helpers.js';

const throwsCode = (fn: () => unknown, code: string, message: RegExp): void =>
  assert.throws(fn, (err: unknown) => isOspreyError(err) && err.code === code && message.test(err.message));

test('the example cameras.yaml loads with defaults applied and paths resolved against the file', () => {
  const c = loadStreamsConfig(join(FIXTURES, 'cameras.yaml'));
  assert.equal(c.cameras.length, 2);
  const [lot, hall] = c.cameras as [NonNullable<(typeof c.cameras)[0]>, NonNullable<(typeof c.cameras)[0]>];
  assert.equal(lot.fps, 5);
  assert.equal(lot.queueSize, 2);
  assert.equal(lot.rtspTransport, 'tcp');
  assert.equal(lot.rules[0]!.type, 'line');
  assert.equal(hall.fps, 2);
  assert.equal(hall.url, resolve(FIXTURES, '../../../../shared/data/videos/one-by-one-person-detection.mp4'));
  assert.deepEqual(hall.tracker, { minHits: 1 });
  assert.equal(c.model, resolve(FIXTURES, '../../../../shared/data/models/yolov8n.onnx'));
  assert.equal(c.events.database, resolve(FIXTURES, 'osprey-events.db'));
  assert.equal(c.webhooks[0]!.maxAttempts, 5);
  assert.equal(c.webhooks[0]!.outboxMaxSize, 10000);
});

test('invalid cameras.yaml: fps 0 → OSPREY_ERR_CONFIG naming cameras[1].fps and the file', () => {
  throwsCode(() => loadStreamsConfig(join(FIXTURES, 'invalid-fps.yaml')), 'OSPREY_ERR_CONFIG', /invalid-fps\.yaml: cameras\[1\]\.fps: must be > 0, got 0/);
});

test('invalid cameras.yaml: a zone point that is not [x, y] → key path cameras[0].rules[0].zone[2]', () => {
  throwsCode(() => loadStreamsConfig(join(FIXTURES, 'invalid-zone.yaml')), 'OSPREY_ERR_CONFIG', /cameras\[0\]\.rules\[0\]\.zone\[2\]: expected \[x, y\]/);
});

test('invalid cameras.yaml: unknown keys, wrong types, duplicates and YAML syntax name what is wrong', () => {
  throwsCode(() => parseStreamsConfig({ cameras: [{ id: 'a', url: 'rtsp://x/a', fsp: 5 }] }), 'OSPREY_ERR_CONFIG', /^cameras\[0\]\.fsp: unknown key/);
  throwsCode(() => parseStreamsConfig({ cameras: [{ id: 'a', url: 'rtsp://x/a', rtspTransport: 'quic' }] }), 'OSPREY_ERR_CONFIG', /^cameras\[0\]\.rtspTransport: expected tcp or udp/);
  throwsCode(() => parseStreamsConfig({ cameras: [{ id: 'a', url: 'rtsp://x/a' }, { id: 'a', url: 'rtsp://x/b' }] }), 'OSPREY_ERR_CONFIG', /^cameras\[1\]\.id: duplicate camera id "a"/);
  throwsCode(() => parseStreamsConfig({ cameras: [{ id: 'a' }] }), 'OSPREY_ERR_CONFIG', /^cameras\[0\]\.url: required/);
  throwsCode(() => parseStreamsConfig({ cameras: [{ id: 'a', url: 'ftp://x/a' }] }), 'OSPREY_ERR_CONFIG', /^cameras\[0\]\.url: unsupported scheme ftp/);
  throwsCode(() => parseStreamsConfig({ cameras: [{ id: 'a', url: 'rtsp://x', rules: [{ name: 'l', type: 'line', line: [[0, 0], [0, 0]] }] }] }), 'OSPREY_ERR_CONFIG', /cameras\[0\]\.rules\[0\]\.line: the two points are the same/);
  throwsCode(() => parseStreamsConfig({ defaults: { fps: -1 }, cameras: [] }), 'OSPREY_ERR_CONFIG', /^defaults\.fps: must be > 0/);
  throwsCode(() => parseStreamsConfig({ cameras: [], webhooks: [{ url: 'mqtt://x' }] }), 'OSPREY_ERR_CONFIG', /^webhooks\[0\]\.url: expected an http/);
  throwsCode(() => parseStreamsConfig({ cameras: [{ id: 'a', url: 'rtsp://x', tracker: { minHits: 0 } }] }), 'OSPREY_ERR_CONFIG', /^cameras\[0\]\.tracker\.minHits: must be ≥ 1/);
  const dir = mkdtempSync(join(tmpdir(), 'osprey-cfg-'));
  try {
    writeFileSync(join(dir, 'bad.yaml'), 'cameras: [\n  - id: a\n');
    throwsCode(() => loadStreamsConfig(join(dir, 'bad.yaml')), 'OSPREY_ERR_CONFIG', /bad\.yaml: invalid YAML/);
    throwsCode(() => loadStreamsConfig(join(dir, 'missing.yaml')), 'OSPREY_ERR_FILE_NOT_FOUND', /cannot read/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('zone outside the frame → OSPREY_ERR_ZONE naming the rule, the point and the frame size', () => {
  const { cameras } = parseStreamsConfig({ cameras: [{ id: 'a', url: 'rtsp://x', rules: [{ name: 'door', type: 'zone', zone: [[0, 0], [800, 0], [800, 400]] }] }] });
  throwsCode(() => validateRulesInFrame(cameras[0]!.rules, 768, 432), 'OSPREY_ERR_ZONE', /rules\[0\]\.zone\[1\]: point \[800, 0\] of rule "door" is outside the 768×432 frame/);
  validateRulesInFrame(cameras[0]!.rules, 1280, 720);
});

test('reconnect backoff grows exponentially, is a hard cap (≤ maxDelayMs, default 30 s), and jitter only shortens it', () => {
  const c = { initialDelayMs: 500, maxDelayMs: 4000, maxAttempts: 0, jitter: 0.2 };
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((a) => backoffDelayMs(a, c, () => 0)), [500, 1000, 2000, 4000, 4000, 4000]);
  assert.equal(backoffDelayMs(1, c, () => 1), 400);
  assert.equal(backoffDelayMs(6, c, () => 0.5), 3600);
  const defaults = parseStreamsConfig({ cameras: [{ id: 'a', url: 'rtsp://x/a' }] }).cameras[0]!.reconnect;
  assert.equal(defaults.maxAttempts, 0, 'live sources retry forever by default');
  for (let attempt = 1; attempt <= 200; attempt++) {
    for (const r of [0, 0.37, 0.999999]) {
      const d = backoffDelayMs(attempt, defaults, () => r);
      assert.ok(d > 0 && d <= 30000, `attempt ${attempt}: ${d} ms`);
    }
  }
  // The spread stays at the cap (cameras that failed together do not retry in lockstep).
  assert.ok(backoffDelayMs(50, defaults, () => 0) - backoffDelayMs(50, defaults, () => 1) >= 0.2 * 30000 - 1e-6);
});

test('a URL-looking camera url with a malformed scheme separator is refused with a suggestion, not read as a file', () => {
  const url = (u: string) => () => parseStreamsConfig({ cameras: [{ id: 'a', url: u }] });
  throwsCode(url('rtsp//host/x'), 'OSPREY_ERR_CONFIG', /^cameras\[0\]\.url: "rtsp\/\/host\/x" looks like a URL .*did you mean "rtsp:\/\/host\/x"\?/);
  throwsCode(url('rtsp:/host/x'), 'OSPREY_ERR_CONFIG', /did you mean "rtsp:\/\/host\/x"\?/);
  throwsCode(url('RTSP:host:554/x'), 'OSPREY_ERR_CONFIG', /did you mean "rtsp:\/\/host:554\/x"\?/);
  throwsCode(url('http:\\\\cam\\x'), 'OSPREY_ERR_CONFIG', /did you mean "http:\/\/cam\\\\x"\?/);
  throwsCode(url('file:/videos/a.mp4'), 'OSPREY_ERR_CONFIG', /did you mean "file:\/\/\/videos\/a\.mp4"\?/);
  throwsCode(url('10.0.0.5:554/stream1'), 'OSPREY_ERR_CONFIG', /looks like host:port without a scheme; did you mean "rtsp:\/\/10\.0\.0\.5:554\/stream1"\?/);
  throwsCode(url('rtps://10.0.0.5/x'), 'OSPREY_ERR_CONFIG', /unsupported scheme rtps:\/\/ .*did you mean "rtsp:\/\/10\.0\.0\.5\/x"\?/);
  // The credentials of the mistyped URL are not repeated in the message.
  assert.throws(url('rtsp//admin:Hunter2pw@cam/x?token=Tok3nValue'), (err: unknown) => isOspreyError(err, 'OSPREY_ERR_CONFIG') && !/Hunter2pw|Tok3nValue/.test(err.message) && /rtsp:\/\/admin:\*\*\*@cam\/x\?token=\*\*\*/.test(err.message));
  // Real paths and URLs still pass.
  for (const ok of ['rtsp://host/x', 'videos/rtsp/cam.mp4', 'rtsp/cam1.mp4', '/data/a.mp4', 'file:///data/a.mp4', 'udp://239.0.0.1:1234', 'C:/videos/a.mp4']) {
    assert.doesNotThrow(url(ok), ok);
  }
});

test('config errors never echo a secret value (a mistyped password, a webhook URL token)', () => {
  throwsCode(() => parseStreamsConfig({ cameras: [], mqtt: [{ url: 'mqtt://h', password: 987654321 }] }), 'OSPREY_ERR_CONFIG', /^mqtt\[0\]\.password: expected a non-empty string, got \(value hidden\)$/);
  assert.throws(
    () => parseStreamsConfig({ cameras: [], webhooks: [{ url: 'ftp://u:Secr3tPw@h/hook?token=T0kenV' }] }),
    (err: unknown) => isOspreyError(err, 'OSPREY_ERR_CONFIG') && !/Secr3tPw|T0kenV/.test(err.message),
  );
  const dir = mkdtempSync(join(tmpdir(), 'osprey-cfg-'));
  try {
    // The YAML parser quotes the offending line.
    writeFileSync(join(dir, 'bad.yaml'), 'cameras:\n  - id: a\n    url: rtsp://admin:Yaml5ecret@h/x\n   bad: [\n');
    assert.throws(() => loadStreamsConfig(join(dir, 'bad.yaml')), (err: unknown) => isOspreyError(err, 'OSPREY_ERR_CONFIG') && /invalid YAML/.test(err.message) && !/Yaml5ecret/.test(err.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
