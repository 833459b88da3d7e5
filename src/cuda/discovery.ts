/**
 * Finds the NVIDIA libraries Osprey's GPU engine calls (the CUDA driver API, NVRTC, cuDNN 9, cuBLASLt) where users
 * keep them, in this order (first hit wins, every place tried is recorded):
 *
 * 1. `OSPREY_CUDA_LIBRARY_PATH` (colon-separated folders; Osprey's own override),
 * 2. `LD_LIBRARY_PATH`,
 * 3. `CUDA_HOME` / `CUDA_PATH` (`lib64`, `lib`, `targets/x86_64-linux/lib`),
 * 4. the `nvidia/<package>/lib` folders of pip wheels in Python's site-packages (`nvidia-cudnn-cu13`,
 *    `nvidia-cuda-nvrtc`, PyTorch's own wheels: `site-packages/nvidia/{cudnn,cu13,cuda_nvrtc,cublas}/lib`),
 * 5. the dynamic linker cache (`ldconfig -p`),
 * 6. the usual system folders (`/usr/local/cuda/lib64`, `/usr/lib/x86_64-linux-gnu`, `/usr/local/nvidia/lib64`, …).
 *
 * Pure over a {@link DiscoveryHost} (environment, file system, `ldconfig`, site-packages), so the search order is
 * tested with temp folders on machines without a GPU. {@link systemDiscoveryHost} is the real machine.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** A library Osprey's GPU engine loads. */
export type CudaLibraryId = 'cuda' | 'nvrtc' | 'cudnn' | 'cublasLt';

export interface CudaLibrarySpec {
  id: CudaLibraryId;
  /** What it is, for reports. */
  title: string;
  /** Shared-object names tried in order (newest first), e.g. `libnvrtc.so.13`. */
  sonames: readonly string[];
  /** False: the engine works without it (cuBLASLt). */
  required: boolean;
  /** How a user gets it when it is missing. */
  fix: string;
}

/** The libraries, newest supported major version first. */
export const CUDA_LIBRARIES: readonly CudaLibrarySpec[] = [
  {
    id: 'cuda',
    title: 'CUDA driver API',
    sonames: ['libcuda.so.1'],
    required: true,
    fix: 'install the NVIDIA driver (it ships libcuda.so.1); in a container, run it with the NVIDIA container toolkit (--gpus all)',
  },
  {
    id: 'nvrtc',
    title: 'NVRTC (runtime CUDA compiler)',
    sonames: ['libnvrtc.so.13', 'libnvrtc.so.12'],
    required: true,
    fix: 'pip install nvidia-cuda-nvrtc (CUDA 13) or install the CUDA toolkit; or set OSPREY_CUDA_LIBRARY_PATH to the folder holding libnvrtc.so.13',
  },
  {
    id: 'cudnn',
    title: 'cuDNN 9',
    sonames: ['libcudnn.so.9'],
    required: true,
    fix: 'pip install nvidia-cudnn-cu13 (or apt install libcudnn9-cuda-13); or set OSPREY_CUDA_LIBRARY_PATH to the folder holding libcudnn.so.9',
  },
  {
    id: 'cublasLt',
    title: 'cuBLASLt (optional)',
    sonames: ['libcublasLt.so.13', 'libcublasLt.so.12'],
    required: false,
    fix: 'pip install nvidia-cublas (optional: the engine runs without it)',
  },
];

/** Where a library was found. */
export type LibrarySource = 'OSPREY_CUDA_LIBRARY_PATH' | 'LD_LIBRARY_PATH' | 'CUDA_HOME' | 'CUDA_PATH' | 'pip' | 'ldconfig' | 'system';

export interface FoundLibrary {
  id: CudaLibraryId;
  soname: string;
  /** Absolute path of the file that will be loaded. */
  path: string;
  /** The file it resolves to (symbolic links followed). */
  realPath: string;
  source: LibrarySource;
  /** Version from the real file name (`libcudnn.so.9.19.0` → `9.19.0`), when the name carries one. */
  fileVersion?: string;
}

