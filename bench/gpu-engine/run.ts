/**
 * One full run of Osprey's GPU engine on the lent GPU (bench/gpu-engine/README in docs/gpu.md): library report,
 * build (lower/fuse/plan + NVRTC), every layer against the CPU reference executor (itself equal to ONNX Runtime CPU,
 * test/compile), cuDNN fused conv tactics against it, autotuning with a timing cache, CUDA graphs per profile,
 * bus.jpg/zidane.jpg detections against the CPU path, throughput/latency and the ablations. JSON to $OUT.
 *
 *   node run.mjs --model yolov8n.onnx --frames frames.bin [--model2 yolov8s-synth.onnx]
 *   node run.mjs --merge   (after torch_peers.py: rows with ratios to PyTorch from the same command)
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { compilePlan, type ConvLayer, type EnginePlan, type View } from '../../src/compile/index.js';
import { KERNEL_SOURCE } from '../../src/compile/kernels.js';
import { Nvrtc } from '../../src/cuda/nvrtc.js';
import { CudaDriver, CuDeviceAttribute } from '../../src/cuda/driver.js';
import { convSignature, GpuRuntime, tacticName, type ConvTactic, type TimingCache } from '../../src/engine/gpu-runtime.js';
import { formatGpuEngineReport, gpuEngineReport } from '../../src/gpu/cuda-libraries.js';
import { readOnnxModel } from '../../src/onnx/index.js';
import { engineFileName, writeEngineFile } from '../../src/compile/serialize.js';
import { GpuEngine } from '../../src/engine/gpu-engine.js';
import { createHash } from 'node:crypto';

const OUT = process.env.OUT ?? '/tmp/out';
const arg = (name: string, d?: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : d;
};
const results: Record<string, unknown> = { startedAt: new Date().toISOString(), node: process.version };
const save = () => writeFileSync(join(OUT, 'gpu-engine.json'), JSON.stringify(results, null, 1));
const say = (l: string) => console.log(l);

async function section<T>(name: string, fn: () => Promise<T> | T): Promise<T | undefined> {
  const t0 = performance.now();
  try {
    const r = await fn();
    results[name] = r;
    say(`[${name}] ok ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return r;
  } catch (err) {
    results[name] = { error: (err as Error).message, stack: (err as Error).stack?.split('\n').slice(0, 6).join('\n') };
    say(`[${name}] FAILED: ${(err as Error).message.split('\n').slice(0, 4).join(' | ')}`);
    return undefined;
  } finally {
    save();
  }
}

function f16(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 31;
  const m = h & 1023;
  return e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? Number.NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
}

/** A view of image 0 read from a buffer's FP16 bits, NCHW float32. */
function viewOf(plan: EnginePlan, bits: Uint16Array, v: View): Float32Array {
  const b = plan.buffers[v.buffer]!;
  const out = new Float32Array(v.c * v.h * v.w);
  for (let p = 0; p < v.h * v.w; p++) for (let c = 0; c < v.c; c++) out[c * v.h * v.w + p] = f16(bits[(v.pixelOffset + p) * b.channels + v.channelOffset + c]!);
  return out;
}

