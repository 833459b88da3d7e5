/**
 * Lossless ONNX model I/O: {@link readOnnxModel}, {@link decodeOnnxModel}, {@link encodeOnnxModel},
 * {@link writeOnnxModel}.
 *
 * A model decoded and encoded again without changes gives back the same bytes when the file was written
 * with the ONNX schema's own encodings (as onnx/PyTorch/ONNX Runtime write them; checked by
 * test/onnx/io.test.ts on every model in ../shared/data/models). Files written by other encoders (e.g. a
 * proto3 writer that packs `dims`) decode to the same model and re-encode semantically identical.
 * Fields unknown to the schema (newer than IR version 11) are dropped.
 */
import { readFileSync, openSync, readSync, closeSync, fstatSync, writeFileSync, renameSync, unlinkSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve, normalize, sep } from 'node:path';
import protobuf from 'protobufjs';
import { OspreyError } from '../core/errors.js';
import { onnxType } from './schema.js';
import { DataLocation, type GraphProto, type ModelProto, type OnnxModel, type TensorProto, type Int64 } from './proto-types.js';

/** Fields that hold sizes/versions: decoded as `number`; a value past 2^53 is a parse error. */
const NUMBER_FIELDS = new Set([
  'ModelProto.ir_version',
  'ModelProto.model_version',
  'OperatorSetIdProto.version',
  'TensorProto.dims',
  'Segment.begin',
  'Segment.end',
  'Dimension.dim_value',
  'SparseTensorProto.dims',
]);

const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

/** protobufjs yields int64 as a Long (from its `long` dependency) or, without it, a number. */
type LongLike = { toString(): string };

function longToJs(v: LongLike | number, strictNumber: boolean, where: string): Int64 {
  if (typeof v === 'number') return v;
  const s = v.toString();
  const n = Number(s);
  if (Number.isSafeInteger(n)) return n;
  if (strictNumber) {
    throw new OspreyError('OSPREY_ERR_ONNX_PARSE', `${where} holds ${s}, past 2^53: not a valid ONNX size/version`, { field: where, value: s });
  }
  return BigInt(s);
}

/** protobufjs message → plain object (only present fields; int64 → number/bigint). */
function fromMessage(type: protobuf.Type, msg: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    const name = field.name;
    if (!Object.prototype.hasOwnProperty.call(msg, name)) continue;
    const v = msg[name];
    if (v == null) continue;
    const rt = field.resolvedType;
    const key = `${type.name}.${name}`;
    if (field.repeated) {
      const arr = v as unknown[];
      if (rt instanceof protobuf.Type) out[name] = arr.map((x) => fromMessage(rt, x as Record<string, unknown>));
      else if (LONG_TYPES.has(field.type)) out[name] = arr.map((x) => longToJs(x as LongLike, NUMBER_FIELDS.has(key), key));
      else out[name] = arr;
    } else if (rt instanceof protobuf.Type) {
      out[name] = fromMessage(rt, v as Record<string, unknown>);
    } else if (LONG_TYPES.has(field.type)) {
      out[name] = longToJs(v as LongLike, NUMBER_FIELDS.has(key), key);
    } else {
      out[name] = v;
    }
  }
  return out;
}

/** plain object → object protobufjs can encode (bigint → decimal string, which protobufjs parses with Long). */
function toMessage(type: protobuf.Type, obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    const name = field.name;
    const v = obj[name];
    if (v == null) continue;
    const rt = field.resolvedType;
    if (field.repeated) {
      const arr = v as unknown[];
      if (arr.length === 0) continue;
      if (rt instanceof protobuf.Type) out[name] = arr.map((x) => toMessage(rt, x as Record<string, unknown>));
      else if (LONG_TYPES.has(field.type)) out[name] = arr.map(int64Out);
      else out[name] = arr;
    } else if (rt instanceof protobuf.Type) {
      out[name] = toMessage(rt, v as Record<string, unknown>);
    } else if (LONG_TYPES.has(field.type)) {
      out[name] = int64Out(v);
    } else {
      out[name] = v;
    }
  }
  return out;
}

function int64Out(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  return v;
}

