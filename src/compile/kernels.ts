/**
 * Osprey's own CUDA kernels (CUDA C, compiled by NVRTC at build time for the GPU's compute capability; no CUDA
 * headers needed — FP16 conversions and tensor-core MMA are inline PTX):
 *
 * - `osprey_preprocess`: uint8 NHWC RGB frames → FP16 NHWC `x / 255`, channels padded with zeros (16-byte stores).
 * - `osprey_conv_<BM>x<BN>`: implicit-GEMM convolution on FP16 NHWC views (M = batch·P·Q output pixels, N = output
 *   channels, K = R·S·C), `mma.sync.m16n8k16` FP16 × FP16 → FP32 on the tensor cores, double-buffered shared memory,
 *   fused epilogue bias + [SiLU] + [residual], strided in/out views (Concat slices). Tile shapes are the tactics the
 *   builder times.
 * - `osprey_maxpool`, `osprey_upsample` (also the copy, factor 1): 8 channels per thread, 16-byte accesses.
 * - `osprey_detect_decode`: per anchor, DFL softmax-expectation over regMax bins, dist2bbox × stride, best class by
 *   logit (sigmoid once), optional raw `[B, 4 + nc, A]` output (the ONNX model's output0) for checks.
 * - `osprey_topk`: per image one block: radix select of the K-th best score on the float bits (4 passes of 8 bits),
 *   compaction, bitonic sort of ≤ 1024 candidates, rows `x1, y1, x2, y2, score, class`.
 */

/** The conv tile shapes compiled (BM output pixels × BN output channels per block; warp tile 32 × min(32, BN)). */
export const CONV_TILES: ReadonlyArray<readonly [number, number]> = [
  [64, 64],
  [128, 64],
  [128, 32],
  [64, 32],
  [128, 16],
  [256, 16],
  [128, 128],
];

/** Kernel function name of a conv tile. */
export function convKernelName(bm: number, bn: number): string {
  return `osprey_conv_${bm}x${bn}`;
}

/** Threads per block of a conv tile. */
export function convThreads(bm: number, bn: number): number {
  const wtn = Math.min(32, bn);
  return (bm / 32) * (bn / wtn) * 32;
}

/** Byte size of `ConvParams` (5 pointers, then 20 ints) — the runtime writes it field by field. */
export const CONV_PARAMS_BYTES = 5 * 8 + 20 * 4;

export const TOPK_MAX = 1024;

