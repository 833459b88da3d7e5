/**
 * Multi-GPU scaling (issue 19), in one command on a host with several GPUs: throughput of each model, FP16, batch 32,
 * uint8 frames in, on 1, 2 and 4 GPUs (those the host has), two ways:
 *
 *   engine   the engine alone: `instances` instances on EACH GPU (createPlacedEngine, what `--gpus` does for bench
 *            engine / streams), a closed loop of batch-32 uint8 frames (real letterboxed images, buffers reused),
 *            host NMS for every image on the main thread: frames on the host in, detections on the host out;
 *   serve    `osprey serve --model-repository R --gpus 0..G-1` in its own process (instanceGroup KIND_GPU, count
 *            `instances` per GPU, dynamic batching to 32) under `osprey bench server` in another process
 *            (binary KServe v2 /infer, batch-32 uint8 requests, top-K rows back; concurrency = requests in flight).
 *
 * For each row: images/s, the speedup over the 1-GPU row of the same run and its efficiency (speedup ÷ GPUs), the
 * targets (≥ 1.9× on 2 GPUs, ≥ 3.7× on 4), per-GPU batches executed (the spreading), GPU utilisation from nvidia-smi
 * sampled during the window, and the host CPU share: CPU seconds of the measuring process(es) ÷ wall seconds ÷ host
 * cores (engine: this process — batching, copies, NMS; serve: the server process and the bench client separately).
 * Backends: `onnxruntime` (CUDA EP, device_id per GPU) and, with `--backends onnxruntime,osprey-cuda`, Osprey's GPU
 * engine (built here with `osprey build --engine cuda` on GPU 0; the host's GPUs are assumed alike, as on the lent
 * multi-GPU machines — a GPU of another compute capability is refused at load).
 *
 *   npx tsx bench/run.ts multi-gpu-scaling [--model yolov8n=PATH] [--model yolov8s=PATH] [--torch-script torch_yolov8.py]
 *        [--gpu-counts 1,2,4] [--instances 2] [--batch 32] [--duration-ms 5000] [--modes engine,serve]
 *        [--backends onnxruntime] --images DIR --out FILE.json
 *
 * Without a `yolov8s=` model and with `--torch-script`, the YOLOv8s-shaped export (random weights) is made first with
 * `python3 torch_yolov8.py export --scale s` (there is no real yolov8s here). The `osprey bench server` result files are
 * written beside FILE (`multi-gpu-scaling-<model>-<backend>-<G>gpu.server.json`): their `serverConfig.gpus` makes
 * `osprey plan --bench` use them as per-host figures. Not a test.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { resolveDetectionModelSpec, type DetectionModelSpec } from '../../src/core/model-spec.js';
import { postprocessImage } from '../../src/core/postprocess.js';
import { DEFAULT_DETECT_OPTIONS, type Tensor } from '../../src/core/types.js';
import type { LetterboxGeometry } from '../../src/core/letterbox.js';
import { createPlacedEngine, type PlacedEngine } from '../../src/engine/placed-engine.js';
import { readGpuInventory } from '../../src/gpu/inventory.js';
import { decodeImage } from '../../src/image/decode.js';
import { allocateBatch, letterboxImageInto } from '../../src/image/letterbox.js';
import { queryGpus } from '../../src/metrics/gpu.js';
import { readOnnxModel, writeOnnxModel } from '../../src/onnx/index.js';
import { dynamicBatch, fp16, topKOutput, uint8Input } from '../../src/onnx/passes/index.js';
import { summarizeLatencies } from '../../src/bench/stats.js';
import { OSPREY_VERSION, onnxRuntimeVersion } from '../../src/version.js';
import { REPO_ROOT } from '../lib.js';

type Backend = 'onnxruntime' | 'osprey-cuda';
type Mode = 'engine' | 'serve';

interface Args {
  models: Array<{ name: string; path: string }>;
  torchScript?: string;
  images: string;
  out: string;
  gpuCounts: number[];
  instances: number;
  batch: number;
  durationMs: number;
  modes: Mode[];
  backends: Backend[];
  inflightPerInstance: number;
  /** `--cpu-smoke`: one row per mode on the CPU (no --gpus, KIND_CPU): checks the mechanics on a machine without GPUs. */
  cpuSmoke: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { models: [], images: '', out: '', gpuCounts: [1, 2, 4], instances: 2, batch: 32, durationMs: 5000, modes: ['engine', 'serve'], backends: ['onnxruntime'], inflightPerInstance: 2, cpuSmoke: false };
  const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    if (k === '--cpu-smoke') {
      a.cpuSmoke = true;
      continue;
    }
    const v = argv[++i] ?? '';
    if (k === '--model') {
      const [name, path] = v.includes('=') ? (v.split('=', 2) as [string, string]) : [basename(v, '.onnx'), v];
      a.models.push({ name, path });
    } else if (k === '--torch-script') a.torchScript = v;
    else if (k === '--images') a.images = v;
    else if (k === '--out') a.out = v;
    else if (k === '--gpu-counts') a.gpuCounts = list(v).map(Number);
    else if (k === '--instances') a.instances = Number(v);
    else if (k === '--batch') a.batch = Number(v);
    else if (k === '--duration-ms') a.durationMs = Number(v);
    else if (k === '--modes') a.modes = list(v) as Mode[];
    else if (k === '--backends') a.backends = list(v) as Backend[];
    else if (k === '--inflight') a.inflightPerInstance = Number(v);
    else throw new Error(`unknown option ${k}`);
  }
  if (!a.out) throw new Error('--out FILE is required');
  return a;
}

