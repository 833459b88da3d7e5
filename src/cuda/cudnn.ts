/**
 * cuDNN 9's backend (graph) API through koffi: descriptors, attributes, finalize, execute — and the one graph Osprey
 * builds with it, a fused convolution: `conv(x, w) → + bias → [SiLU] → [+ residual]`, FP16 NHWC tensors, FP32
 * accumulation (cuDNN's runtime-fusion engines and precompiled conv + bias + activation kernels on Hopper).
 *
 * Enum values are those of cudnn_graph.h of cuDNN 9 (9.0 … 9.24 keep them stable). A non-zero `cudnnStatus_t` becomes
 * an OspreyError `OSPREY_ERR_CUDA` with cudnnGetErrorString and cudnnGetLastErrorString's text.
 */
import koffi, { type LibraryHandle } from 'koffi';
type KoffiFunction = ReturnType<LibraryHandle['func']>;
import { OspreyError } from '../core/errors.js';
import { loadCudaLibrary } from './loader.js';
import type { CuHandle, DevicePtr } from './driver.js';

/** cudnnBackendDescriptorType_t */
export const Desc = {
  POINTWISE: 0,
  CONVOLUTION: 1,
  ENGINE: 2,
  ENGINECFG: 3,
  ENGINEHEUR: 4,
  EXECUTION_PLAN: 5,
  OPERATION_CONVOLUTION_FORWARD: 10,
  OPERATION_POINTWISE: 13,
  OPERATIONGRAPH: 15,
  VARIANT_PACK: 16,
  TENSOR: 17,
} as const;

/** cudnnBackendAttributeType_t */
export const AttrType = {
  HANDLE: 0,
  DATA_TYPE: 1,
  BOOLEAN: 2,
  INT64: 3,
  FLOAT: 4,
  DOUBLE: 5,
  VOID_PTR: 6,
  CONVOLUTION_MODE: 7,
  HEUR_MODE: 8,
  POINTWISE_MODE: 14,
  BACKEND_DESCRIPTOR: 15,
  CHAR: 24,
} as const;

/** cudnnBackendAttributeName_t (the ones used here). */
export const Attr = {
  POINTWISE_MODE: 0,
  POINTWISE_MATH_PREC: 1,
  POINTWISE_SWISH_BETA: 8,
  CONVOLUTION_COMP_TYPE: 100,
  CONVOLUTION_CONV_MODE: 101,
  CONVOLUTION_DILATIONS: 102,
  CONVOLUTION_FILTER_STRIDES: 103,
  CONVOLUTION_POST_PADDINGS: 104,
  CONVOLUTION_PRE_PADDINGS: 105,
  CONVOLUTION_SPATIAL_DIMS: 106,
  ENGINEHEUR_MODE: 200,
  ENGINEHEUR_OPERATION_GRAPH: 201,
  ENGINEHEUR_RESULTS: 202,
  ENGINECFG_ENGINE: 300,
  EXECUTION_PLAN_HANDLE: 400,
  EXECUTION_PLAN_ENGINE_CONFIG: 401,
  EXECUTION_PLAN_WORKSPACE_SIZE: 402,
  EXECUTION_PLAN_JSON_REPRESENTATION: 405,
  OPERATION_CONVOLUTION_FORWARD_ALPHA: 700,
  OPERATION_CONVOLUTION_FORWARD_BETA: 701,
  OPERATION_CONVOLUTION_FORWARD_CONV_DESC: 702,
  OPERATION_CONVOLUTION_FORWARD_W: 703,
  OPERATION_CONVOLUTION_FORWARD_X: 704,
  OPERATION_CONVOLUTION_FORWARD_Y: 705,
  OPERATION_POINTWISE_PW_DESCRIPTOR: 750,
  OPERATION_POINTWISE_XDESC: 751,
  OPERATION_POINTWISE_BDESC: 752,
  OPERATION_POINTWISE_YDESC: 753,
  OPERATIONGRAPH_HANDLE: 800,
  OPERATIONGRAPH_OPS: 801,
  OPERATIONGRAPH_ENGINE_GLOBAL_COUNT: 802,
  TENSOR_BYTE_ALIGNMENT: 900,
  TENSOR_DATA_TYPE: 901,
  TENSOR_DIMENSIONS: 902,
  TENSOR_STRIDES: 903,
  TENSOR_UNIQUE_ID: 906,
  TENSOR_IS_VIRTUAL: 907,
  VARIANT_PACK_UNIQUE_IDS: 1000,
  VARIANT_PACK_DATA_POINTERS: 1001,
  VARIANT_PACK_WORKSPACE: 1003,
  ENGINE_OPERATION_GRAPH: 1300,
  ENGINE_GLOBAL_INDEX: 1301,
} as const;