export const KERNEL_SOURCE = String.raw`
typedef unsigned short half_t;
typedef unsigned int u32;
typedef unsigned long long u64;

__device__ __forceinline__ float h2f(half_t h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
__device__ __forceinline__ half_t f2h(float f) { half_t h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
__device__ __forceinline__ float silu(float v) { return v / (1.f + __expf(-v)); }

struct ConvParams {
  const half_t* x; const half_t* w; const float* bias; const half_t* res; half_t* y;
  int N, H, W, C, xImg, xPix;
  int K, P, Q, yImg, yPix, rImg, rPix;
  int R, S, strideH, strideW, padH, padW, act;
};

#define BK 32
#define SPAD 8

template <int BM, int BN>
__device__ __forceinline__ void conv_body(const ConvParams& p) {
  constexpr int WTN = BN < 32 ? BN : 32;
  constexpr int WARPS_M = BM / 32;
  constexpr int WARPS_N = BN / WTN;
  constexpr int NT = WARPS_M * WARPS_N * 32;
  constexpr int NI = WTN / 8;
  constexpr int A_CHUNKS = BM * BK / 8;
  constexpr int B_CHUNKS = BN * BK / 8;
  constexpr int A_PER = (A_CHUNKS + NT - 1) / NT;
  constexpr int B_PER = (B_CHUNKS + NT - 1) / NT;
  __shared__ __align__(16) half_t As[2][BM][BK + SPAD];
  __shared__ __align__(16) half_t Bs[2][BN][BK + SPAD];

  const int tid = threadIdx.x;
  const int warp = tid >> 5, lane = tid & 31;
  const int wm = warp % WARPS_M, wn = warp / WARPS_M;
  const int g = lane >> 2, t = lane & 3;
  const int M = p.N * p.P * p.Q;
  const int Kdim = p.R * p.S * p.C;
  const int m0 = blockIdx.x * BM;
  const int n0 = blockIdx.y * BN;

  // per loaded A chunk: image base, top-left input coordinate, validity
  int aImg[A_PER], aIh[A_PER], aIw[A_PER];
  bool aOk[A_PER];
#pragma unroll
  for (int j = 0; j < A_PER; j++) {
    int id = tid + j * NT;
    int row = id >> 2;
    int m = m0 + row;
    aOk[j] = id < A_CHUNKS && m < M;
    int mm = aOk[j] ? m : 0;
    int img = mm / (p.P * p.Q);
    int pq = mm - img * p.P * p.Q;
    int oh = pq / p.Q, ow = pq - (pq / p.Q) * p.Q;
    aImg[j] = img * p.xImg;
    aIh[j] = oh * p.strideH - p.padH;
    aIw[j] = ow * p.strideW - p.padW;
  }
  uint4 ra[A_PER], rb[B_PER];
  const uint4 zero = make_uint4(0, 0, 0, 0);

  auto loadA = [&](int k0) {
#pragma unroll
    for (int j = 0; j < A_PER; j++) {
      int id = tid + j * NT;
      int k = k0 + (id & 3) * 8;
      uint4 v = zero;
      if (aOk[j] && k < Kdim) {
        int tap = k / p.C;
        int ci = k - tap * p.C;
        int r = tap / p.S;
        int s = tap - r * p.S;
        int ih = aIh[j] + r, iw = aIw[j] + s;
        if (ih >= 0 && ih < p.H && iw >= 0 && iw < p.W) v = *reinterpret_cast<const uint4*>(p.x + aImg[j] + (ih * p.W + iw) * p.xPix + ci);
      }
      ra[j] = v;
    }
  };
  auto loadB = [&](int k0) {
#pragma unroll
    for (int j = 0; j < B_PER; j++) {
      int id = tid + j * NT;
      int n = n0 + (id >> 2);
      int k = k0 + (id & 3) * 8;
      uint4 v = zero;
      if (id < B_CHUNKS && n < p.K && k < Kdim) v = *reinterpret_cast<const uint4*>(p.w + (size_t)n * Kdim + k);
      rb[j] = v;
    }
  };
  auto store = [&](int buf) {
#pragma unroll
    for (int j = 0; j < A_PER; j++) {
      int id = tid + j * NT;
      if (id < A_CHUNKS) *reinterpret_cast<uint4*>(&As[buf][id >> 2][(id & 3) * 8]) = ra[j];
    }
#pragma unroll
    for (int j = 0; j < B_PER; j++) {
      int id = tid + j * NT;
      if (id < B_CHUNKS) *reinterpret_cast<uint4*>(&Bs[buf][id >> 2][(id & 3) * 8]) = rb[j];
    }
  };

  float acc[2][NI][4];
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int j = 0; j < NI; j++)
#pragma unroll
      for (int q = 0; q < 4; q++) acc[i][j][q] = 0.f;

  const int numK = (Kdim + BK - 1) / BK;
  loadA(0);
  loadB(0);
  store(0);
  __syncthreads();
  for (int kt = 0; kt < numK; kt++) {
    const int cur = kt & 1;
    if (kt + 1 < numK) { loadA((kt + 1) * BK); loadB((kt + 1) * BK); }
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      u32 a[2][4], b[NI][2];
#pragma unroll
      for (int mi = 0; mi < 2; mi++) {
        int row = wm * 32 + mi * 16 + g;
        a[mi][0] = *reinterpret_cast<const u32*>(&As[cur][row][kk + t * 2]);
        a[mi][1] = *reinterpret_cast<const u32*>(&As[cur][row + 8][kk + t * 2]);
        a[mi][2] = *reinterpret_cast<const u32*>(&As[cur][row][kk + t * 2 + 8]);
        a[mi][3] = *reinterpret_cast<const u32*>(&As[cur][row + 8][kk + t * 2 + 8]);
      }
#pragma unroll
      for (int ni = 0; ni < NI; ni++) {
        int col = wn * WTN + ni * 8 + g;
        b[ni][0] = *reinterpret_cast<const u32*>(&Bs[cur][col][kk + t * 2]);
        b[ni][1] = *reinterpret_cast<const u32*>(&Bs[cur][col][kk + t * 2 + 8]);
      }
#pragma unroll
      for (int mi = 0; mi < 2; mi++)
#pragma unroll
        for (int ni = 0; ni < NI; ni++)
          asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                       : "+f"(acc[mi][ni][0]), "+f"(acc[mi][ni][1]), "+f"(acc[mi][ni][2]), "+f"(acc[mi][ni][3])
                       : "r"(a[mi][0]), "r"(a[mi][1]), "r"(a[mi][2]), "r"(a[mi][3]), "r"(b[ni][0]), "r"(b[ni][1]));
    }
    if (kt + 1 < numK) store(cur ^ 1);
    __syncthreads();
  }

  // epilogue: bias, SiLU, residual, FP16 store into the (strided) output view
#pragma unroll
  for (int mi = 0; mi < 2; mi++)
#pragma unroll
    for (int h = 0; h < 2; h++) {
      int m = m0 + wm * 32 + mi * 16 + g + h * 8;
      if (m >= M) continue;
      int img = m / (p.P * p.Q);
      int pq = m - img * p.P * p.Q;
      half_t* yrow = p.y + (size_t)img * p.yImg + (size_t)pq * p.yPix;
      const half_t* rrow = p.res ? p.res + (size_t)img * p.rImg + (size_t)pq * p.rPix : nullptr;
#pragma unroll
      for (int ni = 0; ni < NI; ni++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
          int n = n0 + wn * WTN + ni * 8 + t * 2 + e;
          if (n >= p.K) continue;
          float v = acc[mi][ni][h * 2 + e] + p.bias[n];
          if (p.act) v = silu(v);
          if (rrow) v = h2f(f2h(v)) + h2f(rrow[n]);
          yrow[n] = f2h(v);
        }
    }
}

#define CONV_KERNEL(BM, BN) \
  extern "C" __global__ void __launch_bounds__((BM / 32) * (BN / (BN < 32 ? BN : 32)) * 32) osprey_conv_##BM##x##BN(const ConvParams p) { conv_body<BM, BN>(p); }
CONV_KERNEL(64, 64)
CONV_KERNEL(128, 64)
CONV_KERNEL(128, 32)
CONV_KERNEL(64, 32)
CONV_KERNEL(128, 16)
CONV_KERNEL(256, 16)
CONV_KERNEL(128, 128)

// uint8 NHWC [B, H, W, inC] → FP16 view (channels outC, zero-padded), value / 255
extern "C" __global__ void osprey_preprocess(const unsigned char* in, half_t* out, int pixels, int images, int inC, int outC, int outImg, int outPix) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long long)pixels * images) return;
  int n = (int)(i / pixels);
  int px = (int)(i - (long long)n * pixels);
  const unsigned char* src = in + i * inC;
  half_t* dst = out + (size_t)n * outImg + (size_t)px * outPix;
  for (int c0 = 0; c0 < outC; c0 += 8) {
    half_t v[8];
#pragma unroll
    for (int c = 0; c < 8; c++) v[c] = (c0 + c < inC) ? f2h((float)src[c0 + c] * (1.f / 255.f)) : (half_t)0;
    *reinterpret_cast<uint4*>(dst + c0) = *reinterpret_cast<uint4*>(v);
  }
}

// NHWC max-pool, 8 channels per thread
extern "C" __global__ void osprey_maxpool(const half_t* x, half_t* y, int images, int H, int W, int C, int xImg, int xPix, int P, int Q, int yImg, int yPix,
                                          int R, int S, int sh, int sw, int ph, int pw) {
  int c8 = C / 8;
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long long)images * P * Q * c8) return;
  int c = (int)(i % c8) * 8;
  long long pix = i / c8;
  int q = (int)(pix % Q);
  int pp = (int)((pix / Q) % P);
  int n = (int)(pix / ((long long)P * Q));
  float m[8];
#pragma unroll
  for (int k = 0; k < 8; k++) m[k] = -3.0e38f;
  for (int r = 0; r < R; r++) {
    int ih = pp * sh - ph + r;
    if (ih < 0 || ih >= H) continue;
    for (int s = 0; s < S; s++) {
      int iw = q * sw - pw + s;
      if (iw < 0 || iw >= W) continue;
      uint4 v = *reinterpret_cast<const uint4*>(x + (size_t)n * xImg + (size_t)(ih * W + iw) * xPix + c);
      const half_t* h = reinterpret_cast<const half_t*>(&v);
#pragma unroll
      for (int k = 0; k < 8; k++) m[k] = fmaxf(m[k], h2f(h[k]));
    }
  }
  half_t o[8];
#pragma unroll
  for (int k = 0; k < 8; k++) o[k] = f2h(m[k]);
  *reinterpret_cast<uint4*>(y + (size_t)n * yImg + (size_t)(pp * Q + q) * yPix + c) = *reinterpret_cast<uint4*>(o);
}

// nearest upsample by an integer factor (factor 1: a copy), 8 channels per thread
extern "C" __global__ void osprey_upsample(const half_t* x, half_t* y, int images, int W, int C, int xImg, int xPix, int P, int Q, int yImg, int yPix, int scale) {
  int c8 = C / 8;
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long long)images * P * Q * c8) return;
  int c = (int)(i % c8) * 8;
  long long pix = i / c8;
  int q = (int)(pix % Q);
  int pp = (int)((pix / Q) % P);
  int n = (int)(pix / ((long long)P * Q));
  uint4 v = *reinterpret_cast<const uint4*>(x + (size_t)n * xImg + (size_t)((pp / scale) * W + q / scale) * xPix + c);
  *reinterpret_cast<uint4*>(y + (size_t)n * yImg + (size_t)(pp * Q + q) * yPix + c) = v;
}

// DFL + dist2bbox + best class, one thread per anchor
extern "C" __global__ void osprey_detect_decode(const half_t* box, int boxImg, int boxPix, const half_t* cls, int clsImg, int clsPix, const float* anchorPoints,
                                                const float* strides, int images, int A, int regMax, int nc, float* boxes, float* scores, int* classes, float* raw) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long long)images * A) return;
  int n = (int)(i / A);
  int a = (int)(i - (long long)n * A);
  const half_t* b = box + (size_t)n * boxImg + (size_t)a * boxPix;
  float d[4];
  for (int side = 0; side < 4; side++) {
    float mx = -3.0e38f;
    for (int j = 0; j < regMax; j++) mx = fmaxf(mx, h2f(b[side * regMax + j]));
    float s = 0.f, e = 0.f;
    for (int j = 0; j < regMax; j++) {
      float w = __expf(h2f(b[side * regMax + j]) - mx);
      s += w;
      e += w * (float)j;
    }
    d[side] = e / s;
  }
  float ax = anchorPoints[2 * a], ay = anchorPoints[2 * a + 1], st = strides[a];
  float x1 = ax - d[0], y1 = ay - d[1], x2 = ax + d[2], y2 = ay + d[3];
  float cx = (x1 + x2) * 0.5f * st, cy = (y1 + y2) * 0.5f * st, w = (x2 - x1) * st, h = (y2 - y1) * st;
  const half_t* c = cls + (size_t)n * clsImg + (size_t)a * clsPix;
  float best = -3.0e38f;
  int bi = 0;
  for (int k = 0; k < nc; k++) {
    float v = h2f(c[k]);
    if (v > best) { best = v; bi = k; }
    if (raw) raw[((size_t)n * (4 + nc) + 4 + k) * A + a] = 1.f / (1.f + __expf(-v));
  }
  float* bo = boxes + i * 4;
  bo[0] = cx; bo[1] = cy; bo[2] = w; bo[3] = h;
  scores[i] = 1.f / (1.f + __expf(-best));
  classes[i] = bi;
  if (raw) {
    raw[((size_t)n * (4 + nc) + 0) * A + a] = cx;
    raw[((size_t)n * (4 + nc) + 1) * A + a] = cy;
    raw[((size_t)n * (4 + nc) + 2) * A + a] = w;
    raw[((size_t)n * (4 + nc) + 3) * A + a] = h;
  }
}

// top-K per image (one block of 1024 threads): radix select + bitonic sort; rows x1, y1, x2, y2, score, class
extern "C" __global__ void __launch_bounds__(1024) osprey_topk(const float* boxes, const float* scores, const int* classes, int A, int K, float* out) {
  __shared__ u32 hist[256];
  __shared__ u32 sPrefix, sRemaining, sGt, sEq;
  __shared__ u64 keys[1024];
  const int n = blockIdx.x;
  const int tid = threadIdx.x;
  const u32* bits = reinterpret_cast<const u32*>(scores + (size_t)n * A);
  u32 prefix = 0, mask = 0;
  if (tid == 0) sRemaining = K;
  for (int shift = 24; shift >= 0; shift -= 8) {
    if (tid < 256) hist[tid] = 0;
    __syncthreads();
    for (int a = tid; a < A; a += blockDim.x) {
      u32 v = bits[a];
      if ((v & mask) == prefix) atomicAdd(&hist[(v >> shift) & 255u], 1u);
    }
    __syncthreads();
    if (tid == 0) {
      u32 cum = 0, rem = sRemaining;
      int d = 255;
      for (; d > 0; d--) {
        if (cum + hist[d] >= rem) break;
        cum += hist[d];
      }
      sRemaining = rem - cum;
      sPrefix = prefix | ((u32)d << shift);
    }
    __syncthreads();
    prefix = sPrefix;
    mask |= 255u << shift;
  }
  // prefix = the K-th largest score's bits; take every larger one and sRemaining of the equal ones
  if (tid == 0) { sGt = 0; sEq = 0; }
  keys[tid] = 0;
  __syncthreads();
  const u32 take = sRemaining;
  const u32 gtTotal = (u32)K - take;
  for (int a = tid; a < A; a += blockDim.x) {
    u32 v = bits[a];
    u64 key = ((u64)v << 32) | (u64)(0xFFFFFFFFu - (u32)a);
    if (v > prefix) keys[atomicAdd(&sGt, 1u)] = key;
    else if (v == prefix) {
      u32 e = atomicAdd(&sEq, 1u);
      if (e < take) keys[gtTotal + e] = key;
    }
  }
  __syncthreads();
  // bitonic sort, descending
  for (int k = 2; k <= 1024; k <<= 1)
    for (int j = k >> 1; j > 0; j >>= 1) {
      int ixj = tid ^ j;
      if (ixj > tid) {
        u64 x = keys[tid], y = keys[ixj];
        bool desc = (tid & k) == 0;
        if (desc ? (x < y) : (x > y)) { keys[tid] = y; keys[ixj] = x; }
      }
      __syncthreads();
    }
  if (tid < K) {
    u64 key = keys[tid];
    int a = (int)(0xFFFFFFFFu - (u32)(key & 0xFFFFFFFFull));
    const float* b = boxes + ((size_t)n * A + a) * 4;
    float hw = b[2] * 0.5f, hh = b[3] * 0.5f;
    float* o = out + ((size_t)n * K + tid) * 6;
    o[0] = b[0] - hw; o[1] = b[1] - hh; o[2] = b[0] + hw; o[3] = b[1] + hh;
    o[4] = scores[(size_t)n * A + a];
    o[5] = (float)classes[(size_t)n * A + a];
  }
}
`;
