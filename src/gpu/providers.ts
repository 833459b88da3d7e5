/**
 * The execution-provider libraries of onnxruntime-node: where they go, which npm package has them for which ONNX
 * Runtime release, and how to put them into place (`osprey gpu install`).
 *
 * onnxruntime-node ships the CPU library only; its install script downloads the CUDA/TensorRT providers from a feed
 * many sites cannot reach. The npm registry has the same providers, built for ONNX Runtime 1.29.0 and CUDA 13, in the
 * package `com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9` (`Plugins/Linux/x64/`). Placed next to
 * `libonnxruntime.so.1`, ONNX Runtime loads them (seen on an H100 on 2026-11-21, see ../../bench/results/).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { OspreyError } from '../core/errors.js';
import { sha256FileSync } from '../util/sha256.js';
import { onnxRuntimeVersion } from '../version.js';

const require = createRequire(import.meta.url);

export interface ProviderPackage {
  /** npm package spec. */
  spec: string;
  /** Folder inside the package tarball holding the libraries. */
  folder: string;
  /** Library file → sha256 (hex) as published in that package version. */
  files: Readonly<Record<string, string>>;
}

/** Provider packages by onnxruntime-node version. sha256 values read from the published tarball on 2026-11-21. */
export const PROVIDER_PACKAGES: Readonly<Record<string, ProviderPackage>> = {
  '1.29.0': {
    spec: 'com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9',
    folder: 'package/Plugins/Linux/x64',
    files: {
      'libonnxruntime_providers_shared.so': 'c6a12593396095f5670160e284c35d1700b7708cf3037b7042e2a5200ccae772',
      'libonnxruntime_providers_cuda.so': '56cf3254b118ad837ccc4ed8f6d1b23504bbf7ef91b34cbc0b289cb7f10b3037',
      'libonnxruntime_providers_tensorrt.so': 'ef6071798a339038ad66c428fb1a809cf8e499bffc3b6870e4e8bc4f4c6a6320',
    },
  },
};

/** The folder holding onnxruntime-node's native binding and `libonnxruntime.so.1` for this platform. */
export function onnxRuntimeBinaryDir(): string {
  const pkg = dirname(require.resolve('onnxruntime-node/package.json'));
  return join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
}

/** Provider library file for an execution provider name, e.g. `cuda` → `libonnxruntime_providers_cuda.so`. */
export function providerLibraryPath(executionProvider: 'cuda' | 'tensorrt'): string {
  return join(onnxRuntimeBinaryDir(), `libonnxruntime_providers_${executionProvider}.so`);
}

/** sha256 (hex) of a provider library (synchronous). */
export const sha256File = sha256FileSync;

export interface InstallReport {
  onnxRuntimeVersion: string;
  package: string;
  destination: string;
  files: Array<{ name: string; sha256: string; bytes: number; action: 'installed' | 'already-present' }>;
}

/**
 * Installs the CUDA and TensorRT execution-provider libraries for the installed onnxruntime-node.
 *
 * @param options.from a package tarball (.tgz) already fetched (e.g. by `npm pack` on a machine with the registry);
 *   without it, `npm pack` fetches the package from the npm registry.
 * @param options.force reinstall even when the files are present with the right sha256.
 * @throws OspreyError `OSPREY_ERR_GPU_INSTALL` naming the step that failed: unknown ONNX Runtime version, npm pack
 *   failure, a missing file, a sha256 mismatch, or a library built for another ONNX Runtime release.
 */
