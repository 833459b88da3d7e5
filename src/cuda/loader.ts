/**
 * Loads the libraries {@link findCudaLibraries} found, with koffi, once per thread.
 *
 * cuDNN 9 is split into sub-libraries (`libcudnn_graph.so.9`, `libcudnn_engines_*.so.9`, `libcudnn_ops.so.9`,
 * `libcudnn_cnn.so.9`, …) that `libcudnn.so.9` opens by name at run time. The dynamic linker only looks in
 * `LD_LIBRARY_PATH` as it was when the process started, so a pip wheel's folder would not be searched; loading each
 * sub-library by its full path first makes the later by-name opens find the already-loaded copy (glibc matches
 * loaded objects by soname). NVRTC is loaded before cuDNN for the same reason (its runtime-fusion engines compile
 * with it), and NVRTC's own `libnvrtc-builtins.so.<major>.<minor>` before NVRTC compiles.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import koffi, { type LibraryHandle } from 'koffi';

import { OspreyError } from '../core/errors.js';
import { CUDA_LIBRARIES, findCudaLibraries, systemDiscoveryHost, type CudaLibraryId, type DiscoveryHost, type LibrarySearch } from './discovery.js';

/** cuDNN 9 sub-libraries in dependency order (graph first). */
export const CUDNN_SUBLIBRARIES = [
  'libcudnn_graph.so.9',
  'libcudnn_ops.so.9',
  'libcudnn_heuristic.so.9',
  'libcudnn_engines_precompiled.so.9',
  'libcudnn_engines_runtime_compiled.so.9',
  'libcudnn_engines_tensor_ir.so.9',
  'libcudnn_cnn.so.9',
  'libcudnn_adv.so.9',
] as const;

export interface LoadedLibrary {
  id: CudaLibraryId;
  path: string;
  lib: LibraryHandle;
}

let searches: LibrarySearch[] | undefined;
const loaded = new Map<CudaLibraryId, LoadedLibrary>();

/** The discovery result used by {@link loadCudaLibrary} (computed once; pass a host to recompute). */
export function cudaLibrarySearch(host?: DiscoveryHost): LibrarySearch[] {
  if (host) return findCudaLibraries(host);
  return (searches ??= findCudaLibraries(systemDiscoveryHost()));
}

/** The fix text for a missing library, from {@link CUDA_LIBRARIES}. */
export function missingLibraryMessage(id: CudaLibraryId, search?: LibrarySearch): string {
  const spec = CUDA_LIBRARIES.find((s) => s.id === id)!;
  const where = search ? ` (looked in ${search.searched.length} folders: ${[...new Set(search.searched.map((s) => s.source))].join(', ')})` : '';
  return `${spec.sonames.join(' or ')} not found${where}: ${spec.fix}`;
}

/**
 * Loads a library (and, for cuDNN, its sub-libraries and NVRTC first), from `searches` (default: this machine's
 * {@link cudaLibrarySearch}). Once loaded, a library stays loaded for the thread.
 * @throws OspreyError `OSPREY_ERR_CUDA_LIBRARY` when it is not found or the loader refuses it.
 */
export function loadCudaLibrary(id: CudaLibraryId, searches?: readonly LibrarySearch[]): LoadedLibrary {
  const have = loaded.get(id);
  if (have) return have;
  const search = (searches ?? cudaLibrarySearch()).find((s) => s.spec.id === id);
  if (!search?.found) throw new OspreyError('OSPREY_ERR_CUDA_LIBRARY', missingLibraryMessage(id, search), { library: id });
  const path = search.found.path;
  if (id === 'cudnn') {
    try {
      loadCudaLibrary('nvrtc', searches);
    } catch {
      /* cuDNN still runs its precompiled engines without NVRTC */
    }
    const dir = dirname(path);
    for (const sub of CUDNN_SUBLIBRARIES) {
      const p = join(dir, sub);
      if (existsSync(p)) {
        try {
          koffi.load(p);
        } catch (err) {
          throw new OspreyError('OSPREY_ERR_CUDA_LIBRARY', `${p}: ${(err as Error).message}`, { library: id, path: p });
        }
      }
    }
  }
  if (id === 'nvrtc') {
    // NVRTC opens libnvrtc-builtins.so.<major>.<minor> by name when it compiles
    const dir = dirname(path);
    let names: string[] = [];
    try {
      names = readdirSync(dir).filter((n) => /^libnvrtc-builtins\.so\.\d+\.\d+$/.test(n));
    } catch {
      /* none */
    }
    for (const n of names) {
      try {
        koffi.load(join(dir, n));
      } catch {
        /* NVRTC reports it when it compiles */
      }
    }
  }
  let lib: LibraryHandle;
  try {
    lib = koffi.load(path);
  } catch (err) {
    throw new OspreyError('OSPREY_ERR_CUDA_LIBRARY', `${path}: ${(err as Error).message}`, { library: id, path });
  }
  const l = { id, path, lib };
  loaded.set(id, l);
  return l;
}