/** Options of {@link readOnnxModel} / {@link decodeOnnxModel}. */
export interface ReadOnnxOptions {
  /**
   * What to do with tensors stored in external data files (`data_location = EXTERNAL`):
   * - `'refuse'` (default): throw `OSPREY_ERR_EXTERNAL_DATA` naming the first such tensor;
   * - `'load'`: read each tensor's bytes (`location`, `offset`, `length` relative to the model's folder,
   *   or `baseDir` when decoding bytes) into `raw_data`, so the model becomes self-contained;
   * - `'keep'`: keep the references as they are (a re-encoded model still points at the same files;
   *   tensor helpers refuse to read those tensors).
   */
  externalData?: 'refuse' | 'load' | 'keep';
  /** Folder external data locations are relative to, when decoding bytes (default: the model file's folder). */
  baseDir?: string;
  /** Name used in error messages (default: the path, or `<bytes>`). */
  sourceName?: string;
}

/**
 * Decodes ONNX protobuf bytes into a plain {@link OnnxModel}. `raw_data` arrays are views of `bytes`
 * (no copy): don't reuse the buffer while the model is in use.
 *
 * @throws OspreyError `OSPREY_ERR_ONNX_PARSE` when the bytes are not a valid protobuf (truncated, not ONNX),
 *   `OSPREY_ERR_INVALID_MODEL` when they parse but hold no graph / no IR version (not an ONNX model),
 *   `OSPREY_ERR_EXTERNAL_DATA` for external tensors with `externalData: 'refuse'` (the default).
 */
export function decodeOnnxModel(bytes: Uint8Array, options: ReadOnnxOptions = {}): OnnxModel {
  const source = options.sourceName ?? '<bytes>';
  const type = onnxType('ModelProto');
  let decoded: Record<string, unknown>;
  try {
    decoded = type.decode(bytes) as unknown as Record<string, unknown>;
  } catch (err) {
    throw new OspreyError('OSPREY_ERR_ONNX_PARSE', `${source}: not an ONNX model (protobuf parse failed: ${(err as Error).message})`, { path: source }, { cause: err });
  }
  let model: ModelProto;
  try {
    model = fromMessage(type, decoded) as unknown as ModelProto;
  } catch (err) {
    if (err instanceof OspreyError) throw new OspreyError(err.code, `${source}: ${err.message}`, { ...err.details, path: source });
    throw err;
  }
  if (bytes.length === 0 || model.graph === undefined || model.ir_version === undefined) {
    throw new OspreyError('OSPREY_ERR_INVALID_MODEL', `${source}: not an ONNX model (${bytes.length === 0 ? 'empty file' : model.graph === undefined ? 'no graph' : 'no ir_version'})`, { path: source });
  }
  const mode = options.externalData ?? 'refuse';
  if (mode !== 'keep') {
    forEachTensor(model, (t, where) => {
      if (t.data_location !== DataLocation.EXTERNAL) return;
      if (mode === 'refuse') {
        throw new OspreyError('OSPREY_ERR_EXTERNAL_DATA', `${source}: tensor '${t.name ?? where}' (${where}) is stored in external data ('${externalLocation(t)}'); save the model with all tensors inside the .onnx file, or read it with externalData: 'load'`, { path: source, tensor: t.name ?? where });
      }
      const baseDir = options.baseDir;
      if (baseDir === undefined) {
        throw new OspreyError('OSPREY_ERR_EXTERNAL_DATA', `${source}: tensor '${t.name ?? where}' is stored in external data and no baseDir was given to load it from`, { path: source, tensor: t.name ?? where });
      }
      loadExternalTensor(t, baseDir, source, where);
    });
  }
  return model as OnnxModel;
}

function externalLocation(t: TensorProto): string {
  return t.external_data?.find((e) => e.key === 'location')?.value ?? '?';
}

