/**
 * The CUDA driver API (`libcuda.so.1`) through koffi: thin, typed, no policy. Every call's `CUresult` is checked and
 * a failure becomes an OspreyError `OSPREY_ERR_CUDA` naming the call and the status (`cuMemAlloc_v2:
 * CUDA_ERROR_OUT_OF_MEMORY (out of memory)`).
 *
 * Device pointers are JS numbers (CUDA virtual addresses fit in 53 bits); host pointers and handles are the
 * BigInt-like values koffi returns, passed back as they are. Several calls exist under `_v2` names, which are the real
 * symbols (`cuMemAlloc_v2`, `cuMemcpyHtoDAsync_v2`, `cuStreamBeginCapture_v2`).
 */
import koffi, { type LibraryHandle } from 'koffi';
type KoffiFunction = ReturnType<LibraryHandle['func']>;
import { OspreyError } from '../core/errors.js';
import { loadCudaLibrary } from './loader.js';

/** An opaque CUDA handle (context, stream, event, module, function, graph). */
export type CuHandle = bigint | number | object;
/** A device address. */
export type DevicePtr = number;

/** `CUdevice_attribute` values used here (cuda.h). */
export const CuDeviceAttribute = {
  MULTIPROCESSOR_COUNT: 16,
  COMPUTE_CAPABILITY_MAJOR: 75,
  COMPUTE_CAPABILITY_MINOR: 76,
  MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: 97,
  L2_CACHE_SIZE: 38,
} as const;

export const CU_STREAM_NON_BLOCKING = 1;
export const CU_EVENT_DEFAULT = 0;
export const CU_MEMHOSTALLOC_PORTABLE = 1;
/** `CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES`. */
export const CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
/** `CU_STREAM_CAPTURE_MODE_THREAD_LOCAL`. */
export const CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1;

type Fn = KoffiFunction;

/** The bound functions of libcuda. */
export class CudaDriver {
  readonly path: string;
  private readonly f: Record<string, Fn> = {};

  constructor() {
    const { lib, path } = loadCudaLibrary('cuda');
    this.path = path;
    const decl: Record<string, string> = {
      cuInit: 'int cuInit(unsigned int flags)',
      cuDriverGetVersion: 'int cuDriverGetVersion(_Out_ int *version)',
      cuDeviceGetCount: 'int cuDeviceGetCount(_Out_ int *count)',
      cuDeviceGet: 'int cuDeviceGet(_Out_ int *device, int ordinal)',
      cuDeviceGetName: 'int cuDeviceGetName(_Out_ uint8_t *name, int len, int dev)',
      cuDeviceGetAttribute: 'int cuDeviceGetAttribute(_Out_ int *pi, int attrib, int dev)',
      cuDeviceTotalMem_v2: 'int cuDeviceTotalMem_v2(_Out_ size_t *bytes, int dev)',
      cuDevicePrimaryCtxRetain: 'int cuDevicePrimaryCtxRetain(_Out_ void **pctx, int dev)',
      cuDevicePrimaryCtxRelease_v2: 'int cuDevicePrimaryCtxRelease_v2(int dev)',
      cuCtxSetCurrent: 'int cuCtxSetCurrent(void *ctx)',
      cuCtxSynchronize: 'int cuCtxSynchronize()',
      cuMemGetInfo_v2: 'int cuMemGetInfo_v2(_Out_ size_t *free, _Out_ size_t *total)',
      cuMemAlloc_v2: 'int cuMemAlloc_v2(_Out_ uint64_t *dptr, size_t bytes)',
      cuMemFree_v2: 'int cuMemFree_v2(uint64_t dptr)',
      cuMemHostAlloc: 'int cuMemHostAlloc(_Out_ void **pp, size_t bytes, unsigned int flags)',
      cuMemFreeHost: 'int cuMemFreeHost(void *p)',
      cuMemcpyHtoD_v2: 'int cuMemcpyHtoD_v2(uint64_t dst, const void *src, size_t bytes)',
      cuMemcpyDtoH_v2: 'int cuMemcpyDtoH_v2(void *dst, uint64_t src, size_t bytes)',
      cuMemcpyHtoDAsync_v2: 'int cuMemcpyHtoDAsync_v2(uint64_t dst, const void *src, size_t bytes, void *stream)',
      cuMemcpyDtoHAsync_v2: 'int cuMemcpyDtoHAsync_v2(void *dst, uint64_t src, size_t bytes, void *stream)',
      cuMemcpyDtoDAsync_v2: 'int cuMemcpyDtoDAsync_v2(uint64_t dst, uint64_t src, size_t bytes, void *stream)',
      cuMemsetD8Async: 'int cuMemsetD8Async(uint64_t dst, uint8_t value, size_t count, void *stream)',
      cuStreamCreate: 'int cuStreamCreate(_Out_ void **stream, unsigned int flags)',
      cuStreamDestroy_v2: 'int cuStreamDestroy_v2(void *stream)',
      cuStreamSynchronize: 'int cuStreamSynchronize(void *stream)',
      cuStreamWaitEvent: 'int cuStreamWaitEvent(void *stream, void *event, unsigned int flags)',
      cuEventCreate: 'int cuEventCreate(_Out_ void **event, unsigned int flags)',
      cuEventRecord: 'int cuEventRecord(void *event, void *stream)',
      cuEventSynchronize: 'int cuEventSynchronize(void *event)',
      cuEventDestroy_v2: 'int cuEventDestroy_v2(void *event)',
      cuModuleLoadData: 'int cuModuleLoadData(_Out_ void **module, const void *image)',
      cuModuleUnload: 'int cuModuleUnload(void *module)',
      cuModuleGetFunction: 'int cuModuleGetFunction(_Out_ void **fn, void *module, const char *name)',
      cuFuncSetAttribute: 'int cuFuncSetAttribute(void *fn, int attrib, int value)',
      cuLaunchKernel:
        'int cuLaunchKernel(void *f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz, unsigned int sharedBytes, void *stream, void **params, void **extra)',
      cuStreamBeginCapture_v2: 'int cuStreamBeginCapture_v2(void *stream, int mode)',
      cuStreamEndCapture: 'int cuStreamEndCapture(void *stream, _Out_ void **graph)',
      cuGraphInstantiateWithFlags: 'int cuGraphInstantiateWithFlags(_Out_ void **exec, void *graph, uint64_t flags)',
      cuGraphLaunch: 'int cuGraphLaunch(void *exec, void *stream)',
      cuGraphExecDestroy: 'int cuGraphExecDestroy(void *exec)',
      cuGraphDestroy: 'int cuGraphDestroy(void *graph)',
      cuGetErrorName: 'int cuGetErrorName(int status, _Out_ const char **name)',
      cuGetErrorString: 'int cuGetErrorString(int status, _Out_ const char **text)',
    };
    for (const [name, d] of Object.entries(decl)) this.f[name] = lib.func(d);
    // cuEventElapsedTime_v2 (CUDA 12.8+) where the driver has it, else the original symbol
    for (const name of ['cuEventElapsedTime_v2', 'cuEventElapsedTime']) {
      try {
        this.f.cuEventElapsedTime = lib.func(`int ${name}(_Out_ float *ms, void *start, void *end)`);
        break;
      } catch {
        /* try the next */
      }
    }
  }

