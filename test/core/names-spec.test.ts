import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isOspreyError } from '../../src/core/errors.js';
import { resolveDetectionModelSpec } from '../../src/core/model-spec.js';
import { parseClassNames, resolveClassNames } from '../../src/core/names.js';

test('parses Ultralytics names metadata (Python dict repr), JSON list and dict', () => {
  assert.deepEqual(parseClassNames("{0: 'person', 1: 'bicycle', 2: \"people's\"}"), ['person', 'bicycle', "people's"]);
  assert.deepEqual(parseClassNames('["a", "b"]'), ['a', 'b']);
  assert.deepEqual(parseClassNames('{"0": "x", "2": "z"}'), ['x', '1', 'z']);
  assert.throws(() => parseClassNames('nothing here'), (e) => isOspreyError(e, 'OSPREY_ERR_LABELS'));
});

test('class names: metadata, then labels file, then ids; a labels count mismatch is an error', () => {
  assert.deepEqual(resolveClassNames(2, { names: "{0: 'a', 1: 'b'}" }), ['a', 'b']);
  assert.deepEqual(resolveClassNames(2, {}, 'x\ny\n'), ['x', 'y']);
  assert.deepEqual(resolveClassNames(3, {}), ['0', '1', '2']);
  assert.throws(() => resolveClassNames(3, {}, 'x\ny\n'), (e) => isOspreyError(e, 'OSPREY_ERR_LABELS'));
});

test('model spec from an Ultralytics-like export: sizes from the model, names from metadata', () => {
  const spec = resolveDetectionModelSpec(
    [{ name: 'images', type: 'float32', shape: [1, 3, 480, 640] }],
    [{ name: 'output0', type: 'float32', shape: [1, 6, 6300] }],
    { names: "{0: 'cat', 1: 'dog'}", stride: '32', imgsz: '[480, 640]' },
  );
  assert.equal(spec.inputFormat, 'float32-nchw');
  assert.deepEqual([spec.inputHeight, spec.inputWidth, spec.batchSize], [480, 640, 1]);
  assert.equal(spec.layout.layout, 'yolov8');
  assert.deepEqual(spec.names, ['cat', 'dog']);
  assert.equal(spec.nmsInGraph, false);
});

test('model spec: uint8 NHWC dynamic batch with top-K suffix; dynamic size needs imgsz', () => {
  const spec = resolveDetectionModelSpec(
    [{ name: 'images', type: 'uint8', shape: ['batch', 640, 640, 3] }],
    [{ name: 'detections', type: 'float32', shape: ['batch', 300, 6] }],
    { names: "{0: 'a'}", osprey_postprocess: 'topk' },
  );
  assert.equal(spec.inputFormat, 'uint8-nhwc');
  assert.equal(spec.batchSize, null);
  assert.equal(spec.layout.layout, 'end2end');
  assert.equal(spec.nmsInGraph, false);
  assert.throws(
    () => resolveDetectionModelSpec([{ name: 'x', type: 'float32', shape: [1, 3, 'h', 'w'] }], [{ name: 'y', type: 'float32', shape: [1, 84, 'n'] }], {}),
    (e) => isOspreyError(e, 'OSPREY_ERR_UNSUPPORTED_MODEL'),
  );
  const dyn = resolveDetectionModelSpec([{ name: 'x', type: 'float32', shape: [1, 3, 'h', 'w'] }], [{ name: 'y', type: 'float32', shape: [1, 84, 'n'] }], {}, { imgsz: 320 });
  assert.deepEqual([dyn.inputHeight, dyn.inputWidth], [320, 320]);
  assert.throws(
    () => resolveDetectionModelSpec([{ name: 'x', type: 'float32', shape: [1, 3, 640, 640] }], [{ name: 'y', type: 'float32', shape: [1, 84, 8400] }], {}, { imgsz: 320 }),
    (e) => isOspreyError(e, 'OSPREY_ERR_UNSUPPORTED_MODEL'),
  );
  assert.throws(
    () => resolveDetectionModelSpec([{ name: 'x', type: 'int32', shape: [1, 10] }], [{ name: 'y', type: 'float32', shape: [1, 84, 8400] }], {}),
    (e) => isOspreyError(e, 'OSPREY_ERR_UNSUPPORTED_MODEL'),
  );
});
