/**
 * Execution-provider names and the reasons a provider could not be loaded.
 *
 * onnxruntime-node only says "OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library" when
 * the CUDA EP cannot load; the real reason (which .so is missing) goes to ORT's log. To report it, we probe the
 * provider libraries next to `libonnxruntime.so.1` with the same dynamic loader (`process.dlopen`) and read the
 * loader's own message, e.g. "libcublasLt.so.13: cannot open shared object file".
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { dirname, join } from 'node:path';

/** Execution providers Osprey knows how to ask onnxruntime-node for. */
export const KNOWN_EXECUTION_PROVIDERS = ['cuda', 'tensorrt', 'cpu', 'webgpu'] as const;

/** Default order: CUDA when its libraries load, else CPU. */
export const DEFAULT_EXECUTION_PROVIDERS: readonly string[] = ['cuda', 'cpu'];

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
