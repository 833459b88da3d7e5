import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CATALOGUE, OspreyError, renderErrorTable, toOspreyError } from '../../src/core/errors.js';

test('docs/errors.md is in sync with the error catalogue (run `npm run docs:errors`)', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  assert.equal(doc, renderErrorTable());
});

test('every code maps to an HTTP status and a gRPC status', () => {
  for (const [code, spec] of Object.entries(ERROR_CATALOGUE)) {
    assert.match(code, /^OSPREY_ERR_[A-Z0-9_]+$/);
    assert.ok(spec.http >= 400 && spec.http < 600, code);
    assert.ok(spec.grpc > 0 && spec.grpc <= 16, code);
  }
  const e = new OspreyError('OSPREY_ERR_QUEUE_FULL', 'queue full');
  assert.equal(e.httpStatus, 429);
  assert.equal(e.grpcStatus, 8);
  assert.equal(toOspreyError(new Error('x')).code, 'OSPREY_ERR_INTERNAL');
  assert.equal(toOspreyError(e), e);
});
