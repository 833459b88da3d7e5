/**
 * Why each execution provider can or cannot load here — the text `osprey doctor` prints and the reason an engine
 * records when it falls back (e.g. "cuda: libcublasLt.so.13, libcudnn.so.9 not found").
 */
import { existsSync } from 'node:fs';
import { explainExecutionProviderFailure, probeExecutionProviderLibraries } from '../engine/execution-providers.js';
import { DataType, encodeOnnxModel, makeNode, makeValueInfo, type OnnxModel } from '../onnx/index.js';
import { onnxRuntimeVersion } from '../version.js';
import { formatGpuEngineReport, gpuEngineReport, type GpuEngineReport } from './cuda-libraries.js';
import { providerLibraryPath } from './providers.js';
import { readGpuInventory, type GpuInventory } from './inventory.js';
import { findSharedLibrary, listGpus, missingSharedLibraries, type GpuInfo } from './system.js';

export type ExecutionProviderName = 'cpu' | 'cuda' | 'tensorrt';

export interface ExecutionProviderStatus {
  executionProvider: ExecutionProviderName;
  /** True when nothing this check can see stops the provider from loading. */
  loadable: boolean;
  /** One line: why it cannot load, or what it will use. */
  reason: string;
  /** Provider library path, when there is one. */
  library?: string;
  /** Shared libraries the provider needs that the dynamic linker cannot find. */
  missingLibraries: string[];
}

/**
 * Checks one execution provider without creating a session: provider library present (`osprey gpu install`),
 * its shared-library dependencies resolvable (ldd), an NVIDIA GPU visible (nvidia-smi), and for TensorRT libnvinfer.
 */
export function diagnoseExecutionProvider(ep: ExecutionProviderName, gpus: GpuInfo[] = listGpus()): ExecutionProviderStatus {
  if (ep === 'cpu') return { executionProvider: 'cpu', loadable: true, reason: 'cpu: built into onnxruntime-node', missingLibraries: [] };
  const library = providerLibraryPath(ep);
  // Same probe and text as the engine's fallback reason; ldd adds every missing dependency, not just the first.
  const why = probeExecutionProviderLibraries(ep);
  const missing = existsSync(library) ? (missingSharedLibraries(library) ?? []) : [];
  if (ep === 'tensorrt' && existsSync(library) && !missing.includes('libnvinfer.so.10') && !findSharedLibrary('libnvinfer.so.10')) missing.push('libnvinfer.so.10');
  if (why || missing.length > 0) {
    const all = missing.length > 1 ? ` (ldd: ${missing.join(', ')} not found)` : '';
    return { executionProvider: ep, loadable: false, reason: `${why ?? `${ep}: ${missing.join(', ')} not found`}${all}`, library, missingLibraries: missing };
  }
  if (gpus.length === 0) {
    return { executionProvider: ep, loadable: false, reason: `${ep}: no NVIDIA GPU visible (nvidia-smi lists none)`, library, missingLibraries: [] };
  }
  return {
    executionProvider: ep,
    loadable: true,
    reason: `${ep}: ready on ${gpus.map((g) => `${g.name} (cc ${g.computeCapability})`).join(', ')}`,
    library,
    missingLibraries: [],
  };
}

export interface DoctorReport {
  onnxRuntimeVersion: string;
  platform: string;
  /** Every GPU of the host by CUDA device ordinal (the ids `--gpus` and `instanceGroup[].gpus` take). */
  gpus: GpuInfo[];
  /** Where {@link gpus} came from (`nvidia-smi`, `cuda-driver`, `none`) and why it is empty when it is. */
  gpuSource?: GpuInventory['source'];
  gpuNote?: string;
  executionProviders: ExecutionProviderStatus[];
  /** Osprey's own GPU engine: CUDA libraries found, versions, devices (see gpu/cuda-libraries.ts). */
  gpuEngine?: GpuEngineReport;
}

/** A one-node ONNX model (Identity on a float [1]) to open a session with, without any model file. */
function probeModelBytes(): Uint8Array {
  return encodeOnnxModel({
    ir_version: 8,
    opset_import: [{ domain: '', version: 13 }],
    producer_name: 'osprey-doctor',
    metadata_props: [],
    graph: {
      name: 'probe',
      node: [makeNode('Identity', ['x'], ['y'], {}, 'identity')],
      initializer: [],
      input: [makeValueInfo('x', DataType.FLOAT, [1])],
      output: [makeValueInfo('y', DataType.FLOAT, [1])],
      value_info: [],
    },
  } as OnnxModel);
}

