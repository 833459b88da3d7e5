import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findCudaLibraries, parseLdconfig, systemDiscoveryHost, versionFromFileName, type DiscoveryHost } from '../../src/cuda/discovery.js';
import { formatGpuEngineReport, gpuEngineReport } from '../../src/gpu/cuda-libraries.js';

/** A real folder tree standing for a machine: files are empty, links real. */
function tree(): { root: string; file(rel: string): string; done(): void } {
  const root = mkdtempSync(join(tmpdir(), 'osprey-discovery-'));
  return {
    root,
    file(rel: string) {
      const p = join(root, rel);
      mkdirSync(join(p, '..'), { recursive: true });
      writeFileSync(p, '');
      return p;
    },
    done: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** The real file system under `root`, with the environment, ldconfig text and site-packages given. */
function host(env: Record<string, string>, opts: { ldconfig?: string; sites?: string[] } = {}): DiscoveryHost {
  const real = systemDiscoveryHost(env);
  return { ...real, ldconfig: () => opts.ldconfig ?? null, sitePackages: () => opts.sites ?? [] };
}

test('discovery: LD_LIBRARY_PATH beats CUDA_HOME, which beats pip wheels; the source of each is recorded', () => {
  const t = tree();
  try {
    t.file('ld/libnvrtc.so.13');
    t.file('cuda/lib64/libnvrtc.so.13');
    t.file('cuda/lib64/libcudnn.so.9');
    t.file('site/nvidia/cudnn/lib/libcudnn.so.9');
    t.file('site/nvidia/cu13/lib/libcublasLt.so.13');
    const r = findCudaLibraries(host({ LD_LIBRARY_PATH: join(t.root, 'ld'), CUDA_HOME: join(t.root, 'cuda') }, { sites: [join(t.root, 'site')] }));
    const by = Object.fromEntries(r.map((s) => [s.spec.id, s]));
    assert.equal(by.nvrtc!.found?.source, 'LD_LIBRARY_PATH');
    assert.equal(by.nvrtc!.found?.path, join(t.root, 'ld/libnvrtc.so.13'));
    assert.equal(by.cudnn!.found?.source, 'CUDA_HOME');
    assert.equal(by.cublasLt!.found?.source, 'pip');
    assert.equal(by.cublasLt!.found?.path, join(t.root, 'site/nvidia/cu13/lib/libcublasLt.so.13'));
    assert.equal(by.cuda!.found, undefined, 'no libcuda.so.1 in the tree (and the system folders have none on CI)');
    // every place looked in is listed, in order
    const order = by.cuda!.searched.map((s) => s.source);
    assert.deepEqual([...new Set(order)].slice(0, 3), ['LD_LIBRARY_PATH', 'CUDA_HOME', 'pip']);
  } finally {
    t.done();
  }
});

test('discovery: OSPREY_CUDA_LIBRARY_PATH comes first; a newer soname is preferred over an older one in the same place', () => {
  const t = tree();
  try {
    t.file('mine/libnvrtc.so.12');
    t.file('ld/libnvrtc.so.13');
    const r = findCudaLibraries(host({ OSPREY_CUDA_LIBRARY_PATH: join(t.root, 'mine'), LD_LIBRARY_PATH: join(t.root, 'ld') }));
    const nvrtc = r.find((s) => s.spec.id === 'nvrtc')!;
    // libnvrtc.so.13 is tried in every folder before libnvrtc.so.12 is
    assert.equal(nvrtc.found?.soname, 'libnvrtc.so.13');
    assert.equal(nvrtc.found?.source, 'LD_LIBRARY_PATH');
    t.file('mine/libnvrtc.so.13');
    const again = findCudaLibraries(host({ OSPREY_CUDA_LIBRARY_PATH: join(t.root, 'mine'), LD_LIBRARY_PATH: join(t.root, 'ld') }));
    assert.equal(again.find((s) => s.spec.id === 'nvrtc')!.found?.source, 'OSPREY_CUDA_LIBRARY_PATH');
  } finally {
    t.done();
  }
});

test('discovery: the version comes from the real file name behind the soname link (Debian-style libcudnn.so.9.14.0)', () => {
  const t = tree();
  try {
    const real = t.file('lib/libcudnn.so.9.14.0');
    symlinkSync(real, join(t.root, 'lib/libcudnn.so.9'));
    const r = findCudaLibraries(host({ LD_LIBRARY_PATH: join(t.root, 'lib') }));
    const cudnn = r.find((s) => s.spec.id === 'cudnn')!.found!;
    assert.equal(cudnn.realPath, real);
    assert.equal(cudnn.fileVersion, '9.14.0');
    assert.equal(versionFromFileName('/x/libnvrtc.so.13', 'libnvrtc.so.13'), undefined);
    assert.equal(versionFromFileName('/x/libcuda.so.580.159.04', 'libcuda.so.1'), '580.159.04');
  } finally {
    t.done();
  }
});

test('discovery: ldconfig -p is read when no folder has the library; 64-bit entries win over 32-bit ones', () => {
  const t = tree();
  try {
    const lib64 = t.file('x86_64/libcuda.so.1');
    const lib32 = t.file('i386/libcuda.so.1');
    const text = [
      '3 libs found in cache `/etc/ld.so.cache\'',
      `\tlibcuda.so.1 (libc6) => ${lib32}`,
      `\tlibcuda.so.1 (libc6,x86-64) => ${lib64}`,
      '\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1',
    ].join('\n');
    assert.equal(parseLdconfig(text).get('libcuda.so.1'), lib64);
    const r = findCudaLibraries(host({}, { ldconfig: text }));
    const cuda = r.find((s) => s.spec.id === 'cuda')!.found!;
    assert.equal(cuda.source, 'ldconfig');
    assert.equal(cuda.path, lib64);
  } finally {
    t.done();
  }
});

test('doctor: on a machine without a GPU the GPU engine section says so and names the fix for each missing library', async (t) => {
  const r = await gpuEngineReport(host({}, { sites: [] }));
  const text = formatGpuEngineReport(r);
  const cuda = r.libraries.find((l) => l.id === 'cuda')!;
  if (cuda.found && r.devices.length > 0) return t.skip('this machine has a GPU');
  assert.equal(r.ready, false);
  assert.equal(r.devices.length, 0);
  assert.match(text, /^Osprey GPU engine \(--engine cuda\): not available/);
  if (!cuda.found) {
    assert.match(r.devicesNote!, /libcuda\.so\.1 not found/);
    assert.match(text, /MISSING +CUDA driver API: libcuda\.so\.1 not found .* fix: install the NVIDIA driver/);
  } else {
    assert.match(r.devicesNote!, /cuInit failed/);
  }
});

test('doctor: NVRTC and cuDNN from pip wheels are found, loaded and report their versions (where the wheels are on this machine)', async (t) => {
  // The wheels' folders as pip lays them out: <site-packages>/nvidia/{cu13,cudnn}/lib
  const site = '/opt/nv-local';
  const r = await gpuEngineReport(host({}, { sites: [site] }));
  const nvrtc = r.libraries.find((l) => l.id === 'nvrtc')!;
  const cudnn = r.libraries.find((l) => l.id === 'cudnn')!;
  if (!nvrtc.found || nvrtc.source !== 'pip') return t.skip(`no NVIDIA pip wheels unpacked under ${site} here`);
  assert.match(nvrtc.version!, /^1[23]\.\d+$/);
  assert.equal(nvrtc.loadError, undefined);
  if (cudnn.found) assert.match(cudnn.version!, /^9\.\d+\.\d+$/);
  assert.match(formatGpuEngineReport(r), /ok +NVRTC \(runtime CUDA compiler\) 1[23]\.\d+: \/opt\/nv-local\/nvidia\/cu13\/lib\/libnvrtc\.so\.13 \(pip\)/);
});
