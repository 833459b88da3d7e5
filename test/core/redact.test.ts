/**
 * Credential redaction (src/core/redact.ts): the documented rule on URLs, free text and JSON values, including the
 * exact lines ffmpeg 5.1 prints for an RTSP camera that refuses a password.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { redactDeep, redactText, redactUrl, secretsOf } from '../../src/core/redact.js';

test('redactUrl hides the userinfo password, keeps the user name, and hides sensitive query values', () => {
  assert.equal(redactUrl('rtsp://admin:s3cret@10.0.0.5:554/stream1'), 'rtsp://admin:***@10.0.0.5:554/stream1');
  assert.equal(redactUrl('rtsp://APIKEY123@10.0.0.5/x'), 'rtsp://***@10.0.0.5/x', 'userinfo without a password is itself the secret');
  assert.equal(redactUrl('rtsp://admin:p@ss@w0rd@host/x'), 'rtsp://admin:***@host/x', 'unencoded @ inside the password');
  assert.equal(
    redactUrl('https://cam.example/live.m3u8?token=abc&ch=1&Password=x&api_key=k1&X-Amz-Signature=f00&sig=9&auth=z&session=s'),
    'https://cam.example/live.m3u8?token=***&ch=1&Password=***&api_key=***&X-Amz-Signature=***&sig=***&auth=***&session=***',
  );
  assert.equal(redactUrl('rtsp://10.0.0.5/stream?channel=1'), 'rtsp://10.0.0.5/stream?channel=1', 'nothing secret: unchanged');
  assert.equal(redactUrl('/videos/a.mp4'), '/videos/a.mp4');
  assert.equal(redactUrl('srt://h:9000?mode=caller&passphrase=verysecret'), 'srt://h:9000?mode=caller&passphrase=***');
});

test('redactText hides credentials inside ffmpeg messages and is idempotent', () => {
  const line = "rtsp://admin:Wr0ngPassw0rd@127.0.0.1:18554/cam: Server returned 401 Unauthorized (authorization failed)\nInput #0, rtsp, from 'rtsp://admin:s3cret@127.0.0.1:18554/cam?token=abc':";
  const out = redactText(line);
  assert.equal(out, "rtsp://admin:***@127.0.0.1:18554/cam: Server returned 401 Unauthorized (authorization failed)\nInput #0, rtsp, from 'rtsp://admin:***@127.0.0.1:18554/cam?token=***':");
  assert.equal(redactText(out), out);
  assert.equal(redactText('GET /x HTTP/1.1\r\nAuthorization: Basic YWRtaW46czNjcmV0\r\n'), 'GET /x HTTP/1.1\r\nAuthorization: ***\r\n');
  assert.equal(redactText('sent authorization=Bearer abc.def'), 'sent authorization=***');
  assert.equal(redactText('no frames for 5.0 s (stallTimeoutMs=5000)'), 'no frames for 5.0 s (stallTimeoutMs=5000)');
});

test('secretsOf extracts raw and decoded secrets; redactText hides them wherever they appear', () => {
  const url = 'rtsp://admin:p%40ssw0rd@h/x?token=tok3n&ch=1';
  const secrets = secretsOf(url);
  assert.deepEqual(secrets.sort(), ['p%40ssw0rd', 'p@ssw0rd', 'tok3n'].sort());
  assert.equal(redactText('the camera said: bad password p@ssw0rd (tok3n)', secrets), 'the camera said: bad password *** (***)');
  assert.equal(redactText('a pw of 3 chars abc stays in prose', ['abc']), 'a pw of 3 chars abc stays in prose', 'too short for literal matching');
  assert.deepEqual(secretsOf('rtsp://APIKEY123@h/x'), ['APIKEY123']);
  assert.deepEqual(secretsOf('/videos/a.mp4'), []);
});

test('redactDeep redacts every string of a JSON value without changing the input', () => {
  const details = { reason: 'rtsp://u:hunter22@h/x: Connection refused', attempt: 3, error: { code: 'OSPREY_ERR_CAMERA' }, lines: ['token=abcd'] };
  const out = redactDeep(details, ['hunter22']);
  assert.deepEqual(out, { reason: 'rtsp://u:***@h/x: Connection refused', attempt: 3, error: { code: 'OSPREY_ERR_CAMERA' }, lines: ['token=***'] });
  assert.equal(details.reason, 'rtsp://u:hunter22@h/x: Connection refused');
});
