/**
 * Tensor element types under their three names: ONNX Runtime's (`float32`), KServe v2's (`FP32`) and Triton
 * model-config's (`TYPE_FP32`). One table, used by the repository, the HTTP codec and (later) gRPC.
 */
import type { TensorDataType, TensorStorage } from '../core/types.js';

/** KServe v2 datatype names (the subset Osprey can carry; `BYTES` has no ONNX detection-model use). */
export type KserveDatatype = 'BOOL' | 'UINT8' | 'INT8' | 'INT32' | 'INT64' | 'FP16' | 'FP32' | 'FP64';

/** Triton config `data_type` names. */
export type TritonDataType = `TYPE_${KserveDatatype}`;

interface TypeRow {
  tensor: TensorDataType;
  kserve: KserveDatatype;
  /** Bytes per element. */
  bytes: number;
}

const ROWS: readonly TypeRow[] = [
  { tensor: 'bool', kserve: 'BOOL', bytes: 1 },
  { tensor: 'uint8', kserve: 'UINT8', bytes: 1 },
  { tensor: 'int8', kserve: 'INT8', bytes: 1 },
  { tensor: 'int32', kserve: 'INT32', bytes: 4 },
  { tensor: 'int64', kserve: 'INT64', bytes: 8 },
  { tensor: 'float16', kserve: 'FP16', bytes: 2 },
  { tensor: 'float32', kserve: 'FP32', bytes: 4 },
  { tensor: 'float64', kserve: 'FP64', bytes: 8 },
];

const BY_TENSOR = new Map(ROWS.map((r) => [r.tensor, r]));
const BY_KSERVE = new Map(ROWS.map((r) => [r.kserve as string, r]));

/** All Triton `TYPE_*` names Osprey accepts in a config file. */
export const TRITON_DATA_TYPES: readonly TritonDataType[] = ROWS.map((r) => `TYPE_${r.kserve}` as TritonDataType);

/** `float32` → `FP32`. */
export function toKserveDatatype(t: TensorDataType): KserveDatatype {
  return BY_TENSOR.get(t)!.kserve;
}

/** `FP32` → `float32`; undefined for names Osprey cannot carry (`BYTES`, `BF16`, typos). */
export function fromKserveDatatype(name: string): TensorDataType | undefined {
  return BY_KSERVE.get(name)?.tensor;
}

/** `float32` → `TYPE_FP32`. */
export function toTritonDataType(t: TensorDataType): TritonDataType {
  return `TYPE_${toKserveDatatype(t)}`;
}

/** `TYPE_FP32` → `float32`. */
export function fromTritonDataType(name: string): TensorDataType | undefined {
  return name.startsWith('TYPE_') ? fromKserveDatatype(name.slice(5)) : undefined;
}

/** Bytes per element of a tensor type. */
export function bytesPerElement(t: TensorDataType): number {
  return BY_TENSOR.get(t)!.bytes;
}

/** Allocates zeroed storage of `count` elements of type `t` (float16 as raw bits in a Uint16Array, bool as Uint8Array). */
export function allocateStorage(t: TensorDataType, count: number): TensorStorage {
  switch (t) {
    case 'float32':
      return new Float32Array(count);
    case 'float64':
      return new Float64Array(count);
    case 'float16':
      return new Uint16Array(count);
    case 'uint8':
    case 'bool':
      return new Uint8Array(count);
    case 'int8':
      return new Int8Array(count);
    case 'int32':
      return new Int32Array(count);
    case 'int64':
      return new BigInt64Array(count);
  }
}

/**
 * A typed-array view of `count` elements of type `t` over `bytes` (little-endian, as KServe's binary extension and
 * every platform Node runs on). Copies only when `bytes` is not aligned for the element size.
 */
export function storageFromBytes(t: TensorDataType, bytes: Uint8Array): TensorStorage {
  const size = bytesPerElement(t);
  const aligned = bytes.byteOffset % size === 0 ? bytes : new Uint8Array(bytes);
  const count = aligned.byteLength / size;
  const buf = aligned.buffer;
  const off = aligned.byteOffset;
  switch (t) {
    case 'float32':
      return new Float32Array(buf, off, count);
    case 'float64':
      return new Float64Array(buf, off, count);
    case 'float16':
      return new Uint16Array(buf, off, count);
    case 'uint8':
    case 'bool':
      return new Uint8Array(buf, off, count);
    case 'int8':
      return new Int8Array(buf, off, count);
    case 'int32':
      return new Int32Array(buf, off, count);
    case 'int64':
      return new BigInt64Array(buf, off, count);
  }
}

/** Number of elements of a fully known shape (product of dims; 1 for a scalar). */
export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}