function rel(a: Float32Array, b: Float32Array): { rel: number; max: number; nan: number } {
  let num = 0;
  let den = 0;
  let max = 0;
  let nan = 0;
  for (let i = 0; i < b.length; i++) {
    if (!Number.isFinite(a[i]!)) nan++;
    const d = a[i]! - b[i]!;
    num += d * d;
    den += b[i]! * b[i]!;
    max = Math.max(max, Math.abs(d));
  }
  return { rel: Math.sqrt(num / Math.max(den, 1e-30)), max, nan };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** Confident rows (score ≥ 0.25) of `[n, K, 6]` per image. */
function rows(d: Float32Array, k: number, image: number): number[][] {
  const out: number[][] = [];
  for (let r = 0; r < k; r++) {
    const o = (image * k + r) * 6;
    if (d[o + 4]! >= 0.25) out.push(Array.from(d.subarray(o, o + 6)));
  }
  return out;
}

function matchRows(gpu: number[][], ref: number[][]) {
  let matched = 0;
  let worstBox = 0;
  let worstScore = 0;
  for (const r of ref) {
    const dist = (x: number[]) => Math.max(...[0, 1, 2, 3].map((q) => Math.abs(x[q]! - r[q]!)));
    const m = gpu.filter((x) => x[5] === r[5]).sort((x, y) => dist(x) - dist(y))[0];
    if (m && dist(m) < 1) {
      matched++;
      worstBox = Math.max(worstBox, dist(m));
      worstScore = Math.max(worstScore, Math.abs(m[4]! - r[4]!));
    }
  }
  return { reference: ref.length, gpu: gpu.length, matched, worstBoxPx: worstBox, worstScore };
}

interface RefOut {
  layers: Array<{ index: number; name: string; data: Float32Array }>;
  raw: Float32Array;
  detections: Float32Array;
  ms: number;
}

function reference(modelPath: string, framePath: string, k: number, profiles: { min: number; opt: number; max: number }): Promise<RefOut> {
  const w = new Worker(new URL('./reference-worker.mjs', import.meta.url), { workerData: { modelPath, framePath, k, profiles } });
  return new Promise((res, rej) => {
    w.once('message', (m) => {
      res(m as RefOut);
      void w.terminate();
    });
    w.once('error', rej);
  });
}

async function throughput(rt: GpuRuntime, batch: number, seconds: number, opts: { copyIn?: boolean; copyOut?: boolean } = {}) {
  const lat: number[] = [];
  for (let i = 0; i < 5; i++) {
    rt.enqueueRun(batch, opts);
    await rt.drv.synchronizeAsync(rt.stream);
  }
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    const s = performance.now();
    rt.enqueueRun(batch, opts);
    await rt.drv.synchronizeAsync(rt.stream);
    lat.push(performance.now() - s);
  }
  const total = (performance.now() - t0) / 1000;
  return { batch, runs: lat.length, imagesPerSecond: Math.round((lat.length * batch) / total), p50Ms: +pct(lat, 50).toFixed(3), p90Ms: +pct(lat, 90).toFixed(3), p99Ms: +pct(lat, 99).toFixed(3) };
}

/** Several runtimes (instances, each its own stream and arena) looping concurrently. */
async function instancesThroughput(rts: GpuRuntime[], batch: number, seconds: number) {
  let runs = 0;
  const t0 = performance.now();
  await Promise.all(
    rts.map(async (rt) => {
      while (performance.now() - t0 < seconds * 1000) {
        rt.enqueueRun(batch);
        await rt.drv.synchronizeAsync(rt.stream);
        runs++;
      }
    }),
  );
  return { batch, instances: rts.length, imagesPerSecond: Math.round((runs * batch) / ((performance.now() - t0) / 1000)) };
}

function fillPinned(rt: GpuRuntime, frames: Uint8Array, batch: number): void {
  const per = rt.inputBytesPerImage;
  const view = new Uint8Array(rt.hostInput.buffer);
  const n = frames.length / per;
  for (let i = 0; i < batch; i++) view.set(frames.subarray((i % n) * per, (i % n + 1) * per), i * per);
}

