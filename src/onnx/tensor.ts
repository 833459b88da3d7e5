/**
 * TensorProto ↔ typed arrays, float16 conversion, ONNX data type names.
 *
 * Storage read: `raw_data` (little-endian, row-major) or the typed field the ONNX spec assigns
 * (`float_data` for FLOAT/COMPLEX64, `int32_data` for INT32/INT16/INT8/UINT16/UINT8/BOOL/FLOAT16/BFLOAT16
 * (float16 as its bits), `int64_data` for INT64, `double_data` for DOUBLE, `uint64_data` for UINT32/UINT64).
 * Tensors made here always use `raw_data`.
 */
import { OspreyError } from '../core/errors.js';
import type { TensorDataType } from '../core/types.js';
import { DataLocation, DataType, type TensorProto } from './proto-types.js';

/** Typed array of an ONNX tensor's elements (float16/bfloat16 as raw bits in Uint16Array). */
export type OnnxTypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

const NAMES: Record<number, string> = Object.fromEntries(Object.entries(DataType).map(([k, v]) => [v, k]));

/** ONNX data type name, e.g. `dataTypeName(1)` → `'FLOAT'`. */
export function dataTypeName(code: number): string {
  return NAMES[code] ?? `DATA_TYPE_${code}`;
}

/** ONNX element type → Osprey/ORT tensor type name (`FLOAT` → `'float32'`); undefined for types Osprey does not move. */
export function toTensorDataType(code: number): TensorDataType | undefined {
  switch (code) {
    case DataType.FLOAT: return 'float32';
    case DataType.FLOAT16: return 'float16';
    case DataType.UINT8: return 'uint8';
    case DataType.INT8: return 'int8';
    case DataType.INT32: return 'int32';
    case DataType.INT64: return 'int64';
    case DataType.BOOL: return 'bool';
    case DataType.DOUBLE: return 'float64';
    default: return undefined;
  }
}

/** Osprey/ORT tensor type name → ONNX element type (`'float32'` → 1). */
export function fromTensorDataType(type: TensorDataType): number {
  const map: Record<TensorDataType, number> = {
    float32: DataType.FLOAT, float16: DataType.FLOAT16, uint8: DataType.UINT8, int8: DataType.INT8,
    int32: DataType.INT32, int64: DataType.INT64, bool: DataType.BOOL, float64: DataType.DOUBLE,
  };
  return map[type];
}

/** Bytes per element of a fixed-size ONNX type (0 for STRING and sub-byte types). */
export function bytesPerElement(code: number): number {
  switch (code) {
    case DataType.FLOAT: case DataType.INT32: case DataType.UINT32: return 4;
    case DataType.UINT8: case DataType.INT8: case DataType.BOOL:
    case DataType.FLOAT8E4M3FN: case DataType.FLOAT8E4M3FNUZ: case DataType.FLOAT8E5M2: case DataType.FLOAT8E5M2FNUZ: case DataType.FLOAT8E8M0:
      return 1;
    case DataType.UINT16: case DataType.INT16: case DataType.FLOAT16: case DataType.BFLOAT16: return 2;
    case DataType.INT64: case DataType.UINT64: case DataType.DOUBLE: case DataType.COMPLEX64: return 8;
    case DataType.COMPLEX128: return 16;
    default: return 0;
  }
}

/** Number of elements of a shape (1 for a scalar `[]`). */
export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

function allocate(code: number, buffer: ArrayBuffer, length: number): OnnxTypedArray {
  switch (code) {
    case DataType.FLOAT: return new Float32Array(buffer, 0, length);
    case DataType.DOUBLE: return new Float64Array(buffer, 0, length);
    case DataType.INT8: return new Int8Array(buffer, 0, length);
    case DataType.UINT8: case DataType.BOOL: return new Uint8Array(buffer, 0, length);
    case DataType.INT16: return new Int16Array(buffer, 0, length);
    case DataType.UINT16: case DataType.FLOAT16: case DataType.BFLOAT16: return new Uint16Array(buffer, 0, length);
    case DataType.INT32: return new Int32Array(buffer, 0, length);
    case DataType.UINT32: return new Uint32Array(buffer, 0, length);
    case DataType.INT64: return new BigInt64Array(buffer, 0, length);
    case DataType.UINT64: return new BigUint64Array(buffer, 0, length);
    default:
      throw new OspreyError('OSPREY_ERR_UNSUPPORTED_MODEL', `tensor data type ${dataTypeName(code)} cannot be read as a typed array`, { dataType: code });
  }
}

/**
 * The elements of a tensor as a new typed array (a copy; editing it does not change the tensor).
 * Element type → array: FLOAT → Float32Array, FLOAT16/BFLOAT16 → Uint16Array (bits), DOUBLE → Float64Array,
 * INT64 → BigInt64Array, BOOL → Uint8Array, ...
 *
 * @throws OspreyError `OSPREY_ERR_EXTERNAL_DATA` for a tensor kept in external data, `OSPREY_ERR_UNSUPPORTED_MODEL`
 *   for STRING/complex/sub-byte types, `OSPREY_ERR_INVALID_MODEL` when the data size does not match `dims`.
 */
