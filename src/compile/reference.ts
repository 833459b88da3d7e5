/**
 * The CPU reference executor of an {@link EnginePlan}: runs the lowered, fused, NHWC plan layer by layer **in the
 * arena the memory plan laid out** (every buffer at its planned offset), so a wrong fusion, a wrong view or two
 * live buffers sharing bytes changes its result. Checked against ONNX Runtime CPU on the real model
 * (test/compile); the GPU runtime is checked against it and against ONNX Runtime layer by layer.
 *
 * Arithmetic is FP32; with `roundToFloat16` every stored activation is rounded to FP16 as the GPU stores it.
 * Pure TypeScript, no dependencies; slow (seconds per 640×640 image) and meant for tests.
 */
import { float16BitsToFloat32, float32ToFloat16Bits } from '../onnx/tensor.js';
import type { BufferPlan, ConvLayer, DetectLayer, EnginePlan, Layer, View } from './plan.js';

export interface ReferenceOptions {
  /** Round every stored activation to FP16 (the GPU's storage precision). Default: when the plan is float16. */
  roundToFloat16?: boolean;
  /** Also return the decoded head output `[B, 4 + numClasses, anchors]` (the ONNX model's own output0: cx, cy, w, h, class scores). */
  raw?: boolean;
  /** Called after each layer with its index (to read intermediate views with {@link readView}). */
  afterLayer?: (index: number, layer: Layer, state: ReferenceState) => void;
}

export interface ReferenceState {
  plan: EnginePlan;
  batch: number;
  /** The arena, one float per activation element (element i of the plan's arena at byte i·elementBytes). */
  arena: Float32Array;
}

export interface ReferenceResult {
  /** `[B, K, 6]` rows x1, y1, x2, y2, score, classId (model-input pixels), best first. */
  detections: Float32Array;
  /** `[B, 4 + numClasses, anchors]` when `raw`. */
  raw?: Float32Array;
}

function elementBytes(plan: EnginePlan): number {
  return plan.precision === 'float16' ? 2 : 4;
}

/** Element index of image `n`'s element (pixel p, channel c) of a view. */
function at(plan: EnginePlan, batch: number, b: BufferPlan, v: View, n: number, pixel: number, c: number): number {
  const eb = elementBytes(plan);
  return (b.offsetPerImage * batch + n * b.bytesPerImage) / eb + (v.pixelOffset + pixel) * b.channels + v.channelOffset + c;
}

const F16 = (x: number) => float16BitsToFloat32(Uint16Array.of(float32ToFloat16Bits(x)))[0]!;

/** Reads a view of image `n` as NCHW float32 `[c, h, w]` (for layer-by-layer comparisons). */
export function readView(state: ReferenceState, v: View, n = 0): Float32Array {
  const b = state.plan.buffers[v.buffer]!;
  const out = new Float32Array(v.c * v.h * v.w);
  for (let p = 0; p < v.h * v.w; p++) {
    const base = at(state.plan, state.batch, b, v, n, p, 0);
    for (let c = 0; c < v.c; c++) out[c * v.h * v.w + p] = state.arena[base + c]!;
  }
  return out;
}

/** Weights of a plan as float32 (decoding FP16). */
export function weightFloats(plan: EnginePlan, weightData: Uint8Array, id: number): Float32Array {
  const w = plan.weights[id]!;
  const bytes = weightData.subarray(w.byteOffset, w.byteOffset + w.bytes);
  const copy = new Uint8Array(bytes);
  return w.dtype === 'float16' ? float16BitsToFloat32(new Uint16Array(copy.buffer)) : new Float32Array(copy.buffer);
}

/**
 * Runs `plan` on `images`: uint8 NHWC RGB `[B, H, W, 3]` (letterboxed), e.g. `B·640·640·3` bytes.
 */
