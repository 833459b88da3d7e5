/**
 * `osprey build` on the real yolov8n (../shared/data): INT8 QDQ with calibration on a few real images, cache reuse,
 * the broken-model check, repository versions, and each bad input with its error code. The full mAP table is a
 * benchmark (the int8-accuracy suite, bench/suites/int8-accuracy.ts), not a test.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isOspreyError } from '../../src/core/errors.js';
import { Detector } from '../../src/engine/detector.js';
import { readOnnxModel, writeOnnxModel } from '../../src/onnx/model.js';
import { makeFloatTensor, makeNode } from '../../src/onnx/index.js';
import { buildEngine } from '../../src/optimize/build.js';
import { parseTensorRtCalibrationTable } from '../../src/optimize/calibration-cache.js';
import { checkModel } from '../../src/optimize/check.js';
import { verifyManifest } from '../../src/repository/manifest.js';
import { ModelRepository } from '../../src/repository/repository.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const data = resolve(root, '../shared/data');
const MODEL = join(data, 'models/yolov8n.onnx');
const BROKEN = join(data, 'models/yolov8n_int8_static_qoperator_broken.onnx');
const OTHER = join(data, 'models/yolov8n_int8_dynamic.onnx');
const BUS = join(data, 'images/bus.jpg');

let work: string;
let calibDir: string;
let int8Dir: string;
let cachePath: string;

/** No leftovers (temp dirs) next to a destination after a failed build. */
function assertNothingWritten(parent: string, name: string): void {
  assert.equal(existsSync(join(parent, name)), false, `${name} must not exist after a failed build`);
  assert.deepEqual(readdirSync(parent).filter((f) => f.includes('.tmp-')), [], 'no temp directory left behind');
}

before(() => {
  work = mkdtempSync(join(tmpdir(), 'osprey-build-test-'));
  calibDir = join(work, 'calibration');
  mkdirSync(calibDir);
  // 8 calibration images: the first 8 of coco-val-dev by file name (bus.jpg is not among them)
  const imgs = readdirSync(join(data, 'coco-val-dev/images')).filter((f) => f.endsWith('.jpg')).sort().slice(0, 8);
  for (const f of imgs) symlinkSync(join(data, 'coco-val-dev/images', f), join(calibDir, f));
  cachePath = join(work, 'calib-cache.json');
});
after(() => rmSync(work, { recursive: true, force: true }));

