/**
 * `osprey val` on the real YOLOv8n (FP32) and the known-broken INT8 model from ../shared/data, through the real
 * Detector pipeline (sharp letterbox → ONNX Runtime in a worker thread → NMS). CPU execution provider.
 *
 * The full 63-image dev subset figure is measured by hand (README, docs/val.md, bench/results/cpu-2core-amd-epyc/val-yolov8n.json);
 * these tests use deterministic subsets (the first N images by id) to stay inside the area's time budget.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isOspreyError } from '../../src/core/errors.js';
import { evaluateCoco } from '../../src/core/cocoeval.js';
import { loadDataset, type ValDataset } from '../../src/val/dataset.js';
import { cocoResultsJson, validateModel, type ModelValResult } from '../../src/val/runner.js';
import { BROKEN_INT8, COCO_DEV_JSON, REPO, cocoSubset, tempDir, writeCocoDataset, writeYoloDataset, YOLOV8N } from './helpers.js';

const CPU = { executionProviders: ['cpu'] };

/** Runs the CLI (sources through tsx) in a child process; returns exit code, stdout, stderr. */
function osprey(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const entry = `import { main } from ${JSON.stringify(join(REPO, 'src/cli/main.ts'))}; await main(['node', 'osprey', ...process.argv.slice(1)]);`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', entry, ...args], { cwd: REPO, encoding: 'utf8', timeout: 240_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** One FP32 run on the first 40 dev images, shared by the tests below (inference is the expensive part). */
let first40: Promise<{ ds: ValDataset; r: ModelValResult }> | undefined;
function fp32First40() {
  first40 ??= (async () => {
    const ds = await loadDataset(COCO_DEV_JSON);
    return { ds, r: await validateModel(YOLOV8N, ds, { ...CPU, limit: 40 }) };
  })();
  return first40;
}

test('FP32 yolov8n on the first 40 dev images: mAP50-95 in the plausible band, COCO results JSON', async () => {
  const { r } = await fp32First40();
  assert.equal(r.images.evaluated, 40);
  assert.equal(r.images.failed, 0);
  assert.equal(r.images.sizeMismatch, 0);
  assert.equal(r.executionProvider, 'cpu');
  assert.deepEqual(r.settings, { conf: 0.001, iou: 0.7, maxDet: 300, inputWidth: 640, inputHeight: 640 });
  // pycocotools on these 40 images with Osprey's saved detections: mAP50-95 0.3799, mAP50 0.5362 (measured by
  // hand, 19:58 UTC). Band ±0.025: a wrong letterbox, a stretched resize or broken NMS moves it out.
  assert.ok(r.map50_95! > 0.355 && r.map50_95! < 0.405, `mAP50-95 ${r.map50_95}`);
  assert.ok(r.map50! > 0.51 && r.map50! < 0.56, `mAP50 ${r.map50}`);
  assert.ok(r.map75! < r.map50!);
  const person = r.perClass.find((c) => c.name === 'person')!;
  assert.ok(person.numGroundTruth > 50 && person.ap50_95! > 0.3, JSON.stringify(person));
  // A class with no ground truth in these images is null, not 0.
  assert.ok(r.perClass.some((c) => c.numGroundTruth === 0 && c.ap50_95 === null));
  // At most 300 per image; COCO results shape.
  const perImage = new Map<number, number>();
  for (const d of r.detections) perImage.set(d.imageId, (perImage.get(d.imageId) ?? 0) + 1);
  assert.ok(Math.max(...perImage.values()) <= 300);
  const saved = JSON.parse(cocoResultsJson(r.detections.slice(0, 3))) as Array<Record<string, unknown>>;
  assert.deepEqual(Object.keys(saved[0]!).sort(), ['bbox', 'category_id', 'image_id', 'score']);
  assert.equal((saved[0]!['bbox'] as number[]).length, 4);
});

test('gate passes: FP32 against itself exits 0 with a 0% drop (--json)', () => {
  const r = osprey(['val', '--model', YOLOV8N, '--model', YOLOV8N, '--data', COCO_DEV_JSON, '--ep', 'cpu', '--limit', '6', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { models: Array<{ model: string; map50_95: number; map50: number; map75: number; perClass: unknown[]; drop: number | null; gatePassed: boolean | null }> };
  assert.equal(out.models.length, 2);
  assert.ok(out.models[0]!.map50_95 > 0.3);
  assert.equal(out.models[1]!.drop, 0);
  assert.equal(out.models[1]!.gatePassed, true);
  assert.equal(out.models[0]!.perClass.length, 80);
});

test('gate fails: the broken INT8 model exits 1 naming it and its drop; --report and --save-json written', (t) => {
  const { dir, cleanup } = tempDir('gate');
  t.after(cleanup);
  const r = osprey([
    'val', '--model', YOLOV8N, '--model', BROKEN_INT8, '--data', COCO_DEV_JSON, '--ep', 'cpu', '--limit', '3',
    '--report', join(dir, 'report'), '--save-json', join(dir, 'dets.json'),
  ]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /OSPREY_ERR_GATE_FAILED: .*yolov8n_int8_static_qoperator_broken\.onnx drops 100\.0% \(mAP50-95 0\.\d+ → 0\.0000\)/);
  assert.match(r.stdout, /yolov8n_int8_static_qoperator_broken\.onnx +0\.0000 .*FAIL \(> 2%\)/);
  const html = readFileSync(join(dir, 'report/index.html'), 'utf8');
  assert.ok((html.match(/<svg /g) ?? []).length >= 4);
  assert.ok(existsSync(join(dir, 'report/results.json')));
  const dets = JSON.parse(readFileSync(join(dir, 'dets.json'), 'utf8')) as unknown[];
  assert.ok(dets.length > 0);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'dets-2.json'), 'utf8')), []); // class scores all 0: nothing over conf 0.001
});