export function executePlan(plan: EnginePlan, weightData: Uint8Array, images: Uint8Array, batch: number, options: ReferenceOptions = {}): ReferenceResult {
  const round = options.roundToFloat16 ?? plan.precision === 'float16';
  const eb = elementBytes(plan);
  const arenaBytes = plan.memory.arenaBytesPerImage * batch;
  const state: ReferenceState = { plan, batch, arena: new Float32Array(arenaBytes / eb) };
  // poison: a read of bytes no layer wrote shows up as NaN
  state.arena.fill(Number.NaN);
  const store = round ? F16 : (x: number) => x;
  let detections: Float32Array = new Float32Array(0);
  let raw: Float32Array | undefined;
  plan.layers.forEach((layer, li) => {
    switch (layer.kind) {
      case 'preprocess': {
        const v = layer.output;
        const b = plan.buffers[v.buffer]!;
        const px = v.h * v.w;
        for (let n = 0; n < batch; n++)
          for (let p = 0; p < px; p++) {
            const base = at(plan, batch, b, v, n, p, 0);
            const src = (n * px + p) * layer.inputChannels;
            for (let c = 0; c < v.c; c++) state.arena[base + c] = c < layer.inputChannels ? store(images[src + c]! / 255) : 0;
          }
        break;
      }
      case 'conv':
        conv(plan, weightData, state, layer, store);
        break;
      case 'maxpool': {
        const { input: vi, output: vo } = layer;
        const bi = plan.buffers[vi.buffer]!;
        const bo = plan.buffers[vo.buffer]!;
        const [kh, kw] = layer.kernel;
        const [sh, sw] = layer.stride;
        for (let n = 0; n < batch; n++)
          for (let oy = 0; oy < vo.h; oy++)
            for (let ox = 0; ox < vo.w; ox++) {
              const ob = at(plan, batch, bo, vo, n, oy * vo.w + ox, 0);
              for (let c = 0; c < vo.c; c++) {
                let m = -Infinity;
                for (let ky = 0; ky < kh; ky++) {
                  const iy = oy * sh - layer.pads[0] + ky;
                  if (iy < 0 || iy >= vi.h) continue;
                  for (let kx = 0; kx < kw; kx++) {
                    const ix = ox * sw - layer.pads[1] + kx;
                    if (ix < 0 || ix >= vi.w) continue;
                    const x = state.arena[at(plan, batch, bi, vi, n, iy * vi.w + ix, c)]!;
                    if (x > m) m = x;
                  }
                }
                state.arena[ob + c] = m;
              }
            }
        break;
      }
      case 'upsample':
      case 'copy': {
        const { input: vi, output: vo } = layer;
        const s = layer.kind === 'upsample' ? layer.scale : 1;
        const bi = plan.buffers[vi.buffer]!;
        const bo = plan.buffers[vo.buffer]!;
        for (let n = 0; n < batch; n++)
          for (let oy = 0; oy < vo.h; oy++)
            for (let ox = 0; ox < vo.w; ox++) {
              const ob = at(plan, batch, bo, vo, n, oy * vo.w + ox, 0);
              const ib = at(plan, batch, bi, vi, n, Math.floor(oy / s) * vi.w + Math.floor(ox / s), 0);
              for (let c = 0; c < vo.c; c++) state.arena[ob + c] = state.arena[ib + c]!;
            }
        break;
      }
      case 'detect': {
        const r = detect(plan, weightData, state, layer, options.raw ?? false);
        detections = r.detections;
        raw = r.raw;
        break;
      }
    }
    options.afterLayer?.(li, layer, state);
  });
  return { detections, ...(raw ? { raw } : {}) };
}

function conv(plan: EnginePlan, weightData: Uint8Array, state: ReferenceState, l: ConvLayer, store: (x: number) => number): void {
  const { batch, arena } = state;
  const vi = l.input;
  const vo = l.output;
  const bi = plan.buffers[vi.buffer]!;
  const bo = plan.buffers[vo.buffer]!;
  const br = l.residual ? plan.buffers[l.residual.buffer]! : undefined;
  const [cout, kh, kw, cin] = plan.weights[l.weight]!.shape as [number, number, number, number];
  const w = weightFloats(plan, weightData, l.weight);
  const bias = weightFloats(plan, weightData, l.bias);
  // [cout][kh][kw][cin] → [kh][kw][cin][cout] so the inner loop runs over contiguous output channels
  const wt = new Float32Array(w.length);
  for (let o = 0; o < cout; o++) for (let t = 0; t < kh * kw * cin; t++) wt[t * cout + o] = w[o * kh * kw * cin + t]!;
  const acc = new Float32Array(cout);
  const [sh, sw] = l.stride;
  const [pt, pl] = l.pads;
  for (let n = 0; n < batch; n++)
    for (let oy = 0; oy < vo.h; oy++)
      for (let ox = 0; ox < vo.w; ox++) {
        acc.set(bias);
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh - pt + ky;
          if (iy < 0 || iy >= vi.h) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * sw - pl + kx;
            if (ix < 0 || ix >= vi.w) continue;
            const ib = at(plan, batch, bi, vi, n, iy * vi.w + ix, 0);
            const wb = (ky * kw + kx) * cin * cout;
            for (let ci = 0; ci < cin; ci++) {
              const x = arena[ib + ci]!;
              if (x === 0) continue;
              const wo = wb + ci * cout;
              for (let co = 0; co < cout; co++) acc[co]! += x * wt[wo + co]!;
            }
          }
        }
        const p = oy * vo.w + ox;
        const ob = at(plan, batch, bo, vo, n, p, 0);
        const rb = br ? at(plan, batch, br, l.residual!, n, p, 0) : 0;
        for (let co = 0; co < cout; co++) {
          let v = acc[co]!;
          if (l.activation === 'silu') v = v / (1 + Math.exp(-v));
          if (br) v = store(v) + arena[rb + co]!;
          arena[ob + co] = store(v);
        }
      }
}

