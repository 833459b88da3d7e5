/**
 * `osprey build`: turns an ONNX export into a versioned engine directory (see src/optimize/build.ts), and
 * `osprey build --check MODEL`: the broken-model check alone (constant/zero class scores → OSPREY_ERR_BROKEN_MODEL).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { parseGpuList } from '../../gpu/inventory.js';
import { OspreyError } from '../../core/errors.js';
import { CALIBRATION_METHODS, type CalibrationMethod } from '../../optimize/calibration.js';
import { buildEngine, type BuildProgress, type InputFormatOption, type Precision } from '../../optimize/build.js';
import { assertNotBroken, checkModel } from '../../optimize/check.js';
import { listImageFiles } from '../../optimize/images.js';

interface BuildCliOptions {
  device?: string;
  model?: string;
  out?: string;
  repository?: string;
  name?: string;
  precision: string;
  input: string;
  topk?: string;
  nmsInGraph?: boolean;
  maxBatch: string;
  calibrationData?: string;
  calibrationImages?: string;
  calibrationMethod: string;
  percentile?: string;
  calibrationCache?: string;
  exclude?: string[];
  autoExclude?: boolean;
  sensitivity?: boolean;
  sensitivityImages?: string;
  activationType: string;
  checkData?: string;
  targetEp: string;
  check?: string;
  engine: string;
  json?: boolean;
  progress?: boolean;
}

const collect = (v: string, prev: string[] = []) => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];

/** `--device N`: one CUDA device ordinal. @throws OspreyError `OSPREY_ERR_USAGE`. */
function deviceOrdinal(v: string): number {
  const ids = parseGpuList(v, '--device');
  if (ids.length !== 1) throw new OspreyError('OSPREY_ERR_USAGE', `--device '${v}': give one GPU (a CUDA device ordinal), e.g. --device 1`);
  return ids[0]!;
}

function int(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new OspreyError('OSPREY_ERR_USAGE', `${name} '${v}': expected a positive integer`);
  return n;
}

function oneOf<T extends string>(name: string, v: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(v)) throw new OspreyError('OSPREY_ERR_USAGE', `${name} '${v}': expected one of ${allowed.join(', ')}`);
  return v as T;
}

