/**
 * ONNX I/O: lossless round trip on every model in ../shared/data/models, metadata reads, bad files,
 * external data, tensor/float16 helpers, graph helpers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DataLocation,
  DataType,
  decodeOnnxModel,
  encodeOnnxModel,
  float16BitsToNumber,
  float32ToFloat16Bits,
  getValueShape,
  indexGraph,
  makeInt64Tensor,
  makeNode,
  makeTensor,
  makeValueInfo,
  readModelMetadata,
  readOnnxModel,
  tensorToFloat32,
  tensorToNumbers,
  tensorToTypedArray,
  topologicalSort,
  uniqueNamer,
  writeOnnxModel,
  type OnnxModel,
} from '../../src/onnx/index.js';
import { isOspreyError } from '../../src/core/errors.js';

const here = dirname(fileURLToPath(import.meta.url));
const MODELS = resolve(here, '../../../shared/data/models');
const YOLO = join(MODELS, 'yolov8n.onnx');

function tinyModel(): OnnxModel {
  return {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    producer_name: 'osprey-test',
    metadata_props: [{ key: 'k', value: 'v' }],
    graph: {
      name: 'tiny',
      node: [makeNode('Reshape', ['x', 'shape'], ['y'], {}, 'reshape')],
      initializer: [makeInt64Tensor('shape', [1, -1])],
      input: [makeValueInfo('x', DataType.FLOAT, [1, 2, 3])],
      output: [makeValueInfo('y', DataType.FLOAT, [1, 6])],
      value_info: [],
    },
  };
}

test('round trip is byte-identical on every model in shared/data/models', () => {
  const files = readdirSync(MODELS).filter((f) => f.endsWith('.onnx'));
  assert.ok(files.length >= 3, `models found: ${files.join(', ')}`);
  for (const f of files) {
    const bytes = readFileSync(join(MODELS, f));
    const model = readOnnxModel(bytes);
    const out = encodeOnnxModel(model);
    assert.equal(out.length, bytes.length, `${f}: size`);
    assert.ok(Buffer.from(out).equals(bytes), `${f}: bytes differ`);
    // decoding the re-encoded bytes gives the same plain model
    assert.deepStrictEqual(decodeOnnxModel(out), model, `${f}: decoded models differ`);
  }
});

test('writeOnnxModel writes a file readOnnxModel reads back identically', () => {
  const dir = mkdtempSync(join(tmpdir(), 'osprey-onnx-io-'));
  try {
    const model = tinyModel();
    const path = join(dir, 'tiny.onnx');
    const n = writeOnnxModel(model, path);
    assert.equal(readFileSync(path).length, n);
    assert.deepStrictEqual(readOnnxModel(path), decodeOnnxModel(encodeOnnxModel(model)));
    assert.deepEqual(readdirSync(dir), ['tiny.onnx'], 'no temp file left behind');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('int64 values past 2^53 survive as bigint (INT64_MAX Slice ends)', () => {
  const model = tinyModel();
  const MAX = 9223372036854775807n;
  model.graph.node.push(makeNode('Slice', ['y'], ['z'], { ends: [0] }, 'slice'));
  model.graph.node[1]!.attribute[0]!.ints = [MAX, -MAX - 1n, 5];
  model.graph.initializer.push({ name: 'big', dims: [2], data_type: DataType.INT64, int64_data: [MAX, -3] });
  const back = decodeOnnxModel(encodeOnnxModel(model));
  assert.deepEqual(back.graph.node[1]!.attribute[0]!.ints, [MAX, -MAX - 1n, 5]);
  assert.deepEqual(back.graph.initializer[1]!.int64_data, [MAX, -3]);
  assert.deepEqual([...(tensorToTypedArray(back.graph.initializer[1]!) as BigInt64Array)], [MAX, -3n]);
});

test('readModelMetadata reads inputs, outputs, metadata_props and opsets of yolov8n', () => {
  const meta = readModelMetadata(YOLO);
  assert.deepEqual(meta.inputs, [{ name: 'images', type: 'float32', shape: [1, 3, 640, 640] }]);
  assert.deepEqual(meta.outputs, [{ name: 'output0', type: 'float32', shape: [1, 84, 8400] }]);
  assert.equal(meta.metadata.stride, '32');
  assert.match(meta.metadata.names ?? '', /^\{0: 'person', 1: 'bicycle'/);
  assert.ok(meta.opsetImports.some((o) => o.domain === '' && o.version > 0));
  const full = readOnnxModel(YOLO);
  assert.equal(meta.irVersion, full.ir_version);
  assert.equal(meta.producerName, full.producer_name ?? '');
  assert.equal(Object.keys(meta.metadata).length, full.metadata_props.length);
});

test('readModelMetadata: symbolic axes come back as names, initializers listed as inputs are left out', () => {
  const model = tinyModel();
  model.graph.input[0] = makeValueInfo('x', DataType.FLOAT, ['batch', 2, 3]);
  model.graph.input.push(makeValueInfo('shape', DataType.INT64, [2]));
  const meta = readModelMetadata(encodeOnnxModel(model));
  assert.deepEqual(meta.inputs, [{ name: 'x', type: 'float32', shape: ['batch', 2, 3] }]);
  assert.deepEqual(meta.metadata, { k: 'v' });
});

test('not an ONNX file (a JPEG) → OSPREY_ERR_ONNX_PARSE naming the path', () => {
  const jpeg = resolve(here, '../../../shared/data/images/bus.jpg');
  for (const read of [readOnnxModel, readModelMetadata]) {
    assert.throws(() => read(jpeg), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_ONNX_PARSE') && e.message.includes('bus.jpg'));
  }
});

test('truncated ONNX file → OSPREY_ERR_ONNX_PARSE', () => {
  const bytes = readFileSync(YOLO).subarray(0, 4_000_000);
  assert.throws(() => readOnnxModel(bytes), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_ONNX_PARSE'));
});

test('empty file and protobuf without a graph → OSPREY_ERR_INVALID_MODEL', () => {
  const dir = mkdtempSync(join(tmpdir(), 'osprey-onnx-io-'));
  try {
    const empty = join(dir, 'empty.onnx');
    writeFileSync(empty, new Uint8Array(0));
    assert.throws(() => readOnnxModel(empty), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_INVALID_MODEL') && e.message.includes('empty.onnx'));
    assert.throws(() => readModelMetadata(empty), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_INVALID_MODEL'));
    const noGraph = encodeOnnxModel({ ir_version: 8, opset_import: [], metadata_props: [] });
    assert.throws(() => readOnnxModel(noGraph), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_INVALID_MODEL') && /no graph/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('missing model file → OSPREY_ERR_MODEL_NOT_FOUND_FILE', () => {
  assert.throws(() => readOnnxModel('/nonexistent/model.onnx'), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_MODEL_NOT_FOUND_FILE'));
  assert.throws(() => readModelMetadata('/nonexistent/model.onnx'), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_MODEL_NOT_FOUND_FILE'));
});

test('external data: refused by default naming the tensor, loaded with externalData: load, kept with keep', () => {
  const dir = mkdtempSync(join(tmpdir(), 'osprey-onnx-ext-'));
  try {
    const model = tinyModel();
    const weights = new Float32Array([1.5, -2, 3.25, 4]);
    const blob = new Uint8Array(16 + weights.byteLength);
    blob.set(new Uint8Array(weights.buffer), 16);
    writeFileSync(join(dir, 'weights.bin'), blob);
    model.graph.initializer.push({
      name: 'w',
      dims: [4],
      data_type: DataType.FLOAT,
      data_location: DataLocation.EXTERNAL,
      external_data: [{ key: 'location', value: 'weights.bin' }, { key: 'offset', value: '16' }, { key: 'length', value: '16' }],
    });
    const path = join(dir, 'ext.onnx');
    writeOnnxModel(model, path);
    assert.throws(() => readOnnxModel(path), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_EXTERNAL_DATA') && e.message.includes("'w'"));
    const loaded = readOnnxModel(path, { externalData: 'load' });
    const w = loaded.graph.initializer.find((t) => t.name === 'w')!;
    assert.equal(w.data_location, undefined);
    assert.deepEqual([...tensorToFloat32(w)], [1.5, -2, 3.25, 4]);
    const kept = readOnnxModel(path, { externalData: 'keep' });
    assert.ok(Buffer.from(encodeOnnxModel(kept)).equals(readFileSync(path)));
    assert.throws(() => tensorToTypedArray(kept.graph.initializer.find((t) => t.name === 'w')!), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_EXTERNAL_DATA'));
    // a location escaping the model folder is refused
    model.graph.initializer[1]!.external_data![0]!.value = '../etc/passwd';
    writeOnnxModel(model, path);
    assert.throws(() => readOnnxModel(path, { externalData: 'load' }), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_EXTERNAL_DATA'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('float16 conversion: exact values, rounding to nearest even, subnormals, overflow, NaN', () => {
  const cases: [number, number][] = [
    [0, 0x0000], [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00], [-Infinity, 0xfc00],
    [2 ** -24, 0x0001], [2 ** -14, 0x0400], [0.1, 0x2e66], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [2 ** -26, 0],
  ];
  for (const [v, bits] of cases) assert.equal(float32ToFloat16Bits(v), bits, `float16(${v})`);
  assert.ok(Number.isNaN(float16BitsToNumber(float32ToFloat16Bits(NaN))));
  for (const bits of [0x0001, 0x03ff, 0x0400, 0x3c00, 0x3555, 0x7bff, 0xc000]) {
    assert.equal(float32ToFloat16Bits(float16BitsToNumber(bits)), bits, `bits 0x${bits.toString(16)} round trip`);
  }
});

test('tensor helpers read raw_data, float_data, int32_data and int64_data', () => {
  assert.deepEqual(tensorToNumbers(makeInt64Tensor('s', [1, 64, -1])), [1, 64, -1]);
  assert.deepEqual([...tensorToFloat32({ name: 'f', dims: [2], data_type: DataType.FLOAT, float_data: [0.5, -1] })], [0.5, -1]);
  assert.deepEqual(tensorToNumbers({ name: 'i', dims: [3], data_type: DataType.INT32, int32_data: [7, -8, 9] }), [7, -8, 9]);
  assert.deepEqual(tensorToNumbers({ name: 'l', dims: [], data_type: DataType.INT64, int64_data: [42] }), [42]);
  const h = makeTensor('h', [2], new Uint16Array([0x3c00, 0xc000]), DataType.FLOAT16);
  assert.deepEqual([...tensorToFloat32(h)], [1, -2]);
  assert.throws(() => tensorToNumbers({ name: 'bad', dims: [3], data_type: DataType.INT64, int64_data: [1] }), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_INVALID_MODEL'));
});

test('graph helpers on yolov8n: topological sort restores a shuffled graph, producers/consumers, shapes, unique names', () => {
  const model = readOnnxModel(YOLO);
  const g = model.graph;
  const original = g.node.map((n) => n.name);
  topologicalSort(g);
  assert.deepEqual(g.node.map((n) => n.name), original, 'a sorted graph stays as it is');
  g.node.reverse();
  topologicalSort(g);
  const seen = new Set<string>([...g.input.map((i) => i.name!), ...g.initializer.map((t) => t.name!), '']);
  for (const n of g.node) {
    for (const i of n.input) assert.ok(seen.has(i), `${n.name} reads ${i} before it is produced`);
    n.output.forEach((o) => seen.add(o));
  }
  const idx = indexGraph(g);
  const firstConv = idx.consumers.get('images')!;
  assert.equal(firstConv.length, 1);
  assert.equal(firstConv[0]!.op_type, 'Conv');
  assert.equal(idx.producer.get('output0')!.op_type, 'Concat');
  assert.deepEqual(getValueShape(g, 'images'), [1, 3, 640, 640]);
  const fresh = uniqueNamer(g);
  assert.equal(fresh('images'), 'images_1');
  assert.equal(fresh('images'), 'images_2');
  assert.equal(fresh('osprey/new'), 'osprey/new');
});

test('inferShapes re-derives every value_info shape of yolov8n when value_info is removed', async () => {
  const { inferShapes } = await import('../../src/onnx/index.js');
  const model = readOnnxModel(YOLO);
  const declared = model.graph.value_info.map((v) => [v.name!, getValueShape(model.graph, v.name!)] as const);
  assert.ok(declared.length > 400);
  model.graph.value_info = [];
  const inferred = inferShapes(model.graph);
  for (const [name, shape] of declared) assert.deepEqual(inferred.get(name), shape, name);
});
