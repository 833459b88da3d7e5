/**
 * Datasets (COCO JSON + YOLO), bad data, class mapping, the gate parser, the confusion matrix and the report
 * page — no model runs here (see val-model.test.ts for those).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { isOspreyError } from '../../src/core/errors.js';
import { evaluateCoco } from '../../src/core/cocoeval.js';
import { confusionMatrix } from '../../src/val/confusion.js';
import { labelPathFor, loadCocoDataset, loadDataset, loadYoloDataset, mapClasses } from '../../src/val/dataset.js';
import { computeDrop, failsGate, parseGate } from '../../src/val/gate.js';
import { resolveModelPath, selectImages } from '../../src/val/runner.js';
import { YOLOV8N, COCO_DEV_IMAGES, COCO_DEV_JSON, cocoSubset, readCocoDev, tempDir, writeCocoDataset, writeYoloDataset } from './helpers.js';

const rejectsWith = async (p: Promise<unknown>, code: string, re?: RegExp) =>
  assert.rejects(p, (e: unknown) => {
    assert.ok(isOspreyError(e), `expected an OspreyError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    return true;
  });

test('COCO dev subset loads: 63 images, 551 annotations (6 crowd), 80 categories, no issues', async () => {
  const ds = await loadDataset(COCO_DEV_JSON);
  assert.equal(ds.format, 'coco');
  assert.equal(ds.images.length, 63);
  assert.equal(ds.listedImages, 63);
  assert.equal(ds.annotations.length, 551);
  assert.equal(ds.annotations.filter((a) => a.iscrowd).length, 6);
  assert.equal(ds.categories.length, 80);
  assert.equal(ds.imagesDir, COCO_DEV_IMAGES);
  assert.deepEqual(ds.issues.missingImages + ds.issues.unknownCategoryAnnotations + ds.issues.invalidAnnotations, 0);
});

test('bad data: an image listed but missing is skipped and counted', async (t) => {
  const { dir, cleanup } = tempDir('missing');
  t.after(cleanup);
  const json = cocoSubset(3);
  json.images.push({ id: 999999, file_name: 'not-there.jpg', width: 640, height: 480 });
  json.annotations.push({ id: 1e9, image_id: 999999, category_id: 1, bbox: [1, 1, 10, 10], area: 100, iscrowd: 0 });
  const ds = await loadCocoDataset(writeCocoDataset(dir, json));
  assert.equal(ds.issues.missingImages, 1);
  assert.deepEqual(ds.issues.missingImageExamples, ['not-there.jpg']);
  assert.equal(ds.listedImages, 4);
  assert.equal(ds.images.length, 3);
  // Its annotation is not evaluated (the image is left out of the mAP, not counted as all-missed).
  assert.ok(!ds.annotations.some((a) => a.imageId === 999999));
});

test('bad data: an annotation with an unknown category is dropped and counted', async (t) => {
  const { dir, cleanup } = tempDir('unknown-cat');
  t.after(cleanup);
  const json = cocoSubset(3);
  const n = json.annotations.length;
  json.annotations.push({ id: 1e9, image_id: json.images[0]!.id, category_id: 4242, bbox: [1, 1, 10, 10], area: 100, iscrowd: 0 });
  const ds = await loadCocoDataset(writeCocoDataset(dir, json));
  assert.equal(ds.issues.unknownCategoryAnnotations, 1);
  assert.deepEqual(ds.issues.unknownCategoryIds, [4242]);
  assert.equal(ds.annotations.length, n);
});

test('bad data: an annotation with an invalid box (w ≤ 0) is dropped and counted', async (t) => {
  const { dir, cleanup } = tempDir('bad-box');
  t.after(cleanup);
  const json = cocoSubset(2);
  json.annotations.push({ id: 1e9, image_id: json.images[0]!.id, category_id: 1, bbox: [1, 1, 0, 10], area: 0, iscrowd: 0 });
  const ds = await loadCocoDataset(writeCocoDataset(dir, json));
  assert.equal(ds.issues.invalidAnnotations, 1);
});

test('bad data: an empty dataset (no images listed) is OSPREY_ERR_DATASET', async (t) => {
  const { dir, cleanup } = tempDir('empty');
  t.after(cleanup);
  const p = writeCocoDataset(dir, { images: [], annotations: [], categories: readCocoDev().categories });
  await rejectsWith(loadCocoDataset(p), 'OSPREY_ERR_DATASET', /lists no images/);
});

test('bad data: every listed image missing is OSPREY_ERR_DATASET with the count', async (t) => {
  const { dir, cleanup } = tempDir('all-missing');
  t.after(cleanup);
  const p = writeCocoDataset(dir, cocoSubset(4), false);
  await rejectsWith(loadCocoDataset(p), 'OSPREY_ERR_DATASET', /none of the 4 listed images.*4 images listed but missing/);
});

test('bad data: images without any annotation is OSPREY_ERR_DATASET (mAP undefined)', async (t) => {
  const { dir, cleanup } = tempDir('no-anns');
  t.after(cleanup);
  const json = cocoSubset(2);
  json.annotations = [];
  await rejectsWith(loadCocoDataset(writeCocoDataset(dir, json)), 'OSPREY_ERR_DATASET', /no usable ground-truth annotation/);
});

test('bad data: not JSON / not COCO is OSPREY_ERR_DATASET; a missing path is OSPREY_ERR_FILE_NOT_FOUND', async (t) => {
  const { dir, cleanup } = tempDir('not-json');
  t.after(cleanup);
  writeFileSync(join(dir, 'a.json'), '{"images": [');
  await rejectsWith(loadCocoDataset(join(dir, 'a.json')), 'OSPREY_ERR_DATASET', /not valid JSON/);
  writeFileSync(join(dir, 'b.json'), '{"foo": 1}');
  await rejectsWith(loadCocoDataset(join(dir, 'b.json')), 'OSPREY_ERR_DATASET', /needs "images" and "categories"/);
  await rejectsWith(loadDataset(join(dir, 'nope.json')), 'OSPREY_ERR_FILE_NOT_FOUND');
  writeFileSync(join(dir, 'c.txt'), 'x');
  await rejectsWith(loadDataset(join(dir, 'c.txt')), 'OSPREY_ERR_DATASET', /not a dataset/);
});

test('YOLO format: a conversion of COCO images gives the same (non-crowd) boxes in pixels, names from data.yaml', async (t) => {
  const { dir, cleanup } = tempDir('yolo');
  t.after(cleanup);
  const json = cocoSubset(5);
  const yaml = writeYoloDataset(dir, json);
  const ds = await loadDataset(dir); // a folder with data.yaml
  assert.equal(ds.format, 'yolo');
  assert.equal(ds.source, yaml);
  assert.equal(ds.images.length, 5);
  assert.equal(ds.categories.length, 80);
  assert.equal(ds.categories[0]!.name, 'person');
  const nonCrowd = json.annotations.filter((a) => !a.iscrowd);
  assert.equal(ds.annotations.length, nonCrowd.length);
  // Same boxes (to the 6 decimals of the normalized label files: < 0.01 px on 640-px images).
  const cats = [...json.categories].sort((a, b) => a.id - b.id).map((c) => c.id);
  for (const im of json.images.sort((a, b) => a.file_name.localeCompare(b.file_name))) {
    const yImg = ds.images.find((x) => x.fileName === im.file_name)!;
    assert.equal(yImg.width, im.width);
    assert.equal(yImg.height, im.height);
    const want = nonCrowd.filter((a) => a.image_id === im.id);
    const got = ds.annotations.filter((a) => a.imageId === yImg.id);
    assert.equal(got.length, want.length);
    want.forEach((a, k) => {
      assert.equal(cats[got[k]!.categoryId], a.category_id);
      for (let c = 0; c < 4; c++) assert.ok(Math.abs(got[k]!.bbox[c]! - a.bbox[c]!) < 0.01, `${im.file_name} box ${k}`);
    });
  }
  assert.equal(labelPathFor('/d/images/val/x.jpg'), '/d/labels/val/x.txt');
});

test('YOLO format bad data: unknown class index, malformed row, missing label file, corrupt image', async (t) => {
  const { dir, cleanup } = tempDir('yolo-bad');
  t.after(cleanup);
  const json = cocoSubset(4);
  writeYoloDataset(dir, json);
  const files = json.images.map((i) => i.file_name).sort();
  const label = (f: string) => join(dir, 'labels/val', f.replace('.jpg', '.txt'));
  writeFileSync(label(files[0]!), readFileSync(label(files[0]!), 'utf8') + '95 0.5 0.5 0.1 0.1\nthis is not a row\n');
  unlinkSync(label(files[1]!));
  unlinkSync(join(dir, 'images/val', files[2]!));
  writeFileSync(join(dir, 'images/val', files[2]!), 'not a jpeg at all');
  const ds = await loadYoloDataset(join(dir, 'data.yaml'));
  assert.equal(ds.issues.unknownCategoryAnnotations, 1);
  assert.deepEqual(ds.issues.unknownCategoryIds, [95]);
  assert.equal(ds.issues.invalidAnnotations, 1);
  assert.equal(ds.issues.imagesWithoutLabels, 1);
  assert.equal(ds.issues.corruptImages, 1);
  assert.equal(ds.images.length, 3);
});

test('class mapping by name; OSPREY_ERR_CLASS_MAPPING lists the dataset names with no model class', () => {
  const ds = { source: 'x.json', categories: [{ id: 1, name: 'person' }, { id: 3, name: 'Traffic_Light' }, { id: 7, name: 'unicorn' }], annotations: [] as never[] };
  const m = mapClasses(['person', 'bicycle', 'traffic light'], ds);
  assert.deepEqual([...m.modelToCategory], [1, -1, 3]);
  assert.deepEqual(m.unusedModelClasses, ['bicycle']);
  const withGt = { ...ds, annotations: [{ id: 1, imageId: 1, categoryId: 7, bbox: [0, 0, 1, 1] }, { id: 2, imageId: 1, categoryId: 1, bbox: [0, 0, 1, 1] }] };
  assert.throws(
    () => mapClasses(['person', 'bicycle', 'traffic light'], withGt),
    (e: unknown) => isOspreyError(e, 'OSPREY_ERR_CLASS_MAPPING') && /"unicorn"/.test(e.message) && !/"person"/.test(e.message.split('(model')[0]!),
  );
  // Nothing in common at all is an error too.
  assert.throws(() => mapClasses(['cat', 'dog'], ds), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_CLASS_MAPPING'));
  // A model without names ("0", "1", ...) with as many classes as categories maps by index, and says so.
  assert.equal(mapClasses(['0', '1', '2'], ds).method, 'index');
});

test('gate: 2% relative and 1.0pt absolute; a bare number is a usage error', () => {
  const rel = parseGate('2%');
  assert.deepEqual([rel.kind, rel.maxDrop], ['relative', 2]);
  const abs = parseGate('1.0pt');
  assert.deepEqual([abs.kind, abs.maxDrop], ['absolute', 1]);
  assert.throws(() => parseGate('2'), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_USAGE'));
  // 0.37 → 0.365: relative drop (0.005/0.37)·100 = 1.35% (passes 2%); absolute 0.5pt (passes 1.0pt, fails 0.4pt).
  assert.ok(Math.abs(computeDrop(0.37, 0.365, rel)! - 1.3513513) < 1e-6);
  assert.equal(failsGate(computeDrop(0.37, 0.365, rel), 0.365, rel), false);
  assert.equal(failsGate(computeDrop(0.37, 0.365, abs), 0.365, abs), false);
  assert.equal(failsGate(computeDrop(0.37, 0.365, parseGate('0.4pt')), 0.365, parseGate('0.4pt')), true);
  // 0.37 → 0: 100% drop fails; a model with no mAP at all fails.
  assert.equal(failsGate(computeDrop(0.37, 0, rel), 0, rel), true);
  assert.equal(failsGate(null, null, rel), true);
});

test('confusion matrix: matched, wrong class, missed (background row), false positive (background column)', () => {
  // Image 1: gt person A, gt car B, gt person C (missed). Dets: on A as person (match), on B as person (wrong
  // class), a far box as car (FP), a low-score det on C (score 0.2 ≤ conf 0.25: ignored → C missed).
  const gts = [
    { id: 1, imageId: 1, categoryId: 1, bbox: [0, 0, 10, 10] },
    { id: 2, imageId: 1, categoryId: 3, bbox: [50, 0, 10, 10] },
    { id: 3, imageId: 1, categoryId: 1, bbox: [100, 0, 10, 10] },
  ];
  const dts = [
    { imageId: 1, categoryId: 1, bbox: [0, 0, 10, 10], score: 0.9 },
    { imageId: 1, categoryId: 1, bbox: [50, 0, 10, 10], score: 0.8 },
    { imageId: 1, categoryId: 3, bbox: [300, 300, 10, 10], score: 0.7 },
    { imageId: 1, categoryId: 1, bbox: [100, 0, 10, 10], score: 0.2 },
  ];
  const cm = confusionMatrix(gts, dts, [1], [1, 3], ['person', 'car']);
  const at = (p: number, t: number) => cm.matrix[p * 3 + t];
  assert.equal(at(0, 0), 1); // person → person
  assert.equal(at(0, 1), 1); // predicted person, true car
  assert.equal(at(2, 0), 1); // person missed (background row)
  assert.equal(at(1, 2), 1); // car FP (background column)
  assert.equal([...cm.matrix].reduce((s, v) => s + v, 0), 4);
});

test('report page: HTML with SVG per-class bars, two PR curves and a confusion matrix', async () => {
  const { renderReportHtml } = await import('../../src/val/report.js');
  const gts = [{ id: 1, imageId: 1, categoryId: 1, bbox: [0, 0, 10, 10], area: 100 }];
  const dts = [{ imageId: 1, categoryId: 1, bbox: [0, 0, 10, 10], score: 0.9 }];
  const evaluation = evaluateCoco(gts, dts, { imageIds: [1], categoryIds: [1] });
  const r = {
    model: 'a<b>.onnx', modelPath: '/a.onnx', executionProvider: 'cpu', ...evaluation.summary,
    perClass: [{ categoryId: 1, name: 'person', classId: 0, numGroundTruth: 1, numDetections: 1, ap50_95: 1, ap50: 1, ap75: 1 }],
    images: { evaluated: 1, listed: 1, missing: 0, failed: 0, sizeMismatch: 0 }, failures: [], datasetIssues: '', classMapping: 'name' as const,
    settings: { conf: 0.001, iou: 0.7, maxDet: 300, inputWidth: 640, inputHeight: 640 }, durationSeconds: 1, msPerImage: 1,
    detections: dts, evaluation, confusion: confusionMatrix(gts, dts, [1], [1], ['person']),
  };
  const html = renderReportHtml({ results: [r], drops: [null], failed: [false], gate: parseGate('2%'), dataset: { source: 'x.json', images: 1, annotations: 1, issues: '' } });
  assert.equal((html.match(/<svg /g) ?? []).length, 4);
  assert.equal((html.match(/<polyline /g) ?? []).length, 2);
  assert.match(html, /a&lt;b&gt;\.onnx/); // names are escaped
  assert.doesNotMatch(html, /NaN/);
});

test('--model: an .onnx file, a version folder, or an engine folder (highest numbered version); else OSPREY_ERR_MODEL_NOT_FOUND_FILE', (t) => {
  const { dir, cleanup } = tempDir('engine-dir');
  t.after(cleanup);
  writeFileSync(join(dir, 'config.json'), '{}');
  for (const v of ['1', '2', '10']) {
    mkdirSync(join(dir, v));
    symlinkSync(YOLOV8N, join(dir, v, 'model.onnx'));
  }
  mkdirSync(join(dir, 'notes'));
  assert.equal(resolveModelPath(YOLOV8N), YOLOV8N);
  assert.equal(resolveModelPath(dir), join(dir, '10', 'model.onnx'));
  assert.equal(resolveModelPath(join(dir, '2')), join(dir, '2', 'model.onnx'));
  assert.throws(() => resolveModelPath(join(dir, 'notes')), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_MODEL_NOT_FOUND_FILE'));
  assert.throws(() => resolveModelPath(join(dir, 'missing.onnx')), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_MODEL_NOT_FOUND_FILE'));
});

test('--limit N takes the first N images by id; --limit 0 is OSPREY_ERR_USAGE', async () => {
  const ds = await loadDataset(COCO_DEV_JSON);
  const ids = ds.images.map((i) => i.id).sort((a, b) => a - b);
  assert.deepEqual(selectImages(ds, 5).map((i) => i.id), ids.slice(0, 5));
  assert.equal(selectImages(ds).length, 63);
  assert.throws(() => selectImages(ds, 0), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_USAGE'));
});