export const DataType = { FLOAT: 0, HALF: 2 } as const;
export const CUDNN_CROSS_CORRELATION = 1;
export const HeurMode = { INSTANT: 0, B: 1, FALLBACK: 2, A: 3 } as const;
export const PointwiseMode = { ADD: 0, SWISH_FWD: 106 } as const;

/** An opaque cudnnBackendDescriptor_t. */
export type Descriptor = bigint;

export class Cudnn {
  readonly path: string;
  private readonly f: Record<string, KoffiFunction> = {};

  constructor() {
    const { lib, path } = loadCudaLibrary('cudnn');
    this.path = path;
    const decl: Record<string, string> = {
      cudnnGetVersion: 'size_t cudnnGetVersion()',
      cudnnGetErrorString: 'const char *cudnnGetErrorString(int status)',
      cudnnGetLastErrorString: 'void cudnnGetLastErrorString(_Out_ uint8_t *message, size_t max)',
      cudnnCreate: 'int cudnnCreate(_Out_ void **handle)',
      cudnnDestroy: 'int cudnnDestroy(void *handle)',
      cudnnSetStream: 'int cudnnSetStream(void *handle, void *stream)',
      cudnnBackendCreateDescriptor: 'int cudnnBackendCreateDescriptor(int type, _Out_ void **desc)',
      cudnnBackendDestroyDescriptor: 'int cudnnBackendDestroyDescriptor(void *desc)',
      cudnnBackendFinalize: 'int cudnnBackendFinalize(void *desc)',
      cudnnBackendSetAttribute: 'int cudnnBackendSetAttribute(void *desc, int name, int type, int64_t count, const void *elements)',
      cudnnBackendGetAttribute: 'int cudnnBackendGetAttribute(void *desc, int name, int type, int64_t requested, _Out_ int64_t *count, void *elements)',
      cudnnBackendExecute: 'int cudnnBackendExecute(void *handle, void *plan, void *variantPack)',
    };
    for (const [name, d] of Object.entries(decl)) this.f[name] = lib.func(d);
  }

  /** e.g. 92400 for 9.24.0. */
  versionNumber(): number {
    return Number(this.f.cudnnGetVersion!());
  }

  /** e.g. `9.24.0`. */
  version(): string {
    const v = this.versionNumber();
    return `${Math.floor(v / 10000)}.${Math.floor((v % 10000) / 100)}.${v % 100}`;
  }

  lastError(): string {
    const buf = new Uint8Array(1024);
    this.f.cudnnGetLastErrorString!(buf, buf.length);
    const end = buf.indexOf(0);
    return new TextDecoder().decode(buf.subarray(0, end < 0 ? buf.length : end)).trim();
  }

  /** Calls `name`, throws OSPREY_ERR_CUDA on a non-zero status. */
  call(name: string, ...args: unknown[]): void {
    const r = this.f[name]!(...args) as number;
    if (r !== 0) {
      const last = this.lastError();
      throw new OspreyError('OSPREY_ERR_CUDA', `${name}: ${this.f.cudnnGetErrorString!(r) as string}${last ? ` — ${last}` : ''}`, { call: name, status: r });
    }
  }

  /** The status of a call (0 = success) without throwing (for probing engine configs). */
  try(name: string, ...args: unknown[]): number {
    return this.f[name]!(...args) as number;
  }

  createHandle(): CuHandle {
    const p: unknown[] = [null];
    this.call('cudnnCreate', p);
    return p[0] as CuHandle;
  }

  create(type: number): Descriptor {
    const p: unknown[] = [null];
    this.call('cudnnBackendCreateDescriptor', type, p);
    return p[0] as Descriptor;
  }

