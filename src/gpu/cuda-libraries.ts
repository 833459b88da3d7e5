/**
 * The part of `osprey doctor` about Osprey's own GPU engine (`--engine cuda`): which NVIDIA libraries were found
 * where, their versions (asked from each library: cuDriverGetVersion, nvrtcVersion, cudnnGetVersion,
 * cublasLtGetVersion), what is missing with the fix, and the GPUs the driver sees (name, compute capability).
 */
import { CUDA_LIBRARIES, findCudaLibraries, systemDiscoveryHost, type DiscoveryHost, type LibrarySearch } from '../cuda/discovery.js';

export interface CudaLibraryStatus {
  id: string;
  title: string;
  required: boolean;
  found: boolean;
  path?: string;
  /** Where it was found (`pip`, `LD_LIBRARY_PATH`, `ldconfig`, …). */
  source?: string;
  /** Version the library reports (or its file name carries). */
  version?: string;
  /** Why it could not be loaded although the file is there. */
  loadError?: string;
  /** What to do when it is missing. */
  fix?: string;
  /** How many folders were searched. */
  searchedFolders: number;
}

export interface CudaDeviceStatus {
  index: number;
  name: string;
  computeCapability: string;
  multiprocessors: number;
  memoryBytes: number;
}

export interface GpuEngineReport {
  libraries: CudaLibraryStatus[];
  /** Driver API version, e.g. "13.0". */
  driverApiVersion?: string;
  devices: CudaDeviceStatus[];
  /** Why no device is listed (no libcuda, cuInit failed: no GPU, …). */
  devicesNote?: string;
  /** True when every required library loaded and a device is visible. */
  ready: boolean;
}

