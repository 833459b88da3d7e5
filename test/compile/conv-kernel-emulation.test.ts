/**
 * The own conv kernel's index arithmetic, executed on the CPU: a line-by-line transcription of `conv_body<BM, BN>`
 * (src/compile/kernels.ts) — the thread → (row, k-chunk) mapping of the global loads, the tap decomposition
 * k → (r, s, c), shared-memory tiles, the per-lane register loads of the A/B fragments, and the epilogue's lane →
 * (row, column) mapping — with `mma.sync.m16n8k16.row.col` carried out as the PTX ISA defines its fragment layouts
 * (a0..a3, b0..b1, c0..c3 per lane = groupID / threadID_in_group). CI has no GPU: this checks the kernel's indexing
 * against a plain convolution, for every tile shape, with padding, stride 2, a residual, strided input/output views
 * (Concat slices) and partial tiles. FP16 rounding is left out (float math); the GPU run checks numerics.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONV_TILES, convThreads } from '../../src/compile/kernels.js';
import { rng } from '../support/rng.js';

interface P {
  x: Float32Array; xOff: number; w: Float32Array; bias: Float32Array; res?: Float32Array; rOff: number; y: Float32Array; yOff: number;
  N: number; H: number; W: number; C: number; xImg: number; xPix: number;
  K: number; P: number; Q: number; yImg: number; yPix: number; rImg: number; rPix: number;
  R: number; S: number; sh: number; sw: number; ph: number; pw: number; act: boolean;
}

const BK = 32;

/** conv_body<BM, BN>, every block, thread and lane, in JS. */
function emulate(p: P, BM: number, BN: number): void {
  const WTN = BN < 32 ? BN : 32;
  const WARPS_M = BM / 32;
  const WARPS_N = BN / WTN;
  const NT = WARPS_M * WARPS_N * 32;
  const NI = WTN / 8;
  const A_CHUNKS = (BM * BK) / 8;
  const B_CHUNKS = (BN * BK) / 8;
  const M = p.N * p.P * p.Q;
  const Kdim = p.R * p.S * p.C;
  const gridX = Math.ceil(M / BM);
  const gridY = Math.ceil(p.K / BN);
  for (let bx = 0; bx < gridX; bx++)
    for (let by = 0; by < gridY; by++) {
      const m0 = bx * BM;
      const n0 = by * BN;
      const As = Array.from({ length: BM }, () => new Float32Array(BK));
      const Bs = Array.from({ length: BN }, () => new Float32Array(BK));
      // acc[tid][mi][ni][q]
      const acc = Array.from({ length: NT }, () => Array.from({ length: 2 }, () => Array.from({ length: NI }, () => [0, 0, 0, 0])));
      const numK = Math.ceil(Kdim / BK);
      for (let kt = 0; kt < numK; kt++) {
        const k0 = kt * BK;
        // loadA/loadB + store: every thread's chunks (id = tid + j·NT)
        for (let id = 0; id < A_CHUNKS; id++) {
          const row = id >> 2;
          const m = m0 + row;
          const k = k0 + (id & 3) * 8;
          const v = new Float32Array(8);
          if (m < M && k < Kdim) {
            const img = Math.floor(m / (p.P * p.Q));
            const pq = m - img * p.P * p.Q;
            const oh = Math.floor(pq / p.Q);
            const ow = pq - oh * p.Q;
            const tap = Math.floor(k / p.C);
            const ci = k - tap * p.C;
            const r = Math.floor(tap / p.S);
            const s = tap - r * p.S;
            const ih = oh * p.sh - p.ph + r;
            const iw = ow * p.sw - p.pw + s;
            if (ih >= 0 && ih < p.H && iw >= 0 && iw < p.W) for (let e = 0; e < 8; e++) v[e] = p.x[p.xOff + img * p.xImg + (ih * p.W + iw) * p.xPix + ci + e]!;
          }
          As[row]!.set(v, (id & 3) * 8);
        }
        for (let id = 0; id < B_CHUNKS; id++) {
          const n = n0 + (id >> 2);
          const k = k0 + (id & 3) * 8;
          const v = new Float32Array(8);
          if (n < p.K && k < Kdim) for (let e = 0; e < 8; e++) v[e] = p.w[n * Kdim + k + e]!;
          Bs[id >> 2]!.set(v, (id & 3) * 8);
        }
        for (let kk = 0; kk < BK; kk += 16)
          for (let warp = 0; warp < NT / 32; warp++) {
            const wm = warp % WARPS_M;
            const wn = Math.floor(warp / WARPS_M);
            // per-lane registers as the kernel loads them (each u32 = two consecutive halves)
            const a: number[][][][] = [];
            const b: number[][][][] = [];
            for (let lane = 0; lane < 32; lane++) {
              const g = lane >> 2;
              const t = lane & 3;
              const pair = (arr: Float32Array, i: number) => [arr[i]!, arr[i + 1]!];
              a[lane] = [0, 1].map((mi) => {
                const row = wm * 32 + mi * 16 + g;
                return [pair(As[row]!, kk + t * 2), pair(As[row + 8]!, kk + t * 2), pair(As[row]!, kk + t * 2 + 8), pair(As[row + 8]!, kk + t * 2 + 8)];
              });
              b[lane] = Array.from({ length: NI }, (_, ni) => {
                const col = wn * WTN + ni * 8 + g;
                return [pair(Bs[col]!, kk + t * 2), pair(Bs[col]!, kk + t * 2 + 8)];
              });
            }
            // mma.sync.m16n8k16.row.col per the PTX ISA fragment layouts
            for (let mi = 0; mi < 2; mi++)
              for (let ni = 0; ni < NI; ni++) {
                const A = Array.from({ length: 16 }, () => new Float64Array(16));
                const B = Array.from({ length: 16 }, () => new Float64Array(8));
                for (let lane = 0; lane < 32; lane++) {
                  const g = lane >> 2;
                  const t = lane & 3;
                  const ar = a[lane]![mi]!;
                  [[g, 2 * t], [g + 8, 2 * t], [g, 2 * t + 8], [g + 8, 2 * t + 8]].forEach(([r, c], q) => {
                    A[r!]![c!] = ar[q]![0]!;
                    A[r!]![c! + 1] = ar[q]![1]!;
                  });
                  const br = b[lane]![ni]!;
                  B[2 * t]![g] = br[0]![0]!;
                  B[2 * t + 1]![g] = br[0]![1]!;
                  B[2 * t + 8]![g] = br[1]![0]!;
                  B[2 * t + 9]![g] = br[1]![1]!;
                }
                for (let lane = 0; lane < 32; lane++) {
                  const g = lane >> 2;
                  const t = lane & 3;
                  const dot = (r: number, c: number) => {
                    let s = 0;
                    for (let k = 0; k < 16; k++) s += A[r]![k]! * B[k]![c]!;
                    return s;
                  };
                  const c = acc[warp * 32 + lane]![mi]![ni]!;
                  c[0]! += dot(g, 2 * t);
                  c[1]! += dot(g, 2 * t + 1);
                  c[2]! += dot(g + 8, 2 * t);
                  c[3]! += dot(g + 8, 2 * t + 1);
                }
              }
          }
      }
      // epilogue
      for (let tid = 0; tid < NT; tid++) {
        const warp = tid >> 5;
        const lane = tid & 31;
        const wm = warp % WARPS_M;
        const wn = Math.floor(warp / WARPS_M);
        const g = lane >> 2;
        const t = lane & 3;
        for (let mi = 0; mi < 2; mi++)
          for (let h = 0; h < 2; h++) {
            const m = m0 + wm * 32 + mi * 16 + g + h * 8;
            if (m >= M) continue;
            const img = Math.floor(m / (p.P * p.Q));
            const pq = m - img * p.P * p.Q;
            for (let ni = 0; ni < NI; ni++)
              for (let e = 0; e < 2; e++) {
                const n = n0 + wn * WTN + ni * 8 + t * 2 + e;
                if (n >= p.K) continue;
                let v = acc[tid]![mi]![ni]![h * 2 + e]! + p.bias[n]!;
                if (p.act) v = v / (1 + Math.exp(-v));
                if (p.res) v += p.res[p.rOff + img * p.rImg + pq * p.rPix + n]!;
                p.y[p.yOff + img * p.yImg + pq * p.yPix + n] = v;
              }
          }
      }
    }
}

