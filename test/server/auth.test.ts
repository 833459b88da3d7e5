/** Access policy (src/server/auth.ts): API groups of routes and methods, bearer and header checks. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isOspreyError } from '../../src/core/errors.js';
import { AccessPolicy, bearerRestriction, describeRestrictions, grpcApiGroup, httpApiGroup, parseApiGroups } from '../../src/server/auth.js';

test("HTTP routes and gRPC methods map to Triton's API groups", () => {
  assert.equal(httpApiGroup('GET', '/v2/health/ready'), 'health');
  assert.equal(httpApiGroup('POST', '/v2/repository/models/m/load'), 'model-repository');
  assert.equal(httpApiGroup('POST', '/v2/models/m/versions/2/infer'), 'inference');
  assert.equal(httpApiGroup('POST', '/v2/models/m/detect'), 'inference');
  assert.equal(httpApiGroup('GET', '/v2/models/m/config'), 'model-config');
  assert.equal(httpApiGroup('GET', '/v2/models/stats'), 'statistics');
  assert.equal(httpApiGroup('GET', '/metrics'), 'metrics');
  assert.equal(httpApiGroup('PUT', '/api/cameras/c1'), 'camera-control');
  assert.equal(httpApiGroup('GET', '/api/cameras'), 'metadata');
  assert.equal(httpApiGroup('GET', '/v2/models/m'), 'metadata');
  assert.equal(grpcApiGroup('RepositoryModelUnload'), 'model-repository');
  assert.equal(grpcApiGroup('ModelStreamInfer'), 'inference');
  assert.equal(grpcApiGroup('Check'), 'health');
  assert.throws(() => parseApiGroups('inference,admin', '--restricted-api'), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_USAGE') && /'admin'/.test(e.message));
});

test('bearer tokens: any of several accepted, case-insensitive scheme, wrong length or value refused; unrestricted groups open', () => {
  const p = new AccessPolicy([bearerRestriction(['first-token-0123456789', 'second-token-0123456789'], ['model-repository'])]);
  p.check('model-repository', { authorization: 'Bearer second-token-0123456789' });
  p.check('model-repository', { authorization: 'bearer first-token-0123456789' });
  for (const bad of [undefined, 'Bearer first-token', 'Basic Zmlyc3Q=', 'Bearer first-token-0123456789x', 'first-token-0123456789']) {
    assert.throws(() => p.check('model-repository', bad === undefined ? {} : { authorization: bad }), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_UNAUTHENTICATED'));
  }
  p.check('inference', {});
  assert.equal(p.isRestricted('inference'), false);
  assert.ok(!JSON.stringify(describeRestrictions(p)).includes('token-0123'), 'the description holds no secret');
});
