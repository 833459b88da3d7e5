/**
 * KServe v2 HTTP/REST tensor codec: JSON tensors and Triton's binary tensor extension.
 *
 * Binary extension (Triton `docs/protocol/extension_binary_data.md`): the body is the JSON header followed
 * immediately by raw little-endian tensor bytes in input order; `Inference-Header-Content-Length` gives the JSON
 * length; an input with `parameters.binary_data_size` takes its bytes from there and has no `data`. Outputs are
 * returned binary when the output asks `parameters.binary_data: true` or the request asks
 * `parameters.binary_data_output: true`.
 */
import { OspreyError } from '../core/errors.js';
import type { TensorStorage } from '../core/types.js';
import { bytesPerElement, elementCount, fromKserveDatatype, storageFromBytes } from '../repository/datatypes.js';
import type { InferRequest, InferResponse } from './service.js';

/** Header carrying the JSON length of a binary-extension body. */
export const HEADER_INFERENCE_LENGTH = 'inference-header-content-length';

interface JsonTensor {
  name?: unknown;
  shape?: unknown;
  datatype?: unknown;
  parameters?: Record<string, unknown>;
  data?: unknown;
}

const malformed = (msg: string) => new OspreyError('OSPREY_ERR_MALFORMED_REQUEST', msg);

/** Deepest JSON nesting accepted in a request body (objects and arrays). */
export const MAX_JSON_DEPTH = 64;

/**
 * Refuses JSON nested deeper than `maxDepth`, by one linear scan of the bytes (brackets outside strings), before
 * `JSON.parse` builds anything: deep nesting costs stack in every recursive consumer.
 * @throws OspreyError `OSPREY_ERR_JSON_TOO_DEEP`.
 */
export function checkJsonDepth(bytes: Uint8Array, maxDepth = MAX_JSON_DEPTH): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) throw new OspreyError('OSPREY_ERR_JSON_TOO_DEEP', `the JSON body nests deeper than ${maxDepth} levels (at byte ${i})`, { maxDepth });
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
}
const invalid = (msg: string, details: Record<string, unknown> = {}) => new OspreyError('OSPREY_ERR_INVALID_TENSOR', msg, details);

/**
 * Decodes an infer request body (JSON, or JSON header + binary tensors).
 * @param body the raw body
 * @param headerLength the `Inference-Header-Content-Length` header value, if any
 * @throws OspreyError `OSPREY_ERR_MALFORMED_REQUEST` (not JSON, header length out of range, binary sizes that do not
 *   add up to the body, data and binary_data_size both or neither), `OSPREY_ERR_INVALID_TENSOR` (unknown datatype,
 *   shape not a list of non-negative integers, element count ≠ shape, non-numeric data, FP16 as JSON),
 *   `OSPREY_ERR_NOT_IMPLEMENTED` (shared-memory tensors). `priority`/`timeout` are checked by the service.
 */