function naive(p: P): Float32Array {
  const out = p.y.slice();
  for (let img = 0; img < p.N; img++)
    for (let oh = 0; oh < p.P; oh++)
      for (let ow = 0; ow < p.Q; ow++)
        for (let n = 0; n < p.K; n++) {
          let v = p.bias[n]!;
          for (let r = 0; r < p.R; r++)
            for (let s = 0; s < p.S; s++) {
              const ih = oh * p.sh - p.ph + r;
              const iw = ow * p.sw - p.pw + s;
              if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) continue;
              for (let c = 0; c < p.C; c++) v += p.x[p.xOff + img * p.xImg + (ih * p.W + iw) * p.xPix + c]! * p.w[n * p.R * p.S * p.C + (r * p.S + s) * p.C + c]!;
            }
          if (p.act) v = v / (1 + Math.exp(-v));
          const pq = oh * p.Q + ow;
          if (p.res) v += p.res[p.rOff + img * p.rImg + pq * p.rPix + n]!;
          out[p.yOff + img * p.yImg + pq * p.yPix + n] = v;
        }
  return out;
}

function problem(seed: number, o: { N: number; H: number; W: number; C: number; K: number; R: number; stride: number; residual: boolean; xChannels: number; xOffset: number; yChannels: number; yOffset: number }): P {
  const r = rng(seed);
  const pad = Math.floor(o.R / 2);
  const P = Math.floor((o.H + 2 * pad - o.R) / o.stride) + 1;
  const Q = Math.floor((o.W + 2 * pad - o.R) / o.stride) + 1;
  const x = new Float32Array(o.N * o.H * o.W * o.xChannels).map(() => r() * 2 - 1);
  const y = new Float32Array(o.N * P * Q * o.yChannels).fill(Number.NaN);
  return {
    x, xOff: o.xOffset, w: new Float32Array(o.K * o.R * o.R * o.C).map(() => r() - 0.5), bias: new Float32Array(o.K).map(() => r() - 0.5),
    ...(o.residual ? { res: new Float32Array(o.N * P * Q * o.K).map(() => r()) } : {}), rOff: 0, y, yOff: o.yOffset,
    N: o.N, H: o.H, W: o.W, C: o.C, xImg: o.H * o.W * o.xChannels, xPix: o.xChannels,
    K: o.K, P, Q, yImg: P * Q * o.yChannels, yPix: o.yChannels, rImg: P * Q * o.K, rPix: o.K,
    R: o.R, S: o.R, sh: o.stride, sw: o.stride, ph: pad, pw: pad, act: true,
  };
}

