import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';

// NVRTC needs no GPU. Where the CUDA 13 NVRTC pip wheel is unpacked on this machine (/opt/nv-local, see docs/gpu.md)
// and nothing else is configured, point discovery at it before the bindings load.
if (!process.env.OSPREY_CUDA_LIBRARY_PATH && existsSync('/opt/nv-local/nvidia/cu13/lib/libnvrtc.so.13')) {
  process.env.OSPREY_CUDA_LIBRARY_PATH = '/opt/nv-local/nvidia/cu13/lib:/opt/nv-local/nvidia/cudnn/lib';
}
const { cudaLibrarySearch } = await import('../../src/cuda/loader.js');
const { Nvrtc } = await import('../../src/cuda/nvrtc.js');
const { CONV_TILES, KERNEL_SOURCE, convKernelName } = await import('../../src/compile/kernels.js');

const hasNvrtc = !!cudaLibrarySearch().find((s) => s.spec.id === 'nvrtc')?.found;

test('kernels: every engine kernel compiles with NVRTC to an sm_90 cubin, with no register spills', { skip: hasNvrtc ? false : 'NVRTC not found on this machine' }, () => {
  const nvrtc = new Nvrtc();
  const r = nvrtc.compile(KERNEL_SOURCE, 'sm_90', ['-Xptxas', '-v']);
  assert.equal(new TextDecoder().decode(r.cubin.subarray(1, 4)), 'ELF');
  const names = ['osprey_preprocess', 'osprey_maxpool', 'osprey_upsample', 'osprey_detect_decode', 'osprey_topk', ...CONV_TILES.map(([m, n]) => convKernelName(m, n))];
  for (const n of names) assert.match(r.log, new RegExp(`Compiling entry function '${n}' for 'sm_90'`), `${n} is in the module`);
  assert.doesNotMatch(r.log, /[1-9]\d* bytes spill (stores|loads)/, 'no spills');
  // the conv tiles stay within the 48 KB of static shared memory a block gets without opting in
  for (const m of r.log.matchAll(/(\d+) bytes smem/g)) assert.ok(Number(m[1]) <= 48 * 1024, `${m[0]}`);
});

test('kernels: the source also compiles for sm_80 and sm_89 (Ampere, Ada): mma.sync m16n8k16 exists there', { skip: hasNvrtc ? false : 'NVRTC not found on this machine' }, () => {
  const nvrtc = new Nvrtc();
  for (const arch of ['sm_80', 'sm_89']) assert.ok(nvrtc.compile(KERNEL_SOURCE, arch).cubin.length > 10_000, arch);
});

test('nvrtc: a compile error comes back as OSPREY_ERR_CUDA with the compiler log', { skip: hasNvrtc ? false : 'NVRTC not found on this machine' }, () => {
  const nvrtc = new Nvrtc();
  assert.throws(
    () => nvrtc.compile('extern "C" __global__ void k() { int x = ; }', 'sm_90'),
    (e: Error & { code?: string }) => e.code === 'OSPREY_ERR_CUDA' && /NVRTC_ERROR_COMPILATION/.test(e.message) && /expected an expression/.test(e.message),
  );
});