test('bad data: a corrupt image is skipped and counted (OSPREY_ERR_INVALID_IMAGE), a missing one too, a size mismatch counted; mAP covers the rest', async (t) => {
  const { dir, cleanup } = tempDir('corrupt');
  t.after(cleanup);
  const json = cocoSubset(4);
  json.images[3]!.width += 1; // the annotations state a size the image does not have: counted as a size mismatch
  const p = writeCocoDataset(dir, json);
  const [a, b] = json.images;
  unlinkSync(join(dir, 'images', a!.file_name));
  writeFileSync(join(dir, 'images', a!.file_name), Buffer.from('\xff\xd8\xff\xe0 truncated jpeg', 'latin1'));
  unlinkSync(join(dir, 'images', b!.file_name));
  const ds = await loadDataset(p);
  assert.equal(ds.issues.missingImages, 1);
  const r = await validateModel(YOLOV8N, ds, CPU);
  assert.equal(r.images.listed, 4);
  assert.equal(r.images.missing, 1);
  assert.equal(r.images.failed, 1);
  assert.equal(r.failures[0]!.code, 'OSPREY_ERR_INVALID_IMAGE');
  assert.equal(r.failures[0]!.image, a!.file_name);
  assert.equal(r.images.evaluated, 2);
  assert.equal(r.images.sizeMismatch, 1);
  assert.match(r.datasetIssues, /1 image listed but missing/);
  assert.ok(r.map50_95! > 0);
});

test('bad data: every image corrupt is OSPREY_ERR_DATASET (no mAP)', async (t) => {
  const { dir, cleanup } = tempDir('all-corrupt');
  t.after(cleanup);
  const json = cocoSubset(2);
  const p = writeCocoDataset(dir, json);
  for (const im of json.images) {
    unlinkSync(join(dir, 'images', im.file_name));
    writeFileSync(join(dir, 'images', im.file_name), 'garbage');
  }
  await assert.rejects(validateModel(YOLOV8N, await loadDataset(p), CPU), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_DATASET') && /all 2 images failed/.test(e.message));
});

test('YOLO dataset: same mAP as the COCO JSON on the same (crowd-free) images; names that do not match are OSPREY_ERR_CLASS_MAPPING', async (t) => {
  const { dir, cleanup } = tempDir('yolo-model');
  t.after(cleanup);
  const json = cocoSubset(5); // the first 15 images by id have no crowd annotation
  const yolo = await loadDataset(writeYoloDataset(join(dir, 'y'), json));
  const ry = await validateModel(YOLOV8N, yolo, CPU);
  // The COCO side: the shared 40-image run's detections, evaluated on these 5 images only.
  const { ds, r } = await fp32First40();
  const ids = json.images.map((i) => i.id);
  const rc = evaluateCoco(ds.annotations, r.detections.filter((d) => ids.includes(d.imageId)), { imageIds: ids, categoryIds: ds.categories.map((c) => c.id) }).summary;
  // The area field differs (box area vs segment area) so APs/m/l may differ; the "all" range does not use it.
  assert.ok(Math.abs(ry.map50_95! - rc.map50_95!) < 1e-3, `${ry.map50_95} vs ${rc.map50_95}`);
  assert.ok(Math.abs(ry.map50! - rc.map50!) < 1e-3);
  // data.yaml names in class order with 'person' renamed 'human' (person has ground truth in these images).
  const renamed = [...json.categories].sort((a, b) => a.id - b.id).map((c) => (c.name === 'person' ? 'human' : c.name));
  const bad = await loadDataset(writeYoloDataset(join(dir, 'bad'), json, renamed));
  await assert.rejects(validateModel(YOLOV8N, bad, CPU), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_CLASS_MAPPING') && /"human"/.test(e.message));
});
