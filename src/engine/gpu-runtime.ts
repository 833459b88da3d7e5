/**
 * The GPU engine runtime: one {@link EnginePlan} on one CUDA stream. Weights uploaded once, one arena for the
 * largest batch profile laid out by the memory plan, pinned host buffers for the uint8 frames in and the `[B, K, 6]`
 * rows out, a CUDA graph captured per batch profile (one FFI call per batch instead of ~70 launches), conv tactics
 * (own tensor-core kernels of several tile shapes, cuDNN fused conv engine configs) chosen by timing them on this GPU
 * with a timing cache.
 *
 * Runs on whatever thread creates it (the engine puts it in a worker_thread: src/engine/gpu-worker.ts); `run` waits
 * for the stream through koffi's async call, so it never blocks that thread's event loop.
 */
import { OspreyError } from '../core/errors.js';
import { CONV_PARAMS_BYTES, CONV_TILES, convKernelName, convThreads, TOPK_MAX } from '../compile/kernels.js';
import type { BufferPlan, ConvLayer, EnginePlan, Layer, View } from '../compile/plan.js';
import { CudaDriver, CuDeviceAttribute, intArg, ptrArg, type CuHandle, type DevicePtr } from '../cuda/driver.js';
import { Cudnn, FusedConvGraph, variantPack, type Descriptor } from '../cuda/cudnn.js';

/** How one conv layer runs. */
export type ConvTactic = { kind: 'own'; tile: [number, number] } | { kind: 'cudnn'; config: number };

export function tacticName(t: ConvTactic): string {
  return t.kind === 'own' ? `own-${t.tile[0]}x${t.tile[1]}` : `cudnn-${t.config}`;
}

export interface TimingRecord {
  tactic: ConvTactic;
  ms: number;
  /** Every candidate timed, name → ms (NaN: refused or wrong). */
  candidates: Record<string, number>;
}

/** Signature → timing, for one device + library versions (the runtime keys it, see {@link convSignature}). */
export type TimingCache = Record<string, TimingRecord>;

export interface DeviceInfo {
  name: string;
  computeCapability: string;
  multiprocessors: number;
  driverVersion: string;
  cudnnVersion?: string;
  memoryBytes: number;
}

export interface GpuRuntimeOptions {
  deviceId?: number;
  /** Conv tactic per layer index (from the engine file); layers without one use own-64x64 until autotuned. */
  tactics?: Record<number, ConvTactic>;
  /** Use cuDNN tactics (default true when libcudnn loads). */
  cudnn?: boolean;
  /** Batch sizes to capture graphs for (default the plan's profile batches). */
  batches?: number[];
  /** Capture CUDA graphs (default true). */
  cudaGraphs?: boolean;
  /** Also keep the decoded `[B, 4 + nc, A]` output (for checks). */
  raw?: boolean;
  log?: (line: string) => void;
}

interface Step {
  layer: number;
  name: string;
  run: () => void;
}

function cdiv(a: number, b: number): number {
  return Math.ceil(a / b);
}

/** A conv layer's shape signature for the timing cache. */
export function convSignature(plan: EnginePlan, l: ConvLayer, batch: number, device: DeviceInfo): string {
  const bi = plan.buffers[l.input.buffer]!;
  const bo = plan.buffers[l.output.buffer]!;
  const w = plan.weights[l.weight]!.shape;
  return [
    device.name,
    device.computeCapability,
    device.driverVersion,
    device.cudnnVersion ?? 'nocudnn',
    `b${batch}`,
    `in${l.input.h}x${l.input.w}x${l.input.c}/${bi.channels}`,
    `out${l.output.h}x${l.output.w}x${l.output.c}/${bo.channels}`,
    `k${w.join('x')}`,
    `s${l.stride.join('x')}`,
    `p${l.pads.join('x')}`,
    l.activation,
    l.residual ? 'res' : 'nores',
  ].join('|');
}