async function benchModel(label: string, modelPath: string, frames: Uint8Array, framePaths: string[], full: boolean) {
  const out: Record<string, unknown> = {};
  results[label] = out;
  const k = 300;
  const profiles = { min: 1, opt: 32, max: 32 };
  const refs = full ? framePaths.map((p) => reference(modelPath, p, k, profiles)) : [];
  const tb = performance.now();
  const { plan, weightData } = compilePlan(readOnnxModel(modelPath), { precision: 'float16', k, profiles });
  const planMs = performance.now() - tb;
  let nvrtc: Nvrtc | undefined;
  let rt: GpuRuntime | undefined;
  let cubin: Uint8Array | undefined;
  await section(`${label}.build`, () => {
    nvrtc = new Nvrtc();
    const drv = new CudaDriver();
    drv.init();
    const dev = drv.device(0);
    const cc = `${drv.attribute(dev, CuDeviceAttribute.COMPUTE_CAPABILITY_MAJOR)}.${drv.attribute(dev, CuDeviceAttribute.COMPUTE_CAPABILITY_MINOR)}`;
    const t0 = performance.now();
    const m = compileFor(nvrtc!, cc);
    cubin = m.cubin;
    const nvrtcMs = performance.now() - t0;
    const tl = performance.now();
    rt = new GpuRuntime(plan, weightData, cubin, { raw: full, log: say });
    const loadMs = performance.now() - tl;
    return {
      planMs: +planMs.toFixed(1),
      nvrtcMs: +nvrtcMs.toFixed(1),
      cubinBytes: cubin.length,
      loadMs: +loadMs.toFixed(1),
      device: rt.device,
      nvrtc: nvrtc!.version(),
      nvrtcLog: m.log.slice(0, 2000),
      cudnn: rt.device.cudnnVersion ?? null,
      layers: plan.layers.length,
      memory: plan.memory,
      passLog: plan.passLog,
      deviceBytes: rt.deviceBytes,
    };
  });
  if (!rt) return;
  const r = rt;
  const per = r.inputBytesPerImage;
  if (full) {
    const ref = await Promise.all(refs);
    out.referenceMs = ref.map((x) => Math.round(x.ms));
    await section(`${label}.layers`, async () => {
      // batch 1, bus.jpg, own-64x64 everywhere: every layer's output against the reference's
      new Uint8Array(r.hostInput.buffer).set(frames.subarray(0, per));
      r.drv.call('cuMemcpyHtoDAsync_v2', r.dInput, r.hostInput.ptr, per, r.stream);
      const steps = r.steps(1);
      const byIndex = new Map(ref[0]!.layers.map((l) => [l.index, l]));
      const perLayer: Array<{ layer: number; name: string; rel: number; max: number; nan: number }> = [];
      for (const s of steps) {
        s.run();
        const l = plan.layers[s.layer]!;
        const want = byIndex.get(s.layer);
        if (!want || !('output' in l)) continue;
        const got = viewOf(plan, r.readBuffer(l.output.buffer, 1, 1), l.output);
        perLayer.push({ layer: s.layer, name: l.name, ...rel(got, want.data) });
      }
      r.synchronize();
      const raw = rel(r.readRaw(1), ref[0]!.raw);
      const worst = perLayer.reduce((a, b) => (b.rel > a.rel ? b : a));
      return { worstLayer: worst, raw, layers: perLayer.length, perLayer };
    });
    await section(`${label}.cudnn-fused-conv`, async () => {
      // cuDNN's fused conv (+bias +SiLU [+residual]) against the reference, on three kinds of layer, batch 1
      const picks: number[] = [];
      const convs = plan.layers.map((l, i) => [l, i] as const).filter(([l]) => l.kind === 'conv') as Array<readonly [ConvLayer, number]>;
      const first = convs[0];
      const withRes = convs.find(([l]) => l.residual);
      const intoSlice = convs.find(([l]) => plan.buffers[l.output.buffer]!.channels !== l.output.c);
      for (const c of [first, withRes, intoSlice]) if (c && !picks.includes(c[1])) picks.push(c[1]);
      const byIndex = new Map(ref[0]!.layers.map((l) => [l.index, l]));
      const checks = [];
      for (const li of picks) {
        const l = plan.layers[li] as ConvLayer;
        // reference input state: run the network up to this layer with own kernels
        new Uint8Array(r.hostInput.buffer).set(frames.subarray(0, per));
        r.drv.call('cuMemcpyHtoDAsync_v2', r.dInput, r.hostInput.ptr, per, r.stream);
        const steps = r.steps(1);
        for (const s of steps) {
          if (s.layer === li) break;
          s.run();
        }
        const results1: Record<string, unknown> = {};
        for (let cfg = 0; cfg < 3; cfg++) {
          const t: ConvTactic = { kind: 'cudnn', config: cfg };
          const saved = r.tactics[li]!;
          r.setTactics({ [li]: t });
          const st = r.steps(1).find((s) => s.layer === li)!;
          const used = tacticName(r.tactics[li]!);
          if (used !== tacticName(t)) {
            results1[tacticName(t)] = 'unavailable';
            r.setTactics({ [li]: saved });
            continue;
          }
          st.run();
          const got = viewOf(plan, r.readBuffer(l.output.buffer, 1, 1), l.output);
          results1[tacticName(t)] = rel(got, byIndex.get(li)!.data);
          r.setTactics({ [li]: saved });
        }
        checks.push({ layer: li, name: l.name, kernel: l.kernel, residual: !!l.residual, outputChannels: l.output.c, bufferChannels: plan.buffers[l.output.buffer]!.channels, results: results1 });
      }
      return checks;
    });
  }
  // ---- autotune (batch 32), then the cache rebuild ----
  fillPinned(r, frames, 32);
  r.drv.call('cuMemcpyHtoDAsync_v2', r.dInput, r.hostInput.ptr, 32 * per, r.stream);
  const defaultTactics = { ...r.tactics };
  let cache: TimingCache = {};
  await section(`${label}.autotune`, () => {
    const a = r.autotune(32, {}, { cudnnConfigs: 3, cudnnBudgetMs: 90_000 });
    cache = a.cache;
    const chosen: Record<string, number> = {};
    for (const t of Object.values(r.tactics)) chosen[tacticName(t)] = (chosen[tacticName(t)] ?? 0) + 1;
    const again = r.autotune(32, cache);
    writeFileSync(join(OUT, `${label}-timing-cache.json`), JSON.stringify(cache));
    return { ms: Math.round(a.ms), cudnnPlanMs: Math.round(a.cudnnMs), timedLayers: a.timedLayers, chosen, rebuildWithCacheMs: Math.round(again.ms), cachedLayers: again.cachedLayers };
  });
  const tuned = { ...r.tactics };
  await section(`${label}.graphs`, () => {
    const t0 = performance.now();
    const ok = r.captureGraphs();
    return { captured: ok, ms: Math.round(performance.now() - t0) };
  });
  if (full) {
    await section(`${label}.detections`, async () => {
      // bus.jpg + zidane.jpg in one batch of 2 (profile 2, graph), against the CPU path's rows
      const ref = await Promise.all(refs);
      const d = await r.run(2, frames.subarray(0, 2 * per));
      return [0, 1].map((i) => ({ image: framePaths[i], ...matchRows(rows(d, 300, i), rows(ref[i]!.detections, 300, 0)), top: rows(d, 300, i).slice(0, 3).map((x) => x.map((v) => +v.toFixed(2))) }));
    });
  }
  if (full) {
    await section(`${label}.engine-file`, async () => {
      // serialize (plan + tactics + cubin for this GPU), load through the Engine interface in a worker, run
      const bytes = writeEngineFile(
        {
          createdAt: new Date().toISOString(),
          osprey: 'dev',
          source: { file: modelPath, sha256: createHash('sha256').update(readFileSync(modelPath)).digest('hex') },
          target: { gpuName: r.device.name, computeCapability: r.device.computeCapability, driverVersion: r.device.driverVersion, nvrtcVersion: nvrtc!.version(), cudnnVersion: r.device.cudnnVersion ?? null },
          plan,
          tactics: r.tactics,
          build: {},
        },
        weightData,
        cubin!,
      );
      const file = join(tmpdir(), engineFileName(r.device.computeCapability, label));
      writeFileSync(file, bytes);
      const t0 = performance.now();
      const eng = await GpuEngine.load(file, { warmupRuns: 1 });
      const loadMs = performance.now() - t0;
      const out = await eng.run({ images: { type: 'uint8', dims: [2, 640, 640, 3], data: frames.slice(0, 2 * per) } });
      const ref = await Promise.all(refs);
      const det = out[plan.output.name]!.data as Float32Array;
      const match = [0, 1].map((i) => matchRows(rows(det, 300, i), rows(ref[i]!.detections, 300, 0)));
      const lat: number[] = [];
      let buf: Uint8Array = frames.slice(0, per);
      for (let i = 0; i < 300; i++) {
        const s = performance.now();
        await eng.run({ images: { type: 'uint8', dims: [1, 640, 640, 3], data: buf } }, { onInputsReleased: (f) => (buf = f.images!.data as Uint8Array) });
        lat.push(performance.now() - s);
      }
      await eng.close();
      return { engineBytes: bytes.length, loadMs: Math.round(loadMs), workerLoad: eng.load, match, batch1ThroughWorker: { p50Ms: +pct(lat, 50).toFixed(3), p90Ms: +pct(lat, 90).toFixed(3), p99Ms: +pct(lat, 99).toFixed(3) } };
    });
  }
  // ---- speed ----
  await section(`${label}.speed`, async () => {
    const rowsOut: Record<string, unknown>[] = [];
    for (const b of [32, 8, 1]) {
      fillPinned(r, frames, b);
      rowsOut.push({ config: 'engine (autotuned, CUDA graph, pinned)', ...(await throughput(r, b, b === 1 ? 3 : 2)) });
    }
    rowsOut.push({ config: 'GPU only (graph replay, no copies)', ...(await throughput(r, 32, 1.5, { copyIn: false, copyOut: false })) });
    rowsOut.push({ config: 'GPU only (graph replay, no copies)', ...(await throughput(r, 1, 1.5, { copyIn: false, copyOut: false })) });
    r.graphsEnabled = false;
    for (const b of [32, 1]) rowsOut.push({ config: 'no CUDA graph (kernel launches)', ...(await throughput(r, b, 1.5)) });
    r.graphsEnabled = true;
    // pageable input: copy from a JS buffer instead of the pinned one
    const js = new Uint8Array(32 * per);
    for (let i = 0; i < 32; i++) js.set(frames.subarray((i % 2) * per, (i % 2 + 1) * per), i * per);
    {
      const lat: number[] = [];
      const t0 = performance.now();
      while (performance.now() - t0 < 1500) {
        const s = performance.now();
        r.drv.call('cuMemcpyHtoDAsync_v2', r.dInput, js, js.length, r.stream);
        r.enqueueRun(32, { copyIn: false });
        await r.drv.synchronizeAsync(r.stream);
        lat.push(performance.now() - s);
      }
      rowsOut.push({ config: 'pageable input (JS buffer → device)', batch: 32, imagesPerSecond: Math.round((lat.length * 32) / ((performance.now() - t0) / 1000)), p50Ms: +pct(lat, 50).toFixed(3) });
    }
    r.setTactics(defaultTactics);
    for (const b of [32, 1]) rowsOut.push({ config: 'no autotuning (own-64x64 everywhere)', ...(await throughput(r, b, 1.5)) });
    const ownBest: Record<number, ConvTactic> = {};
    for (const [i, t] of Object.entries(tuned)) ownBest[Number(i)] = t.kind === 'own' ? t : bestOwn(cache, convSignature(plan, plan.layers[Number(i)] as ConvLayer, 32, r.device));
    r.setTactics(ownBest);
    rowsOut.push({ config: 'autotuned, own kernels only', ...(await throughput(r, 32, 1.5)) });
    r.setTactics(tuned);
    // instances: a second runtime with the same tactics, its own stream and arena
    try {
      const r2 = new GpuRuntime(plan, weightData, cubin!, { tactics: tuned, batches: [1, 32] });
      r2.captureGraphs();
      fillPinned(r2, frames, 32);
      fillPinned(r, frames, 32);
      rowsOut.push({ config: '2 instances (2 streams)', ...(await instancesThroughput([r, r2], 32, 2)) });
      r2.close();
    } catch (err) {
      rowsOut.push({ config: '2 instances', error: (err as Error).message });
    }
    return rowsOut;
  });
  await section(`${label}.profile`, () => {
    const p = r.profileLayers(32);
    const total = p.reduce((a, b) => a + b.ms, 0);
    return { totalMs: +total.toFixed(3), top: [...p].sort((a, b) => b.ms - a.ms).slice(0, 15).map((x) => ({ ...x, ms: +x.ms.toFixed(4), tactic: plan.layers[x.layer]!.kind === 'conv' ? tacticName(r.tactics[x.layer]!) : '' })) };
  });
  out.deviceBytes = r.deviceBytes;
  out.memInfo = r.drv.memInfo();
  r.close();
}

