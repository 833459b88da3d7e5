/**
 * KServe v2 gRPC tensors ↔ Osprey {@link Tensor}s.
 *
 * Inputs arrive either as `raw_input_contents` (one little-endian byte string per input, in input order — what
 * `tritonclient.grpc` and perf_analyzer send) or as typed `contents` (`fp32_contents`, `uint_contents`, ...).
 * Both become typed arrays that own a whole, aligned ArrayBuffer, so the engine can transfer them to its worker
 * without another copy. Outputs go back as `raw_output_contents` by default (as Triton answers), or as typed
 * `contents` when the request asks with the parameter `binary_data_output: false` (request level) or
 * `binary_data: false` (on a requested output) — the names of the HTTP binary-tensor extension.
 *
 * Message objects are the plain objects `@grpc/proto-loader` produces with `keepCase: true, longs: Number,
 * enums: String, defaults: true, oneofs: true` (see `proto.ts`).
 */
import { OspreyError } from '../../core/errors.js';
import type { Tensor, TensorDataType, TensorStorage } from '../../core/types.js';
import { bytesPerElement, elementCount, fromKserveDatatype, storageFromBytes, toKserveDatatype } from '../../repository/datatypes.js';

/** `InferParameter` as proto-loader decodes it (oneof name in `parameter_choice`). */
export interface InferParameterMessage {
  bool_param?: boolean;
  int64_param?: number;
  string_param?: string;
  double_param?: number;
  uint64_param?: number;
  parameter_choice?: string;
}

/** `InferTensorContents` (only the fields of the tensor's datatype are set). */
export interface InferTensorContentsMessage {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: number[];
  uint_contents?: number[];
  uint64_contents?: number[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Uint8Array[];
}

export interface InferInputTensorMessage {
  name: string;
  datatype: string;
  shape: number[];
  parameters?: Record<string, InferParameterMessage>;
  contents?: InferTensorContentsMessage | null;
}

export interface ModelInferRequestMessage {
  model_name: string;
  model_version: string;
  id: string;
  parameters?: Record<string, InferParameterMessage>;
  inputs: InferInputTensorMessage[];
  outputs?: { name: string; parameters?: Record<string, InferParameterMessage> }[];
  raw_input_contents?: Uint8Array[];
}

export interface InferOutputTensorMessage {
  name: string;
  datatype: string;
  shape: number[];
  parameters?: Record<string, InferParameterMessage>;
  contents?: InferTensorContentsMessage;
}

export interface ModelInferResponseMessage {
  model_name: string;
  model_version: string;
  id: string;
  parameters?: Record<string, InferParameterMessage>;
  outputs: InferOutputTensorMessage[];
  raw_output_contents: Uint8Array[];
}

/** A request parameter value (KServe parameters are string | number | boolean). */
export type ParameterValue = string | number | boolean;

/** One decoded input. */
export interface DecodedInput {
  name: string;
  /** KServe datatype as sent (`FP32`, `UINT8`, ...). */
  datatype: string;
  /** Full shape as sent, e.g. `[1, 3, 640, 640]`. */
  shape: number[];
  tensor: Tensor;
}

/** A ModelInferRequest in protocol-independent form. */
export interface DecodedInferRequest {
  modelName: string;
  /** "" = the version the policy picks. */
  modelVersion: string;
  id: string;
  parameters: Record<string, ParameterValue>;
  inputs: DecodedInput[];
  /** Requested output names, in order; empty = every output. */
  outputs: string[];
  /** Whether outputs go back as raw bytes (default) or typed contents. */
  rawOutputs: boolean;
}

/** Flattens an InferParameter into its value; undefined when no member is set. */
export function parameterValue(p: InferParameterMessage | undefined): ParameterValue | undefined {
  if (!p) return undefined;
  switch (p.parameter_choice) {
    case 'bool_param':
      return Boolean(p.bool_param);
    case 'int64_param':
      return Number(p.int64_param);
    case 'string_param':
      return String(p.string_param);
    case 'double_param':
      return Number(p.double_param);
    case 'uint64_param':
      return Number(p.uint64_param);
    default:
      return undefined;
  }
}

/** Flattens a parameters map. */
export function parametersToRecord(params: Record<string, InferParameterMessage> | undefined): Record<string, ParameterValue> {
  const out: Record<string, ParameterValue> = {};
  for (const [k, v] of Object.entries(params ?? {})) {
    const value = parameterValue(v);
    if (value !== undefined) out[k] = value;
  }
  return out;
}

/** Builds an InferParameter message from a value (integers → int64_param, other numbers → double_param). */
export function toInferParameter(v: ParameterValue): InferParameterMessage {
  if (typeof v === 'boolean') return { bool_param: v };
  if (typeof v === 'string') return { string_param: v };
  return Number.isInteger(v) ? { int64_param: v } : { double_param: v };
}

function invalidTensor(message: string, details: Record<string, unknown> = {}): OspreyError {
  return new OspreyError('OSPREY_ERR_INVALID_TENSOR', message, details);
}

/** Which typed-contents field carries a datatype (Triton's mapping; FP16 has none). */
const CONTENTS_FIELD: Record<string, keyof InferTensorContentsMessage | undefined> = {
  BOOL: 'bool_contents',
  UINT8: 'uint_contents',
  INT8: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  FP16: undefined,
};

function checkShape(input: InferInputTensorMessage): number[] {
  const shape = (input.shape ?? []).map(Number);
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw invalidTensor(`input '${input.name}': shape [${shape.join(', ')}] has a negative or non-integer dimension`, { input: input.name, shape });
    }
  }
  return shape;
}

