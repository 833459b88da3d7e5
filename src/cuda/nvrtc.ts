/**
 * NVRTC (`libnvrtc.so.13`/`.12`) through koffi: CUDA C source → cubin for one compute capability (`sm_90`), at
 * engine build time. NVRTC needs no GPU, so kernels are compile-checked on CI machines too.
 */
import { OspreyError } from '../core/errors.js';
import { loadCudaLibrary } from './loader.js';
import type { LibraryHandle } from 'koffi';
type KoffiFunction = ReturnType<LibraryHandle['func']>;

export interface CompiledKernelModule {
  /** The cubin (ELF) for `arch`. */
  cubin: Uint8Array;
  /** `sm_90` etc. */
  arch: string;
  /** The compiler's log (warnings), '' when silent. */
  log: string;
  /** Compile time, ms. */
  compileMs: number;
}

export class Nvrtc {
  readonly path: string;
  private readonly f: Record<string, KoffiFunction> = {};

  constructor() {
    const { lib, path } = loadCudaLibrary('nvrtc');
    this.path = path;
    const decl: Record<string, string> = {
      nvrtcVersion: 'int nvrtcVersion(_Out_ int *major, _Out_ int *minor)',
      nvrtcGetErrorString: 'const char *nvrtcGetErrorString(int result)',
      nvrtcCreateProgram: 'int nvrtcCreateProgram(_Out_ void **prog, const char *src, const char *name, int numHeaders, const char **headers, const char **includeNames)',
      nvrtcCompileProgram: 'int nvrtcCompileProgram(void *prog, int numOptions, const char **options)',
      nvrtcGetProgramLogSize: 'int nvrtcGetProgramLogSize(void *prog, _Out_ size_t *size)',
      nvrtcGetProgramLog: 'int nvrtcGetProgramLog(void *prog, _Out_ uint8_t *log)',
      nvrtcGetCUBINSize: 'int nvrtcGetCUBINSize(void *prog, _Out_ size_t *size)',
      nvrtcGetCUBIN: 'int nvrtcGetCUBIN(void *prog, _Out_ uint8_t *cubin)',
      nvrtcDestroyProgram: 'int nvrtcDestroyProgram(_Inout_ void **prog)',
    };
    for (const [name, d] of Object.entries(decl)) this.f[name] = lib.func(d);
  }

  private check(name: string, r: number, extra = ''): void {
    if (r !== 0) throw new OspreyError('OSPREY_ERR_CUDA', `${name}: ${this.f.nvrtcGetErrorString!(r) as string}${extra}`, { call: name, status: r });
  }

  /** `major.minor`, e.g. `13.0`. */
  version(): string {
    const a = [0];
    const b = [0];
    this.check('nvrtcVersion', this.f.nvrtcVersion!(a, b) as number);
    return `${a[0]}.${b[0]}`;
  }

  /**
   * Compiles `source` to a cubin for `arch` (e.g. `sm_90`).
   * @throws OspreyError `OSPREY_ERR_CUDA` with the compiler log when compilation fails.
   */
  compile(source: string, arch: string, options: readonly string[] = [], name = 'osprey_kernels.cu'): CompiledKernelModule {
    const t0 = performance.now();
    const prog: unknown[] = [null];
    this.check('nvrtcCreateProgram', this.f.nvrtcCreateProgram!(prog, source, name, 0, null, null) as number);
    try {
      const opts = [`--gpu-architecture=${arch}`, '--std=c++17', '-default-device', ...options];
      const r = this.f.nvrtcCompileProgram!(prog[0], opts.length, opts) as number;
      const log = this.log(prog[0]);
      if (r !== 0) this.check('nvrtcCompileProgram', r, `\n${log}`);
      const size = [0];
      this.check('nvrtcGetCUBINSize', this.f.nvrtcGetCUBINSize!(prog[0], size) as number);
      const cubin = new Uint8Array(Number(size[0]));
      this.check('nvrtcGetCUBIN', this.f.nvrtcGetCUBIN!(prog[0], cubin) as number);
      return { cubin, arch, log, compileMs: performance.now() - t0 };
    } finally {
      this.f.nvrtcDestroyProgram!(prog);
    }
  }

  private log(prog: unknown): string {
    const size = [0];
    if ((this.f.nvrtcGetProgramLogSize!(prog, size) as number) !== 0) return '';
    const n = Number(size[0]);
    if (n <= 1) return '';
    const buf = new Uint8Array(n);
    this.f.nvrtcGetProgramLog!(prog, buf);
    return new TextDecoder().decode(buf.subarray(0, n - 1)).trim();
  }
}