function detect(plan: EnginePlan, weightData: Uint8Array, state: ReferenceState, l: DetectLayer, wantRaw: boolean): { detections: Float32Array; raw?: Float32Array } {
  const { batch, arena } = state;
  const A = l.anchors;
  const nc = l.numClasses;
  const R = l.regMax;
  const bb = plan.buffers[l.box.buffer]!;
  const bc = plan.buffers[l.cls.buffer]!;
  const ap = weightFloats(plan, weightData, l.anchorPoints);
  const as = weightFloats(plan, weightData, l.anchorStrides);
  const raw = wantRaw ? new Float32Array(batch * (4 + nc) * A) : undefined;
  const det = new Float32Array(batch * l.k * 6);
  const boxes = new Float32Array(A * 4);
  const best = new Float32Array(A);
  const bestClass = new Int32Array(A);
  const prob = new Float64Array(R);
  for (let n = 0; n < batch; n++) {
    for (let a = 0; a < A; a++) {
      const ob = at(plan, batch, bb, l.box, n, a, 0);
      const d = [0, 0, 0, 0];
      for (let side = 0; side < 4; side++) {
        let m = -Infinity;
        for (let j = 0; j < R; j++) m = Math.max(m, arena[ob + side * R + j]!);
        let s = 0;
        for (let j = 0; j < R; j++) s += prob[j] = Math.exp(arena[ob + side * R + j]! - m);
        let e = 0;
        for (let j = 0; j < R; j++) e += (prob[j]! / s) * j;
        d[side] = e;
      }
      const ax = ap[2 * a]!;
      const ay = ap[2 * a + 1]!;
      const x1 = ax - d[0]!;
      const y1 = ay - d[1]!;
      const x2 = ax + d[2]!;
      const y2 = ay + d[3]!;
      const s = as[a]!;
      const cx = ((x1 + x2) / 2) * s;
      const cy = ((y1 + y2) / 2) * s;
      const w = (x2 - x1) * s;
      const h = (y2 - y1) * s;
      boxes[4 * a] = cx;
      boxes[4 * a + 1] = cy;
      boxes[4 * a + 2] = w;
      boxes[4 * a + 3] = h;
      const oc = at(plan, batch, bc, l.cls, n, a, 0);
      let bv = -Infinity;
      let bi = 0;
      for (let c = 0; c < nc; c++) {
        const v = arena[oc + c]!;
        if (v > bv) {
          bv = v;
          bi = c;
        }
        if (raw) raw[(n * (4 + nc) + 4 + c) * A + a] = 1 / (1 + Math.exp(-v));
      }
      best[a] = 1 / (1 + Math.exp(-bv));
      bestClass[a] = bi;
      if (raw) for (let q = 0; q < 4; q++) raw[(n * (4 + nc) + q) * A + a] = boxes[4 * a + q]!;
    }
    const order = Array.from({ length: A }, (_, i) => i).sort((x, y) => best[y]! - best[x]! || x - y);
    for (let r = 0; r < l.k; r++) {
      const a = order[r]!;
      const o = (n * l.k + r) * 6;
      const hw = boxes[4 * a + 2]! * 0.5;
      const hh = boxes[4 * a + 3]! * 0.5;
      det[o] = boxes[4 * a]! - hw;
      det[o + 1] = boxes[4 * a + 1]! - hh;
      det[o + 2] = boxes[4 * a]! + hw;
      det[o + 3] = boxes[4 * a + 1]! + hh;
      det[o + 4] = best[a]!;
      det[o + 5] = bestClass[a]!;
    }
  }
  return { detections: det, ...(raw ? { raw } : {}) };
}