/** Copies bytes into a fresh, whole, aligned buffer and views it as `type` (so the engine can transfer it). */
function ownedStorage(type: TensorDataType, bytes: Uint8Array): TensorStorage {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return storageFromBytes(type, copy);
}

function typedStorage(type: TensorDataType, values: readonly (number | boolean)[], count: number): TensorStorage {
  switch (type) {
    case 'float32':
      return Float32Array.from(values as number[]);
    case 'float64':
      return Float64Array.from(values as number[]);
    case 'uint8':
      return Uint8Array.from(values as number[]);
    case 'bool':
      return Uint8Array.from(values, (v) => (v ? 1 : 0));
    case 'int8':
      return Int8Array.from(values as number[]);
    case 'int32':
      return Int32Array.from(values as number[]);
    case 'int64': {
      const out = new BigInt64Array(count);
      for (let i = 0; i < count; i++) out[i] = BigInt(Math.trunc(values[i] as number));
      return out;
    }
    case 'float16':
      throw invalidTensor('FP16 tensors must use raw_input_contents (there is no typed FP16 field)');
  }
}

/**
 * Decodes a ModelInferRequest.
 *
 * @throws OspreyError `OSPREY_ERR_INVALID_TENSOR` (unknown datatype; negative dimension; `raw_input_contents`
 *   count differs from `inputs`; a raw entry whose byte size is not elements × element size; raw and typed contents
 *   mixed; typed contents in the wrong field or with the wrong element count); `OSPREY_ERR_MALFORMED_REQUEST` (no
 *   model name, no inputs, duplicate input names).
 */