  destroy(d: Descriptor): void {
    this.try('cudnnBackendDestroyDescriptor', d);
  }

  set(d: Descriptor, name: number, type: number, values: ArrayBufferView, count?: number): void {
    const n = count ?? (values as unknown as { length: number }).length;
    this.call('cudnnBackendSetAttribute', d, name, type, n, values);
  }

  setInt64(d: Descriptor, name: number, values: readonly number[]): void {
    this.set(d, name, AttrType.INT64, BigInt64Array.from(values.map((v) => BigInt(v))));
  }

  setEnum(d: Descriptor, name: number, type: number, value: number): void {
    this.set(d, name, type, Int32Array.of(value));
  }

  setDescriptors(d: Descriptor, name: number, values: readonly Descriptor[]): void {
    this.set(d, name, AttrType.BACKEND_DESCRIPTOR, BigUint64Array.from(values.map((v) => BigInt(v))));
  }

  setHandle(d: Descriptor, name: number, handle: CuHandle): void {
    this.set(d, name, AttrType.HANDLE, BigUint64Array.of(BigInt(handle as bigint)));
  }

  finalize(d: Descriptor): void {
    this.call('cudnnBackendFinalize', d);
  }

  /**
   * A tensor descriptor. `dims`/`strides` in cuDNN's logical NCHW order; FP16 NHWC data has strides
   * `[H*W*C, 1, W*C, C]` (a channel slice of a wider buffer: the buffer's channel count in place of C).
   */
  tensor(uid: number, dims: readonly number[], strides: readonly number[], dataType: number, options: { virtual?: boolean; alignment?: number } = {}): Descriptor {
    const d = this.create(Desc.TENSOR);
    this.setEnum(d, Attr.TENSOR_DATA_TYPE, AttrType.DATA_TYPE, dataType);
    this.setInt64(d, Attr.TENSOR_DIMENSIONS, dims);
    this.setInt64(d, Attr.TENSOR_STRIDES, strides);
    this.setInt64(d, Attr.TENSOR_UNIQUE_ID, [uid]);
    this.setInt64(d, Attr.TENSOR_BYTE_ALIGNMENT, [options.alignment ?? 16]);
    if (options.virtual) this.set(d, Attr.TENSOR_IS_VIRTUAL, AttrType.BOOLEAN, Uint8Array.of(1));
    this.finalize(d);
    return d;
  }

  /** Executes a finalized plan with a variant pack. */
  execute(handle: CuHandle, plan: Descriptor, variantPack: Descriptor): void {
    this.call('cudnnBackendExecute', handle, plan, variantPack);
  }
}

/** A 4-D FP16 NHWC view: shape in NCHW order and the strides of its buffer. */
export interface CudnnTensorView {
  n: number;
  c: number;
  h: number;
  w: number;
  /** Channels of the buffer the view lies in (pixel stride, elements). */
  pixelStride: number;
}

/** The fused convolution graph: conv + bias + [SiLU] + [residual]. */
export interface FusedConvSpec {
  x: CudnnTensorView;
  y: CudnnTensorView;
  residual?: CudnnTensorView;
  kernel: [number, number];
  stride: [number, number];
  pad: [number, number];
  silu: boolean;
}

/** Strides (NCHW order) of an NHWC view. */
export function nhwcStrides(v: CudnnTensorView): number[] {
  return [v.h * v.w * v.pixelStride, 1, v.w * v.pixelStride, v.pixelStride];
}

/** Unique ids of the graph's real tensors in the variant pack. */
export const UID = { X: 1, W: 2, B: 3, R: 4, Y: 5 };

/** An operation graph for {@link FusedConvSpec}, ready for heuristics. The descriptors are freed by `destroy()`. */
export class FusedConvGraph {
  readonly graph: Descriptor;
  private readonly owned: Descriptor[] = [];

