/**
 * The aliases file on a real repository (tiny model, real engine): a bad file is reported with its key path and the
 * server serves without aliases; fixing it takes effect on the next repository index request.
 */
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ModelRepository } from '../../src/repository/repository.js';
import { RoutedInferenceService } from '../../src/routing/router.js';
import { makeRepo, SHARED_DATA_DIR, tinyModelBytes } from '../support/stack.js';

test('bad aliases file (negative weight) → OSPREY_ERR_CONFIG logged with its key path, models still served; a fixed file is picked up by the index', async () => {
  const root = await makeRepo({ tiny: { config: { maxBatchSize: 4 }, versions: { 1: tinyModelBytes(2) } } }, { det: { arms: [{ model: 'tiny', weight: -1 }] } });
  const repository = await ModelRepository.open(root, { executionProviders: ['cpu'], allowedSymlinkTargets: [SHARED_DATA_DIR] });
  const errors: Array<{ obj: Record<string, unknown>; msg: string }> = [];
  const log = { info: () => undefined, warn: () => undefined, error: (obj: object, msg?: string) => void errors.push({ obj: obj as Record<string, unknown>, msg: msg ?? '' }) };
  const service = new RoutedInferenceService({ repository, log });
  try {
    assert.equal(service.aliasError?.code, 'OSPREY_ERR_CONFIG');
    assert.equal(service.aliasError?.details.keyPath, 'det.arms[0].weight');
    assert.equal(errors[0]?.obj.keyPath, 'det.arms[0].weight');
    assert.equal(service.aliases.size, 0);
    assert.equal(service.modelReady('tiny'), true);
    const r = await service.infer('tiny', undefined, { inputs: [{ name: 'x', datatype: 'FP32', type: 'float32', shape: [1, 4], data: Float32Array.of(1, 2, 3, 4) }] });
    assert.deepEqual([...(r.outputs[0]!.data as Float32Array)], [2, 4, 6, 8]);

    await writeFile(join(root, 'aliases.yaml'), 'det:\n  arms:\n    - { model: tiny, weight: 1 }\n');
    const index = await service.repositoryIndex();
    assert.equal(service.aliasError, null);
    assert.equal(index.find((e) => e.name === 'det')?.state, 'READY');
    const routed = await service.infer('det', undefined, { inputs: [{ name: 'x', datatype: 'FP32', type: 'float32', shape: [1, 4], data: Float32Array.of(1, 1, 1, 1) }] });
    assert.equal(routed.modelName, 'det');
    assert.equal(routed.parameters?.routing_arm, 'tiny');
  } finally {
    await service.shutdown();
    await rm(root, { recursive: true, force: true });
  }
});