test('int8 build: QDQ engine directory with config, manifest, calibration cache + TensorRT table; bus.jpg still shows the bus and persons', async () => {
  int8Dir = join(work, 'yolov8n-int8');
  const r = await buildEngine({ model: MODEL, out: int8Dir, precision: 'int8', calibrationData: calibDir, calibrationMethod: 'minmax', calibrationCache: cachePath, maxBatch: 4 });
  assert.equal(r.version, 1);
  const v = join(int8Dir, '1');
  assert.deepEqual(readdirSync(v).sort(), ['calibration-cache.json', 'calibration.cache', 'manifest.json', 'model.onnx']);
  assert.ok(existsSync(join(int8Dir, 'config.json')));
  const config = JSON.parse(readFileSync(join(int8Dir, 'config.json'), 'utf8'));
  assert.equal(config.maxBatchSize, 4);
  assert.deepEqual(config.input[0], { name: 'images', dataType: 'TYPE_UINT8', dims: [640, 640, 3] });
  const m = JSON.parse(readFileSync(join(v, 'manifest.json'), 'utf8'));
  assert.equal(m.precision, 'int8');
  assert.equal(m.source.sha256, createHash('sha256').update(readFileSync(MODEL)).digest('hex'));
  assert.deepEqual(m.passes.map((p: { name: string }) => p.name), ['dynamicBatch', 'quantizeQdq', 'uint8Input', 'fuseUint8InputQuantize', 'fastDfl', 'expandNearestResize', 'stemColumnsToChannels']);
  assert.equal(m.calibration.method, 'minmax');
  assert.equal(m.calibration.imageCount, 8);
  assert.equal(m.calibration.cacheSha256, createHash('sha256').update(readFileSync(join(v, 'calibration-cache.json'))).digest('hex'));
  assert.match(m.onnxRuntime, /^\d+\.\d+/);
  assert.equal(m.targetExecutionProvider, 'cpu');
  for (const [f, h] of Object.entries(m.files as Record<string, { sha256: string }>)) {
    assert.equal(createHash('sha256').update(readFileSync(join(v, f))).digest('hex'), h.sha256, f);
  }
  // the server's manifest check accepts it
  assert.deepEqual((await verifyManifest(v, 'model.onnx')).sort(), Object.keys(m.files).sort());
  // QDQ form: int8 per-channel weights behind DequantizeLinear, QuantizeLinear/DequantizeLinear pairs on activations
  const q = readOnnxModel(join(v, 'model.onnx'));
  const ops = q.graph.node.map((n) => n.op_type);
  assert.ok(ops.filter((o) => o === 'QuantizeLinear').length > 100);
  const wdq = q.graph.node.find((n) => n.op_type === 'DequantizeLinear' && n.attribute.some((a) => a.name === 'axis'))!;
  const wq = q.graph.initializer.find((t) => t.name === wdq.input[0])!;
  assert.equal(wq.data_type, 3, 'weights are INT8');
  assert.equal(q.graph.initializer.find((t) => t.name === wdq.input[1])!.dims[0], wq.dims[0], 'one scale per output channel');
  // CPU EP choices (docs/build.md, "What stays FP32"): uint8 frames straight into the first DequantizeLinear, the
  // prediction convs quantized, the DFL softmax on the innermost axis, the output tail in float
  assert.equal(q.graph.node.some((n) => n.op_type === 'Cast' || n.op_type === 'Div' && n.name === 'osprey/pre/Div'), false, 'no float round trip of the pixels');
  const producer = (name: string) => q.graph.node.find((n) => n.output.includes(name));
  const stemDq = producer(q.graph.node.find((n) => n.name === '/model.0/conv/Conv')!.input[0]!)!;
  assert.equal(stemDq.op_type, 'DequantizeLinear');
  assert.deepEqual([producer(stemDq.input[0]!)!.op_type, producer(producer(stemDq.input[0]!)!.input[0]!)!.op_type], ['Transpose', 'Reshape']);
  assert.equal(producer(producer(stemDq.input[0]!)!.input[0]!)!.input[0], 'images', 'the uint8 frames reach the first DequantizeLinear through a Reshape + Transpose only');
  const predictionConvs = q.graph.node.filter((n) => n.op_type === 'Conv' && /\/model\.22\/cv[23]\.\d\/cv[23]\.\d\.2\/Conv$/.test(n.name ?? ''));
  assert.equal(predictionConvs.length, 6);
  for (const c of predictionConvs) assert.match(c.input[1]!, /_DequantizeLinear_Output$/, `${c.name} has int8 weights`);
  assert.equal(q.graph.node.find((n) => n.op_type === 'Softmax')!.attribute.find((a) => a.name === 'axis')!.i, -1);
  // the neck's two nearest upsamplings copy the 8-bit tensors (Expand), no Resize left
  assert.equal(ops.filter((o) => o === 'Resize').length, 0);
  assert.equal(ops.filter((o) => o === 'Expand').length, 2);
  // the stem reads 4 pixels of a row as 12 channels: 32 outputs (2 column phases of 16), kernel 3×2
  const stem = q.graph.node.find((n) => n.name === '/model.0/conv/Conv')!;
  const stemWeights = q.graph.initializer.find((t) => t.name === producer(stem.input[1]!)!.input[0])!;
  assert.deepEqual(stemWeights.dims, [32, 12, 3, 2]);
  // TensorRT calibration table
  const table = parseTensorRtCalibrationTable(readFileSync(join(v, 'calibration.cache'), 'utf8'));
  assert.match(table.header, /^TRT-\d+-MinMaxCalibration$/);
  assert.ok(table.scales.get('images')! > 0);
  // detections on bus.jpg through the same Detector as serving
  const det = await Detector.create({ modelPath: join(v, 'model.onnx'), executionProviders: ['cpu'] });
  try {
    const res = await det.detect(BUS);
    const names = res.detections.map((d) => d.className);
    assert.ok(names.includes('bus'), `bus found: ${names.join(', ')}`);
    assert.ok(names.filter((n) => n === 'person').length >= 3, `≥3 persons: ${names.join(', ')}`);
  } finally {
    await det.close();
  }
});