function progressBars(enabled: boolean): BuildProgress | undefined {
  if (!enabled) return undefined;
  let bar: cliProgress.SingleBar | undefined;
  return {
    start(kind, total) {
      bar = new cliProgress.SingleBar(
        { format: `${kind.padEnd(11)} [{bar}] {value}/{total} {label}`, stream: process.stderr, hideCursor: true, clearOnComplete: false },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0, { label: '' });
    },
    update(done, label) {
      bar?.update(done, { label: label.length > 40 ? '…' + label.slice(-39) : label });
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}

export function register(program: Command): void {
  program
    .command('build')
    .description('Build an optimized engine directory (dynamic batch, INT8 QDQ with calibration) from an ONNX export, or --check a model for degenerate outputs')
    .option('--model <path>', 'source ONNX model (plain FP32 YOLO detection export)')
    .option('--out <dir>', 'engine directory to create: <dir>/config.json + <dir>/1/{model.onnx,manifest.json}')
    .option('--repository <dir>', 'model repository to add the engine to as the next version (with --name)')
    .option('--name <name>', 'model name (folder) in --repository')
    .option('--precision <p>', 'fp32 | fp16 | int8', 'fp32')
    .option('--input <format>', 'graph input: uint8-nhwc (RGB frames, normalization in the graph) | float32-nchw', 'uint8-nhwc')
    .option('--topk <k>', 'top-K candidates suffix [B,K,6]')
    .option('--nms-in-graph', 'NonMaxSuppression inside the graph (with --topk)')
    .option('--max-batch <n>', 'largest batch; > 1 makes the batch axis dynamic', '1')
    .option('--calibration-data <dir>', 'folder of real images for INT8 calibration (pre-processed as at inference: letterbox)')
    .option('--calibration-images <n>', 'use at most N calibration images (sorted by file name)', '256')
    .option('--calibration-method <m>', 'minmax (default, measured best on yolov8n) | percentile | entropy (TensorRT KL)', 'minmax')
    .option('--percentile <p>', 'percentile for --calibration-method percentile', '99.99')
    .option('--calibration-cache <file>', 'JSON cache: reused when it exists (no images needed), else written')
    .option('--exclude <names...>', 'node names or op types kept in FP32 (repeatable, comma-separated)', collect)
    .option('--auto-exclude', 'run the sensitivity analysis and keep the layers it flags in FP32')
    .option('--sensitivity', 'run the sensitivity analysis and save sensitivity.json without applying it')
    .option('--sensitivity-images <n>', 'images for the sensitivity analysis', '4')
    .option('--activation-type <t>', 'uint8 (asymmetric, default: fastest on x86 CPU) | int8 (symmetric)', 'uint8')
    .option('--check-data <dir>', 'images for the broken-model check (default: calibration images, else a synthetic image)')
    .option('--target-ep <ep>', 'execution provider the engine is built for (recorded in the manifest)', 'cpu')
    .option('--engine <engine>', 'onnx (ONNX Runtime engine directory, default) | cuda (Osprey\'s own GPU engine for the GPU in hand: FP16 NHWC, fused, autotuned)', 'onnx')
    .option('--device <id>', 'with --engine cuda: the GPU to build (and autotune) on, a CUDA device ordinal (default 0); the engine is for its compute capability')
    .option('--check <model>', 'only run the broken-model check on MODEL (exit 2 with OSPREY_ERR_BROKEN_MODEL when broken)')
    .option('--json', 'print the result as JSON')
    .option('--no-progress', 'no progress bars')
    .action(async (o: BuildCliOptions) => {
      if (o.check !== undefined) {
        const files = o.checkData ? listImageFiles(o.checkData, 4, 'check data') : [];
        // an engine directory (…/<version>/model.onnx) or a model file
        const target = existsSync(join(o.check, 'model.onnx')) ? join(o.check, 'model.onnx') : o.check;
        const r = await checkModel(target, files);
        if (o.json) process.stdout.write(JSON.stringify({ model: o.check, ...r }, null, 2) + '\n');
        else {
          process.stdout.write(
            `${o.check}: ${r.broken ? 'BROKEN' : 'ok'} — class scores ${r.scores.min}..${r.scores.max} on ${r.images.join(', ')}; candidates ≥0.25 per image: ${r.candidatesPerImage.join(', ')}\n`,
          );
        }
        assertNotBroken(r, o.check);
        return;
      }
      if (!o.model) throw new OspreyError('OSPREY_ERR_USAGE', 'osprey build needs --model PATH (or --check MODEL)');
      if (oneOf('--engine', o.engine, ['onnx', 'cuda'] as const) === 'cuda') {
        // Osprey's GPU engine: the builder lives in src/compile + src/engine/gpu-build.ts
        if (!o.out) throw new OspreyError('OSPREY_ERR_USAGE', 'osprey build --engine cuda needs --out DIR');
        const { buildGpuEngine } = await import('../../engine/gpu-build.js');
        const r = await buildGpuEngine({ model: o.model, out: o.out, maxBatch: int('--max-batch', o.maxBatch)!, ...(o.device !== undefined ? { deviceId: deviceOrdinal(o.device) } : {}), ...(o.topk !== undefined ? { topk: int('--topk', o.topk)! } : {}), log: (l) => process.stderr.write(`build: ${l}\n`) });
        process.stdout.write(o.json ? JSON.stringify(r.manifest, null, 2) + '\n' : `${r.enginePath}\n`);
        return;
      }
      const result = await buildEngine({
        model: o.model,
        ...(o.out !== undefined ? { out: o.out } : {}),
        ...(o.repository !== undefined ? { repository: o.repository } : {}),
        ...(o.name !== undefined ? { name: o.name } : {}),
        precision: oneOf<Precision>('--precision', o.precision, ['fp32', 'fp16', 'int8']),
        input: oneOf<InputFormatOption>('--input', o.input, ['float32-nchw', 'uint8-nhwc']),
        ...(o.topk !== undefined ? { topk: int('--topk', o.topk)! } : {}),
        ...(o.nmsInGraph ? { nmsInGraph: true } : {}),
        maxBatch: int('--max-batch', o.maxBatch)!,
        ...(o.calibrationData !== undefined ? { calibrationData: o.calibrationData } : {}),
        calibrationImages: int('--calibration-images', o.calibrationImages)!,
        calibrationMethod: oneOf<CalibrationMethod>('--calibration-method', o.calibrationMethod, CALIBRATION_METHODS),
        ...(o.percentile !== undefined ? { percentile: Number(o.percentile) } : {}),
        ...(o.calibrationCache !== undefined ? { calibrationCache: o.calibrationCache } : {}),
        exclude: o.exclude ?? [],
        autoExclude: !!o.autoExclude,
        sensitivity: !!o.sensitivity,
        sensitivityImages: int('--sensitivity-images', o.sensitivityImages)!,
        activationType: oneOf('--activation-type', o.activationType, ['uint8', 'int8'] as const),
        ...(o.checkData !== undefined ? { checkData: o.checkData } : {}),
        targetExecutionProvider: o.targetEp,
        ...(progressBars(o.progress !== false && !o.json) ? { progress: progressBars(true)! } : {}),
        log: (l) => process.stderr.write(`build: ${l}\n`),
      });
      if (o.json) process.stdout.write(JSON.stringify({ modelDir: result.modelDir, version: result.version, versionDir: result.versionDir, manifest: result.manifest }, null, 2) + '\n');
      else process.stdout.write(`${result.versionDir}\n`);
    });
}