export function installGpuProviders(options: { from?: string; force?: boolean; log?: (line: string) => void } = {}): InstallReport {
  const log = options.log ?? (() => {});
  const ortVersion = onnxRuntimeVersion();
  const pkg = PROVIDER_PACKAGES[ortVersion];
  if (!pkg) {
    throw new OspreyError(
      'OSPREY_ERR_GPU_INSTALL',
      `no execution-provider package is known for onnxruntime-node ${ortVersion} (known: ${Object.keys(PROVIDER_PACKAGES).join(', ')}); pin onnxruntime-node to one of those`,
    );
  }
  const dest = onnxRuntimeBinaryDir();
  if (!existsSync(join(dest, 'libonnxruntime.so.1'))) {
    throw new OspreyError('OSPREY_ERR_GPU_INSTALL', `libonnxruntime.so.1 is not in ${dest}: is onnxruntime-node installed for ${process.platform}/${process.arch}?`);
  }
  const present = Object.entries(pkg.files).every(([name, sum]) => existsSync(join(dest, name)) && sha256File(join(dest, name)) === sum);
  if (present && !options.force) {
    log(`execution-provider libraries for ONNX Runtime ${ortVersion} already installed in ${dest}`);
    return {
      onnxRuntimeVersion: ortVersion,
      package: pkg.spec,
      destination: dest,
      files: Object.entries(pkg.files).map(([name, sha256]) => ({ name, sha256, bytes: statSync(join(dest, name)).size, action: 'already-present' as const })),
    };
  }
  const work = mkdtempSync(join(tmpdir(), 'osprey-gpu-'));
  try {
    let tarball = options.from;
    if (!tarball) {
      log(`fetching ${pkg.spec} from the npm registry (npm pack, ~180 MB)...`);
      const r = spawnSync('npm', ['pack', pkg.spec, '--pack-destination', work, '--silent'], { encoding: 'utf8' });
      if (r.error || r.status !== 0) {
        throw new OspreyError('OSPREY_ERR_GPU_INSTALL', `npm pack ${pkg.spec} failed: ${(r.stderr || String(r.error ?? '')).trim().split('\n').pop()}`);
      }
      const tgz = readdirSync(work).find((f) => f.endsWith('.tgz'));
      if (!tgz) throw new OspreyError('OSPREY_ERR_GPU_INSTALL', `npm pack ${pkg.spec} produced no tarball`);
      tarball = join(work, tgz);
    } else if (!existsSync(tarball)) {
      throw new OspreyError('OSPREY_ERR_GPU_INSTALL', `--from ${tarball}: file not found`);
    }
    const x = spawnSync('tar', ['xzf', tarball, '-C', work, pkg.folder], { encoding: 'utf8' });
    if (x.status !== 0) throw new OspreyError('OSPREY_ERR_GPU_INSTALL', `cannot extract ${pkg.folder} from ${tarball}: ${x.stderr.trim()}`);
    // Verify every file before copying any, so a bad package never leaves a half-installed set.
    for (const [name, expected] of Object.entries(pkg.files)) {
      const src = join(work, pkg.folder, name);
      if (!existsSync(src)) throw new OspreyError('OSPREY_ERR_GPU_INSTALL', `${pkg.spec} has no ${pkg.folder}/${name}`);
      const sum = sha256File(src);
      if (sum !== expected) {
        throw new OspreyError('OSPREY_ERR_GPU_INSTALL', `${name}: sha256 ${sum} does not match the published ${expected}; refusing to install`, { file: name });
      }
      if (name.includes('_cuda') && !readFileSync(src).includes(Buffer.from(`\0${ortVersion}\0`))) {
        throw new OspreyError('OSPREY_ERR_GPU_INSTALL', `${name} was not built for ONNX Runtime ${ortVersion}`, { file: name });
      }
    }
    const files: InstallReport['files'] = [];
    for (const [name, sum] of Object.entries(pkg.files)) {
      const tmp = join(dest, `.${name}.osprey-tmp`);
      copyFileSync(join(work, pkg.folder, name), tmp);
      renameSync(tmp, join(dest, name));
      files.push({ name, sha256: sum, bytes: statSync(join(dest, name)).size, action: 'installed' });
      log(`installed ${name} (sha256 ${sum.slice(0, 16)}…)`);
    }
    return { onnxRuntimeVersion: ortVersion, package: pkg.spec, destination: dest, files };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