test('a later build reuses the calibration cache without images (same ranges, manifest names the cache)', async () => {
  const out = join(work, 'from-cache');
  const r = await buildEngine({ model: MODEL, out, precision: 'int8', calibrationMethod: 'minmax', calibrationCache: cachePath, checkData: calibDir });
  assert.equal(r.manifest.calibration!.fromCache, cachePath);
  assert.equal(r.manifest.calibration!.imageCount, 8);
  assert.equal(readFileSync(join(out, '1/calibration.cache'), 'utf8'), readFileSync(join(int8Dir, '1/calibration.cache'), 'utf8'));
});

test('calibration cache made for another model → OSPREY_ERR_CALIBRATION_CACHE, nothing written', async () => {
  await assert.rejects(
    buildEngine({ model: OTHER, out: join(work, 'mismatch'), precision: 'int8', calibrationCache: cachePath }),
    (e: unknown) => isOspreyError(e, 'OSPREY_ERR_CALIBRATION_CACHE') && /another model/.test((e as Error).message),
  );
  assertNothingWritten(work, 'mismatch');
});

test('calibration folder with no decodable images → OSPREY_ERR_CALIBRATION_DATA, nothing written', async () => {
  const bad = join(work, 'bad-images');
  mkdirSync(bad);
  writeFileSync(join(bad, 'a.jpg'), 'not a jpeg at all');
  writeFileSync(join(bad, 'b.png'), Buffer.alloc(0));
  await assert.rejects(
    buildEngine({ model: MODEL, out: join(work, 'no-images'), precision: 'int8', calibrationData: bad }),
    (e: unknown) => isOspreyError(e, 'OSPREY_ERR_CALIBRATION_DATA'),
  );
  assertNothingWritten(work, 'no-images');
  const empty = join(work, 'empty-folder');
  mkdirSync(empty);
  await assert.rejects(buildEngine({ model: MODEL, out: join(work, 'no-images'), precision: 'int8', calibrationData: empty }), (e: unknown) =>
    isOspreyError(e, 'OSPREY_ERR_CALIBRATION_DATA'),
  );
});

