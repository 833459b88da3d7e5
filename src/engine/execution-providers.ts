/**
 * Execution-provider names and the reasons a provider could not be loaded.
 *
 * onnxruntime-node only says "OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library" when
 * the CUDA EP cannot load; the real reason (which .so is missing) goes to ORT's log. To report it, we probe the
 * provider libraries next to `libonnxruntime.so.1` with the same dynamic loader (`process.dlopen`) and read the
 * loader's own message, e.g. "libcublasLt.so.13: cannot open shared object file".
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { delimiter, dirname, join } from 'node:path';

/** Execution providers Osprey knows how to ask onnxruntime-node for. */
export const KNOWN_EXECUTION_PROVIDERS = ['cuda', 'tensorrt', 'cpu', 'webgpu'] as const;

/** The order tried where an NVIDIA GPU is present: CUDA first, CPU as the fallback. */
export const GPU_EXECUTION_PROVIDERS: readonly string[] = Object.freeze(['cuda', 'cpu']);
/** The order used where no NVIDIA GPU is present. */
export const CPU_EXECUTION_PROVIDERS: readonly string[] = Object.freeze(['cpu']);

/** Where {@link detectNvidiaGpu} looks (injectable so tests can point it at a directory tree of their own). */
export interface GpuProbeOptions {
  /** Filesystem root the device paths are read under. Default `/`. */
  root?: string;
  /** Environment (`CUDA_VISIBLE_DEVICES`, `PATH`). Default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

/** What {@link detectNvidiaGpu} found, and from which evidence. */
export interface GpuPresence {
  present: boolean;
  /** e.g. `/dev/nvidia0`, `/proc/driver/nvidia/gpus (1 GPU)`, `nvidia-smi on PATH (/usr/bin/nvidia-smi)`, `CUDA_VISIBLE_DEVICES=-1`, `no /dev/nvidia*, /proc/driver/nvidia/gpus or nvidia-smi`. */
  evidence: string;
}

/**
 * Whether this machine has an NVIDIA GPU the CUDA execution provider could use, without loading any library or
 * starting a process (cheap enough for every command's defaults): a GPU device node (`/dev/nvidia0`, `/dev/nvidia1`,
 * …, what the driver and container runtimes create), the driver's `/proc/driver/nvidia/gpus/*` entries, or, where
 * neither exists (WSL2 exposes `/dev/dxg` instead), `nvidia-smi` on `PATH`. `CUDA_VISIBLE_DEVICES` set to an empty
 * value or `-1` hides every GPU, as it does for CUDA itself.
 * @example detectNvidiaGpu() // { present: false, evidence: 'no /dev/nvidia[0-9]*, /proc/driver/nvidia/gpus or nvidia-smi on PATH' } on a CPU-only VM
 */
export function detectNvidiaGpu(options: GpuProbeOptions = {}): GpuPresence {
  const root = options.root ?? '/';
  const env = options.env ?? process.env;
  const visible = env.CUDA_VISIBLE_DEVICES;
  if (visible !== undefined && (visible.trim() === '' || visible.trim() === '-1')) return { present: false, evidence: `CUDA_VISIBLE_DEVICES=${visible}` };
  const list = (dir: string): string[] => {
    try {
      return readdirSync(join(root, dir));
    } catch {
      return [];
    }
  };
  const node = list('dev').find((f) => /^nvidia\d+$/.test(f));
  if (node) return { present: true, evidence: `/dev/${node}` };
  const gpus = list('proc/driver/nvidia/gpus');
  if (gpus.length > 0) return { present: true, evidence: `/proc/driver/nvidia/gpus (${gpus.length} GPU${gpus.length === 1 ? '' : 's'})` };
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const exe = join(dir, process.platform === 'win32' ? 'nvidia-smi.exe' : 'nvidia-smi');
    if (existsSync(options.root ? join(root, exe) : exe)) return { present: true, evidence: `nvidia-smi on PATH (${exe})` };
  }
  return { present: false, evidence: 'no /dev/nvidia[0-9]*, /proc/driver/nvidia/gpus or nvidia-smi on PATH' };
}

let cachedDefault: readonly string[] | undefined;

/**
 * The execution providers tried when none are given: `['cuda', 'cpu']` where an NVIDIA GPU is present
 * ({@link detectNvidiaGpu}), else `['cpu']` — so a CPU-only machine never tries (and never warns about) CUDA, while
 * a GPU machine without the CUDA provider libraries still says why CUDA did not load. An explicit list (`--ep cuda`)
 * is always tried as given, and each provider that fails is reported with its reason.
 * @example defaultExecutionProviders() // ['cpu'] on a CPU-only VM; ['cuda', 'cpu'] on a GPU machine
 */
