/**
 * INT8 accuracy table: FP32 vs INT8 engines built by `buildEngine` for every calibration method
 * (minmax / percentile / entropy) × with and without `--auto-exclude`, mAP50-95 on a validation split of
 * ../shared/data/coco-val-dev that the calibration never sees, plus each engine's single-image throughput
 * measured in the same run (interleaved with FP32, so the ratios share the machine's load).
 *
 * Split (deterministic, by COCO image id): the dev images sorted by id; every 4th one (index % 4 == 0) is the
 * calibration split, the rest the validation split.
 *
 * Run: npx tsx bench/run.ts int8-accuracy [--activation-type uint8|int8] [--runs N]
 * Writes bench/results/<device>/int8-accuracy[-int8].json (or --out FILE).
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildEngine } from '../../src/optimize/build.js';
import type { CalibrationMethod } from '../../src/optimize/calibration.js';
import { createBuildSession, runSession } from '../../src/optimize/session.js';
import { prepareAllImages } from '../../src/optimize/images.js';
import { loadCocoDataset } from '../../src/val/dataset.js';
import { validateModel } from '../../src/val/runner.js';
import { OSPREY_VERSION, onnxRuntimeVersion } from '../../src/version.js';

const here = dirname(fileURLToPath(import.meta.url));
const data = dataDir();
const modelPath = join(data, 'models/yolov8n.onnx');
const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : def;
};
const activationType = arg('--activation-type', 'uint8') as 'uint8' | 'int8';
const runs = Number(arg('--runs', '20'));

const dataset = await loadCocoDataset(join(data, 'coco-val-dev/instances_val2017_subset.json'), join(data, 'coco-val-dev/images'));
const sorted = [...dataset.images].sort((a, b) => a.id - b.id);
const calib = sorted.filter((_, i) => i % 4 === 0);
const val = sorted.filter((_, i) => i % 4 !== 0);
const valSet = { ...dataset, images: val };
const work = mkdtempSync(join(tmpdir(), 'osprey-int8-'));
const calibDir = join(work, 'calibration');
mkdirSync(calibDir);
for (const im of calib) symlinkSync(im.path, join(calibDir, im.fileName));
console.error(`calibration split: ${calib.length} images (ids ${calib.map((i) => i.id).join(',')}); validation split: ${val.length} images`);

async function throughput(paths: string[]): Promise<number[]> {
  // one image, batch 1, sessions interleaved round by round
  const [img] = await prepareAllImages([sorted[1]!.path], { height: 640, width: 640, format: 'float32-nchw' });
  const sessions = await Promise.all(paths.map((p) => createBuildSession(new Uint8Array(require_(p)))));
  const times = paths.map(() => [] as number[]);
  for (const s of sessions) for (let i = 0; i < 3; i++) await runSession(s, 'images', img!.data, img!.dims);
  for (let r = 0; r < runs; r++) {
    for (let k = 0; k < sessions.length; k++) {
      const t0 = performance.now();
      await runSession(sessions[k]!, 'images', img!.data, img!.dims);
      times[k]!.push(performance.now() - t0);
    }
  }
  for (const s of sessions) await s.release();
  return times.map((t) => {
    const s = [...t].sort((a, b) => a - b);
    return 1000 / s[Math.floor(s.length / 2)]!;
  });
}
import { readFileSync } from 'node:fs';
import { dataDir, resultsDir } from '../lib.js';
const require_ = (p: string) => readFileSync(p);

const rows: Array<Record<string, unknown>> = [];
const fp32v = await validateModel(modelPath, valSet, { executionProviders: ['cpu'] });
const fp32 = { map50_95: fp32v.map50_95 ?? NaN, map50: fp32v.map50 ?? NaN };
console.error(`fp32: mAP50-95 ${(fp32.map50_95 * 100).toFixed(2)} mAP50 ${(fp32.map50 * 100).toFixed(2)}`);
const cache = join(work, 'calibration-cache.json');
const engines: string[] = [];
for (const method of ['minmax', 'percentile', 'entropy'] as CalibrationMethod[]) {
  for (const autoExclude of [false, true]) {
    const out = join(work, `${method}-${autoExclude ? 'auto' : 'plain'}`);
    const t0 = performance.now();
    let built;
    try {
      built = await buildEngine({
        model: modelPath,
        out,
        precision: 'int8',
        input: 'float32-nchw',
        calibrationData: calibDir,
        calibrationCache: cache,
        calibrationMethod: method,
        autoExclude,
        sensitivityImages: 4,
        activationType,
        log: (l) => console.error(`  ${l}`),
      });
    } catch (err) {
      const e = err as { code?: string; message: string };
      console.error(`${method} auto=${autoExclude}: build refused: ${e.code} ${e.message}`);
      rows.push({ method, autoExclude, refused: e.code ?? 'error', message: e.message });
      continue;
    }
    const buildSeconds = (performance.now() - t0) / 1000;
    const rv = await validateModel(built.versionDir, valSet, { executionProviders: ['cpu'] });
    const r = { map50_95: rv.map50_95 ?? NaN, map50: rv.map50 ?? NaN };
    engines.push(join(built.versionDir, 'model.onnx'));
    console.error(`${method} auto=${autoExclude}: mAP50-95 ${(r.map50_95 * 100).toFixed(2)} (drop ${((fp32.map50_95 - r.map50_95) * 100).toFixed(2)}), excluded ${built.manifest.calibration!.autoExcludedNodes.join(', ') || '-'}`);
    rows.push({
      method,
      autoExclude,
      map50_95: r.map50_95,
      map50: r.map50,
      dropPoints: (fp32.map50_95 - r.map50_95) * 100,
      autoExcludedNodes: built.manifest.calibration!.autoExcludedNodes,
      quantizedNodes: built.manifest.calibration!.quantizedNodes,
      buildSeconds,
      engine: `${method}-${autoExclude ? 'auto' : 'plain'}`,
    });
  }
}
const tp = await throughput([modelPath, ...engines]);
let k = 1;
for (const row of rows) if (!row.refused) {
  row.imagesPerSecond = tp[k];
  row.speedupVsFp32 = tp[k]! / tp[0]!;
  k++;
}
const result = {
  benchmark: 'int8-accuracy',
  command: `npx tsx bench/run.ts int8-accuracy ${process.argv.slice(2).join(' ')}`.trim(),
  device: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length },
  versions: { osprey: OSPREY_VERSION, onnxRuntime: onnxRuntimeVersion(), node: process.version },
  createdAt: new Date().toISOString(),
  model: 'yolov8n.onnx (../shared/data/models)',
  split: { rule: 'coco-val-dev images sorted by id; index % 4 == 0 → calibration, else validation', calibrationImages: calib.length, validationImages: val.length, calibrationIds: calib.map((i) => i.id) },
  activationType,
  fp32: { map50_95: fp32.map50_95, map50: fp32.map50, imagesPerSecond: tp[0] },
  int8: rows,
  throughputMethod: `median of ${runs} interleaved batch-1 runs of one letterboxed image, ORT CPU EP, default threads`,
};
const outPath = resolve(arg('--out', join(resultsDir('cpu'), `int8-accuracy${activationType === 'uint8' ? '' : '-' + activationType}.json`)));
mkdirSync(dirname(outPath), { recursive: true });
writeFileSync(outPath, JSON.stringify(result, null, 2) + '\n');
console.log(`FP32 mAP50-95 ${(fp32.map50_95 * 100).toFixed(2)}  ${tp[0]!.toFixed(2)} img/s`);
for (const r of rows) {
  if (r.refused) console.log(`${String(r.method).padEnd(10)} auto=${r.autoExclude}  REFUSED ${r.refused}`);
  else console.log(`${String(r.method).padEnd(10)} auto=${String(r.autoExclude).padEnd(5)} mAP50-95 ${((r.map50_95 as number) * 100).toFixed(2)} drop ${(r.dropPoints as number).toFixed(2)}  ${(r.imagesPerSecond as number).toFixed(2)} img/s  ×${(r.speedupVsFp32 as number).toFixed(2)}`);
}
rmSync(work, { recursive: true, force: true });