/** The fastest own tile in a layer's timing record (for the "own kernels only" ablation). */
function bestOwn(cache: TimingCache, signature: string): ConvTactic {
  let best: [string, number] | undefined;
  for (const [name, ms] of Object.entries(cache[signature]?.candidates ?? {})) if (name.startsWith('own-') && Number.isFinite(ms) && (!best || ms < best[1])) best = [name, ms];
  if (!best) return { kind: 'own', tile: [64, 64] };
  const [bm, bn] = best[0].slice(4).split('x').map(Number) as [number, number];
  return { kind: 'own', tile: [bm, bn] };
}

function compileFor(nvrtc: Nvrtc, cc: string) {
  return nvrtc.compile(KERNEL_SOURCE, `sm_${cc.replace('.', '')}`);
}

function merge(): void {
  const eng = JSON.parse(readFileSync(join(OUT, 'gpu-engine.json'), 'utf8'));
  const torch = existsSync(join(OUT, 'torch-peers.json')) ? (JSON.parse(readFileSync(join(OUT, 'torch-peers.json'), 'utf8')) as Array<Record<string, unknown>>) : [];
  const peer = (model: string, bs: number, variant: string, mode: string) => torch.find((t) => t.model === model && t.batch === bs && t.variant === variant && t.mode === mode)?.images_per_s as number | undefined;
  const table: Record<string, unknown>[] = [];
  for (const [label, model] of [
    ['yolov8n', 'yolov8n'],
    ['yolov8s', 'yolov8s'],
  ] as const) {
    const sp = eng[`${label}.speed`] as Array<Record<string, unknown>> | undefined;
    if (!Array.isArray(sp)) continue;
    for (const s of sp) {
      const bs = s.batch as number;
      const ips = s.imagesPerSecond as number;
      const ref = peer(model, bs, 'nchw', 'host-uint8');
      const best = peer(model, bs, 'channels_last', 'host-uint8-graph');
      table.push({
        engine: 'osprey-cuda',
        config: s.config,
        model,
        precision: 'fp16',
        batch: bs,
        imagesPerSecond: ips,
        p50Ms: s.p50Ms,
        p90Ms: s.p90Ms,
        p99Ms: s.p99Ms,
        ratioToPytorch: ref ? +(ips / ref).toFixed(3) : null,
        ratioToPytorchBest: best ? +(ips / best).toFixed(3) : null,
        ratioToTorchCompile: null,
      });
    }
  }
  for (const t of torch) table.push({ engine: `pytorch-${t.variant}-${t.mode}`, model: t.model, precision: 'fp16', batch: t.batch, imagesPerSecond: t.images_per_s, msPerBatch: t.ms_per_batch });
  const dev = (eng['yolov8n.build'] as { device?: unknown } | undefined)?.device;
  writeFileSync(join(OUT, 'gpu-engine-rows.json'), JSON.stringify({ device: dev, torch: torch[0]?.torch, rows: table }, null, 1));
  console.log('engine              config                                      model   batch    img/s   p50ms  ×torch ×torchBest');
  for (const r of table.filter((x) => x.engine === 'osprey-cuda'))
    console.log(`${String(r.engine).padEnd(19)} ${String(r.config).slice(0, 43).padEnd(43)} ${String(r.model).padEnd(7)} ${String(r.batch).padStart(5)} ${String(r.imagesPerSecond).padStart(8)} ${String(r.p50Ms ?? '').padStart(7)} ${String(r.ratioToPytorch).padStart(7)} ${String(r.ratioToPytorchBest).padStart(7)}`);
  for (const r of table.filter((x) => x.engine !== 'osprey-cuda')) console.log(`${String(r.engine).padEnd(30)} ${String(r.model).padEnd(7)} ${String(r.batch).padStart(5)} ${String(r.imagesPerSecond).padStart(8)}`);
}