export interface LibrarySearch {
  spec: CudaLibrarySpec;
  found?: FoundLibrary;
  /** Every folder looked in, in order, with the source that named it. */
  searched: Array<{ dir: string; source: LibrarySource }>;
}

/** What discovery reads from the machine. */
export interface DiscoveryHost {
  env: Readonly<Record<string, string | undefined>>;
  /** True when `path` is an existing file (links followed). */
  isFile(path: string): boolean;
  /** Folder names in `dir` ([] when it does not exist). */
  listDirs(dir: string): string[];
  realpath(path: string): string;
  /** `ldconfig -p` output, or null when ldconfig is not there. */
  ldconfig(): string | null;
  /** Python site-packages folders (from `python3 -m site` and the usual places). */
  sitePackages(): string[];
}

const SYSTEM_DIRS = [
  '/usr/local/cuda/lib64',
  '/usr/local/cuda/targets/x86_64-linux/lib',
  '/usr/local/nvidia/lib64',
  '/usr/lib/x86_64-linux-gnu',
  '/usr/lib64',
  '/usr/lib/wsl/lib',
];

function splitPath(v: string | undefined): string[] {
  return (v ?? '').split(':').map((s) => s.trim()).filter(Boolean);
}

/** The version a real file name carries after the soname, e.g. (`libcudnn.so.9.19.0`, `libcudnn.so.9`) → `9.19.0`. */
export function versionFromFileName(realPath: string, soname: string): string | undefined {
  const base = realPath.slice(realPath.lastIndexOf('/') + 1);
  const stem = soname.replace(/\.so\.\d+$/, '.so.');
  if (!base.startsWith(stem)) return undefined;
  const v = base.slice(stem.length);
  return /^\d+(\.\d+)+$/.test(v) ? v : undefined;
}

/** Parses `ldconfig -p` lines (`\tlibcudnn.so.9 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcudnn.so.9`). */
export function parseLdconfig(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const wide = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*(\S+)\s+\(([^)]*)\)\s*=>\s*(\S+)\s*$/.exec(line);
    if (!m) continue;
    // 64-bit entries are tagged `x86-64` (or `AArch64`); a plain `libc6` entry is a 32-bit library on x86-64
    const is64 = /x86-64|AArch64|64bit/.test(m[2]!);
    if (is64 && !wide.has(m[1]!)) wide.set(m[1]!, m[3]!);
    else if (!is64 && !out.has(m[1]!)) out.set(m[1]!, m[3]!);
  }
  for (const [k, v] of wide) out.set(k, v);
  return out;
}

/** The folders to look in for one library, in search order. */
export function searchDirs(host: DiscoveryHost): Array<{ dir: string; source: LibrarySource }> {
  const dirs: Array<{ dir: string; source: LibrarySource }> = [];
  for (const d of splitPath(host.env.OSPREY_CUDA_LIBRARY_PATH)) dirs.push({ dir: d, source: 'OSPREY_CUDA_LIBRARY_PATH' });
  for (const d of splitPath(host.env.LD_LIBRARY_PATH)) dirs.push({ dir: d, source: 'LD_LIBRARY_PATH' });
  for (const key of ['CUDA_HOME', 'CUDA_PATH'] as const) {
    const root = host.env[key];
    if (!root) continue;
    for (const sub of ['lib64', 'lib', 'targets/x86_64-linux/lib']) dirs.push({ dir: join(root, sub), source: key });
  }
  for (const sp of host.sitePackages()) {
    const nv = join(sp, 'nvidia');
    for (const pkg of host.listDirs(nv).sort()) dirs.push({ dir: join(nv, pkg, 'lib'), source: 'pip' });
  }
  return dirs;
}

/**
 * Finds every library of {@link CUDA_LIBRARIES} (or `specs`).
 * @example findCudaLibraries(systemDiscoveryHost()).find((s) => s.spec.id === 'cudnn')?.found?.path
 *   // '/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib/libcudnn.so.9'
 */
