/**
 * Model config schema: validation with key paths, defaults in one place, Triton-style auto-complete from the
 * model's inputs/outputs, cross-checks, and Triton's wire JSON. Pure: no model is loaded (signatures are written
 * out as the real yolov8n's: images float32 [1,3,640,640] → output0 float32 [1,84,8400]).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OspreyError } from '../../src/core/errors.js';
import { CONFIG_DEFAULTS, parseModelConfigText, resolveModelConfig, toTritonConfigJson, validateModelConfig, type ModelSignature } from '../../src/repository/config.js';

const FIXED: ModelSignature = {
  inputs: [{ name: 'images', type: 'float32', shape: [1, 3, 640, 640] }],
  outputs: [{ name: 'output0', type: 'float32', shape: [1, 84, 8400] }],
};
const DYNAMIC: ModelSignature = {
  inputs: [{ name: 'images', type: 'float32', shape: ['batch', 3, 640, 640] }],
  outputs: [{ name: 'output0', type: 'float32', shape: ['batch', 84, 8400] }],
};

function configError(fn: () => unknown, keyPath: string, pattern?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof OspreyError);
    assert.equal(e.code, 'OSPREY_ERR_CONFIG');
    assert.equal(e.details.keyPath, keyPath, e.message);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

describe('model config', () => {
  it('no config at all: auto-completed from a fixed-batch model (maxBatchSize 0, no dynamic batching, defaults)', () => {
    const c = resolveModelConfig({}, 'yolo', FIXED);
    assert.equal(c.maxBatchSize, 0);
    assert.equal(c.dynamicBatching, null);
    assert.deepEqual(c.input, [{ name: 'images', dataType: 'float32', dims: [1, 3, 640, 640] }]);
    assert.deepEqual(c.instanceGroup, [{ name: 'yolo_0', count: 1, kind: 'KIND_AUTO', gpus: [] }]);
    assert.deepEqual(c.versionPolicy, { kind: 'latest', numVersions: 1 });
    assert.deepEqual(c.detection, { conf: 0.25, iou: 0.7, maxDet: 300, agnostic: false });
    assert.equal(c.defaultModelFilename, 'model.onnx');
  });

  it("a dynamic batch axis auto-completes Triton's default max batch size with dynamic batching on", () => {
    const c = resolveModelConfig({}, 'yolo', DYNAMIC);
    assert.equal(c.maxBatchSize, CONFIG_DEFAULTS.autoMaxBatchSize);
    assert.deepEqual(c.input[0]!.dims, [3, 640, 640]);
    assert.equal(c.dynamicBatching?.maxQueueDelayMicroseconds, 0);
    assert.equal(c.dynamicBatching?.defaultQueuePolicy.timeoutAction, 'REJECT');
  });

  it('YAML with every Triton key in camelCase', () => {
    const file = parseModelConfigText(
      [
        'maxBatchSize: 8',
        'input: [{ name: images, dataType: TYPE_FP32, dims: [3, 640, 640] }]',
        'instanceGroup: [{ count: 2, kind: KIND_CPU }]',
        'dynamicBatching:',
        '  preferredBatchSize: [8, 4]',
        '  maxQueueDelayMicroseconds: 2000',
        '  priorityLevels: 2',
        '  defaultPriorityLevel: 2',
        '  defaultQueuePolicy: { maxQueueSize: 64, timeoutAction: DELAY, defaultTimeoutMicroseconds: 5000, allowTimeoutOverride: true }',
        '  priorityQueuePolicy: { "1": { maxQueueSize: 8 } }',
        'versionPolicy: { specific: { versions: [3, 1] } }',
        'modelWarmup: [{ name: zeros, batchSize: 2, inputs: { images: { dataType: TYPE_FP32, dims: [3, 640, 640], zeroData: true } } }]',
        'parameters: { intra_op_thread_count: "1", note: { stringValue: hi } }',
        'detection: { conf: 0.4, iou: 0.5, maxDet: 100, classes: [0, 5] }',
      ].join('\n'),
      'config.yaml',
    );
    const c = resolveModelConfig(file, 'yolo', DYNAMIC);
    assert.equal(c.maxBatchSize, 8);
    assert.deepEqual(c.dynamicBatching!.preferredBatchSize, [4, 8]);
    assert.equal(c.dynamicBatching!.priorityQueuePolicy[1]!.maxQueueSize, 8);
    assert.equal(c.dynamicBatching!.priorityQueuePolicy[1]!.timeoutAction, 'DELAY'); // inherits the default policy
    assert.deepEqual(c.versionPolicy, { kind: 'specific', versions: [1, 3] });
    assert.equal(c.instanceGroup[0]!.count, 2);
    assert.deepEqual(c.parameters, { intra_op_thread_count: '1', note: 'hi' });
    assert.deepEqual(c.detection, { conf: 0.4, iou: 0.5, maxDet: 100, agnostic: false, classes: [0, 5] });
    assert.equal(c.modelWarmup[0]!.inputs.images!.source, 'zero');
    assert.equal(c.modelWarmup[0]!.batchSize, 2);
    const wire = toTritonConfigJson(c, { metadata: "{'task': 'detect'}" });
    assert.equal(wire.max_batch_size, 8);
    assert.deepEqual((wire.input as unknown[])[0], { name: 'images', data_type: 'TYPE_FP32', dims: [3, 640, 640] });
    assert.deepEqual((wire.parameters as Record<string, unknown>).metadata, { string_value: "{'task': 'detect'}" });
    assert.equal((wire.dynamic_batching as Record<string, unknown>).max_queue_delay_microseconds, 2000);
  });

  it('bad config: wrong type names the key path', () => {
    configError(() => validateModelConfig({ dynamicBatching: { maxQueueDelayMicroseconds: 'soon' } }, 'c.json'), 'dynamicBatching.maxQueueDelayMicroseconds');
    configError(() => validateModelConfig({ instanceGroup: [{ count: 0 }] }, 'c.json'), 'instanceGroup[0].count');
    configError(() => validateModelConfig({ input: [{ name: 'images', dataType: 'FP32' }] }, 'c.json'), 'input[0].dataType');
  });

  it('bad config: snake_case keys are refused with the camelCase name', () => {
    configError(() => validateModelConfig({ max_batch_size: 8 }, 'c.json'), 'max_batch_size', /did you mean 'maxBatchSize'/);
    configError(() => validateModelConfig({ dynamicBatching: { max_queue_delay_microseconds: 5 } }, 'c.json'), 'dynamicBatching.max_queue_delay_microseconds', /maxQueueDelayMicroseconds/);
  });

  it('bad config: syntax errors in JSON and YAML', () => {
    configError(() => parseModelConfigText('{"maxBatchSize": ', 'config.json'), '(root)', /not valid JSON/);
    configError(() => parseModelConfigText('maxBatchSize: [1\n', 'config.yaml'), '(root)', /not valid YAML/);
  });

  it('bad config: contradictions with the model or itself name the key path', () => {
    configError(() => resolveModelConfig({ maxBatchSize: 8 }, 'yolo', FIXED), 'maxBatchSize', /batch axis is fixed to 1/);
    configError(() => resolveModelConfig({ input: [{ name: 'pixels' }] }, 'yolo', FIXED), 'input[0].name', /'pixels' is not an input.*'images'/);
    configError(() => resolveModelConfig({ input: [{ name: 'images', dataType: 'TYPE_UINT8' }] }, 'yolo', FIXED), 'input[0].dataType', /TYPE_FP32/);
    configError(() => resolveModelConfig({ maxBatchSize: 4, input: [{ name: 'images', dims: [3, 320, 320] }] }, 'yolo', DYNAMIC), 'input[0].dims');
    configError(() => resolveModelConfig({ maxBatchSize: 4, dynamicBatching: { preferredBatchSize: [8] } }, 'yolo', DYNAMIC), 'dynamicBatching.preferredBatchSize[0]');
    configError(() => resolveModelConfig({ dynamicBatching: { priorityLevels: 2, defaultPriorityLevel: 3 } }, 'yolo', FIXED), 'dynamicBatching.defaultPriorityLevel');
    configError(() => resolveModelConfig({ dynamicBatching: { priorityLevels: 2, priorityQueuePolicy: { '5': {} } } }, 'yolo', FIXED), 'dynamicBatching.priorityQueuePolicy.5');
    configError(() => resolveModelConfig({ name: 'other' }, 'yolo', FIXED), 'name');
    configError(() => resolveModelConfig({ modelWarmup: [{ name: 'w', inputs: { images: { dataType: 'TYPE_FP32', dims: [1, 3, 640, 640] } } }] }, 'yolo', FIXED), 'modelWarmup[0].inputs.images');
  });

  it('the default priority level is the lowest level when not given', () => {
    const c = resolveModelConfig({ dynamicBatching: { priorityLevels: 3 } }, 'yolo', FIXED);
    assert.equal(c.dynamicBatching!.defaultPriorityLevel, 3);
  });
});

it('an engine with a max batch profile (GPU engine): maxBatchSize defaults to it; a larger one is OSPREY_ERR_CONFIG', () => {
  const engine = {
    inputs: [{ name: 'images', type: 'uint8' as const, shape: ['batch', 640, 640, 3] }],
    outputs: [{ name: 'output0', type: 'float32' as const, shape: ['batch', 300, 6] }],
    maxBatchSize: 32,
  };
  assert.equal(resolveModelConfig({ backend: 'osprey-cuda' }, 'm', engine).maxBatchSize, 32);
  assert.equal(resolveModelConfig({ maxBatchSize: 8 }, 'm', engine).maxBatchSize, 8);
  assert.throws(
    () => resolveModelConfig({ maxBatchSize: 64 }, 'm', engine, 'm/config.json'),
    (e: unknown) => e instanceof OspreyError && e.code === 'OSPREY_ERR_CONFIG' && /maxBatchSize: 64 but the engine runs batches up to 32; lower it, or rebuild the engine with --max-batch 64/.test(e.message),
  );
});