  constructor(private readonly dnn: Cudnn, handle: CuHandle, spec: FusedConvSpec) {
    const d = dnn;
    const own = (x: Descriptor) => (this.owned.push(x), x);
    const cout = spec.y.c;
    const x = own(d.tensor(UID.X, [spec.x.n, spec.x.c, spec.x.h, spec.x.w], nhwcStrides(spec.x), DataType.HALF));
    const [kh, kw] = spec.kernel;
    const cin = spec.x.c;
    const w = own(d.tensor(UID.W, [cout, cin, kh, kw], [kh * kw * cin, 1, kw * cin, cin], DataType.HALF));
    const b = own(d.tensor(UID.B, [1, cout, 1, 1], [cout, 1, cout, cout], DataType.FLOAT));
    const ydims = [spec.y.n, cout, spec.y.h, spec.y.w];
    const packed = [spec.y.h * spec.y.w * cout, 1, spec.y.w * cout, cout];
    let uid = 100;
    const virt = () => own(d.tensor(uid++, ydims, packed, DataType.FLOAT, { virtual: true }));
    const conv = own(d.create(Desc.CONVOLUTION));
    d.setEnum(conv, Attr.CONVOLUTION_COMP_TYPE, AttrType.DATA_TYPE, DataType.FLOAT);
    d.setEnum(conv, Attr.CONVOLUTION_CONV_MODE, AttrType.CONVOLUTION_MODE, CUDNN_CROSS_CORRELATION);
    d.setInt64(conv, Attr.CONVOLUTION_SPATIAL_DIMS, [2]);
    d.setInt64(conv, Attr.CONVOLUTION_DILATIONS, [1, 1]);
    d.setInt64(conv, Attr.CONVOLUTION_FILTER_STRIDES, spec.stride);
    d.setInt64(conv, Attr.CONVOLUTION_PRE_PADDINGS, spec.pad);
    d.setInt64(conv, Attr.CONVOLUTION_POST_PADDINGS, spec.pad);
    d.finalize(conv);

    const ops: Descriptor[] = [];
    const convOut = virt();
    const op = own(d.create(Desc.OPERATION_CONVOLUTION_FORWARD));
    d.setDescriptors(op, Attr.OPERATION_CONVOLUTION_FORWARD_X, [x]);
    d.setDescriptors(op, Attr.OPERATION_CONVOLUTION_FORWARD_W, [w]);
    d.setDescriptors(op, Attr.OPERATION_CONVOLUTION_FORWARD_Y, [convOut]);
    d.setDescriptors(op, Attr.OPERATION_CONVOLUTION_FORWARD_CONV_DESC, [conv]);
    d.set(op, Attr.OPERATION_CONVOLUTION_FORWARD_ALPHA, AttrType.FLOAT, Float32Array.of(1));
    d.set(op, Attr.OPERATION_CONVOLUTION_FORWARD_BETA, AttrType.FLOAT, Float32Array.of(0));
    d.finalize(op);
    ops.push(op);

    const stages: Array<{ mode: number; b?: Descriptor }> = [{ mode: PointwiseMode.ADD, b }];
    if (spec.silu) stages.push({ mode: PointwiseMode.SWISH_FWD });
    if (spec.residual) {
      const r = spec.residual;
      stages.push({ mode: PointwiseMode.ADD, b: own(d.tensor(UID.R, [r.n, r.c, r.h, r.w], nhwcStrides(r), DataType.HALF)) });
    }
    let cur = convOut;
    stages.forEach((s, i) => {
      const last = i === stages.length - 1;
      const out = last ? own(d.tensor(UID.Y, ydims, nhwcStrides(spec.y), DataType.HALF)) : virt();
      const pw = own(d.create(Desc.POINTWISE));
      d.setEnum(pw, Attr.POINTWISE_MODE, AttrType.POINTWISE_MODE, s.mode);
      d.setEnum(pw, Attr.POINTWISE_MATH_PREC, AttrType.DATA_TYPE, DataType.FLOAT);
      if (s.mode === PointwiseMode.SWISH_FWD) d.set(pw, Attr.POINTWISE_SWISH_BETA, AttrType.DOUBLE, Float64Array.of(1));
      d.finalize(pw);
      const o = own(d.create(Desc.OPERATION_POINTWISE));
      d.setDescriptors(o, Attr.OPERATION_POINTWISE_PW_DESCRIPTOR, [pw]);
      d.setDescriptors(o, Attr.OPERATION_POINTWISE_XDESC, [cur]);
      if (s.b) d.setDescriptors(o, Attr.OPERATION_POINTWISE_BDESC, [s.b]);
      d.setDescriptors(o, Attr.OPERATION_POINTWISE_YDESC, [out]);
      d.finalize(o);
      ops.push(o);
      cur = out;
    });
    this.graph = own(d.create(Desc.OPERATIONGRAPH));
    d.setHandle(this.graph, Attr.OPERATIONGRAPH_HANDLE, handle);
    d.setDescriptors(this.graph, Attr.OPERATIONGRAPH_OPS, ops);
    d.finalize(this.graph);
  }