async function main(): Promise<void> {
  if (process.argv.includes('--merge')) return merge();
  const report = await gpuEngineReport();
  results.doctor = report;
  say(formatGpuEngineReport(report));
  save();
  const model = arg('model')!;
  const framesPath = arg('frames')!;
  const frames = new Uint8Array(readFileSync(framesPath));
  const per = 640 * 640 * 3;
  const framePaths = [0, 1].map((i) => {
    const p = join(tmpdir(), `osprey-frame${i}.bin`);
    writeFileSync(p, frames.subarray(i * per, (i + 1) * per));
    return p;
  });
  await benchModel('yolov8n', model, frames, framePaths, true);
  const m2 = arg('model2');
  if (m2 && existsSync(m2)) await benchModel('yolov8s', m2, frames, framePaths, false);
  results.finishedAt = new Date().toISOString();
  save();
  const sp = results['yolov8n.speed'] as Array<Record<string, unknown>> | undefined;
  if (Array.isArray(sp)) for (const s of sp) say(`yolov8n ${String(s.config).padEnd(44)} b${s.batch} ${s.imagesPerSecond} img/s p50 ${s.p50Ms ?? ''} ms`);
  const sp2 = results['yolov8s.speed'] as Array<Record<string, unknown>> | undefined;
  if (Array.isArray(sp2)) for (const s of sp2) say(`yolov8s ${String(s.config).padEnd(44)} b${s.batch} ${s.imagesPerSecond} img/s p50 ${s.p50Ms ?? ''} ms`);
  process.exit(0);
}

void main();
