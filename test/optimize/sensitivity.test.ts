/**
 * Sensitivity analysis on the real yolov8n, restricted to three layers and one image to stay fast: each layer is
 * quantized alone and ranked by its output error; the report holds the proposal and the all-quantized error.
 */
import assert from 'node:assert/strict';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readOnnxModel } from '../../src/onnx/model.js';
import { collectStatistics } from '../../src/optimize/calibrate.js';
import { rangesFromStatistics } from '../../src/optimize/calibration-cache.js';
import { prepareAllImages } from '../../src/optimize/images.js';
import { detectionSpecOf } from '../../src/optimize/model-info.js';
import { calibrationTensorNames, headNodes } from '../../src/optimize/qdq.js';
import { analyzeSensitivity } from '../../src/optimize/sensitivity.js';

const data = resolve(dirname(fileURLToPath(import.meta.url)), '../../../shared/data');

test('sensitivity: three layers measured alone, ranked by output error; the head is kept out of the candidates', async () => {
  const model = readOnnxModel(join(data, 'models/yolov8n.onnx'));
  const spec = detectionSpecOf(model);
  const imgs = await prepareAllImages([join(data, 'images/bus.jpg')], { height: spec.inputHeight, width: spec.inputWidth, format: 'float32-nchw' });
  const { statistics } = await collectStatistics(model, spec.inputName, calibrationTensorNames(model), imgs);
  const ranges = rangesFromStatistics(statistics, 'minmax');
  const layers = ['/model.0', '/model.9/m/MaxPool', '/model.21/cv2'];
  const seen: string[] = [];
  const r = await analyzeSensitivity(model, ranges, { inputName: spec.inputName, outputName: spec.outputName, layout: spec.layout }, imgs, {
    layers,
    onLayer: (_d, _t, l) => seen.push(l),
  });
  assert.deepEqual([...seen].sort(), [...layers].sort());
  assert.equal(r.layers.length, 3);
  for (let i = 1; i < r.layers.length; i++) assert.ok(r.layers[i - 1]!.error >= r.layers[i]!.error, 'sorted by error, largest first');
  const conv = r.layers.find((l) => l.layer === '/model.0')!;
  assert.deepEqual(conv.opTypes.sort(), ['Conv', 'Mul', 'Sigmoid']);
  assert.ok(conv.error > 0 && conv.error < 0.5, `model.0 alone: ${conv.error}`);
  assert.ok(r.proposedLayers.every((l) => layers.includes(l)));
  assert.ok(r.allQuantized.error >= r.layers[0]!.error * 0.5, 'quantizing everything is not much better than the worst layer alone');
  // the head (output tail + border convs) is FP32 by default, so it is not among the candidates
  const head = headNodes(model);
  assert.ok(head.tail.some((n) => n.name === '/model.22/Concat_3'));
  assert.equal(head.borderConvs.filter((n) => n.op_type === 'Conv').length, 6, 'the six prediction convs (box and class, three scales)');
  assert.ok(head.tail.some((n) => n.name === '/model.22/dfl/conv/Conv'), 'the DFL expectation conv is part of the tail');
});
