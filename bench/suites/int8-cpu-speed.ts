/**
 * INT8 vs FP32 on this machine's CPU, measured so that one run can be trusted: `osprey build` makes the FP32 and
 * the INT8 engine of yolov8n (uint8 NHWC input, batch 1, minmax calibration on the calibration split), and
 * `osprey bench engine`'s interleaved comparison times them round by round (ABBA, warm-up per engine per round),
 * with the INT8 graph as it was before the CPU-EP fixes of docs/build.md ("What stays FP32") as a third engine. Then
 * ORT's profiler splits each graph's time by operator, and `osprey val`'s evaluator gives mAP50-95 on the held-out
 * validation split. Everything in one JSON.
 *
 * Split (deterministic, by COCO image id, as in int8-accuracy): coco-val-dev sorted by id; index % 4 == 0 → the 16
 * calibration images, the other 47 → validation.
 *
 * The loop is `osprey bench engine`'s (src/bench/closed-loop.ts) with `--pipeline-depth` batches in flight (default 2:
 * bus.jpg is decoded and letterboxed for batch N+1 while N runs, N post-processed while N+1 runs; 1 = the serial
 * loop of the results made before pipelining, the 2026-12-04 result included).
 *
 * Run: npx tsx bench/run.ts int8-cpu-speed [--rounds 10] [--warmup-ms 500] [--duration-ms 3000] [--pipeline-depth 2] [--profile-runs 20] [--skip-map] [--[no-]intra-op-spinning]
 * Writes bench/results/<device>/int8-cpu-speed.json (or --out FILE).
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { runEngineComparison, formatComparisonResult } from '../../src/bench/engine-compare.js';
import { profileModel, type OrtProfileResult } from '../../src/bench/ort-profile.js';
import { cloneOnnxModel, encodeOnnxModel, readOnnxModel, uint8Input } from '../../src/onnx/index.js';
import { buildEngine } from '../../src/optimize/build.js';
import { parseCalibrationCache, rangesFromStatistics } from '../../src/optimize/calibration-cache.js';
import { calibrationPreprocessing } from '../../src/optimize/calibrate.js';
import { sha256Hex } from '../../src/optimize/model-info.js';
import { quantizeQdq } from '../../src/optimize/qdq.js';
import { loadCocoDataset } from '../../src/val/dataset.js';
import { validateModel } from '../../src/val/runner.js';
import { readFileSync } from 'node:fs';
import { argValue, dataDir, resultsDir } from '../lib.js';

const argv = process.argv.slice(2);
const rounds = Number(argValue(argv, '--rounds', '10'));
const warmupMs = Number(argValue(argv, '--warmup-ms', '500'));
const durationMs = Number(argValue(argv, '--duration-ms', '3000'));
const pipelineDepth = Number(argValue(argv, '--pipeline-depth', '2'));
const profileRuns = Number(argValue(argv, '--profile-runs', '20'));
const skipMap = argv.includes('--skip-map');
/** `--[no-]intra-op-spinning`: ORT's intra-op threads spin or sleep (both engines alike); default `osprey bench engine`'s. */
const intraOpSpinning = argv.includes('--no-intra-op-spinning') ? false : argv.includes('--intra-op-spinning') ? true : undefined;
const out = resolve(argValue(argv, '--out', join(resultsDir('cpu'), 'int8-cpu-speed.json')));