const CLI_ENTRY = `import(${JSON.stringify(new URL('../../src/cli/main.ts', import.meta.url).href)}).then((m) => m.main(['node', 'osprey', ...process.argv.slice(1)]))`;
const cliArgs = (args: string[]) => ['--import', 'tsx', '-e', CLI_ENTRY, ...args];

/** Osprey's ONNX engine for the CUDA EP: dynamic batch, uint8 NHWC in, top-300 out, FP16 inside. */
function buildOrtEngine(src: string, dir: string): string {
  const out = join(dir, 'model.onnx');
  writeOnnxModel(fp16(topKOutput(uint8Input(dynamicBatch(readOnnxModel(src))), { k: 300 })), out);
  return out;
}

/** Osprey's GPU engine (`osprey build --engine cuda`, on GPU 0) into DIR; returns DIR or throws with the build's stderr. */
function buildGpuEngineFolder(src: string, dir: string, maxBatch: number): string {
  const r = spawnSync(process.execPath, cliArgs(['build', '--engine', 'cuda', '--model', src, '--out', dir, '--max-batch', String(maxBatch)]), { cwd: REPO_ROOT, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`osprey build --engine cuda failed (${r.status}): ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
  return dir;
}

async function loadFrames(dir: string, spec: DetectionModelSpec, count = 16): Promise<{ frames: Uint8Array[]; geometries: LetterboxGeometry[] }> {
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort().slice(0, count) : [];
  if (files.length === 0) throw new Error(`--images ${dir}: no images`);
  const frames: Uint8Array[] = [];
  const geometries: LetterboxGeometry[] = [];
  for (const f of files) {
    const batch = allocateBatch('uint8-nhwc', 1, spec.inputHeight, spec.inputWidth);
    geometries.push(await letterboxImageInto(await decodeImage(join(dir, f)), batch, 0));
    frames.push(batch.data as Uint8Array);
  }
  return { frames, geometries };
}

const r1 = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;
function latency(ms: number[]) {
  const l = summarizeLatencies(ms);
  return { p50: r1(l.median, 2), p90: r1(l.p90, 2), p99: r1(l.p99, 2), max: r1(l.max, 2) };
}

/** nvidia-smi utilisation of each GPU, sampled every 500 ms while `during` runs: mean per GPU index (0..1). */
async function sampleGpuUtilization<T>(during: Promise<T>): Promise<{ value: T; utilization: Record<string, number> }> {
  const sums = new Map<number, { s: number; n: number }>();
  let done = false;
  const sampler = (async () => {
    while (!done) {
      const g = await queryGpus(1500);
      for (const x of g ?? []) if (x.utilization !== null) sums.set(x.index, { s: (sums.get(x.index)?.s ?? 0) + x.utilization, n: (sums.get(x.index)?.n ?? 0) + 1 });
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  const value = await during.finally(() => (done = true));
  await sampler;
  return { value, utilization: Object.fromEntries([...sums].map(([i, { s, n }]) => [String(i), r1(s / n, 3)])) };
}

/** The engine alone on `gpus` GPUs. */
async function measureEngine(modelPath: string, spec: DetectionModelSpec, frames: Awaited<ReturnType<typeof loadFrames>>, gpus: number, a: Args) {
  const e: PlacedEngine = await createPlacedEngine({
    modelPath,
    executionProviders: [a.cpuSmoke ? 'cpu' : 'cuda'],
    instances: a.instances,
    ...(gpus > 0 ? { gpuIds: Array.from({ length: gpus }, (_, i) => i) } : {}),
    warmup: 1,
    warmupBatchSize: a.batch,
  });
  try {
    if (e.info.executionProvider === 'cpu' && !a.cpuSmoke) throw new Error(`the engine fell back to the CPU: ${e.info.fallbacks.map((f) => f.reason).join('; ')}`);
    const per = spec.inputHeight * spec.inputWidth * 3;
    const free: Tensor[] = [];
    const feed = (seq: number): Record<string, Tensor> => {
      const t = free.pop();
      if (t) return { [spec.inputName]: t };
      const data = new Uint8Array(a.batch * per);
      for (let b = 0; b < a.batch; b++) data.set(frames.frames[(seq + b) % frames.frames.length]!, b * per);
      return { [spec.inputName]: { type: 'uint8', dims: [a.batch, spec.inputHeight, spec.inputWidth, 3], data } };
    };
    const runOptions = { onInputsReleased: (f: Record<string, Tensor>) => void free.push(f[spec.inputName]!) };
    const concurrency = e.info.instanceCount * a.inflightPerInstance;
    for (let i = 0; i < 3; i++) await Promise.all(Array.from({ length: concurrency }, (_, k) => e.run(feed(k), runOptions)));
    const before = e.pool.snapshot().map((s) => s.executions);
    const opts = { ...DEFAULT_DETECT_OPTIONS };
    const lat: number[] = [];
    let images = 0;
    let seq = 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const deadline = t0 + a.durationMs;
    const loop = async () => {
      while (performance.now() < deadline) {
        const s = performance.now();
        const at = seq;
        seq += a.batch;
        const out = (await e.run(feed(at), runOptions))[spec.outputName]!;
        for (let b = 0; b < a.batch; b++) postprocessImage({ dims: out.dims, data: out.data as Float32Array }, spec.layout, b, frames.geometries[(at + b) % frames.geometries.length]!, spec.names, opts, spec.nmsInGraph);
        lat.push(performance.now() - s);
        images += a.batch;
      }
    };
    const { utilization } = await sampleGpuUtilization(Promise.all(Array.from({ length: concurrency }, loop)));
    const wallS = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const perGpu: Record<string, number> = {};
    e.pool.snapshot().forEach((s, i) => {
      const k = s.gpu === null ? 'cpu' : String(s.gpu);
      perGpu[k] = (perGpu[k] ?? 0) + s.executions - before[i]!;
    });
    return {
      imagesPerSecond: r1(images / wallS),
      latencyMsPerBatch: latency(lat),
      instancesTotal: e.info.instanceCount,
      concurrency,
      batchesPerGpu: perGpu,
      gpuUtilization: utilization,
      hostCpu: { processCpuSeconds: r1((cpu.user + cpu.system) / 1e6, 2), wallSeconds: r1(wallS, 2), shareOfHost: r1((cpu.user + cpu.system) / 1e6 / wallS / cpus().length, 3) },
      executionProvider: e.info.executionProvider,
    };
  } finally {
    await e.close();
  }
}

/** utime + stime of a process from /proc (seconds), including all its threads. */
function procCpuSeconds(pid: number): number | null {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(parts[11]) + Number(parts[12])) / 100; // clock ticks (USER_HZ = 100 on Linux)
  } catch {
    return null;
  }
}

async function waitReady(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (child.exitCode !== null) throw new Error(`osprey serve exited with ${child.exitCode} before it was ready`);
    try {
      if ((await fetch(`${url}/v2/health/ready`)).ok) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`osprey serve was not ready after ${timeoutMs} ms`);
}

/** `osprey serve --gpus 0..G-1` under `osprey bench server`, each in its own process. */
async function measureServe(modelFile: string, isGpuEngine: boolean, name: string, gpus: number, a: Args, work: string, resultFile: string) {
  const repo = join(work, `repo-${name}-${gpus}`);
  const v1 = join(repo, name, '1');
  mkdirSync(v1, { recursive: true });
  if (isGpuEngine) for (const f of readdirSync(modelFile)) copyFileSync(join(modelFile, f), join(v1, f));
  else copyFileSync(modelFile, join(v1, 'model.onnx'));
  const config = {
    ...(isGpuEngine ? { backend: 'osprey-cuda' } : {}),
    maxBatchSize: a.batch,
    instanceGroup: [{ kind: gpus > 0 ? 'KIND_GPU' : 'KIND_CPU', count: a.instances }],
    dynamicBatching: { preferredBatchSize: [a.batch], maxQueueDelayMicroseconds: 2000 },
  };
  writeFileSync(join(repo, name, 'config.json'), JSON.stringify(config, null, 2));
  const port = 18000 + gpus * 10;
  const url = `http://127.0.0.1:${port}`;
  const gpuList = Array.from({ length: gpus }, (_, i) => i).join(',');
  const placement = gpus > 0 ? ['--gpus', gpuList, '--ep', 'cuda'] : ['--ep', 'cpu'];
  const server = spawn(process.execPath, cliArgs(['serve', '--model-repository', repo, ...placement, '--host', '127.0.0.1', '--http-port', String(port), '--grpc-port', String(port + 1), '--log-level', 'warn']), { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let serverErr = '';
  server.stderr!.on('data', (d: Buffer) => void (serverErr = (serverErr + d.toString()).slice(-4000)));
  try {
    await waitReady(url, server, 300_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${serverErr.trim().split('\n').slice(-3).join(' | ')}`);
    });
    const concurrency = Math.max(1, gpus) * a.instances * a.inflightPerInstance;
    const cpu0 = procCpuSeconds(server.pid!);
    const t0 = performance.now();
    const benchArgs = ['bench', 'server', '--url', url, '--model', name, '--protocol', 'http', '--input', 'random', '--batch-size', String(a.batch), '--concurrency-range', `${concurrency}:${concurrency}`, '--warmup-ms', '3000', '--measurement-interval-ms', String(a.durationMs), '--json', resultFile];
    const client = spawn(process.execPath, cliArgs(benchArgs), { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let clientErr = '';
    client.stderr!.on('data', (d: Buffer) => void (clientErr = (clientErr + d.toString()).slice(-4000)));
    let clientCpu: number | null = null;
    const exit = new Promise<number>((resolve) => {
      const poll = setInterval(() => void (clientCpu = procCpuSeconds(client.pid!) ?? clientCpu), 250);
      client.on('exit', (code) => {
        clearInterval(poll);
        resolve(code ?? 1);
      });
    });
    const { value: code, utilization } = await sampleGpuUtilization(exit);
    const wallS = (performance.now() - t0) / 1000;
    const cpu1 = procCpuSeconds(server.pid!);
    if (code !== 0) throw new Error(`osprey bench server exited with ${code}: ${clientErr.trim().split('\n').slice(-3).join(' | ')}`);
    const result = JSON.parse(readFileSync(resultFile, 'utf8')) as { steps: Array<{ imagesPerSecond: number; latencyMs: { median: number; p99: number }; errors: number; requests: number }>; settings: { serverConfig?: { gpus?: number; instances?: number } } };
    const step = result.steps.at(-1)!;
    const stats = (await (await fetch(`${url}/v2/models/${name}/stats`)).json()) as { model_stats?: Array<{ osprey?: { instances?: Array<{ executions: number; gpu?: number }> } }> };
    const perGpu: Record<string, number> = {};
    for (const i of stats.model_stats?.[0]?.osprey?.instances ?? []) perGpu[i.gpu === undefined ? 'cpu' : String(i.gpu)] = (perGpu[i.gpu === undefined ? 'cpu' : String(i.gpu)] ?? 0) + i.executions;
    const cores = cpus().length;
    return {
      imagesPerSecond: r1(step.imagesPerSecond),
      latencyMsPerRequest: { p50: step.latencyMs.median, p99: step.latencyMs.p99 },
      requests: step.requests,
      errors: step.errors,
      concurrency,
      serverConfig: result.settings.serverConfig ?? null,
      batchesPerGpuSinceLoad: perGpu,
      gpuUtilization: utilization,
      // the whole client process lifetime (start-up, warm-up, window) against the same wall time: an upper bound
      hostCpu: {
        serverCpuSeconds: cpu0 !== null && cpu1 !== null ? r1(cpu1 - cpu0, 2) : null,
        serverShareOfHost: cpu0 !== null && cpu1 !== null ? r1((cpu1 - cpu0) / wallS / cores, 3) : null,
        clientCpuSeconds: clientCpu,
        clientShareOfHost: clientCpu !== null ? r1(clientCpu / wallS / cores, 3) : null,
        wallSeconds: r1(wallS, 2),
      },
      benchServerFile: basename(resultFile),
    };
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => {
      const t = setTimeout(() => {
        server.kill('SIGKILL');
        r(undefined);
      }, 30_000);
      server.once('exit', () => {
        clearTimeout(t);
        r(undefined);
      });
    });
  }
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const inv = await readGpuInventory();
  const counts = a.cpuSmoke ? [0] : a.gpuCounts.filter((g) => g <= inv.gpus.length);
  const skippedCounts = a.gpuCounts.filter((g) => g > inv.gpus.length).map((g) => ({ gpus: g, reason: `the host has ${inv.gpus.length} GPU(s)` }));
  if (counts.length === 0) throw new Error(`no GPU count to measure: the host has ${inv.gpus.length} GPU(s) (${inv.note})`);
  const work = mkdtempSync(join(tmpdir(), 'osprey-multi-gpu-'));
  const outDir = dirname(a.out);
  mkdirSync(outDir, { recursive: true });
  const models = [...a.models];
  if (!models.some((m) => m.name.startsWith('yolov8s')) && a.torchScript) {
    const p = join(work, 'yolov8s-synth.onnx');
    const r = spawnSync('python3', [a.torchScript, 'export', '--scale', 's', '--out', p], { encoding: 'utf8', timeout: 300_000 });
    if (r.status === 0 && existsSync(p)) models.push({ name: 'yolov8s-synth', path: p });
    else process.stderr.write(`multi-gpu-scaling: yolov8s export failed (${r.status}): ${(r.stderr ?? '').slice(-500)}\n`);
  }
  const rows: Array<Record<string, unknown>> = [];
  const failures: Array<Record<string, unknown>> = [];
  for (const m of models) {
    const engines: Partial<Record<Backend, { path: string; isGpuEngine: boolean }>> = {};
    for (const backend of a.backends) {
      const dir = join(work, `${m.name}-${backend}`);
      mkdirSync(dir, { recursive: true });
      try {
        engines[backend] = backend === 'onnxruntime' ? { path: buildOrtEngine(m.path, dir), isGpuEngine: false } : { path: buildGpuEngineFolder(m.path, dir, a.batch), isGpuEngine: true };
      } catch (err) {
        failures.push({ model: m.name, backend, stage: 'build', error: (err as Error).message });
      }
    }
    for (const backend of a.backends) {
      const eng = engines[backend];
      if (!eng) continue;
      const probe = await createPlacedEngine({ modelPath: eng.path, executionProviders: [a.cpuSmoke ? 'cpu' : 'cuda'], instances: 1, ...(a.cpuSmoke ? {} : { gpuIds: [0] }), warmup: 0 });
      const spec = resolveDetectionModelSpec(probe.info.inputs, probe.info.outputs, probe.info.metadata);
      await probe.close();
      const frames = await loadFrames(a.images, spec);
      for (const mode of a.modes) {
        let base: number | null = null;
        for (const g of counts) {
          const label = `${m.name} ${backend} ${mode} ${g} GPU(s)`;
          process.stderr.write(`multi-gpu-scaling: ${label}\n`);
          try {
            const r =
              mode === 'engine'
                ? await measureEngine(eng.path, spec, frames, g, a)
                : await measureServe(eng.path, eng.isGpuEngine, m.name.replace(/[^A-Za-z0-9_-]/g, '_'), g, a, work, join(outDir, `multi-gpu-scaling-${m.name}-${backend}-${g}gpu.server.json`));
            if (g <= 1) base = r.imagesPerSecond;
            const speedup = base !== null ? r1(r.imagesPerSecond / base, 3) : null;
            const target = g === 2 ? 1.9 : g === 4 ? 3.7 : null;
            rows.push({
              model: m.name,
              backend,
              mode,
              precision: 'fp16',
              batch: a.batch,
              instancesPerGpu: a.instances,
              gpus: g,
              ...r,
              speedupOver1Gpu: speedup,
              efficiency: speedup !== null && g > 0 ? r1(speedup / g, 3) : null,
              target: target !== null ? { speedup: target, met: speedup !== null ? speedup >= target : null } : null,
            });
          } catch (err) {
            failures.push({ model: m.name, backend, mode, gpus: g, error: (err as Error).message });
          }
        }
      }
    }
  }
  const result = {
    kind: 'osprey-bench-multi-gpu',
    schemaVersion: 1,
    createdAt: new Date().toISOString(),
    osprey: OSPREY_VERSION,
    onnxRuntime: onnxRuntimeVersion(),
    node: process.version,
    host: { cpuCores: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown' },
    gpus: inv.gpus,
    gpuSource: inv.source,
    // NVLink multicast stays as the machine sets it (not overridden here); recorded for the record
    nvlinkMulticastEnv: { NCCL_NVLS_ENABLE: process.env.NCCL_NVLS_ENABLE ?? null },
    settings: { ...a, models },
    skippedGpuCounts: skippedCounts,
    rows,
    failures,
    /** Per-host figures for `osprey plan`: the largest GPU count measured per model/backend/mode. */
    perHost: rows.filter((r) => r.gpus === Math.max(...counts)).map((r) => ({ model: r.model, backend: r.backend, mode: r.mode, gpus: r.gpus, imagesPerSecond: r.imagesPerSecond })),
  };
  writeFileSync(a.out, JSON.stringify(result, null, 1) + '\n');
  const lines = ['model | backend | mode | GPUs | img/s | speedup | efficiency | target | host CPU share'];
  for (const r of rows) {
    const cpuShare = (r.hostCpu as { shareOfHost?: number; serverShareOfHost?: number | null }).shareOfHost ?? (r.hostCpu as { serverShareOfHost?: number | null }).serverShareOfHost;
    const t = r.target as { speedup: number; met: boolean | null } | null;
    lines.push(`${r.model} | ${r.backend} | ${r.mode} | ${r.gpus} | ${r.imagesPerSecond} | ${r.speedupOver1Gpu ?? '-'} | ${r.efficiency ?? '-'} | ${t ? `≥${t.speedup} ${t.met ? 'MET' : 'NOT MET'}` : '-'} | ${cpuShare ?? '-'}`);
  }
  for (const f of failures) lines.push(`FAILED ${JSON.stringify(f)}`);
  process.stdout.write(lines.join('\n') + '\n');
  rmSync(work, { recursive: true, force: true });
  if (rows.length === 0) process.exitCode = 1;
}

main().catch((err) => {
  process.stderr.write(`multi-gpu-scaling: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