export function defaultExecutionProviders(): readonly string[] {
  cachedDefault ??= detectNvidiaGpu().present ? GPU_EXECUTION_PROVIDERS : CPU_EXECUTION_PROVIDERS;
  return cachedDefault;
}

/** Normalizes user spellings (`CUDA`, `CUDAExecutionProvider`, `trt`) to ORT-node names. */
export function normalizeExecutionProvider(name: string): string {
  const n = name.trim().toLowerCase().replace(/executionprovider$/, '');
  if (n === 'trt') return 'tensorrt';
  return n;
}

/** Directory holding `libonnxruntime.so.1` and, when installed, the provider libraries. */
export function ortBinaryDir(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    const entry = require.resolve('onnxruntime-node'); // .../onnxruntime-node/dist/index.js
    const dir = join(dirname(entry), '..', 'bin', 'napi-v6', process.platform, process.arch);
    return existsSync(dir) ? dir : undefined;
  } catch {
    return undefined;
  }
}

function libName(base: string): string {
  if (process.platform === 'win32') return `${base}.dll`;
  if (process.platform === 'darwin') return `lib${base}.dylib`;
  return `lib${base}.so`;
}

/** Tries to load a shared library; returns undefined when it loads, else the loader's message. */
function probeLibrary(path: string, global = false): string | undefined {
  try {
    // The shared provider library is loaded RTLD_GLOBAL (as ONNX Runtime does) so that the CUDA/TensorRT provider
    // resolves its symbols (e.g. Provider_GetHost) from it; otherwise the probe fails where ONNX Runtime succeeds.
    process.dlopen({ exports: {} }, path, osConstants.dlopen.RTLD_LAZY | (global ? osConstants.dlopen.RTLD_GLOBAL : 0));
    return undefined;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    // A plain shared library is not a Node addon: loading it succeeds and Node then says so.
    if (/did not self-register|Module did not/i.test(msg)) return undefined;
    return msg;
  }
}

/**
 * Turns a dynamic-loader message into "libX.so.N not found" when that is what it says.
 * @example summarizeLoaderMessage('/x/libonnxruntime_providers_cuda.so: libcublasLt.so.13: cannot open shared object file: No such file or directory')
 *   // → 'libcublasLt.so.13 not found'
 */
export function summarizeLoaderMessage(msg: string): string {
  const m = /([^\s/:]+\.(?:so(?:\.[\d.]+)?|dll|dylib)): cannot open shared object file/.exec(msg);
  if (m) return `${m[1]} not found`;
  const first = msg.split('\n')[0] ?? msg;
  return first.trim();
}

/**
 * Explains why an execution provider failed, as "<ep>: <reason>".
 * @param ep normalized provider name
 * @param ortMessage the error onnxruntime-node threw while creating the session with this provider
 * @example "cuda: libonnxruntime_providers_shared.so not found in .../onnxruntime-node/bin/napi-v6/linux/x64"
 * @example "cuda: libcublasLt.so.13 not found"
 */
export function explainExecutionProviderFailure(ep: string, ortMessage: string): string {
  const firstLine = (ortMessage.split('\n')[0] ?? ortMessage).trim();
  if ((ep === 'cuda' || ep === 'tensorrt') && /failed to load shared library/i.test(ortMessage)) {
    const why = probeExecutionProviderLibraries(ep);
    if (why) return why;
  }
  if (/backend not found/i.test(ortMessage)) return `${ep}: not an execution provider this onnxruntime-node build knows`;
  return `${ep}: ${firstLine}`;
}

/**
 * Loads the provider libraries of a device execution provider (`cuda`, `tensorrt`) the way ONNX Runtime does and
 * says why they cannot load, as "<ep>: <reason>" — the same text an engine records when it falls back and
 * `osprey doctor` prints. Returns undefined when they load.
 * @example "cuda: libonnxruntime_providers_cuda.so not found in …/bin/napi-v6/linux/x64 (run `osprey gpu install`)"
 * @example "cuda: libcublasLt.so.13 not found"
 */
export function probeExecutionProviderLibraries(ep: string): string | undefined {
  const dir = ortBinaryDir();
  if (!dir) return `${ep}: onnxruntime-node's native folder for ${process.platform}/${process.arch} is missing`;
  for (const base of ['onnxruntime_providers_shared', `onnxruntime_providers_${ep}`]) {
    const file = join(dir, libName(base));
    if (!existsSync(file)) return `${ep}: ${libName(base)} not found in ${dir} (run \`osprey gpu install\`)`;
    const loaderMsg = probeLibrary(file, base === 'onnxruntime_providers_shared');
    if (loaderMsg) return `${ep}: ${summarizeLoaderMessage(loaderMsg)}`;
  }
  return undefined;
}
