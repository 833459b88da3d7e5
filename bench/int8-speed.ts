/**
 * INT8 vs FP32 throughput on this machine's CPU (ONNX Runtime CPU EP, batch 1, default threads), measured in one
 * run with the two sessions alternated run by run so both see the same machine load; prints the ratio (median
 * latencies, and mean throughput beside it).
 *
 * The INT8 engine is built here with `buildEngine` (calibration on the calibration split of coco-val-dev: images
 * sorted by id, index % 4 == 0 — the same split as bench/int8-map.ts), or taken from `--engine DIR`.
 *
 * Run: npx tsx bench/int8-speed.ts [--method entropy] [--auto-exclude] [--activation-type uint8|int8] [--rounds 10] [--iterations 5] [--engine DIR]
 * Writes bench/results/int8-speed[-<activation>][-<method>][-auto].json.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildEngine } from '../src/optimize/build.js';
import type { CalibrationMethod } from '../src/optimize/calibration.js';
import { prepareAllImages } from '../src/optimize/images.js';
import { createBuildSession, runSession } from '../src/optimize/session.js';
import { loadCocoDataset } from '../src/val/dataset.js';
import { OSPREY_VERSION, onnxRuntimeVersion } from '../src/version.js';

const here = dirname(fileURLToPath(import.meta.url));
const data = resolve(here, '../../shared/data');
const modelPath = join(data, 'models/yolov8n.onnx');
const argv = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1]! : def;
};
const method = arg('--method', 'entropy') as CalibrationMethod;
const activationType = arg('--activation-type', 'uint8') as 'uint8' | 'int8';
const autoExclude = argv.includes('--auto-exclude');
const rounds = Number(arg('--rounds', '10'));
const iterations = Number(arg('--iterations', '5'));
const engineArg = argv.includes('--engine') ? arg('--engine', '') : undefined;

const dataset = await loadCocoDataset(join(data, 'coco-val-dev/instances_val2017_subset.json'), join(data, 'coco-val-dev/images'));
const sorted = [...dataset.images].sort((a, b) => a.id - b.id);
const calib = sorted.filter((_, i) => i % 4 === 0);
const work = mkdtempSync(join(tmpdir(), 'osprey-int8-speed-'));
let int8Path: string;
let manifest: unknown = null;
if (engineArg) {
  int8Path = join(engineArg, 'model.onnx');
  manifest = JSON.parse(readFileSync(join(engineArg, 'manifest.json'), 'utf8'));
} else {
  const calibDir = join(work, 'calibration');
  mkdirSync(calibDir);
  for (const im of calib) symlinkSync(im.path, join(calibDir, im.fileName));
  const built = await buildEngine({
    model: modelPath,
    out: join(work, 'int8'),
    precision: 'int8',
    input: 'float32-nchw',
    calibrationData: calibDir,
    calibrationMethod: method,
    autoExclude,
    activationType,
    log: (l) => console.error(`build: ${l}`),
  });
  int8Path = join(built.versionDir, 'model.onnx');
  manifest = built.manifest;
}

// a validation-split image (not a calibration image), letterboxed as at inference
const [img] = await prepareAllImages([sorted[1]!.path], { height: 640, width: 640, format: 'float32-nchw' });
const fp32 = await createBuildSession(readFileSync(modelPath));
const int8 = await createBuildSession(readFileSync(int8Path));
const sessions = [fp32, int8];
for (const s of sessions) for (let i = 0; i < 3; i++) await runSession(s, 'images', img!.data, img!.dims); // warmup
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const totalMs = [0, 0];
const perRun: number[][] = [[], []];
// alternate FP32 / INT8 run by run, so a load spike from other processes hits both alike
for (let r = 0; r < rounds * iterations; r++) {
  for (let k = 0; k < sessions.length; k++) {
    const t0 = performance.now();
    await runSession(sessions[k]!, 'images', img!.data, img!.dims);
    const dt = performance.now() - t0;
    totalMs[k] += dt;
    perRun[k]!.push(dt);
  }
}
for (const s of sessions) await s.release();
const n = rounds * iterations;
const ips = totalMs.map((t) => (n * 1000) / t);
// headline: ratio of median latencies (robust to other processes' load spikes on this shared machine);
// the mean-based throughput ratio is reported beside it
const ratio = median(perRun[0]!) / median(perRun[1]!);
const meanRatio = ips[1]! / ips[0]!;
const result = {
  benchmark: 'int8-speed',
  command: `npx tsx bench/int8-speed.ts ${argv.join(' ')}`.trim(),
  device: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, executionProvider: 'cpu' },
  versions: { osprey: OSPREY_VERSION, onnxRuntime: onnxRuntimeVersion(), node: process.version },
  createdAt: new Date().toISOString(),
  settings: { batch: 1, rounds, iterationsPerRound: iterations, method, activationType, autoExclude, input: '1×3×640×640 float32, one letterboxed validation image' },
  fp32: { model: 'yolov8n.onnx', imagesPerSecond: ips[0], medianMs: median(perRun[0]!) },
  int8: { imagesPerSecond: ips[1], medianMs: median(perRun[1]!), manifest },
  ratio,
  ratioDefinition: 'median FP32 latency / median INT8 latency, batch 1, runs alternated',
  meanThroughputRatio: meanRatio,
  target: 2,
  meetsTarget: ratio >= 2,
};
const suffix = `${activationType === 'uint8' ? '' : '-' + activationType}-${method}${autoExclude ? '-auto' : ''}`;
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', `int8-speed${suffix}.json`), JSON.stringify(result, null, 2) + '\n');
console.log(`FP32 ${ips[0]!.toFixed(2)} img/s (median ${median(perRun[0]!).toFixed(1)} ms) | INT8 ${ips[1]!.toFixed(2)} img/s (median ${median(perRun[1]!).toFixed(1)} ms) | ratio ×${ratio.toFixed(2)} by median latency, ×${meanRatio.toFixed(2)} by mean throughput (target ×2: ${ratio >= 2 ? 'met' : 'MISSED'})`);
rmSync(work, { recursive: true, force: true });