function cudaVersionText(v: number): string {
  return `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
}

/**
 * The devices the CUDA driver sees (CUDA device ordinals, after `CUDA_VISIBLE_DEVICES`), from `libcuda.so.1` at
 * `libcudaPath`: cuInit, cuDeviceGetCount, then name, compute capability (attributes 75/76), SM count (16) and memory
 * of each. Throws only when the library cannot be opened (koffi's error); a failing cuInit becomes `note`.
 */
export async function listCudaDevices(libcudaPath: string): Promise<{ devices: CudaDeviceStatus[]; driverApiVersion?: string; note?: string }> {
  const koffi = (await import('koffi')).default;
  const lib = koffi.load(libcudaPath);
  const devices: CudaDeviceStatus[] = [];
  let driverApiVersion: string | undefined;
  const ver = lib.func('int cuDriverGetVersion(_Out_ int *v)');
  const v = [0];
  if (ver(v) === 0) driverApiVersion = cudaVersionText(v[0]!);
  const init = lib.func('int cuInit(unsigned int flags)');
  const r = init(0) as number;
  if (r !== 0) {
    const nameFn = lib.func('int cuGetErrorName(int status, _Out_ const char **name)');
    const n: (string | null)[] = [null];
    nameFn(r, n);
    return { devices, ...(driverApiVersion ? { driverApiVersion } : {}), note: `cuInit failed: ${n[0] ?? r}${r === 100 ? ' (no CUDA-capable GPU is visible)' : ''}` };
  }
  const count = [0];
  lib.func('int cuDeviceGetCount(_Out_ int *c)')(count);
  const get = lib.func('int cuDeviceGet(_Out_ int *d, int ordinal)');
  const attr = lib.func('int cuDeviceGetAttribute(_Out_ int *v, int attrib, int dev)');
  const nameFn = lib.func('int cuDeviceGetName(_Out_ uint8_t *name, int len, int dev)');
  const mem = lib.func('int cuDeviceTotalMem_v2(_Out_ size_t *bytes, int dev)');
  for (let i = 0; i < count[0]!; i++) {
    const d = [0];
    get(d, i);
    const a = (k: number) => {
      const out = [0];
      attr(out, k, d[0]);
      return out[0]!;
    };
    const buf = new Uint8Array(256);
    nameFn(buf, 256, d[0]);
    const m = [0];
    mem(m, d[0]);
    const end = buf.indexOf(0);
    devices.push({
      index: i,
      name: new TextDecoder().decode(buf.subarray(0, end < 0 ? 256 : end)),
      computeCapability: `${a(75)}.${a(76)}`,
      multiprocessors: a(16),
      memoryBytes: Number(m[0]),
    });
  }
  return { devices, ...(driverApiVersion ? { driverApiVersion } : {}), ...(devices.length === 0 ? { note: 'the driver lists no device' } : {}) };
}

/**
 * Finds and loads each library and asks it for its version; lists devices when libcuda loads and cuInit succeeds.
 * Never throws: every failure becomes a line of the report.
 */
export async function gpuEngineReport(host: DiscoveryHost = systemDiscoveryHost()): Promise<GpuEngineReport> {
  const searches: LibrarySearch[] = findCudaLibraries(host);
  const libraries: CudaLibraryStatus[] = [];
  let driverApiVersion: string | undefined;
  const devices: CudaDeviceStatus[] = [];
  let devicesNote: string | undefined;
  for (const s of searches) {
    const st: CudaLibraryStatus = { id: s.spec.id, title: s.spec.title, required: s.spec.required, found: !!s.found, searchedFolders: s.searched.length };
    if (!s.found) {
      st.fix = s.spec.fix;
      libraries.push(st);
      continue;
    }
    st.path = s.found.path;
    st.source = s.found.source;
    if (s.found.fileVersion) st.version = s.found.fileVersion;
    try {
      if (s.spec.id === 'cuda') {
        const listed = await listCudaDevices(s.found.path);
        driverApiVersion = listed.driverApiVersion ?? driverApiVersion;
        st.version = driverApiVersion ?? st.version;
        devices.push(...listed.devices);
        if (listed.note) devicesNote = listed.note;
      } else {
        const { loadCudaLibrary } = await import('../cuda/loader.js');
        const { lib } = loadCudaLibrary(s.spec.id, searches);
        if (s.spec.id === 'nvrtc') {
          const a = [0];
          const b = [0];
          lib.func('int nvrtcVersion(_Out_ int *major, _Out_ int *minor)')(a, b);
          st.version = `${a[0]}.${b[0]}`;
        } else if (s.spec.id === 'cudnn') {
          const v = Number(lib.func('size_t cudnnGetVersion()')());
          st.version = `${Math.floor(v / 10000)}.${Math.floor((v % 10000) / 100)}.${v % 100}`;
        } else if (s.spec.id === 'cublasLt') {
          const v = Number(lib.func('size_t cublasLtGetVersion()')());
          st.version = `${Math.floor(v / 10000)}.${Math.floor((v % 10000) / 100)}.${v % 100}`;
        }
      }
    } catch (err) {
      st.loadError = err instanceof Error ? err.message.split('\n')[0] : String(err);
    }
    libraries.push(st);
  }
  if (!searches.find((s) => s.spec.id === 'cuda')?.found) devicesNote = 'libcuda.so.1 not found: no NVIDIA driver on this machine';
  const ready = libraries.every((l) => !l.required || (l.found && !l.loadError)) && devices.length > 0;
  return { libraries, ...(driverApiVersion ? { driverApiVersion } : {}), devices, ...(devicesNote ? { devicesNote } : {}), ready };
}

/** The report as the lines `osprey doctor` prints. */
export function formatGpuEngineReport(r: GpuEngineReport): string {
  const lines = [`Osprey GPU engine (--engine cuda): ${r.ready ? 'ready' : 'not available'}`];
  for (const d of r.devices) {
    lines.push(`  GPU ${d.index}: ${d.name}, compute capability ${d.computeCapability}, ${d.multiprocessors} SMs, ${(d.memoryBytes / 2 ** 30).toFixed(1)} GiB`);
  }
  if (r.devicesNote) lines.push(`  GPUs: ${r.devicesNote}`);
  for (const l of r.libraries) {
    const spec = CUDA_LIBRARIES.find((s) => s.id === l.id);
    if (!l.found) {
      lines.push(`  ${l.required ? 'MISSING ' : 'absent  '} ${l.title}: ${spec?.sonames.join(' or ')} not found in ${l.searchedFolders} folders — fix: ${l.fix}`);
    } else if (l.loadError) {
      lines.push(`  BROKEN   ${l.title}: ${l.path} (${l.source}) does not load: ${l.loadError}`);
    } else {
      lines.push(`  ok       ${l.title} ${l.version ?? '(version unknown)'}: ${l.path} (${l.source})`);
    }
  }
  return lines.join('\n');
}