const data = dataDir();
const modelPath = join(data, 'models/yolov8n.onnx');
const image = join(data, 'images/bus.jpg');
const dataset = await loadCocoDataset(join(data, 'coco-val-dev/instances_val2017_subset.json'), join(data, 'coco-val-dev/images'));
const sorted = [...dataset.images].sort((a, b) => a.id - b.id);
const calib = sorted.filter((_, i) => i % 4 === 0);
const val = sorted.filter((_, i) => i % 4 !== 0);
const work = mkdtempSync(join(tmpdir(), 'osprey-int8-cpu-speed-'));
try {
  const calibDir = join(work, 'calibration');
  mkdirSync(calibDir);
  for (const im of calib) symlinkSync(im.path, join(calibDir, im.fileName));
  const log = (l: string) => process.stderr.write(`  ${l}\n`);
  process.stderr.write('building the FP32 and INT8 engines (osprey build defaults, batch 1, uint8 NHWC input)\n');
  const fp32 = await buildEngine({ model: modelPath, out: join(work, 'yolov8n-fp32'), log });
  const cache = join(work, 'calibration-cache.json');
  const int8 = await buildEngine({ model: modelPath, out: join(work, 'yolov8n-int8'), precision: 'int8', calibrationData: calibDir, calibrationCache: cache, log });

  // The INT8 graph before the CPU-EP fixes, from the same calibration: head (tail + prediction convs) FP32, calibrated
  // input range, per-tensor Concat scales, the export's DFL, the float uint8 → Cast → Div(255) prefix.
  const source = readOnnxModel(modelPath);
  const parsed = parseCalibrationCache(readFileSync(cache, 'utf8'), { modelSha256: sha256Hex(readFileSync(modelPath)), preprocessing: calibrationPreprocessing(640, 640) }, cache);
  const before = cloneOnnxModel(source);
  quantizeQdq(before, rangesFromStatistics(parsed.statistics, 'minmax'), {});
  const beforePath = join(work, 'yolov8n-int8-before-cpu-fixes.onnx');
  writeFileSync(beforePath, encodeOnnxModel(uint8Input(before)));
  const fp32Before = join(work, 'yolov8n-fp32-export-dfl.onnx');
  writeFileSync(fp32Before, encodeOnnxModel(uint8Input(source)));

  const engines = [fp32.modelDir, beforePath, int8.modelDir];
  process.stderr.write(`interleaved comparison: ${rounds} rounds × (${warmupMs} ms warm-up + ${durationMs} ms) per engine, pipeline depth ${pipelineDepth}\n`);
  const comparison = await runEngineComparison({
    models: engines,
    batchSizes: [1],
    instanceCounts: [1],
    rounds,
    warmupMs,
    durationMs,
    image,
    pipelineDepth,
    ...(intraOpSpinning !== undefined ? { intraOpSpinning } : {}),
    command: `npx tsx bench/run.ts int8-cpu-speed ${argv.join(' ')}`.trim(),
    onWindow: (w) => process.stderr.write(`  round ${w.round + 1} engine ${w.engine}: ${w.imagesPerSecond.toFixed(2)} images/s (other processes ${w.otherProcessesCores?.toFixed(2) ?? '?'} cores)\n`),
  });
  process.stdout.write(formatComparisonResult(comparison));

  const profiles: Record<string, OrtProfileResult> = {};
  for (const [name, path] of [
    ['fp32-before', fp32Before],
    ['fp32', join(fp32.versionDir, 'model.onnx')],
    ['int8-before', beforePath],
    ['int8', join(int8.versionDir, 'model.onnx')],
  ] as const) {
    process.stderr.write(`profiling ${name}\n`);
    profiles[name] = await profileModel({ model: path, runs: profileRuns, command: 'int8-cpu-speed' });
  }

  let accuracy: Record<string, unknown> | null = null;
  if (!skipMap) {
    const valSet = { ...dataset, images: val };
    const m = async (p: string) => {
      const r = await validateModel(p, valSet, { executionProviders: ['cpu'] });
      return { map50_95: r.map50_95 ?? NaN, map50: r.map50 ?? NaN };
    };
    process.stderr.write('mAP on the validation split\n');
    const a = await m(modelPath);
    const b = await m(beforePath);
    const c = await m(int8.versionDir);
    accuracy = {
      split: { rule: 'coco-val-dev sorted by id; index % 4 == 0 → calibration, else validation', calibrationImages: calib.length, validationImages: val.length },
      fp32: a,
      int8Before: { ...b, dropPoints: (a.map50_95 - b.map50_95) * 100 },
      int8: { ...c, dropPoints: (a.map50_95 - c.map50_95) * 100 },
    };
  }

  const ratio = comparison.configurations[0]!.ratios.find((r) => r.engine === 2)!;
  const result = {
    benchmark: 'int8-cpu-speed',
    command: `npx tsx bench/run.ts int8-cpu-speed ${argv.join(' ')}`.trim(),
    createdAt: comparison.environment.createdAt,
    environment: comparison.environment,
    engines: {
      fp32: { manifestPasses: fp32.manifest.passes.map((p) => p.name) },
      int8Before: { description: 'quantizeQdq defaults (head FP32 incl. prediction convs, calibrated input range, per-tensor Concat scales) + uint8Input; no fuseUint8InputQuantize, no fastDfl' },
      int8: { manifestPasses: int8.manifest.passes.map((p) => p.name), calibration: { method: int8.manifest.calibration?.method, images: int8.manifest.calibration?.imageCount } },
    },
    headline: {
      ratio: `INT8 ÷ FP32 images/s per round, osprey bench engine --batch 1 --instances 1 --pipeline-depth ${pipelineDepth} style (pre-processing + inference + post-processing, ${pipelineDepth} batch(es) in flight), both from osprey build`,
      pipelineDepth,
      intraOpSpinning: comparison.settings.intraOpSpinning ?? 'ORT default (spin)',
      throughputRatio: ratio.throughputRatio,
      inferenceSpeedup: ratio.inferenceSpeedup,
      otherProcessesCores: comparison.configurations[0]!.otherProcessesCores,
    },
    comparison,
    profiles,
    accuracy,
  };
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(result, null, 1) + '\n');
  const t = ratio.throughputRatio;
  const i = ratio.inferenceSpeedup;
  process.stdout.write(
    `INT8 ÷ FP32: throughput ×${t.median.toFixed(2)} median, min ×${t.min.toFixed(2)}, max ×${t.max.toFixed(2)} over ${t.perRound.length} rounds; inference alone ×${i.median.toFixed(2)} (min ×${i.min.toFixed(2)})` +
      (accuracy ? `; mAP50-95 FP32 ${((accuracy.fp32 as { map50_95: number }).map50_95 * 100).toFixed(2)}, INT8 drop ${((accuracy.int8 as { dropPoints: number }).dropPoints).toFixed(2)} pt` : '') +
      `\nwrote ${out}\n`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