export function decodeInferRequest(msg: ModelInferRequestMessage): DecodedInferRequest {
  if (!msg.model_name) throw new OspreyError('OSPREY_ERR_MALFORMED_REQUEST', 'ModelInferRequest.model_name is empty');
  const inputs = msg.inputs ?? [];
  if (inputs.length === 0) throw new OspreyError('OSPREY_ERR_MALFORMED_REQUEST', `ModelInferRequest for '${msg.model_name}' has no inputs`);
  const raw = msg.raw_input_contents ?? [];
  const useRaw = raw.length > 0;
  if (useRaw && raw.length !== inputs.length) {
    throw invalidTensor(`raw_input_contents has ${raw.length} entries but the request lists ${inputs.length} inputs (one entry per input, in input order)`, {
      rawCount: raw.length,
      inputCount: inputs.length,
    });
  }
  const seen = new Set<string>();
  const decoded: DecodedInput[] = inputs.map((input, i) => {
    if (seen.has(input.name)) throw new OspreyError('OSPREY_ERR_MALFORMED_REQUEST', `input '${input.name}' is listed twice`);
    seen.add(input.name);
    const type = fromKserveDatatype(input.datatype);
    if (!type) {
      throw invalidTensor(`input '${input.name}': datatype '${input.datatype}' is not one of BOOL, UINT8, INT8, INT32, INT64, FP16, FP32, FP64`, {
        input: input.name,
        datatype: input.datatype,
      });
    }
    const shape = checkShape(input);
    const count = elementCount(shape);
    const contents = input.contents;
    const field = CONTENTS_FIELD[input.datatype];
    const typedValues = contents ? firstSetContents(contents) : undefined;
    let data: TensorStorage;
    if (useRaw) {
      if (typedValues) {
        throw invalidTensor(`input '${input.name}' has typed contents although the request uses raw_input_contents (use one or the other)`, { input: input.name });
      }
      const bytes = raw[i]!;
      const expected = count * bytesPerElement(type);
      if (bytes.byteLength !== expected) {
        throw invalidTensor(
          `input '${input.name}': raw_input_contents[${i}] has ${bytes.byteLength} bytes but shape [${shape.join(', ')}] of ${input.datatype} needs ${expected}`,
          { input: input.name, expectedBytes: expected, gotBytes: bytes.byteLength },
        );
      }
      data = ownedStorage(type, bytes);
    } else {
      if (!typedValues) {
        throw invalidTensor(`input '${input.name}' has no data: set raw_input_contents or contents.${field ?? '(FP16 needs raw_input_contents)'}`, { input: input.name });
      }
      if (typedValues.field !== field) {
        throw invalidTensor(`input '${input.name}': ${input.datatype} data belongs in contents.${field ?? '(raw_input_contents)'}, got contents.${typedValues.field}`, {
          input: input.name,
        });
      }
      if (typedValues.values.length !== count) {
        throw invalidTensor(`input '${input.name}': contents.${field} has ${typedValues.values.length} elements but shape [${shape.join(', ')}] needs ${count}`, {
          input: input.name,
          expectedElements: count,
          gotElements: typedValues.values.length,
        });
      }
      data = typedStorage(type, typedValues.values, count);
    }
    return { name: input.name, datatype: input.datatype, shape, tensor: { type, dims: shape, data } };
  });
  const parameters = parametersToRecord(msg.parameters);
  const requested = msg.outputs ?? [];
  const outputBinaryFlags = requested.map((o) => parameterValue(o.parameters?.binary_data));
  const rawOutputs = !(parameters.binary_data_output === false || (requested.length > 0 && outputBinaryFlags.every((b) => b === false)));
  return {
    modelName: msg.model_name,
    modelVersion: msg.model_version ?? '',
    id: msg.id ?? '',
    parameters,
    inputs: decoded,
    outputs: requested.map((o) => o.name),
    rawOutputs,
  };
}

function firstSetContents(c: InferTensorContentsMessage): { field: keyof InferTensorContentsMessage; values: (number | boolean)[] } | undefined {
  for (const key of ['bool_contents', 'int_contents', 'int64_contents', 'uint_contents', 'uint64_contents', 'fp32_contents', 'fp64_contents', 'bytes_contents'] as const) {
    const v = c[key];
    if (v && v.length > 0) return { field: key, values: v as (number | boolean)[] };
  }
  return undefined;
}

/** Raw little-endian bytes of a tensor (a view, no copy). */
export function tensorBytes(t: Tensor): Buffer {
  const d = t.data;
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

function typedContents(t: Tensor): InferTensorContentsMessage {
  const d = t.data;
  switch (t.type) {
    case 'float32':
      return { fp32_contents: Array.from(d as Float32Array) };
    case 'float64':
      return { fp64_contents: Array.from(d as Float64Array) };
    case 'uint8':
      return { uint_contents: Array.from(d as Uint8Array) };
    case 'bool':
      return { bool_contents: Array.from(d as Uint8Array, (v) => v !== 0) };
    case 'int8':
    case 'int32':
      return { int_contents: Array.from(d as Int32Array) };
    case 'int64':
      return { int64_contents: Array.from(d as BigInt64Array, (v) => Number(v)) };
    case 'float16':
      return {}; // never reached: FP16 always travels raw (see encodeInferResponse)
  }
}

/**
 * Builds a ModelInferResponse.
 * @param outputs name → tensor, in the order they are to be returned
 * @param raw raw_output_contents (default) or typed contents; FP16 outputs are always raw (so then all are raw).
 */
export function encodeInferResponse(
  head: { modelName: string; modelVersion: string; id: string; parameters?: Record<string, ParameterValue> },
  outputs: ReadonlyArray<readonly [string, Tensor]>,
  raw: boolean,
): ModelInferResponseMessage {
  const useRaw = raw || outputs.some(([, t]) => t.type === 'float16');
  const params: Record<string, InferParameterMessage> = {};
  for (const [k, v] of Object.entries(head.parameters ?? {})) params[k] = toInferParameter(v);
  return {
    model_name: head.modelName,
    model_version: head.modelVersion,
    id: head.id,
    parameters: params,
    outputs: outputs.map(([name, t]) => ({
      name,
      datatype: toKserveDatatype(t.type),
      shape: [...t.dims],
      ...(useRaw ? {} : { contents: typedContents(t) }),
    })),
    raw_output_contents: useRaw ? outputs.map(([, t]) => tensorBytes(t)) : [],
  };
}