export class GpuRuntime {
  readonly drv: CudaDriver;
  readonly device: DeviceInfo;
  readonly stream: CuHandle;
  readonly maxBatch: number;
  readonly batches: number[];
  private readonly fns = new Map<string, CuHandle>();
  private readonly module: CuHandle;
  private readonly dWeights: DevicePtr;
  private readonly arena: DevicePtr;
  readonly dInput: DevicePtr;
  readonly dOutput: DevicePtr;
  private readonly dBoxes: DevicePtr;
  private readonly dScores: DevicePtr;
  private readonly dClasses: DevicePtr;
  readonly dRaw: DevicePtr | 0;
  readonly hostInput: { ptr: bigint; buffer: ArrayBuffer };
  readonly hostOutput: { ptr: bigint; buffer: ArrayBuffer };
  private dnn?: Cudnn;
  private dnnHandle?: CuHandle;
  private workspace: DevicePtr = 0;
  private workspaceBytes = 0;
  private readonly cudnnPlans = new Map<string, { graph: FusedConvGraph; plans: Array<{ plan: Descriptor; workspaceBytes: number } | { error: string }> }>();
  readonly tactics: Record<number, ConvTactic>;
  private readonly graphs = new Map<number, { graph: CuHandle; exec: CuHandle }>();
  private readonly stepCache = new Map<number, Step[]>();
  readonly log: (line: string) => void;
  /** Replay the captured graphs (false: launch every kernel, for the ablation). */
  graphsEnabled = true;
  /** Device bytes this runtime allocated. */
  deviceBytes = 0;
  readonly inputBytesPerImage: number;
  readonly outputBytesPerImage: number;