  /** `CUDA_ERROR_OUT_OF_MEMORY (out of memory)` for a status. */
  describe(status: number): string {
    const n: (string | null)[] = [null];
    const s: (string | null)[] = [null];
    this.f.cuGetErrorName!(status, n);
    this.f.cuGetErrorString!(status, s);
    return `${n[0] ?? `CUresult ${status}`}${s[0] ? ` (${s[0]})` : ''}`;
  }

  /** Calls `name` and throws OSPREY_ERR_CUDA on a non-zero CUresult. */
  call(name: string, ...args: unknown[]): void {
    const fn = this.f[name];
    if (!fn) throw new OspreyError('OSPREY_ERR_CUDA', `${name}: not bound`);
    const r = fn(...args) as number;
    if (r !== 0) throw new OspreyError('OSPREY_ERR_CUDA', `${name}: ${this.describe(r)}`, { call: name, status: r });
  }

  /** The raw function (for hot paths that check the status themselves). */
  raw(name: string): Fn {
    return this.f[name]!;
  }

  init(): void {
    this.call('cuInit', 0);
  }

  driverVersion(): number {
    const v = [0];
    this.call('cuDriverGetVersion', v);
    return v[0]!;
  }

  deviceCount(): number {
    const v = [0];
    this.call('cuDeviceGetCount', v);
    return v[0]!;
  }

  device(ordinal: number): number {
    const v = [0];
    this.call('cuDeviceGet', v, ordinal);
    return v[0]!;
  }

  deviceName(dev: number): string {
    const buf = new Uint8Array(256);
    this.call('cuDeviceGetName', buf, buf.length, dev);
    const end = buf.indexOf(0);
    return new TextDecoder().decode(buf.subarray(0, end < 0 ? buf.length : end));
  }

  attribute(dev: number, attr: number): number {
    const v = [0];
    this.call('cuDeviceGetAttribute', v, attr, dev);
    return v[0]!;
  }

  totalMemory(dev: number): number {
    const v = [0];
    this.call('cuDeviceTotalMem_v2', v, dev);
    return Number(v[0]);
  }

  primaryContext(dev: number): CuHandle {
    const p: unknown[] = [null];
    this.call('cuDevicePrimaryCtxRetain', p, dev);
    this.call('cuCtxSetCurrent', p[0]);
    return p[0] as CuHandle;
  }