  /** Engine configs cuDNN's heuristics propose (mode A, then FALLBACK), at most `max`. */
  engineConfigs(max = 8, mode: number = HeurMode.A): Descriptor[] {
    const d = this.dnn;
    const heur = d.create(Desc.ENGINEHEUR);
    try {
      d.setDescriptors(heur, Attr.ENGINEHEUR_OPERATION_GRAPH, [this.graph]);
      d.setEnum(heur, Attr.ENGINEHEUR_MODE, AttrType.HEUR_MODE, mode);
      d.finalize(heur);
      const cfgs = Array.from({ length: max }, () => d.create(Desc.ENGINECFG));
      const count = [0];
      d.call('cudnnBackendGetAttribute', heur, Attr.ENGINEHEUR_RESULTS, AttrType.BACKEND_DESCRIPTOR, max, count, BigUint64Array.from(cfgs.map((c) => BigInt(c))));
      const n = Number(count[0]);
      for (const c of cfgs.slice(n)) d.destroy(c);
      return cfgs.slice(0, n);
    } finally {
      d.destroy(heur);
    }
  }

  /** An execution plan for one engine config, or a reason when cuDNN refuses it. */
  plan(handle: CuHandle, cfg: Descriptor): { plan: Descriptor; workspaceBytes: number } | { error: string } {
    const d = this.dnn;
    const plan = d.create(Desc.EXECUTION_PLAN);
    try {
      d.setHandle(plan, Attr.EXECUTION_PLAN_HANDLE, handle);
      d.setDescriptors(plan, Attr.EXECUTION_PLAN_ENGINE_CONFIG, [cfg]);
      const r = d.try('cudnnBackendFinalize', plan);
      if (r !== 0) {
        d.destroy(plan);
        return { error: `status ${r}: ${d.lastError()}` };
      }
      const ws = new BigInt64Array(1);
      const count = [0];
      d.call('cudnnBackendGetAttribute', plan, Attr.EXECUTION_PLAN_WORKSPACE_SIZE, AttrType.INT64, 1, count, ws);
      return { plan, workspaceBytes: Number(ws[0]) };
    } catch (err) {
      d.destroy(plan);
      return { error: (err as Error).message };
    }
  }

  destroy(): void {
    for (const x of this.owned.reverse()) this.dnn.destroy(x);
    this.owned.length = 0;
  }
}

/** A variant pack binding the graph's tensors to device addresses. */
export function variantPack(dnn: Cudnn, ptrs: { x: DevicePtr; w: DevicePtr; b: DevicePtr; y: DevicePtr; r?: DevicePtr }, workspace: DevicePtr): Descriptor {
  const uids = [UID.X, UID.W, UID.B, UID.Y];
  const addrs = [ptrs.x, ptrs.w, ptrs.b, ptrs.y];
  if (ptrs.r !== undefined) {
    uids.push(UID.R);
    addrs.push(ptrs.r);
  }
  const vp = dnn.create(Desc.VARIANT_PACK);
  dnn.setInt64(vp, Attr.VARIANT_PACK_UNIQUE_IDS, uids);
  dnn.set(vp, Attr.VARIANT_PACK_DATA_POINTERS, AttrType.VOID_PTR, BigUint64Array.from(addrs.map((a) => BigInt(a))));
  dnn.set(vp, Attr.VARIANT_PACK_WORKSPACE, AttrType.VOID_PTR, BigUint64Array.of(BigInt(workspace)), 1);
  dnn.finalize(vp);
  return vp;
}