  constructor(readonly plan: EnginePlan, weightData: Uint8Array, cubin: Uint8Array, private readonly options: GpuRuntimeOptions = {}) {
    this.log = options.log ?? (() => {});
    this.drv = new CudaDriver();
    const drv = this.drv;
    drv.init();
    const dev = drv.device(options.deviceId ?? 0);
    drv.primaryContext(dev);
    const v = drv.driverVersion();
    this.device = {
      name: drv.deviceName(dev),
      computeCapability: `${drv.attribute(dev, CuDeviceAttribute.COMPUTE_CAPABILITY_MAJOR)}.${drv.attribute(dev, CuDeviceAttribute.COMPUTE_CAPABILITY_MINOR)}`,
      multiprocessors: drv.attribute(dev, CuDeviceAttribute.MULTIPROCESSOR_COUNT),
      driverVersion: `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`,
      memoryBytes: drv.totalMemory(dev),
    };
    if (options.cudnn !== false) {
      try {
        this.dnn = new Cudnn();
        this.dnnHandle = this.dnn.createHandle();
        this.device.cudnnVersion = this.dnn.version();
      } catch (err) {
        this.log(`cuDNN not used: ${(err as Error).message}`);
        this.dnn = undefined;
      }
    }
    this.stream = drv.streamCreate();
    if (this.dnn) this.dnn.call('cudnnSetStream', this.dnnHandle, this.stream);
    this.module = drv.moduleLoad(cubin);
    this.batches = (options.batches ?? plan.profiles.batches).slice().sort((a, b) => a - b);
    this.maxBatch = this.batches[this.batches.length - 1]!;
    const alloc = (bytes: number) => {
      this.deviceBytes += bytes;
      return drv.malloc(bytes);
    };
    this.dWeights = alloc(plan.weightBytes);
    drv.copyToDevice(this.dWeights, weightData, weightData.length);
    this.arena = alloc(plan.memory.arenaBytesPerImage * this.maxBatch);
    const det = plan.layers.find((l) => l.kind === 'detect');
    if (!det || det.kind !== 'detect') throw new OspreyError('OSPREY_ERR_ENGINE_INCOMPATIBLE', 'the plan has no detect layer');
    if (det.k > TOPK_MAX) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', `top-K ${det.k} is above the GPU top-K kernel's ${TOPK_MAX}`);
    const { height: H, width: W, channels: C } = plan.input;
    this.inputBytesPerImage = H * W * C;
    this.outputBytesPerImage = det.k * 6 * 4;
    this.dInput = alloc(this.inputBytesPerImage * this.maxBatch);
    this.dOutput = alloc(this.outputBytesPerImage * this.maxBatch);
    this.dBoxes = alloc(det.anchors * 16 * this.maxBatch);
    this.dScores = alloc(det.anchors * 4 * this.maxBatch);
    this.dClasses = alloc(det.anchors * 4 * this.maxBatch);
    this.dRaw = options.raw ? alloc((4 + det.numClasses) * det.anchors * 4 * this.maxBatch) : 0;
    this.hostInput = drv.hostAlloc(this.inputBytesPerImage * this.maxBatch);
    this.hostOutput = drv.hostAlloc(this.outputBytesPerImage * this.maxBatch);
    this.tactics = { ...(options.tactics ?? {}) };
    plan.layers.forEach((l, i) => {
      if (l.kind === 'conv' && !this.tactics[i]) this.tactics[i] = { kind: 'own', tile: [64, 64] };
    });
  }

  private fn(name: string): CuHandle {
    let f = this.fns.get(name);
    if (!f) {
      f = this.drv.getFunction(this.module, name);
      this.fns.set(name, f);
    }
    return f;
  }

  /** Device address of image 0's first element of a view, its image stride and pixel stride (elements). */
  private view(v: View, batch: number): { ptr: DevicePtr; img: number; pix: number; buf: BufferPlan } {
    const b = this.plan.buffers[v.buffer]!;
    const eb = b.dtype === 'float16' ? 2 : 4;
    return { ptr: this.arena + b.offsetPerImage * batch + (v.pixelOffset * b.channels + v.channelOffset) * eb, img: b.pixels * b.channels, pix: b.channels, buf: b };
  }

  private weight(id: number): DevicePtr {
    return this.dWeights + this.plan.weights[id]!.byteOffset;
  }

  private launch(name: string, grid: [number, number, number], block: [number, number, number], params: ArrayBufferView[], shared = 0): void {
    this.drv.launch(this.fn(name), grid, block, shared, this.stream, params);
  }

  private convParams(l: ConvLayer, batch: number): Uint8Array {
    const x = this.view(l.input, batch);
    const y = this.view(l.output, batch);
    const r = l.residual ? this.view(l.residual, batch) : undefined;
    const [cout, kh, kw, cin] = this.plan.weights[l.weight]!.shape as [number, number, number, number];
    const buf = new ArrayBuffer(CONV_PARAMS_BYTES);
    const dv = new DataView(buf);
    [x.ptr, this.weight(l.weight), this.weight(l.bias), r ? r.ptr : 0, y.ptr].forEach((p, i) => dv.setBigUint64(i * 8, BigInt(p), true));
    const ints = [batch, l.input.h, l.input.w, cin, x.img, x.pix, cout, l.output.h, l.output.w, y.img, y.pix, r ? r.img : 0, r ? r.pix : 0, kh, kw, l.stride[0], l.stride[1], l.pads[0], l.pads[1], l.activation === 'silu' ? 1 : 0];
    ints.forEach((v, i) => dv.setInt32(40 + i * 4, v, true));
    return new Uint8Array(buf);
  }

  /** The cuDNN graph and plans of a conv layer at a batch (built once, heuristics mode A, at most `max` configs). */
  private cudnnFor(li: number, batch: number, max = 4) {
    const key = `${li}@${batch}`;
    let e = this.cudnnPlans.get(key);
    if (e) return e;
    const l = this.plan.layers[li] as ConvLayer;
    const dnn = this.dnn!;
    const x = this.view(l.input, batch);
    const y = this.view(l.output, batch);
    const graph = new FusedConvGraph(dnn, this.dnnHandle!, {
      x: { n: batch, c: l.input.c, h: l.input.h, w: l.input.w, pixelStride: x.pix },
      y: { n: batch, c: l.output.c, h: l.output.h, w: l.output.w, pixelStride: y.pix },
      ...(l.residual ? { residual: { n: batch, c: l.residual.c, h: l.residual.h, w: l.residual.w, pixelStride: this.view(l.residual, batch).pix } } : {}),
      kernel: [l.kernel[0], l.kernel[1]],
      stride: l.stride,
      pad: [l.pads[0], l.pads[1]],
      silu: l.activation === 'silu',
    });
    const cfgs = graph.engineConfigs(max);
    const plans = cfgs.map((c) => graph.plan(this.dnnHandle!, c));
    e = { graph, plans };
    this.cudnnPlans.set(key, e);
    return e;
  }

  /** cuDNN plans needing more workspace than this are not used (variant packs hold the workspace address). */
  static readonly WORKSPACE_BYTES = 64 * 2 ** 20;

  private ensureWorkspace(bytes: number): boolean {
    if (bytes > GpuRuntime.WORKSPACE_BYTES) return false;
    if (!this.workspace) {
      this.workspace = this.drv.malloc(GpuRuntime.WORKSPACE_BYTES);
      this.deviceBytes += GpuRuntime.WORKSPACE_BYTES;
      this.workspaceBytes = GpuRuntime.WORKSPACE_BYTES;
    }
    return true;
  }

  /** A step running conv layer `li` with `t` at `batch`, or a reason it cannot. */
  private convStep(li: number, l: ConvLayer, batch: number, t: ConvTactic): Step | { error: string } {
    if (t.kind === 'own') {
      const [bm, bn] = t.tile;
      const cin = this.plan.weights[l.weight]!.shape[3]!;
      const x = this.view(l.input, batch);
      if (cin % 8 || x.pix % 8 || l.input.channelOffset % 8) return { error: 'own conv needs channels and offsets in multiples of 8' };
      const params = [this.convParams(l, batch)];
      const M = batch * l.output.h * l.output.w;
      const grid: [number, number, number] = [cdiv(M, bm), cdiv(l.output.c, bn), 1];
      const block: [number, number, number] = [convThreads(bm, bn), 1, 1];
      const name = convKernelName(bm, bn);
      return { layer: li, name: l.name, run: () => this.launch(name, grid, block, params) };
    }
    if (!this.dnn) return { error: 'cuDNN is not loaded' };
    let e;
    try {
      e = this.cudnnFor(li, batch);
    } catch (err) {
      return { error: (err as Error).message };
    }
    const p = e.plans[t.config];
    if (!p) return { error: `cuDNN proposed ${e.plans.length} configs` };
    if ('error' in p) return p;
    if (!this.ensureWorkspace(p.workspaceBytes)) return { error: `needs ${p.workspaceBytes} bytes of workspace` };
    const x = this.view(l.input, batch);
    const y = this.view(l.output, batch);
    const vp = variantPack(this.dnn, { x: x.ptr, w: this.weight(l.weight), b: this.weight(l.bias), y: y.ptr, ...(l.residual ? { r: this.view(l.residual, batch).ptr } : {}) }, this.workspace);
    const dnn = this.dnn;
    const handle = this.dnnHandle!;
    return { layer: li, name: l.name, run: () => dnn.execute(handle, p.plan, vp) };
  }

  /** Every layer's step at `batch` with the current tactics. */
  steps(batch: number): Step[] {
    const cached = this.stepCache.get(batch);
    if (cached) return cached;
    const steps: Step[] = [];
    this.plan.layers.forEach((l, li) => steps.push(...this.layerSteps(li, l, batch)));
    this.stepCache.set(batch, steps);
    return steps;
  }

  private layerSteps(li: number, l: Layer, batch: number): Step[] {
    const T = 256;
    switch (l.kind) {
      case 'preprocess': {
        const o = this.view(l.output, batch);
        const px = this.plan.input.height * this.plan.input.width;
        const params = [ptrArg(this.dInput), ptrArg(o.ptr), intArg(px), intArg(batch), intArg(l.inputChannels), intArg(l.output.c), intArg(o.img), intArg(o.pix)];
        return [{ layer: li, name: l.name, run: () => this.launch('osprey_preprocess', [cdiv(px * batch, T), 1, 1], [T, 1, 1], params) }];
      }
      case 'conv': {
        const s = this.convStep(li, l, batch, this.tactics[li]!);
        if ('error' in s) {
          this.log(`${l.name}: ${tacticName(this.tactics[li]!)} unavailable (${s.error}); using own-64x64`);
          this.tactics[li] = { kind: 'own', tile: [64, 64] };
          const f = this.convStep(li, l, batch, this.tactics[li]!);
          if ('error' in f) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', `${l.name}: ${f.error}`);
          return [f];
        }
        return [s];
      }
      case 'maxpool': {
        const x = this.view(l.input, batch);
        const y = this.view(l.output, batch);
        const n = batch * l.output.h * l.output.w * (l.output.c / 8);
        const params = [ptrArg(x.ptr), ptrArg(y.ptr), intArg(batch), intArg(l.input.h), intArg(l.input.w), intArg(l.input.c), intArg(x.img), intArg(x.pix), intArg(l.output.h), intArg(l.output.w), intArg(y.img), intArg(y.pix),
          intArg(l.kernel[0]), intArg(l.kernel[1]), intArg(l.stride[0]), intArg(l.stride[1]), intArg(l.pads[0]), intArg(l.pads[1])];
        return [{ layer: li, name: l.name, run: () => this.launch('osprey_maxpool', [cdiv(n, T), 1, 1], [T, 1, 1], params) }];
      }
      case 'upsample':
      case 'copy': {
        const x = this.view(l.input, batch);
        const y = this.view(l.output, batch);
        const n = batch * l.output.h * l.output.w * (l.output.c / 8);
        const params = [ptrArg(x.ptr), ptrArg(y.ptr), intArg(batch), intArg(l.input.w), intArg(l.output.c), intArg(x.img), intArg(x.pix), intArg(l.output.h), intArg(l.output.w), intArg(y.img), intArg(y.pix), intArg(l.kind === 'upsample' ? l.scale : 1)];
        return [{ layer: li, name: l.name, run: () => this.launch('osprey_upsample', [cdiv(n, T), 1, 1], [T, 1, 1], params) }];
      }
      case 'detect': {
        const b = this.view(l.box, batch);
        const c = this.view(l.cls, batch);
        const dec = [ptrArg(b.ptr), intArg(b.img), intArg(b.pix), ptrArg(c.ptr), intArg(c.img), intArg(c.pix), ptrArg(this.weight(l.anchorPoints)), ptrArg(this.weight(l.anchorStrides)),
          intArg(batch), intArg(l.anchors), intArg(l.regMax), intArg(l.numClasses), ptrArg(this.dBoxes), ptrArg(this.dScores), ptrArg(this.dClasses), ptrArg(this.dRaw)];
        const topk = [ptrArg(this.dBoxes), ptrArg(this.dScores), ptrArg(this.dClasses), intArg(l.anchors), intArg(l.k), ptrArg(this.dOutput)];
        return [
          { layer: li, name: `${l.name}/decode`, run: () => this.launch('osprey_detect_decode', [cdiv(batch * l.anchors, T), 1, 1], [T, 1, 1], dec) },
          { layer: li, name: `${l.name}/topk`, run: () => this.launch('osprey_topk', [batch, 1, 1], [1024, 1, 1], topk) },
        ];
      }
    }
  }

  /** Replaces the conv tactics (layer index → tactic) and re-captures the graphs that were captured. */
  setTactics(t: Record<number, ConvTactic>): void {
    Object.assign(this.tactics, t);
    this.stepCache.clear();
    if (this.graphs.size > 0) this.captureGraphs();
  }

  /** Enqueues the whole network at `batch` (no graph). */
  enqueue(batch: number): void {
    for (const s of this.steps(batch)) s.run();
  }

  /** Captures one CUDA graph per batch profile. Returns the batches that got one. */
  captureGraphs(): number[] {
    const ok: number[] = [];
    if (this.options.cudaGraphs === false) return ok;
    for (const b of this.batches) {
      const old = this.graphs.get(b);
      if (old) {
        this.drv.raw('cuGraphExecDestroy')(old.exec);
        this.drv.raw('cuGraphDestroy')(old.graph);
        this.graphs.delete(b);
      }
      try {
        this.graphs.set(b, this.drv.captureGraph(this.stream, () => this.enqueue(b)));
        ok.push(b);
      } catch (err) {
        this.log(`batch ${b}: CUDA graph capture failed (${(err as Error).message}); runs launch each kernel`);
      }
    }
    return ok;
  }

  /** The profile batch that serves `n` images. */
  profileFor(n: number): number {
    const b = this.batches.find((x) => x >= n);
    if (b === undefined) throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `batch ${n} is above the engine's largest profile ${this.maxBatch}`);
    return b;
  }