export function tensorToTypedArray(t: TensorProto): OnnxTypedArray {
  const name = t.name ?? '<unnamed>';
  if (t.data_location === DataLocation.EXTERNAL) {
    throw new OspreyError('OSPREY_ERR_EXTERNAL_DATA', `tensor '${name}' is stored in external data; read the model with externalData: 'load'`, { tensor: name });
  }
  const code = t.data_type ?? DataType.UNDEFINED;
  const count = elementCount(t.dims);
  const size = bytesPerElement(code);
  if (size === 0 || code === DataType.COMPLEX64 || code === DataType.COMPLEX128) {
    throw new OspreyError('OSPREY_ERR_UNSUPPORTED_MODEL', `tensor '${name}' has data type ${dataTypeName(code)}, which cannot be read as a typed array`, { tensor: name, dataType: code });
  }
  const buffer = new ArrayBuffer(count * size);
  const out = allocate(code, buffer, count);
  const mismatch = (got: number) =>
    new OspreyError('OSPREY_ERR_INVALID_MODEL', `tensor '${name}' dims [${t.dims.join(',')}] need ${count} elements, its data holds ${got}`, { tensor: name });
  if (t.raw_data !== undefined) {
    if (t.raw_data.byteLength !== count * size) throw mismatch(t.raw_data.byteLength / size);
    new Uint8Array(buffer).set(t.raw_data);
    return out;
  }
  let src: ArrayLike<number | bigint> | undefined;
  switch (code) {
    case DataType.FLOAT: src = t.float_data; break;
    case DataType.DOUBLE: src = t.double_data; break;
    case DataType.INT64: src = t.int64_data; break;
    case DataType.UINT32: case DataType.UINT64: src = t.uint64_data; break;
    default: src = t.int32_data;
  }
  const got = src?.length ?? 0;
  if (got !== count) throw mismatch(got);
  if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
    for (let i = 0; i < count; i++) out[i] = BigInt(src![i]!);
  } else {
    for (let i = 0; i < count; i++) (out as Float32Array)[i] = Number(src![i]);
  }
  return out;
}

/** A float tensor (FLOAT, FLOAT16, DOUBLE, BFLOAT16) as Float32Array. */
export function tensorToFloat32(t: TensorProto): Float32Array {
  const data = tensorToTypedArray(t);
  switch (t.data_type) {
    case DataType.FLOAT: return data as Float32Array;
    case DataType.FLOAT16: return float16BitsToFloat32(data as Uint16Array);
    case DataType.BFLOAT16: {
      const bits = data as Uint16Array;
      const u = new Uint32Array(bits.length);
      for (let i = 0; i < bits.length; i++) u[i] = bits[i]! << 16;
      return new Float32Array(u.buffer);
    }
    case DataType.DOUBLE: return Float32Array.from(data as Float64Array);
    default:
      throw new OspreyError('OSPREY_ERR_UNSUPPORTED_MODEL', `tensor '${t.name}' is ${dataTypeName(t.data_type ?? 0)}, not a float tensor`, { tensor: t.name });
  }
}

/** An integer tensor (INT64, INT32, ...) as plain numbers (for shape constants, axes, indices). */
export function tensorToNumbers(t: TensorProto): number[] {
  const data = tensorToTypedArray(t);
  const out: number[] = new Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
  return out;
}

function dataTypeOfArray(data: OnnxTypedArray): number {
  if (data instanceof Float32Array) return DataType.FLOAT;
  if (data instanceof Float64Array) return DataType.DOUBLE;
  if (data instanceof Int8Array) return DataType.INT8;
  if (data instanceof Uint8Array) return DataType.UINT8;
  if (data instanceof Int16Array) return DataType.INT16;
  if (data instanceof Uint16Array) return DataType.UINT16;
  if (data instanceof Int32Array) return DataType.INT32;
  if (data instanceof Uint32Array) return DataType.UINT32;
  if (data instanceof BigInt64Array) return DataType.INT64;
  return DataType.UINT64;
}

/**
 * A TensorProto holding `data` in `raw_data` (bytes copied).
 * @param dataType ONNX element type; default from the array (Float32Array → FLOAT, BigInt64Array → INT64,
 *   Uint16Array → UINT16: pass `DataType.FLOAT16` for float16 bits, `DataType.BOOL` for booleans in a Uint8Array).
 * @example makeTensor('shape', [3], new BigInt64Array([0n, 64n, -1n]))
 */
export function makeTensor(name: string, dims: readonly number[], data: OnnxTypedArray, dataType?: number): TensorProto {
  const code = dataType ?? dataTypeOfArray(data);
  const count = elementCount(dims);
  if (data.length !== count) {
    throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `makeTensor('${name}'): dims [${dims.join(',')}] need ${count} elements, got ${data.length}`);
  }
  const raw = new Uint8Array(data.byteLength);
  raw.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return { name, dims: [...dims], data_type: code, raw_data: raw };
}

/** An INT64 tensor from numbers, e.g. a Reshape shape: `makeInt64Tensor('s', [0, 64, -1])` (1-D) or `dims` given. */
export function makeInt64Tensor(name: string, values: readonly number[], dims: readonly number[] = [values.length]): TensorProto {
  return makeTensor(name, dims, BigInt64Array.from(values.map((v) => BigInt(v))));
}

/** A FLOAT tensor from numbers (scalar when `dims` is `[]`). */
export function makeFloatTensor(name: string, values: readonly number[], dims: readonly number[] = [values.length]): TensorProto {
  return makeTensor(name, dims, Float32Array.from(values));
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * float32 → IEEE 754 binary16 bits, round to nearest even; overflow → ±Inf, NaN kept NaN, subnormals kept.
 * (The conversion numpy's `astype(float16)` and onnxconverter-common's float16 pass use.)
 */
export function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let h = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++;
  return sign | h;
}

/** IEEE 754 binary16 bits → number. */
export function float16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Float32Array → float16 bits (Uint16Array). */
export function float32ToFloat16(data: Float32Array): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = float32ToFloat16Bits(data[i]!);
  return out;
}

/** float16 bits (Uint16Array) → Float32Array. */
export function float16BitsToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = float16BitsToNumber(bits[i]!);
  return out;
}