test('own conv kernel (emulated): every tile shape equals a plain convolution — 3×3 stride 2, a channel slice in and out, partial tiles', () => {
  for (const [bm, bn] of CONV_TILES) {
    assert.equal(convThreads(bm, bn) % 32, 0);
    // 2 images of 9×7 → 5×4 outputs: M = 40 (partial tile of every BM), K = 24 output channels (partial for BN ≥ 32)
    const p = problem(bm * 1000 + bn, { N: 2, H: 9, W: 7, C: 16, K: 24, R: 3, stride: 2, residual: false, xChannels: 48, xOffset: 16, yChannels: 40, yOffset: 8 });
    const want = naive(p);
    emulate(p, bm, bn);
    for (let i = 0; i < want.length; i++) {
      if (Number.isNaN(want[i]!)) assert.ok(Number.isNaN(p.y[i]!), `tile ${bm}x${bn}: element ${i} outside the output slice was written`);
      else assert.ok(Math.abs(p.y[i]! - want[i]!) < 1e-4, `tile ${bm}x${bn}: element ${i}: ${p.y[i]} vs ${want[i]}`);
    }
  }
});

test('own conv kernel (emulated): 1×1 with a residual, K spanning several 32-wide k-tiles (C = 80)', () => {
  for (const [bm, bn] of [[64, 64], [128, 16]] as const) {
    const p = problem(7 + bm, { N: 1, H: 6, W: 6, C: 80, K: 16, R: 1, stride: 1, residual: true, xChannels: 80, xOffset: 0, yChannels: 16, yOffset: 0 });
    const want = naive(p);
    emulate(p, bm, bn);
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(p.y[i]! - want[i]!) < 1e-4, `tile ${bm}x${bn}: element ${i}: ${p.y[i]} vs ${want[i]}`);
  }
});
