/**
 * The public API (`package.json` `main`/`types` → dist/src/index.js): the module loads and every documented name is
 * there, with the kind it is documented as.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as osprey from '../../src/index.js';

test('package.json main/types point at the built src/index', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { main: string; types: string };
  assert.equal(pkg.main, 'dist/src/index.js');
  assert.equal(pkg.types, 'dist/src/index.d.ts');
});

test('src/index exports the supported surface', () => {
  const functions = ['createOrtEngine', 'createOrtInstances', 'buildEngine', 'validateModel', 'loadDataset', 'startServer', 'startStreamsRuntime', 'computePlan', 'formatPlan', 'nonMaxSuppression', 'evaluateCoco', 'resolveModelConfig', 'loadModelVersion', 'redactText', 'isOspreyError'];
  const classes = ['OspreyError', 'Detector', 'EnginePool', 'InstancePool', 'ModelRepository', 'ModelVersion', 'DynamicBatcher', 'InferenceService', 'RoutedInferenceService', 'AccessPolicy'];
  for (const f of functions) assert.equal(typeof (osprey as Record<string, unknown>)[f], 'function', f);
  for (const c of classes) assert.match(String((osprey as Record<string, unknown>)[c]), /^class /, c);
  assert.ok('OSPREY_ERR_INVALID_IMAGE' in osprey.ERROR_CATALOGUE);
  assert.ok(osprey.API_GROUPS.includes('model-repository'));
});