/**
 * Opens a real ONNX Runtime session with only `ep` and runs it once: undefined when it works, else the reason in the
 * words an engine records when it falls back ({@link explainExecutionProviderFailure}).
 */
export async function probeExecutionProviderSession(ep: ExecutionProviderName): Promise<string | undefined> {
  const mod = (await import('onnxruntime-node')) as typeof import('onnxruntime-node') & { default?: typeof import('onnxruntime-node') };
  const ort = mod.InferenceSession ? mod : mod.default!;
  ort.env.logLevel = 'fatal'; // the failure is reported by us, in one line, not by ORT's logger
  try {
    // logSeverityLevel 4 (fatal only): the failure is reported by us, in one line, not by ORT's logger.
    const session = await ort.InferenceSession.create(probeModelBytes(), { executionProviders: [ep], logSeverityLevel: 4 });
    try {
      await session.run({ x: new ort.Tensor('float32', new Float32Array([1]), [1]) });
    } finally {
      await session.release();
    }
    return undefined;
  } catch (err) {
    return explainExecutionProviderFailure(ep, err instanceof Error ? err.message : String(err));
  }
}

/**
 * Everything `osprey doctor` reports. Each provider is tried for real (a session on a one-node model), so the verdict
 * is ONNX Runtime's own; ldd adds every missing library where the loader names only the first.
 */
export async function doctor(): Promise<DoctorReport> {
  const inventory = await readGpuInventory();
  const gpus = inventory.gpus;
  const executionProviders: ExecutionProviderStatus[] = [];
  for (const ep of ['cuda', 'tensorrt', 'cpu'] as const) {
    const failure = await probeExecutionProviderSession(ep);
    if (failure === undefined) {
      executionProviders.push({
        executionProvider: ep,
        loadable: true,
        reason:
          ep === 'cpu'
            ? 'cpu: built into onnxruntime-node'
            : `${ep}: session created${gpus.length ? ` on ${gpus.map((g) => `${g.name} (cc ${g.computeCapability})`).join(', ')}` : ''}`,
        missingLibraries: [],
        ...(ep !== 'cpu' ? { library: providerLibraryPath(ep) } : {}),
      });
      continue;
    }
    const stat = diagnoseExecutionProvider(ep, gpus);
    const extra = stat.missingLibraries.length > 1 ? ` (ldd: ${stat.missingLibraries.join(', ')} not found)` : '';
    executionProviders.push({ ...stat, loadable: false, reason: `${failure}${extra}` });
  }
  const gpuEngine = await gpuEngineReport();
  return { onnxRuntimeVersion: onnxRuntimeVersion(), platform: `${process.platform}-${process.arch}`, gpus, gpuSource: inventory.source, gpuNote: inventory.note, executionProviders, gpuEngine };
}

/** The report as text (what `osprey doctor` prints and what startup logs on fallback). */
export function formatDoctorReport(r: DoctorReport): string {
  const lines = [`ONNX Runtime ${r.onnxRuntimeVersion} (${r.platform})`];
  if (r.gpus.length === 0) lines.push(`GPUs: none (${r.gpuNote ?? 'nvidia-smi absent or lists no GPU'})`);
  else lines.push(`GPUs: ${r.gpus.length}, from ${r.gpuSource ?? 'nvidia-smi'} (ids for --gpus and instanceGroup[].gpus: ${r.gpus.map((g) => g.index).join(', ')})`);
  for (const g of r.gpus) {
    lines.push(
      `GPU ${g.index}: ${g.name}, compute capability ${g.computeCapability}, driver ${g.driverVersion}, memory ${(g.memoryUsedBytes / 2 ** 30).toFixed(1)} / ${(g.memoryTotalBytes / 2 ** 30).toFixed(1)} GiB`,
    );
  }
  lines.push('Execution providers:');
  for (const ep of r.executionProviders) lines.push(`  ${ep.loadable ? 'ok  ' : 'no  '} ${ep.reason}`);
  if (r.gpuEngine) lines.push(formatGpuEngineReport(r.gpuEngine));
  return lines.join('\n');
}