  /** Enqueues input copy (from the pinned input buffer), the network and the output copy for `n` images. */
  enqueueRun(n: number, options: { copyIn?: boolean; copyOut?: boolean } = {}): number {
    const b = this.profileFor(n);
    if (options.copyIn !== false) this.drv.call('cuMemcpyHtoDAsync_v2', this.dInput, this.hostInput.ptr, n * this.inputBytesPerImage, this.stream);
    const g = this.graphsEnabled ? this.graphs.get(b) : undefined;
    if (g) this.drv.call('cuGraphLaunch', g.exec, this.stream);
    else this.enqueue(b);
    if (options.copyOut !== false) this.drv.call('cuMemcpyDtoHAsync_v2', this.hostOutput.ptr, this.dOutput, n * this.outputBytesPerImage, this.stream);
    return b;
  }

  /**
   * Runs `n` images: `frames` (uint8 NHWC `[n, H, W, 3]`) copied into the pinned input buffer (omit it when the caller
   * wrote there already), and resolves with a copy of the `[n, K, 6]` rows.
   */
  async run(n: number, frames?: Uint8Array): Promise<Float32Array> {
    if (frames) {
      if (frames.length !== n * this.inputBytesPerImage) throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `expected ${n * this.inputBytesPerImage} input bytes for ${n} images, got ${frames.length}`);
      new Uint8Array(this.hostInput.buffer, 0, frames.length).set(frames);
    }
    this.enqueueRun(n);
    await this.drv.synchronizeAsync(this.stream);
    return new Float32Array(this.hostOutput.buffer.slice(0, n * this.outputBytesPerImage));
  }

  synchronize(): void {
    this.drv.call('cuStreamSynchronize', this.stream);
  }

  /** Milliseconds of `reps` runs of `fn` on the stream (events), after `warmup` runs. */
  timeMs(fn: () => void, reps = 10, warmup = 2): number {
    for (let i = 0; i < warmup; i++) fn();
    const e0 = this.drv.eventCreate();
    const e1 = this.drv.eventCreate();
    this.drv.call('cuEventRecord', e0, this.stream);
    for (let i = 0; i < reps; i++) fn();
    this.drv.call('cuEventRecord', e1, this.stream);
    this.drv.call('cuEventSynchronize', e1);
    const ms = this.drv.elapsedMs(e0, e1) / reps;
    this.drv.raw('cuEventDestroy_v2')(e0);
    this.drv.raw('cuEventDestroy_v2')(e1);
    return ms;
  }

  /** Reads a buffer of image 0..n-1 back as FP16 bits (checks). */
  readBuffer(bufferId: number, batch: number, n = batch): Uint16Array {
    const b = this.plan.buffers[bufferId]!;
    const out = new Uint16Array((b.bytesPerImage * n) / 2);
    this.synchronize();
    this.drv.copyToHost(out, this.arena + b.offsetPerImage * batch, b.bytesPerImage * n);
    return out;
  }

  readRaw(n: number): Float32Array {
    const det = this.plan.layers.find((l) => l.kind === 'detect')!;
    if (det.kind !== 'detect' || !this.dRaw) throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', 'the runtime was made without raw: true');
    const out = new Float32Array((4 + det.numClasses) * det.anchors * n);
    this.synchronize();
    this.drv.copyToHost(out, this.dRaw, out.byteLength);
    return out;
  }

  /**
   * Chooses each conv layer's tactic by timing every candidate at `batch` on this GPU (own tiles; cuDNN engine
   * configs, each checked against the own kernel's output on sampled elements), reusing `cache` entries.
   * Call after one full run so the arena holds real activations. Returns the updated cache.
   */
  autotune(batch: number, cache: TimingCache = {}, options: { reps?: number; cudnnConfigs?: number; cudnnBudgetMs?: number } = {}): { cache: TimingCache; timedLayers: number; cachedLayers: number; ms: number; cudnnMs: number } {
    const t0 = performance.now();
    let cudnnMs = 0;
    let timed = 0;
    let cached = 0;
    this.enqueue(batch);
    this.synchronize();
    this.plan.layers.forEach((l, li) => {
      if (l.kind !== 'conv') return;
      const sig = convSignature(this.plan, l, batch, this.device);
      const hit = cache[sig];
      if (hit) {
        this.tactics[li] = hit.tactic;
        cached++;
        return;
      }
      const candidates: ConvTactic[] = CONV_TILES.map(([bm, bn]) => ({ kind: 'own', tile: [bm, bn] }) as ConvTactic);
      let reference: Uint16Array | undefined;
      if (this.dnn && cudnnMs < (options.cudnnBudgetMs ?? Infinity)) {
        const tc = performance.now();
        try {
          const e = this.cudnnFor(li, batch, options.cudnnConfigs ?? 4);
          cudnnMs += performance.now() - tc;
          e.plans.forEach((p, i) => {
            if (!('error' in p)) candidates.push({ kind: 'cudnn', config: i });
          });
        } catch (err) {
          cudnnMs += performance.now() - tc;
          this.log(`${l.name}: cuDNN graph refused (${(err as Error).message.split('\n')[0]})`);
        }
      }
      const times: Record<string, number> = {};
      let best: { t: ConvTactic; ms: number } | undefined;
      for (const t of candidates) {
        const s = this.convStep(li, l, batch, t);
        if ('error' in s) {
          times[tacticName(t)] = Number.NaN;
          continue;
        }
        try {
          if (t.kind === 'cudnn') {
            if (!reference) {
              const own = this.convStep(li, l, batch, { kind: 'own', tile: [64, 64] }) as Step;
              own.run();
              reference = this.readBuffer(l.output.buffer, batch);
            }
            s.run();
            if (!sameOutput(reference, this.readBuffer(l.output.buffer, batch))) {
              times[tacticName(t)] = Number.NaN;
              this.log(`${l.name}: ${tacticName(t)} output differs from the own kernel's; not used`);
              continue;
            }
          }
          const ms = this.timeMs(s.run, options.reps ?? 10);
          times[tacticName(t)] = ms;
          if (!best || ms < best.ms) best = { t, ms };
        } catch (err) {
          times[tacticName(t)] = Number.NaN;
          this.log(`${l.name}: ${tacticName(t)} failed (${(err as Error).message.split('\n')[0]})`);
        }
      }
      if (!best) throw new OspreyError('OSPREY_ERR_GPU_COMPILE', `${l.name}: no tactic runs`);
      this.tactics[li] = best.t;
      cache[sig] = { tactic: best.t, ms: best.ms, candidates: times };
      timed++;
    });
    this.stepCache.clear();
    return { cache, timedLayers: timed, cachedLayers: cached, ms: performance.now() - t0, cudnnMs };
  }

  /** GPU time per layer at `batch` (each step timed alone), ms. */
  profileLayers(batch: number, reps = 5): Array<{ layer: number; name: string; ms: number }> {
    return this.steps(batch).map((s) => ({ layer: s.layer, name: s.name, ms: this.timeMs(s.run, reps, 1) }));
  }

  close(): void {
    try {
      this.synchronize();
    } catch {
      /* freeing anyway */
    }
    for (const g of this.graphs.values()) {
      this.drv.raw('cuGraphExecDestroy')(g.exec);
      this.drv.raw('cuGraphDestroy')(g.graph);
    }
    this.graphs.clear();
    for (const e of this.cudnnPlans.values()) {
      for (const p of e.plans) if (!('error' in p)) this.dnn!.destroy(p.plan);
      e.graph.destroy();
    }
    for (const p of [this.dWeights, this.arena, this.dInput, this.dOutput, this.dBoxes, this.dScores, this.dClasses, this.dRaw, this.workspace]) if (p) this.drv.raw('cuMemFree_v2')(p);
    this.drv.raw('cuMemFreeHost')(this.hostInput.ptr);
    this.drv.raw('cuMemFreeHost')(this.hostOutput.ptr);
    this.drv.raw('cuStreamDestroy_v2')(this.stream);
    this.drv.raw('cuModuleUnload')(this.module);
  }
}

/** FP16 outputs equal within FP16 tolerance on every 61st element. */
function sameOutput(a: Uint16Array, b: Uint16Array): boolean {
  const f = (h: number) => {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 31;
    const m = h & 1023;
    return e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? Number.NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  };
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i += 61) {
    const x = f(a[i]!);
    const y = f(b[i]!);
    if (Number.isNaN(y) && !Number.isNaN(x)) return false;
    num += (x - y) ** 2;
    den += x * x;
  }
  return Math.sqrt(num / Math.max(den, 1e-30)) < 1e-2;
}