  memInfo(): { freeBytes: number; totalBytes: number } {
    const f = [0];
    const t = [0];
    this.call('cuMemGetInfo_v2', f, t);
    return { freeBytes: Number(f[0]), totalBytes: Number(t[0]) };
  }

  malloc(bytes: number): DevicePtr {
    const p = [0];
    this.call('cuMemAlloc_v2', p, Math.max(1, bytes));
    return Number(p[0]);
  }

  free(ptr: DevicePtr): void {
    this.call('cuMemFree_v2', ptr);
  }

  /** Page-locked host memory, returned as its pointer and an ArrayBuffer over it (no copy). */
  hostAlloc(bytes: number): { ptr: bigint; buffer: ArrayBuffer } {
    const p: unknown[] = [null];
    this.call('cuMemHostAlloc', p, Math.max(1, bytes), CU_MEMHOSTALLOC_PORTABLE);
    return { ptr: p[0] as bigint, buffer: koffi.view(p[0], bytes) };
  }

  freeHost(ptr: bigint): void {
    this.call('cuMemFreeHost', ptr);
  }

  /** Synchronous copy host → device. */
  copyToDevice(dst: DevicePtr, src: ArrayBufferView | bigint, bytes: number): void {
    this.call('cuMemcpyHtoD_v2', dst, src, bytes);
  }

  /** Synchronous copy device → host. */
  copyToHost(dst: ArrayBufferView | bigint, src: DevicePtr, bytes: number): void {
    this.call('cuMemcpyDtoH_v2', dst, src, bytes);
  }

  streamCreate(): CuHandle {
    const p: unknown[] = [null];
    this.call('cuStreamCreate', p, CU_STREAM_NON_BLOCKING);
    return p[0] as CuHandle;
  }

  eventCreate(): CuHandle {
    const p: unknown[] = [null];
    this.call('cuEventCreate', p, CU_EVENT_DEFAULT);
    return p[0] as CuHandle;
  }

  elapsedMs(start: CuHandle, end: CuHandle): number {
    const v = [0];
    this.call('cuEventElapsedTime', v, start, end);
    return v[0]!;
  }

  moduleLoad(image: Uint8Array): CuHandle {
    const p: unknown[] = [null];
    this.call('cuModuleLoadData', p, image);
    return p[0] as CuHandle;
  }

  getFunction(module: CuHandle, name: string): CuHandle {
    const p: unknown[] = [null];
    this.call('cuModuleGetFunction', p, module, name);
    return p[0] as CuHandle;
  }

  /**
   * Launches a kernel. `params` are one-element typed arrays, one per kernel argument, in order (the `void **`
   * cuLaunchKernel takes): `Float64Array`/`BigUint64Array` for pointers, `Int32Array` for ints, `Float32Array` for floats.
   */
  launch(fn: CuHandle, grid: readonly [number, number, number], block: readonly [number, number, number], sharedBytes: number, stream: CuHandle, params: ArrayBufferView[]): void {
    this.call('cuLaunchKernel', fn, grid[0], grid[1], grid[2], block[0], block[1], block[2], sharedBytes, stream, params, null);
  }

  /** Captures what `record` enqueues on `stream` into an instantiated CUDA graph. */
  captureGraph(stream: CuHandle, record: () => void): { graph: CuHandle; exec: CuHandle } {
    this.call('cuStreamBeginCapture_v2', stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
    try {
      record();
    } catch (err) {
      const g: unknown[] = [null];
      this.raw('cuStreamEndCapture')(stream, g);
      if (g[0]) this.raw('cuGraphDestroy')(g[0]);
      throw err;
    }
    const g: unknown[] = [null];
    this.call('cuStreamEndCapture', stream, g);
    const e: unknown[] = [null];
    this.call('cuGraphInstantiateWithFlags', e, g[0], 0);
    return { graph: g[0] as CuHandle, exec: e[0] as CuHandle };
  }

  /** Waits for a stream without blocking the thread (koffi's async call on its worker pool). */
  synchronizeAsync(stream: CuHandle): Promise<void> {
    return new Promise((resolve, reject) => {
      this.f.cuStreamSynchronize!.async(stream, (err: unknown, r: number) => {
        if (err) reject(err);
        else if (r !== 0) reject(new OspreyError('OSPREY_ERR_CUDA', `cuStreamSynchronize: ${this.describe(r)}`, { call: 'cuStreamSynchronize', status: r }));
        else resolve();
      });
    });
  }
}

/** Encodes a device pointer as a kernel argument (`void *` parameter: 8 bytes). */
export function ptrArg(p: DevicePtr): BigUint64Array {
  return new BigUint64Array([BigInt(p)]);
}

/** Encodes an `int` kernel argument. */
export function intArg(v: number): Int32Array {
  return new Int32Array([v]);
}

/** Encodes a `float` kernel argument. */
export function floatArg(v: number): Float32Array {
  return new Float32Array([v]);
}
