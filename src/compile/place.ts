/**
 * Placement: NHWC buffers and views for the lowered ops, then the layer list, the weight blob (FP16 KRSC conv
 * weights, FP32 biases, detect constants) and the memory plan — the last steps before tactics.
 *
 * - **Concat eliminated**: a channel Concat's output becomes a buffer; each input is placed into its channel slice, so
 *   its producer (a conv epilogue, a pool, an upsample) writes there directly. A Split's outputs are views of its input,
 *   so a C2f block's `cv1 → Split → … → Concat` chain moves cv1's whole output into the Concat buffer: no copy at all.
 *   A value that must appear in two places gets a copy layer (counted in the log).
 * - **Detect head buffers**: each level's box/class conv writes its pixel range of one `[anchors, channels]` buffer.
 * - **Nearest Resize folded** into an upsample layer that writes its concat slice.
 */
import { OspreyError } from '../core/errors.js';
import { float32ToFloat16 } from '../onnx/tensor.js';
import type { Chw, FusedOp, LoweredGraph } from './lower.js';
import { alignUp, planArena, type LiveRange } from './memory.js';
import { dtypeBytes, type BatchProfiles, type BufferPlan, type EnginePlan, type Layer, type View, type WeightPlan } from './plan.js';

export interface PlaceOptions {
  /** Weight and activation precision. Default float16 (the GPU engine); float32 is for checking the plan on the CPU. */
  precision?: 'float16' | 'float32';
  /** Top-K candidates per image. Default 300. */
  k?: number;
  /** Batch profiles; default min 1, opt 8, max 32. */
  profiles?: { min?: number; opt?: number; max?: number };
  /** Input channels are padded to a multiple of this (16-byte loads of FP16). Default 8. */
  channelAlignment?: number;
}

/** Where a value lives: inside a parent value's storage at an offset, or its own root. */
interface Placement {
  parent?: string;
  pixelOffset: number;
  channelOffset: number;
}

/** The profile batch sizes: min, powers of two in between, opt and max. */
export function profileBatches(min: number, opt: number, max: number): number[] {
  const s = new Set<number>([min, opt, max]);
  for (let b = 1; b <= max; b *= 2) if (b >= min) s.add(b);
  return [...s].filter((b) => b >= min && b <= max).sort((a, b) => a - b);
}

/** A plan with its weight blob (the bytes {@link WeightPlan} offsets point into). */
export interface CompiledPlan {
  plan: EnginePlan;
  weightData: Uint8Array;
}