export function decodeInferRequest(body: Buffer, headerLength: string | undefined): { request: InferRequest; binaryOutputs: boolean } {
  let jsonBytes: Buffer = body;
  let binary: Buffer | undefined;
  if (headerLength !== undefined) {
    const n = Number(headerLength);
    if (!Number.isInteger(n) || n < 0 || n > body.length) {
      throw malformed(`Inference-Header-Content-Length ${headerLength} is not an integer in [0, ${body.length}] (the body length)`);
    }
    jsonBytes = body.subarray(0, n);
    binary = body.subarray(n);
  }
  checkJsonDepth(jsonBytes);
  let parsed: unknown;
  try {
    parsed = JSON.parse(jsonBytes.toString('utf8'));
  } catch (err) {
    throw malformed(`the request is not valid JSON (${(err as Error).message})`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw malformed('the request must be a JSON object with "inputs"');
  const req = parsed as { id?: unknown; parameters?: Record<string, unknown>; inputs?: unknown; outputs?: unknown };
  if (!Array.isArray(req.inputs) || req.inputs.length === 0) throw malformed('the request has no "inputs" list');
  const params = req.parameters && typeof req.parameters === 'object' ? req.parameters : {};
  let offset = 0;
  const inputs = (req.inputs as JsonTensor[]).map((t, i) => {
    if (!t || typeof t !== 'object') throw malformed(`inputs[${i}] is not an object`);
    const name = t.name;
    if (typeof name !== 'string' || !name) throw malformed(`inputs[${i}] has no "name"`);
    const datatype = t.datatype;
    if (typeof datatype !== 'string') throw invalid(`input '${name}' has no "datatype"`, { input: name });
    const type = fromKserveDatatype(datatype);
    if (!type) throw invalid(`input '${name}': datatype '${datatype}' is not supported (BOOL, UINT8, INT8, INT32, INT64, FP16, FP32, FP64)`, { input: name });
    const shape = t.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw invalid(`input '${name}': "shape" must be a list of non-negative integers, got ${JSON.stringify(shape)}`, { input: name });
    }
    const p = t.parameters ?? {};
    if (p.shared_memory_region !== undefined) throw new OspreyError('OSPREY_ERR_NOT_IMPLEMENTED', `input '${name}': shared-memory tensors are not supported; send the data in the body`);
    const count = elementCount(shape as number[]);
    const byteSize = count * bytesPerElement(type);
    let data: TensorStorage;
    if (p.binary_data_size !== undefined) {
      if (t.data !== undefined) throw malformed(`input '${name}' has both "data" and binary_data_size`);
      const size = p.binary_data_size;
      if (!binary) throw malformed(`input '${name}' declares binary_data_size but the request has no Inference-Header-Content-Length header`);
      if (!Number.isInteger(size) || (size as number) < 0) throw malformed(`input '${name}': binary_data_size must be a non-negative integer`);
      if (offset + (size as number) > binary.length) {
        throw malformed(`binary sizes do not add up: input '${name}' needs bytes ${offset}..${offset + (size as number)} but the body has ${binary.length} binary bytes`);
      }
      if (size !== byteSize) {
        throw invalid(`input '${name}': binary_data_size ${size} does not match ${datatype} [${shape.join(', ')}] = ${byteSize} bytes`, { input: name });
      }
      data = storageFromBytes(type, binary.subarray(offset, offset + (size as number)));
      offset += size as number;
    } else {
      if (t.data === undefined) throw malformed(`input '${name}' has neither "data" nor binary_data_size`);
      if (type === 'float16') throw invalid(`input '${name}': FP16 has no JSON representation; send it with the binary tensor extension`, { input: name });
      data = jsonData(name, type, t.data, count);
    }
    return { name, datatype, shape: shape as number[], type, data };
  });
  if (binary && offset !== binary.length) {
    throw malformed(`binary sizes do not add up: inputs declare ${offset} bytes but the body carries ${binary.length} bytes after the JSON header`);
  }
  const binaryOutputs = params.binary_data_output === true;
  let outputs: InferRequest['outputs'];
  if (req.outputs !== undefined) {
    if (!Array.isArray(req.outputs)) throw malformed('"outputs" must be a list');
    outputs = (req.outputs as JsonTensor[]).map((o, i) => {
      if (!o || typeof o.name !== 'string') throw malformed(`outputs[${i}] has no "name"`);
      const op = o.parameters ?? {};
      if (op.classification !== undefined) throw new OspreyError('OSPREY_ERR_NOT_IMPLEMENTED', `output '${o.name}': the classification extension is not supported`);
      if (op.shared_memory_region !== undefined) throw new OspreyError('OSPREY_ERR_NOT_IMPLEMENTED', `output '${o.name}': shared-memory outputs are not supported`);
      const b = op.binary_data;
      return { name: o.name, ...(typeof b === 'boolean' ? { binary: b } : {}) };
    });
  }
  // Schedule parameters are passed as sent: the service validates them, once, for every protocol.
  const priority = params.priority as number | undefined;
  const timeout = params.timeout as number | undefined;
  const request: InferRequest = {
    ...(typeof req.id === 'string' ? { id: req.id } : {}),
    inputs,
    ...(outputs ? { outputs } : {}),
    ...(priority !== undefined ? { priority } : {}),
    ...(timeout !== undefined ? { timeoutMicroseconds: timeout } : {}),
    parameters: Object.fromEntries(Object.entries(params).filter(([, v]) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')) as Record<string, string | number | boolean>,
  };
  return { request, binaryOutputs };
}

/**
 * Flattens KServe's `data` (a flat list, or lists nested as the shape) without recursion, stopping at `limit`
 * elements so an oversized list is refused before it is copied.
 */
function flattenData(name: string, data: unknown[], limit: number): unknown[] {
  const out: unknown[] = [];
  const stack: Array<{ a: unknown[]; i: number }> = [{ a: data, i: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.i >= top.a.length) {
      stack.pop();
      continue;
    }
    const v = top.a[top.i++];
    if (Array.isArray(v)) {
      if (stack.length >= MAX_JSON_DEPTH) throw new OspreyError('OSPREY_ERR_JSON_TOO_DEEP', `input '${name}': "data" nests deeper than ${MAX_JSON_DEPTH} levels`, { input: name });
      stack.push({ a: v, i: 0 });
    } else {
      out.push(v);
      if (out.length > limit) throw invalid(`input '${name}': "data" has more than the ${limit} elements the shape holds`, { input: name });
    }
  }
  return out;
}

/** A JSON value as the client wrote it, for messages (`Infinity` from `1e400`, not JSON's `null`). */
function shownValue(v: unknown): string {
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : `${v} (a number out of the float64 range, e.g. 1e400)`;
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}

function jsonData(name: string, type: string, data: unknown, count: number): TensorStorage {
  const flat = Array.isArray(data) ? flattenData(name, data as unknown[], count) : [data];
  if (flat.length !== count) {
    throw invalid(`input '${name}': "data" has ${flat.length} elements but the shape holds ${count}`, { input: name });
  }
  const bad = flat.findIndex((v) => (type === 'bool' ? typeof v !== 'boolean' && v !== 0 && v !== 1 : typeof v !== 'number' || !Number.isFinite(v)));
  if (bad >= 0) throw invalid(`input '${name}': data[${bad}] = ${shownValue(flat[bad])} is not a ${type === 'bool' ? 'boolean' : 'finite number'}`, { input: name });
  switch (type) {
    case 'float32':
      return Float32Array.from(flat as number[]);
    case 'float64':
      return Float64Array.from(flat as number[]);
    case 'uint8':
    case 'int8':
    case 'int32':
    case 'int64': {
      const ints = flat as number[];
      const nonInt = ints.findIndex((v) => !Number.isInteger(v));
      if (nonInt >= 0) throw invalid(`input '${name}': data[${nonInt}] = ${ints[nonInt]} is not an integer`, { input: name });
      const range: Record<string, [number, number]> = { uint8: [0, 255], int8: [-128, 127], int32: [-2147483648, 2147483647], int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER] };
      const [lo, hi] = range[type]!;
      const out = ints.findIndex((v) => v < lo || v > hi);
      if (out >= 0) throw invalid(`input '${name}': data[${out}] = ${ints[out]} is outside the ${type} range`, { input: name });
      if (type === 'uint8') return Uint8Array.from(ints);
      if (type === 'int8') return Int8Array.from(ints);
      if (type === 'int32') return Int32Array.from(ints);
      return BigInt64Array.from(ints, (v) => BigInt(v));
    }
    case 'bool':
      return Uint8Array.from(flat as Array<number | boolean>, (v) => (v ? 1 : 0));
    default:
      throw invalid(`input '${name}': datatype not supported in JSON`, { input: name });
  }
}

/**
 * Encodes an infer response: plain JSON, or (when any output is binary) JSON header + raw output bytes with the
 * header length to send as `Inference-Header-Content-Length`.
 */
export function encodeInferResponse(res: InferResponse, binaryOutputs: boolean): { body: Buffer | string; headerLength?: number } {
  const chunks: Buffer[] = [];
  const outputs = res.outputs.map((o) => {
    const asBinary = o.binary ?? binaryOutputs;
    if (asBinary) {
      const bytes = Buffer.from(o.data.buffer, o.data.byteOffset, o.data.byteLength);
      chunks.push(bytes);
      return { name: o.name, datatype: o.datatype, shape: o.shape, parameters: { binary_data_size: bytes.length } };
    }
    const data = o.data instanceof BigInt64Array ? Array.from(o.data, (v) => Number(v)) : Array.from(o.data as Float32Array);
    return { name: o.name, datatype: o.datatype, shape: o.shape, data };
  });
  const json = JSON.stringify({ model_name: res.modelName, model_version: res.modelVersion, ...(res.id !== undefined ? { id: res.id } : {}), ...(res.parameters ? { parameters: res.parameters } : {}), outputs });
  if (chunks.length === 0) return { body: json };
  const header = Buffer.from(json, 'utf8');
  return { body: Buffer.concat([header, ...chunks]), headerLength: header.length };
}
