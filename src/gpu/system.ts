/**
 * What this machine has for GPU inference: NVIDIA GPUs (from `nvidia-smi`), shared libraries (from `ldd` /
 * `ldconfig -p`). Everything here reads the real system; nothing is faked when a tool is absent.
 */
import { spawnSync } from 'node:child_process';

export interface GpuInfo {
  index: number;
  name: string;
  /** Compute capability, e.g. "9.0" for an H100. */
  computeCapability: string;
  driverVersion: string;
  memoryTotalBytes: number;
  memoryUsedBytes: number;
}

/** Runs a command; returns stdout, or null when the command is missing or fails. */
export function tryRun(cmd: string, args: string[], timeoutMs = 10_000): string | null {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs });
  if (r.error || r.status !== 0) return null;
  return r.stdout;
}

/**
 * Lists NVIDIA GPUs with `nvidia-smi --query-gpu`. Returns [] when nvidia-smi is absent or finds no GPU.
 */
export function listGpus(): GpuInfo[] {
  const out = tryRun('nvidia-smi', ['--query-gpu=index,name,compute_cap,driver_version,memory.total,memory.used', '--format=csv,noheader,nounits']);
  if (!out) return [];
  return out
    .trim()
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((line) => {
      const [index, name, cc, driver, total, used] = line.split(',').map((s) => s.trim());
      return {
        index: Number(index),
        name: name ?? 'unknown',
        computeCapability: cc ?? 'unknown',
        driverVersion: driver ?? 'unknown',
        memoryTotalBytes: Number(total) * 1024 * 1024,
        memoryUsedBytes: Number(used) * 1024 * 1024,
      };
    });
}

/** Shared libraries `ldd` reports as "not found" for a library file (e.g. ["libcublasLt.so.13", "libcudnn.so.9"]). */
export function missingSharedLibraries(libraryPath: string): string[] | null {
  const out = tryRun('ldd', [libraryPath]);
  if (out === null) return null;
  const missing = new Set<string>();
  for (const line of out.split('\n')) {
    const m = /^\s*(\S+)\s*=>\s*not found/.exec(line);
    if (m) missing.add(m[1]!);
  }
  return [...missing];
}

/** Finds a library in the dynamic linker cache (`ldconfig -p`), e.g. findSharedLibrary('libnvinfer.so.10'). */
export function findSharedLibrary(name: string): string | null {
  const out = tryRun('ldconfig', ['-p']);
  if (!out) return null;
  for (const line of out.split('\n')) {
    const m = /^\s*(\S+)\s.*=>\s*(\S+)$/.exec(line);
    if (m && m[1] === name) return m[2]!;
  }
  return null;
}