export function findCudaLibraries(host: DiscoveryHost, specs: readonly CudaLibrarySpec[] = CUDA_LIBRARIES): LibrarySearch[] {
  const dirs = searchDirs(host);
  let ld: Map<string, string> | undefined;
  const ldcache = () => (ld ??= parseLdconfig(host.ldconfig() ?? ''));
  return specs.map((spec) => {
    const searched: LibrarySearch['searched'] = [];
    const hit = (path: string, soname: string, source: LibrarySource): FoundLibrary => {
      let realPath = path;
      try {
        realPath = host.realpath(path);
      } catch {
        /* keep the path */
      }
      const fileVersion = versionFromFileName(realPath, soname);
      return { id: spec.id, soname, path, realPath, source, ...(fileVersion ? { fileVersion } : {}) };
    };
    for (const soname of spec.sonames) {
      for (const { dir, source } of dirs) {
        if (soname === spec.sonames[0]) searched.push({ dir, source });
        const p = join(dir, soname);
        if (host.isFile(p)) return { spec, found: hit(p, soname, source), searched };
      }
    }
    for (const soname of spec.sonames) {
      const p = ldcache().get(soname);
      if (p && host.isFile(p)) return { spec, found: hit(p, soname, 'ldconfig'), searched: [...searched, { dir: p.slice(0, p.lastIndexOf('/')), source: 'ldconfig' }] };
    }
    for (const soname of spec.sonames) {
      for (const dir of SYSTEM_DIRS) {
        if (soname === spec.sonames[0]) searched.push({ dir, source: 'system' });
        const p = join(dir, soname);
        if (host.isFile(p)) return { spec, found: hit(p, soname, 'system'), searched };
      }
    }
    return { spec, searched };
  });
}

/** Site-packages folders: `python3 -m site`'s list, the active virtualenv/conda, and the usual system places. */
export function defaultSitePackages(env: Readonly<Record<string, string | undefined>> = process.env, run = true): string[] {
  const out = new Set<string>();
  if (run) {
    const r = spawnSync('python3', ['-c', 'import site,sys;print("\\n".join(site.getsitepackages()+[site.getusersitepackages()]))'], {
      encoding: 'utf8',
      timeout: 5000,
    });
    if (!r.error && r.status === 0) for (const l of r.stdout.split('\n')) if (l.trim()) out.add(l.trim());
  }
  const roots = [env.VIRTUAL_ENV, env.CONDA_PREFIX, '/usr', '/usr/local', join(homedir(), '.local'), '/opt/conda'].filter((r): r is string => !!r);
  for (const root of roots) {
    const lib = join(root, 'lib');
    let names: string[] = [];
    try {
      names = readdirSync(lib).filter((n) => /^python3(\.\d+)?$/.test(n));
    } catch {
      continue;
    }
    for (const n of names) for (const sub of ['site-packages', 'dist-packages']) if (existsSync(join(lib, n, sub))) out.add(join(lib, n, sub));
  }
  return [...out];
}

/** The real machine: process.env, the file system, `ldconfig -p`, python3's site-packages. */
export function systemDiscoveryHost(env: Readonly<Record<string, string | undefined>> = process.env): DiscoveryHost {
  let sites: string[] | undefined;
  return {
    env,
    isFile(p) {
      try {
        return statSync(p).isFile();
      } catch {
        return false;
      }
    },
    listDirs(dir) {
      try {
        return readdirSync(dir, { withFileTypes: true })
          .filter((d) => d.isDirectory() || d.isSymbolicLink())
          .map((d) => d.name);
      } catch {
        return [];
      }
    },
    realpath: (p) => realpathSync(p),
    ldconfig() {
      for (const cmd of ['ldconfig', '/sbin/ldconfig']) {
        const r = spawnSync(cmd, ['-p'], { encoding: 'utf8', timeout: 10_000 });
        if (!r.error && r.status === 0) return r.stdout;
      }
      return null;
    },
    sitePackages: () => (sites ??= defaultSitePackages(env)),
  };
}