function loadExternalTensor(t: TensorProto, baseDir: string, source: string, where: string): void {
  const get = (k: string) => t.external_data?.find((e) => e.key === k)?.value;
  const location = get('location');
  const name = t.name ?? where;
  if (!location || isAbsolute(location) || normalize(location).split(sep).includes('..')) {
    throw new OspreyError('OSPREY_ERR_EXTERNAL_DATA', `${source}: tensor '${name}' has an invalid external data location '${location ?? ''}' (must be a relative path inside the model folder)`, { path: source, tensor: name });
  }
  const file = join(baseDir, location);
  const offset = Number(get('offset') ?? 0);
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw new OspreyError('OSPREY_ERR_EXTERNAL_DATA', `${source}: tensor '${name}': external data file ${file} cannot be read (${(err as Error).message})`, { path: source, tensor: name, file }, { cause: err });
  }
  try {
    const size = fstatSync(fd).size;
    const length = get('length') !== undefined ? Number(get('length')) : size - offset;
    if (!(offset >= 0 && length >= 0 && offset + length <= size)) {
      throw new OspreyError('OSPREY_ERR_EXTERNAL_DATA', `${source}: tensor '${name}': external data range [${offset}, ${offset + length}) is outside ${file} (${size} bytes)`, { path: source, tensor: name, file });
    }
    const buf = new Uint8Array(length);
    readSync(fd, buf, 0, length, offset);
    t.raw_data = buf;
    delete t.external_data;
    delete t.data_location;
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads an ONNX model from a file path or bytes.
 *
 * @example
 *   const model = readOnnxModel('../shared/data/models/yolov8n.onnx');
 *   model.graph.input[0].name; // 'images'
 * @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND_FILE` (path cannot be read), `OSPREY_ERR_ONNX_PARSE`,
 *   `OSPREY_ERR_INVALID_MODEL`, `OSPREY_ERR_EXTERNAL_DATA` (see {@link decodeOnnxModel}); messages name the path.
 */
export function readOnnxModel(pathOrBytes: string | Uint8Array, options: ReadOnnxOptions = {}): OnnxModel {
  if (typeof pathOrBytes !== 'string') return decodeOnnxModel(pathOrBytes, options);
  const bytes = readModelFile(pathOrBytes);
  return decodeOnnxModel(bytes, { baseDir: dirname(resolve(pathOrBytes)), sourceName: pathOrBytes, ...options });
}

/** Reads a model file, mapping fs errors to `OSPREY_ERR_MODEL_NOT_FOUND_FILE`. */
export function readModelFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new OspreyError('OSPREY_ERR_MODEL_NOT_FOUND_FILE', `${path}: cannot read the model file (${code ?? (err as Error).message})`, { path }, { cause: err });
  }
}

/** Encodes a model to ONNX protobuf bytes (see the module note on byte identity). */
export function encodeOnnxModel(model: ModelProto): Uint8Array {
  const type = onnxType('ModelProto');
  const msg = toMessage(type, model as unknown as Record<string, unknown>);
  return type.encode(msg).finish();
}

/**
 * Writes a model to `path` (through a temp file renamed into place, so a reader never sees half a file).
 * @returns the number of bytes written.
 */
export function writeOnnxModel(model: ModelProto, path: string): number {
  const bytes = encodeOnnxModel(model);
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw err;
  }
  return bytes.length;
}

/**
 * Calls `fn` for every TensorProto in the model: graph initializers, sparse initializers, tensor
 * attributes (Constant `value`, ...), in subgraphs (If/Loop/Scan), functions and training graphs.
 * `where` says where the tensor lives (e.g. `graph 'main_graph' initializer`).
 */
export function forEachTensor(model: ModelProto, fn: (t: TensorProto, where: string) => void): void {
  const visitGraph = (g: GraphProto | undefined, path: string): void => {
    if (!g) return;
    const gp = `${path}graph '${g.name ?? ''}'`;
    for (const t of g.initializer ?? []) fn(t, `${gp} initializer`);
    for (const s of g.sparse_initializer ?? []) {
      if (s.values) fn(s.values, `${gp} sparse initializer values`);
      if (s.indices) fn(s.indices, `${gp} sparse initializer indices`);
    }
    visitNodes(g.node ?? [], gp + ' ');
  };
  const visitNodes = (nodes: readonly import('./proto-types.js').NodeProto[], path: string): void => {
    for (const n of nodes) {
      for (const a of n.attribute ?? []) {
        const where = `${path}node '${n.name ?? n.op_type}' attribute '${a.name}'`;
        if (a.t) fn(a.t, where);
        for (const t of a.tensors ?? []) fn(t, where);
        if (a.sparse_tensor?.values) fn(a.sparse_tensor.values, where);
        if (a.sparse_tensor?.indices) fn(a.sparse_tensor.indices, where);
        for (const s of a.sparse_tensors ?? []) {
          if (s.values) fn(s.values, where);
          if (s.indices) fn(s.indices, where);
        }
        if (a.g) visitGraph(a.g, where + ' > ');
        for (const sg of a.graphs ?? []) visitGraph(sg, where + ' > ');
      }
    }
  };
  visitGraph(model.graph, '');
  for (const f of model.functions ?? []) visitNodes(f.node ?? [], `function '${f.name}' `);
  for (const ti of model.training_info ?? []) {
    visitGraph(ti.initialization, 'training initialization ');
    visitGraph(ti.algorithm, 'training algorithm ');
  }
}

/**
 * A deep copy of a model (tensor bytes copied too: each distinct buffer once), for passes that must not
 * touch their input.
 */
export function cloneOnnxModel(model: OnnxModel): OnnxModel {
  return structuredClone(model);
}