test('not an ONNX file → OSPREY_ERR_ONNX_PARSE, nothing written', async () => {
  const fake = join(work, 'fake.onnx');
  writeFileSync(fake, 'this is a text file, not a protobuf\n');
  await assert.rejects(buildEngine({ model: fake, out: join(work, 'fake-out') }), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_ONNX_PARSE') && /fake.onnx/.test((e as Error).message));
  assertNothingWritten(work, 'fake-out');
});

test('unsupported output layout → OSPREY_ERR_UNSUPPORTED_LAYOUT, nothing written', async () => {
  const m = readOnnxModel(MODEL);
  m.graph.output[0]!.type!.tensor_type!.shape!.dim = [{ dim_value: 1 }, { dim_value: 7 }];
  const path = join(work, 'bad-layout.onnx');
  writeOnnxModel(m, path);
  await assert.rejects(buildEngine({ model: path, out: join(work, 'layout-out') }), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_UNSUPPORTED_LAYOUT'));
  assertNothingWritten(work, 'layout-out');
});

test('a model whose scores vary but never reach 0.25 on real images is caught as broken', async () => {
  // yolov8n with its whole output scaled by 0.2 (class scores peak near 0.19): not constant, yet it detects nothing.
  const m = readOnnxModel(MODEL);
  const out = m.graph.output[0]!.name!;
  m.graph.node.push(makeNode('Mul', [`${out}_raw`, 'osprey_test_scale'], [out], {}, 'scale_scores'));
  for (const n of m.graph.node) n.output = n.output.map((o) => (o === out && n.name !== 'scale_scores' ? `${out}_raw` : o));
  m.graph.initializer.push(makeFloatTensor('osprey_test_scale', [0.2], []));
  const r = await checkModel(m, [BUS]);
  assert.equal(r.broken, true, JSON.stringify(r));
  assert.match(r.reasons.join(';'), /no class score reaches 0\.25 on any of the 1 real image/);
});

test('broken model (all class scores 0) is caught: check reports it, build refuses it with OSPREY_ERR_BROKEN_MODEL', async () => {
  const r = await checkModel(BROKEN, [BUS]);
  assert.equal(r.broken, true);
  assert.match(r.reasons.join(';'), /exactly 0/);
  const ok = await checkModel(MODEL, [BUS]);
  assert.equal(ok.broken, false);
  assert.ok(ok.candidatesPerImage[0]! > 0);
  await assert.rejects(buildEngine({ model: BROKEN, out: join(work, 'broken-out'), checkData: calibDir }), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_BROKEN_MODEL'));
  assertNothingWritten(work, 'broken-out');
});

function runCli(args: string[]) {
  const cli = join(work, 'cli.mjs');
  writeFileSync(cli, `import { main } from ${JSON.stringify(join(root, 'src/cli/main.ts'))};\nawait main(process.argv);\n`);
  return spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { cwd: root, encoding: 'utf8' });
}

test('osprey build --check on the broken model exits 2 with OSPREY_ERR_BROKEN_MODEL', () => {
  const r = runCli(['build', '--check', BROKEN]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /OSPREY_ERR_BROKEN_MODEL/);
  assert.match(r.stdout, /BROKEN/);
});

test('osprey build with a bad --calibration-method value exits 2 with OSPREY_ERR_USAGE, nothing written', () => {
  const r = runCli(['build', '--model', MODEL, '--out', join(work, 'cli-out'), '--precision', 'int8', '--calibration-method', 'kl']);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /OSPREY_ERR_USAGE: --calibration-method 'kl'/);
  assertNothingWritten(work, 'cli-out');
});

test('--repository writes the next version (1, then 2) that the model repository loads; config.json once; a version that contradicts it is refused', async () => {
  const repo = join(work, 'repo');
  mkdirSync(repo);
  const a = await buildEngine({ model: MODEL, repository: repo, name: 'yolov8n' });
  const b = await buildEngine({ model: MODEL, repository: repo, name: 'yolov8n', precision: 'fp16' });
  assert.deepEqual([a.version, b.version], [1, 2]);
  assert.deepEqual(a.manifest.passes.map((p) => p.name), ['uint8Input', 'fastDfl']);
  assert.deepEqual(b.manifest.passes.map((p) => p.name), ['uint8Input', 'fp16']);
  assert.deepEqual(readdirSync(join(repo, 'yolov8n')).sort(), ['1', '2', 'config.json']);
  // a top-K engine has another output shape than config.json declares: refused before anything is written
  await assert.rejects(buildEngine({ model: MODEL, repository: repo, name: 'yolov8n', topk: 300 }), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_CONFIG'));
  assert.deepEqual(readdirSync(join(repo, 'yolov8n')).sort(), ['1', '2', 'config.json']);
  // the server's repository loads what build wrote, as is (latest version, manifest hashes verified)
  const r = await ModelRepository.open(repo, { executionProviders: ['cpu'] });
  try {
    const index = await r.index();
    assert.deepEqual(index.map((e) => [e.name, String(e.version), e.state]), [['yolov8n', '2', 'READY']]);
    assert.equal(r.get('yolov8n').detectionSpec?.inputFormat, 'uint8-nhwc');
  } finally {
    await r.close();
  }
  await assert.rejects(buildEngine({ model: MODEL, out: join(repo, 'yolov8n') }), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_USAGE'));
  await assert.rejects(buildEngine({ model: MODEL, out: join(work, 'x'), precision: 'int8' }), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_CALIBRATION_DATA'));
});

test('top-K suffix engine: [batch, K, 6] output, config filled in from it', async () => {
  const out = join(work, 'topk');
  const r = await buildEngine({ model: MODEL, out, topk: 300, maxBatch: 2 });
  assert.deepEqual(r.manifest.passes.map((p) => p.name), ['dynamicBatch', 'uint8Input', 'topKOutput', 'fastDfl']);
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(config.maxBatchSize, 2);
  assert.deepEqual(config.output[0].dims, [300, 6]);
});