export function placeAndPlan(lowered: LoweredGraph, options: PlaceOptions = {}): CompiledPlan {
  const precision = options.precision ?? 'float16';
  const k = options.k ?? 300;
  const align = options.channelAlignment ?? 8;
  const log = [...lowered.log];
  const shapes = new Map(lowered.shapes);
  const place = new Map<string, Placement>();
  const ops = lowered.ops;

  // the network input, padded: its float view gets `align` channels (zeros past the real ones)
  const inName = lowered.input.name;
  const [inC, inH, inW] = lowered.input.chw;
  const paddedC = Math.ceil(inC / align) * align;
  shapes.set(inName, [paddedC, inH, inW]);

  const rootOf = (v: string): { root: string; pixelOffset: number; channelOffset: number } => {
    let pixelOffset = 0;
    let channelOffset = 0;
    let cur = v;
    for (;;) {
      const p = place.get(cur);
      if (!p?.parent) return { root: cur, pixelOffset, channelOffset };
      pixelOffset += p.pixelOffset;
      channelOffset += p.channelOffset;
      cur = p.parent;
    }
  };
  const shape = (v: string): Chw => {
    const s = shapes.get(v);
    if (!s) throw new OspreyError('OSPREY_ERR_INTERNAL', `no shape for '${v}'`);
    return s;
  };

  // ---- Split: outputs are views of the input ----
  let splitViews = 0;
  for (const op of ops) {
    if (op.kind !== 'split') continue;
    let off = 0;
    op.outputs.forEach((o, i) => {
      place.set(o, { parent: op.input, pixelOffset: 0, channelOffset: off });
      off += op.sizes[i]!;
      splitViews++;
    });
  }

  // ---- detect: level outputs into the [anchors, C] box/class buffers ----
  const detect = ops.find((o) => o.kind === 'detect');
  if (!detect || detect.kind !== 'detect') throw new OspreyError('OSPREY_ERR_GPU_COMPILE', 'no detect head');
  const boxBuf = `${detect.name}/box_logits`;
  const clsBuf = `${detect.name}/class_logits`;
  shapes.set(boxBuf, [4 * detect.regMax, 1, detect.anchors]);
  shapes.set(clsBuf, [detect.numClasses, 1, detect.anchors]);
  const copies: Array<{ name: string; from: string; to: string; order: number }> = [];
  const producers = new Map<string, FusedOp>();
  for (const op of ops) {
    if (op.kind === 'conv' || op.kind === 'maxpool' || op.kind === 'upsample') producers.set(op.output, op);
    if (op.kind === 'concat') producers.set(op.output, op);
  }
  const placeable = (v: string) => v !== inName && !place.get(v)?.parent && producers.has(v) && producers.get(v)!.kind !== 'concat';
  for (const l of detect.levels) {
    for (const [v, buf] of [
      [l.box, boxBuf],
      [l.cls, clsBuf],
    ] as const) {
      if (!placeable(v)) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', `detect head: level output '${v}' is not a convolution output of its own`);
      place.set(v, { parent: buf, pixelOffset: l.anchorOffset, channelOffset: 0 });
    }
  }

  // ---- Concat: inputs placed into the output's channel slices ----
  let eliminated = 0;
  for (const op of ops) {
    if (op.kind !== 'concat') continue;
    const [, H, W] = shape(op.output);
    let off = 0;
    op.inputs.forEach((v, i) => {
      const [c, h, w] = shape(v);
      if (h !== H || w !== W) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', `${op.name}: input '${v}' is ${h}×${w}, the concat is ${H}×${W}`);
      const r = rootOf(v);
      const rootShape = shape(r.root);
      const rootOffset = off - r.channelOffset;
      const fits = r.pixelOffset === 0 && rootShape[1] === H && rootShape[2] === W && rootOffset >= 0 && rootOffset + rootShape[0] <= shape(op.output)[0];
      if (r.root === op.output) {
        // already placed here through another input of the same root (the second half of a Split)
        if (rootOf(v).channelOffset !== off) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', `${op.name}: '${v}' is already in this concat at another offset`);
      } else if (placeable(r.root) && fits) {
        place.set(r.root, { parent: op.output, pixelOffset: 0, channelOffset: rootOffset });
        eliminated++;
      } else {
        const copyName = `${op.name}/copy${i}`;
        shapes.set(copyName, [c, h, w]);
        place.set(copyName, { parent: op.output, pixelOffset: 0, channelOffset: off });
        copies.push({ name: copyName, from: v, to: copyName, order: op.order - 0.5 });
      }
      off += c;
    });
  }
  log.push(`place: ${eliminated} concat inputs written in place (Concat eliminated), ${splitViews} split outputs as views, ${copies.length} copies`);

  // ---- buffers: one per root value ----
  const buffers: BufferPlan[] = [];
  const bufferOf = new Map<string, number>();
  const elemBytes = dtypeBytes(precision);
  const bufferFor = (root: string): number => {
    let id = bufferOf.get(root);
    if (id !== undefined) return id;
    const [c, h, w] = shape(root);
    id = buffers.length;
    buffers.push({ id, name: root, pixels: h * w, channels: c, dtype: precision, bytesPerImage: h * w * c * elemBytes, offsetPerImage: 0, firstLayer: Infinity, lastLayer: -1 });
    bufferOf.set(root, id);
    return id;
  };
  const view = (v: string): View => {
    const r = rootOf(v);
    const [c, h, w] = shape(v);
    return { buffer: bufferFor(r.root), pixelOffset: r.pixelOffset, channelOffset: r.channelOffset, h, w, c };
  };

  // ---- weights ----
  const weights: WeightPlan[] = [];
  const chunks: Uint8Array[] = [];
  let weightBytes = 0;
  const addWeight = (name: string, shape: number[], data: Float32Array, dtype: 'float16' | 'float32'): number => {
    const bytes = dtype === 'float16' ? new Uint8Array(float32ToFloat16(data).buffer) : new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    const byteOffset = weightBytes;
    const padded = alignUp(bytes.length, 256);
    const chunk = new Uint8Array(padded);
    chunk.set(bytes);
    chunks.push(chunk);
    weightBytes += padded;
    weights.push({ id: weights.length, name, dtype, shape, byteOffset, bytes: bytes.length });
    return weights.length - 1;
  };

  // ---- layers ----
  type Pending = { order: number; layer: Layer };
  const pending: Pending[] = [];
  pending.push({ order: -1, layer: { kind: 'preprocess', name: 'preprocess', output: view(inName), inputChannels: inC } });
  for (const op of ops) {
    if (op.kind === 'conv') {
      const inShape = shape(op.input);
      const cinPadded = inShape[0];
      if (cinPadded % align !== 0) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', `${op.name}: ${cinPadded} input channels are not a multiple of ${align}`);
      const [kh, kw] = op.kernel;
      // ONNX [cout, cin, kh, kw] → KRSC [cout, kh, kw, cinPadded]
      const krsc = new Float32Array(op.cout * kh * kw * cinPadded);
      for (let o = 0; o < op.cout; o++)
        for (let c = 0; c < op.cin; c++)
          for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) krsc[((o * kh + y) * kw + x) * cinPadded + c] = op.weight[((o * op.cin + c) * kh + y) * kw + x]!;
      const w = addWeight(`${op.name}/weight`, [op.cout, kh, kw, cinPadded], krsc, precision);
      const b = addWeight(`${op.name}/bias`, [op.cout], op.bias, 'float32');
      pending.push({
        order: op.order,
        layer: {
          kind: 'conv',
          name: op.name,
          input: view(op.input),
          output: view(op.output),
          ...(op.residual ? { residual: view(op.residual) } : {}),
          weight: w,
          bias: b,
          kernel: op.kernel,
          stride: op.stride,
          pads: op.pads,
          activation: op.activation,
          fused: op.fused,
        },
      });
    } else if (op.kind === 'maxpool') {
      pending.push({ order: op.order, layer: { kind: 'maxpool', name: op.name, input: view(op.input), output: view(op.output), kernel: op.kernel, stride: op.stride, pads: op.pads } });
    } else if (op.kind === 'upsample') {
      pending.push({ order: op.order, layer: { kind: 'upsample', name: op.name, input: view(op.input), output: view(op.output), scale: op.scale } });
    } else if (op.kind === 'detect') {
      const ap = addWeight(`${op.name}/anchor_points`, [op.anchors, 2], op.anchorPoints, 'float32');
      const as = addWeight(`${op.name}/anchor_strides`, [op.anchors], op.anchorStrides, 'float32');
      pending.push({
        order: op.order,
        layer: {
          kind: 'detect',
          name: op.name,
          box: view(boxBuf),
          cls: view(clsBuf),
          anchors: op.anchors,
          regMax: op.regMax,
          numClasses: op.numClasses,
          anchorPoints: ap,
          anchorStrides: as,
          k: Math.min(k, op.anchors),
          fused: op.fused,
        },
      });
    }
  }
  for (const c of copies) pending.push({ order: c.order, layer: { kind: 'copy', name: c.name, input: view(c.from), output: view(c.to) } });
  pending.sort((a, b) => a.order - b.order);
  const layers = pending.map((p) => p.layer);

  // ---- liveness ----
  const touch = (v: View, i: number) => {
    const b = buffers[v.buffer]!;
    b.firstLayer = Math.min(b.firstLayer, i);
    b.lastLayer = Math.max(b.lastLayer, i);
  };
  layers.forEach((l, i) => {
    for (const v of layerViews(l)) touch(v, i);
  });
  const ranges: LiveRange[] = buffers.map((b) => ({ id: b.id, bytes: b.bytesPerImage, first: b.firstLayer, last: b.lastLayer }));
  const arena = planArena(ranges);
  for (const b of buffers) b.offsetPerImage = arena.offsets.get(b.id)!;
  const bufferBytes = buffers.reduce((a, b) => a + b.bytesPerImage, 0);
  // bytes the concat/split eliminations saved: the ONNX values that got no buffer of their own
  let savedBytes = 0;
  for (const [v, p] of place) {
    if (!p.parent) continue;
    const [c, h, w] = shape(v);
    if (v.endsWith('/copy') || copies.some((x) => x.name === v)) continue;
    savedBytes += c * h * w * elemBytes;
  }
  log.push(
    `memory: ${buffers.length} buffers, ${(bufferBytes / 2 ** 20).toFixed(2)} MiB per image if each had its own memory; arena by liveness ${(arena.arenaBytes / 2 ** 20).toFixed(2)} MiB per image (${((1 - arena.arenaBytes / bufferBytes) * 100).toFixed(1)}% less); the ONNX graph's ${(lowered.onnxTensorBytesPerImage / 2 ** 20).toFixed(2)} MiB of FP32 intermediate tensors`,
  );

  const min = options.profiles?.min ?? 1;
  const max = options.profiles?.max ?? 32;
  const opt = Math.min(max, Math.max(min, options.profiles?.opt ?? 8));
  if (!(min >= 1 && min <= max)) throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `batch profile min ${min} / max ${max} is not 1 ≤ min ≤ max`);
  const profiles: BatchProfiles = { min, opt, max, batches: profileBatches(min, opt, max) };
  const blob = new Uint8Array(weightBytes);
  let o = 0;
  for (const c of chunks) {
    blob.set(c, o);
    o += c.length;
  }
  const plan: EnginePlan = {
    format: 'osprey-gpu-plan',
    formatVersion: 1,
    input: { name: inName, height: inH, width: inW, channels: inC },
    output: { name: lowered.output.name, k: Math.min(k, detect.anchors) },
    precision,
    layers,
    buffers,
    weights,
    weightBytes,
    memory: {
      arenaBytesPerImage: arena.arenaBytes,
      bufferBytesPerImage: bufferBytes,
      onnxTensorBytesPerImage: lowered.onnxTensorBytesPerImage,
      concatSplitSavedBytesPerImage: savedBytes,
    },
    profiles,
    metadata: { ...lowered.metadata, osprey_input_format: 'uint8-nhwc', osprey_postprocess: 'topk', osprey_topk: String(Math.min(k, detect.anchors)), osprey_source_layout: 'yolov8' },
    passLog: log,
  };
  return { plan, weightData: blob };
}

/** Every view a layer reads or writes. */
export function layerViews(l: Layer): View[] {
  switch (l.kind) {
    case 'preprocess':
      return [l.output];
    case 'conv':
      return [l.input, l.output, ...(l.residual ? [l.residual] : [])];
    case 'maxpool':
    case 'upsample':
    case 'copy':
      return [l.input, l.output];
    case 'detect':
      return [l.box, l.cls];
  }
}
