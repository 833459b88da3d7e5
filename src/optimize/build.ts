/**
 * The engine builder behind `osprey build`: source ONNX → graph passes (dynamic batch, INT8 QDQ with
 * calibration, …) → broken-model check → a versioned engine directory that `osprey serve` loads as is:
 *
 * ```
 * <out>/config.json              Triton keys in camelCase (src/repository/config.ts), filled in from the engine
 * <out>/<version>/model.onnx
 * <out>/<version>/manifest.json  source sha256, passes + options, precision, calibration, ORT version, EP, GPU, hashes
 * <out>/<version>/calibration-cache.json, calibration.cache (TensorRT table), sensitivity.json   (INT8 only)
 * ```
 *
 * Everything is written into a temp directory next to the destination and renamed into place at the end, so a
 * failed build leaves nothing half-written.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { listGpus } from '../gpu/system.js';
import { OspreyError } from '../core/errors.js';
import type { DetectionModelSpec } from '../core/model-spec.js';
import type { OnnxModel } from '../onnx/proto-types.js';
import { cloneOnnxModel, decodeOnnxModel, encodeOnnxModel, readModelFile } from '../onnx/model.js';
import { DEFAULT_TOPK, dynamicBatch, fp16, topKOutput, uint8Input } from '../onnx/passes/index.js';
import { parseModelConfigText, resolveModelConfig, validateModelConfig, type ModelConfigFile } from '../repository/config.js';
import { toTritonDataType } from '../repository/datatypes.js';
import { OSPREY_VERSION, onnxRuntimeVersion } from '../version.js';
import { type CalibrationMethod, DEFAULT_PERCENTILE, type TensorStatistics } from './calibration.js';
import { createCalibrationCache, parseCalibrationCache, rangesFromStatistics, toTensorRtCalibrationTable } from './calibration-cache.js';
import { calibrationPreprocessing, collectStatistics } from './calibrate.js';
import { assertNotBroken, checkModel, type CheckResult } from './check.js';
import { listImageFiles, prepareAllImages, prepareImages } from './images.js';
import { detectionSpecOf, graphInputSpecs, graphOutputSpecs, setModelMetadata, sha256Hex } from './model-info.js';
import { calibrationTensorNames, DEFAULT_QUANTIZED_OP_TYPES, fuseUint8InputQuantize, quantizeQdq, UINT8_IMAGE_PARAMS, type QdqReport } from './qdq.js';
import { fastDfl } from './dfl.js';
import { expandNearestResize } from './upsample.js';
import { stemColumnsToChannels } from './stem.js';
import type { ActivationType } from './quant-params.js';
import { analyzeSensitivity, type SensitivityReport } from './sensitivity.js';

export type Precision = 'fp32' | 'fp16' | 'int8';
export type InputFormatOption = 'uint8-nhwc' | 'float32-nchw';

/** Options of {@link buildEngine} (CLI flags in comments). */
export interface BuildOptions {
  /** `--model`: source ONNX file (a plain FP32 detection export). */
  model: string;
  /** `--out`: engine directory to create (must not exist or be empty); version 1 goes inside. */
  out?: string;
  /** `--repository` + `--name`: write into a model repository as the next version of model `name`. */
  repository?: string;
  name?: string;
  /** `--precision`, default fp32. */
  precision?: Precision;
  /** `--input`: graph input format, default uint8-nhwc (the pre-processing prefix: Transpose → Cast → Div(255) in the graph). */
  input?: InputFormatOption;
  /** `--topk`: top-K candidate suffix (needs the post-processing suffix pass). */
  topk?: number;
  /** `--nms-in-graph`. */
  nmsInGraph?: boolean;
  /** `--max-batch`, default 1 (no dynamic batch axis); > 1 applies the dynamic batch pass. */
  maxBatch?: number;
  /** `--calibration-data`: folder of real images. */
  calibrationData?: string;
  /** Use at most this many calibration images (sorted by name), default 256. */
  calibrationImages?: number;
  /** Explicit calibration image files (API; the CLI uses `calibrationData`). */
  calibrationFiles?: readonly string[];
  /** `--calibration-method`, default minmax (measured best on yolov8n, see docs/build.md). */
  calibrationMethod?: CalibrationMethod;
  /** `--percentile`, default 99.99. */
  percentile?: number;
  /** `--calibration-cache`: read when it exists (no images needed), else written after calibration. */
  calibrationCache?: string;
  /** `--exclude`: node names or op types kept in FP32. */
  exclude?: readonly string[];
  /** `--auto-exclude`: run the sensitivity analysis and exclude what it proposes. */
  autoExclude?: boolean;
  /** `--sensitivity`: run the analysis and record it without applying (implied by autoExclude). */
  sensitivity?: boolean;
  /** Images for the sensitivity analysis (first N calibration images), default 4. */
  sensitivityImages?: number;
  /** `--activation-type`, default uint8. */
  activationType?: ActivationType;
  /** `--check-data`: folder of images for the broken-model check (default: calibration images, else synthetic). */
  checkData?: string;
  /** `--target-ep`: execution provider the engine is meant for (recorded), default cpu. */
  targetExecutionProvider?: string;
  /** Progress hooks (the CLI draws cli-progress bars). */
  progress?: BuildProgress;
  /** One line per step. */
  log?: (line: string) => void;
}

export interface BuildProgress {
  start(kind: 'calibration' | 'sensitivity', total: number): void;
  update(done: number, label: string): void;
  stop(): void;
}

/** A pass as recorded in the manifest. */
export interface PassRecord {
  name: string;
  options: Record<string, unknown>;
  notes?: string[];
}

/** Result of {@link buildEngine}. */
export interface BuildResult {
  /** The model folder (`--out`, or `<repository>/<name>`). */
  modelDir: string;
  version: number;
  versionDir: string;
  manifest: EngineManifest;
}

/** manifest.json of an engine version. */
export interface EngineManifest {
  format: 'osprey-engine-manifest';
  formatVersion: 1;
  osprey: string;
  createdAt: string;
  source: { file: string; sha256: string; bytes: number };
  precision: Precision;
  input: InputFormatOption;
  passes: PassRecord[];
  calibration: null | {
    method: CalibrationMethod;
    percentile?: number;
    activationType: ActivationType;
    imageCount: number;
    images: string[];
    fromCache: string | null;
    cacheSha256: string;
    excludedNodes: string[];
    autoExcludedNodes: string[];
    quantizedNodes: number;
    skippedNodes: { node: string; reason: string }[];
  };
  onnxRuntime: string;
  targetExecutionProvider: string;
  gpu: null | { name: string; computeCapability: string };
  check: { images: string[]; scoreMin: number; scoreMax: number; candidatesPerImage: number[] };
  files: Record<string, { sha256: string; bytes: number }>;
}

const VERSION_DIR = /^[0-9]+$/;

/** GPU name and compute capability of the first GPU (`nvidia-smi`, via src/gpu), or null (no GPU / no driver). */
export function detectGpu(): { name: string; computeCapability: string } | null {
  const gpu = listGpus()[0];
  return gpu ? { name: gpu.name, computeCapability: gpu.computeCapability } : null;
}

/** Resolves `--exclude` values against the graph: op types present in the graph, else node names. */
export function resolveExclusions(model: OnnxModel, values: readonly string[]): { nodes: string[]; opTypes: string[] } {
  const ops = new Set(model.graph.node.map((n) => n.op_type ?? ''));
  const names = new Set(model.graph.node.map((n) => n.name ?? ''));
  const nodes: string[] = [];
  const opTypes: string[] = [];
  for (const v of values) {
    if (ops.has(v)) opTypes.push(v);
    else if (names.has(v)) nodes.push(v);
    else throw new OspreyError('OSPREY_ERR_USAGE', `--exclude ${v}: no node or op type of that name in the model`, { exclude: v });
  }
  return { nodes, opTypes };
}

function nextVersion(modelDir: string): number {
  if (!existsSync(modelDir)) return 1;
  let max = 0;
  for (const f of readdirSync(modelDir)) if (VERSION_DIR.test(f)) max = Math.max(max, Number(f));
  return max + 1;
}

/** The config.json Osprey writes for an engine (validated against the server's schema before writing). */
export function engineConfig(name: string, model: OnnxModel, spec: DetectionModelSpec, maxBatch: number): ModelConfigFile {
  const inputs = graphInputSpecs(model);
  const outputs = graphOutputSpecs(model);
  const batched = maxBatch > 1 && spec.batchSize === null;
  const dims = (shape: readonly (number | string)[]) => (batched ? shape.slice(1) : shape).map((d) => (typeof d === 'number' && d > 0 ? d : -1));
  const file: ModelConfigFile = {
    name,
    platform: 'onnxruntime_onnx',
    maxBatchSize: batched ? maxBatch : 0,
    input: inputs.map((t) => ({ name: t.name, dataType: toTritonDataType(t.type), dims: dims(t.shape) })),
    output: outputs.map((t) => ({ name: t.name, dataType: toTritonDataType(t.type), dims: dims(t.shape) })),
    ...(batched ? { dynamicBatching: { maxQueueDelayMicroseconds: 2000 } } : {}),
    detection: { conf: 0.25, iou: 0.7, maxDet: 300 },
  };
  const checked = validateModelConfig(JSON.parse(JSON.stringify(file)), `${name}/config.json`);
  resolveModelConfig(checked, name, { inputs, outputs });
  return checked;
}

/**
 * Builds an engine directory.
 *
 * @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND_FILE` / `OSPREY_ERR_ONNX_PARSE` / `OSPREY_ERR_INVALID_MODEL` (not an
 *   ONNX file), `OSPREY_ERR_UNSUPPORTED_LAYOUT` (output layout), `OSPREY_ERR_CALIBRATION_DATA` (no decodable
 *   calibration image, or INT8 without images nor cache), `OSPREY_ERR_CALIBRATION_CACHE` (cache for another model),
 *   `OSPREY_ERR_PASS_FAILED`, `OSPREY_ERR_BROKEN_MODEL` (the built engine's scores are degenerate),
 *   `OSPREY_ERR_USAGE` (options), `OSPREY_ERR_CONFIG` (`--repository`: the model's existing config.json does not
 *   fit the new engine's inputs/outputs). Nothing is left in the destination on failure.
 */
export async function buildEngine(options: BuildOptions): Promise<BuildResult> {
  const log = options.log ?? (() => {});
  const precision = options.precision ?? 'fp32';
  const inputFormat = options.input ?? 'uint8-nhwc';
  const maxBatch = options.maxBatch ?? 1;
  const targetEp = options.targetExecutionProvider ?? 'cpu';
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new OspreyError('OSPREY_ERR_USAGE', `--max-batch must be a positive integer, got ${maxBatch}`);
  if ((options.out === undefined) === (options.repository === undefined)) {
    throw new OspreyError('OSPREY_ERR_USAGE', 'give exactly one of --out DIR or --repository REPO --name NAME');
  }
  if (options.repository !== undefined && !options.name) throw new OspreyError('OSPREY_ERR_USAGE', '--repository needs --name NAME (the model folder)');
  if (options.topk !== undefined && (!Number.isInteger(options.topk) || options.topk < 1)) throw new OspreyError('OSPREY_ERR_USAGE', `--topk must be a positive integer, got ${options.topk}`);

  // ---- destination (checked before any work) ----
  const modelDir = resolve(options.out ?? join(options.repository!, options.name!));
  if (options.out !== undefined && existsSync(modelDir) && (!statSync(modelDir).isDirectory() || readdirSync(modelDir).length > 0)) {
    throw new OspreyError('OSPREY_ERR_USAGE', `--out ${options.out}: exists and is not an empty directory; choose a new directory, or use --repository to add a version`, { path: modelDir });
  }
  if (options.repository !== undefined && !(existsSync(options.repository) && statSync(options.repository).isDirectory())) {
    throw new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `--repository ${options.repository}: not a directory`, { path: options.repository });
  }

  // ---- source ----
  const sourceBytes = readModelFile(options.model);
  const sourceSha = sha256Hex(sourceBytes);
  const source = decodeOnnxModel(sourceBytes, { sourceName: options.model, baseDir: dirname(resolve(options.model)) });
  const spec = detectionSpecOf(source);
  log(`source ${options.model}: sha256 ${sourceSha}, input ${spec.inputName} ${spec.inputFormat} ${spec.inputHeight}x${spec.inputWidth}, output ${spec.outputName} ${spec.layout.layout} (${spec.layout.numClasses} classes, ${spec.layout.numBoxes} boxes)`);
  if (precision === 'int8' && (spec.inputFormat !== 'float32-nchw' || spec.inputType !== 'float32')) {
    throw new OspreyError('OSPREY_ERR_UNSUPPORTED_MODEL', `--precision int8 needs an FP32 source model with a float32 [B, 3, H, W] input; '${spec.inputName}' is ${spec.inputType} ${spec.inputFormat}`);
  }

  const passes: PassRecord[] = [];
  let model: OnnxModel = source;
  if (maxBatch > 1) {
    const notes: string[] = [];
    model = dynamicBatch(model, { maxBatch, log: (l) => notes.push(l) });
    passes.push({ name: 'dynamicBatch', options: { maxBatch, batchDimName: 'batch' }, notes });
    log(`dynamicBatch: ${notes.length} rewrite(s)`);
  }

  // ---- INT8 ----
  let calibration: EngineManifest['calibration'] = null;
  const extraFiles = new Map<string, Uint8Array>();
  let checkFiles: string[] = options.checkData ? listImageFiles(options.checkData, 4, 'check data') : [];
  if (precision === 'int8') {
    const method = options.calibrationMethod ?? 'minmax';
    const percentile = options.percentile ?? DEFAULT_PERCENTILE;
    const activationType = options.activationType ?? 'uint8';
    const pre = calibrationPreprocessing(spec.inputHeight, spec.inputWidth);
    let statistics: Map<string, TensorStatistics>;
    let images: string[];
    let fromCache: string | null = null;
    let cacheText: string;
    const calibFiles = options.calibrationFiles ?? (options.calibrationData ? listImageFiles(options.calibrationData, options.calibrationImages ?? 256) : undefined);
    if (options.calibrationCache && existsSync(options.calibrationCache)) {
      cacheText = readFileSync(options.calibrationCache, 'utf8');
      const parsed = parseCalibrationCache(cacheText, { modelSha256: sourceSha, preprocessing: pre }, options.calibrationCache);
      statistics = parsed.statistics;
      images = parsed.cache.images;
      fromCache = options.calibrationCache;
      log(`calibration: reusing ${options.calibrationCache} (${parsed.cache.imageCount} images, ${statistics.size} tensors)`);
    } else {
      if (!calibFiles) {
        throw new OspreyError('OSPREY_ERR_CALIBRATION_DATA', '--precision int8 needs --calibration-data DIR (real images) or an existing --calibration-cache FILE');
      }
      const tensorNames = calibrationTensorNames(source, DEFAULT_QUANTIZED_OP_TYPES);
      options.progress?.start('calibration', calibFiles.length);
      const skipped: string[] = [];
      try {
        const res = await collectStatistics(source, spec.inputName, tensorNames, prepareImages(calibFiles, { height: spec.inputHeight, width: spec.inputWidth, format: 'float32-nchw' }, (f) => skipped.push(basename(f))), {
          onImage: (done, name) => options.progress?.update(done, name),
        });
        statistics = res.statistics;
        images = res.images;
      } finally {
        options.progress?.stop();
      }
      if (images.length === 0) {
        throw new OspreyError('OSPREY_ERR_CALIBRATION_DATA', `calibration data: none of the ${calibFiles.length} image file(s) could be decoded (${skipped.slice(0, 5).join(', ')})`, { skipped });
      }
      if (skipped.length) log(`calibration: skipped ${skipped.length} undecodable file(s): ${skipped.slice(0, 5).join(', ')}`);
      cacheText = JSON.stringify(createCalibrationCache({ modelSha256: sourceSha, preprocessing: pre, images, statistics }));
      if (options.calibrationCache) {
        writeFileAtomic(options.calibrationCache, cacheText);
        log(`calibration: cache written to ${options.calibrationCache}`);
      }
    }
    if (calibFiles && checkFiles.length === 0) checkFiles = calibFiles.slice(0, 4);
    const ranges = rangesFromStatistics(statistics, method, percentile);
    const ex = resolveExclusions(source, options.exclude ?? []);
    let autoExcluded: string[] = [];
    let sensitivity: SensitivityReport | undefined;
    if (options.autoExclude || options.sensitivity) {
      const sensFiles = (calibFiles ?? checkFiles).slice(0, options.sensitivityImages ?? 4);
      if (sensFiles.length === 0) {
        throw new OspreyError('OSPREY_ERR_CALIBRATION_DATA', '--auto-exclude needs a few real images: give --calibration-data or --check-data');
      }
      const sensImages = await prepareAllImages(sensFiles, { height: spec.inputHeight, width: spec.inputWidth, format: 'float32-nchw' }, 'sensitivity images');
      let total = 0;
      try {
        sensitivity = await analyzeSensitivity(source, ranges, { inputName: spec.inputName, outputName: spec.outputName, layout: spec.layout }, sensImages, {
          activationType,
          excludeNodes: ex.nodes,
          excludeOpTypes: ex.opTypes,
          onLayer: (done, t, layer) => {
            if (total === 0) {
              total = t;
              options.progress?.start('sensitivity', t);
            }
            options.progress?.update(done, layer);
          },
        });
      } finally {
        options.progress?.stop();
      }
      log(`sensitivity: ${sensitivity.layers.length} layers; proposed exclusions (error ≥ ${sensitivity.threshold.toFixed(4)}): ${sensitivity.proposedLayers.join(', ') || 'none'}; output error all-quantized ${sensitivity.allQuantized.error.toFixed(4)} → with exclusions ${sensitivity.withExclusions.error.toFixed(4)}`);
      if (options.autoExclude) autoExcluded = sensitivity.proposedNodes;
      extraFiles.set('sensitivity.json', Buffer.from(JSON.stringify(sensitivity, null, 2)));
    }
    // The image input is uint8 pixels / 255 (calibration pre-processing): uint8 with scale 1/255, zero point 0
    // represents it exactly, and lets fuseUint8InputQuantize feed the uint8 frames straight to the first Conv.
    const fixedParams = activationType === 'uint8' ? new Map([[spec.inputName, UINT8_IMAGE_PARAMS]]) : undefined;
    const qdq: QdqReport = quantizeQdq((model = cloneOnnxModel(model)), ranges, {
      activationType,
      excludeNodes: [...ex.nodes, ...autoExcluded],
      excludeOpTypes: ex.opTypes,
      quantizeHeadConvs: true,
      shareConcatParams: true,
      ...(fixedParams ? { fixedParams } : {}),
    });
    passes.push({
      name: 'quantizeQdq',
      options: {
        method,
        ...(method === 'percentile' ? { percentile } : {}),
        activationType,
        weights: 'int8 symmetric per-channel (axis 0)',
        excludeNodes: ex.nodes,
        excludeOpTypes: ex.opTypes,
        autoExclude: !!options.autoExclude,
        fp32: 'output tail (box decode, DFL, class Sigmoid, final Concats); prediction convs quantized',
        shareConcatParams: true,
        ...(fixedParams ? { inputParams: { tensor: spec.inputName, scale: UINT8_IMAGE_PARAMS.scale, zeroPoint: 0 } } : {}),
      },
      notes: [`${qdq.quantizedNodes.length} nodes quantized, ${qdq.quantizedTensors} activation tensors, ${qdq.quantizedWeights} weights`],
    });
    log(`quantizeQdq (${method}, ${activationType}): ${qdq.quantizedNodes.length} nodes quantized, ${qdq.skippedNodes.length} kept in FP32`);
    const cacheBytes = Buffer.from(cacheText);
    extraFiles.set('calibration-cache.json', cacheBytes);
    extraFiles.set('calibration.cache', Buffer.from(toTensorRtCalibrationTable(ranges, method)));
    calibration = {
      method,
      ...(method === 'percentile' ? { percentile } : {}),
      activationType,
      imageCount: images.length,
      images,
      fromCache,
      cacheSha256: sha256Hex(cacheBytes),
      excludedNodes: [...ex.nodes, ...ex.opTypes.map((o) => `op:${o}`)],
      autoExcludedNodes: autoExcluded,
      quantizedNodes: qdq.quantizedNodes.length,
      skippedNodes: qdq.skippedNodes,
    };
  }

  if (inputFormat === 'uint8-nhwc' && spec.inputFormat !== 'uint8-nhwc') {
    const notes: string[] = [];
    model = uint8Input(model, { log: (l) => notes.push(l) });
    passes.push({ name: 'uint8Input', options: {}, notes });
    log(`uint8Input: ${notes.join('; ')}`);
    if (precision === 'int8') {
      const fuseNotes: string[] = [];
      if (fuseUint8InputQuantize(model, (l) => fuseNotes.push(l)) > 0) {
        passes.push({ name: 'fuseUint8InputQuantize', options: {}, notes: fuseNotes });
        log(fuseNotes.join('; '));
      }
    }
  }
  if (options.topk !== undefined || options.nmsInGraph) {
    const notes: string[] = [];
    const k = options.topk ?? DEFAULT_TOPK;
    model = topKOutput(model, { k, nmsInGraph: !!options.nmsInGraph, log: (l) => notes.push(l) });
    passes.push({ name: 'topKOutput', options: { k, nmsInGraph: !!options.nmsInGraph }, notes });
    log(`topKOutput: ${notes.join('; ')}`);
  }

  // fp16 last: its output-tail rule then keeps the whole suffix in float32 (docs/onnx-passes.md)
  if (precision === 'fp16') {
    const notes: string[] = [];
    model = fp16(model, { log: (l) => notes.push(l) });
    passes.push({ name: 'fp16', options: { keepIO: true, keepOutputTail: true }, notes });
    log(`fp16: ${notes.length} note(s)`);
  }

  // CPU EP: the DFL softmax along the innermost axis (measured on ORT's CPU EP only; GPU engines keep the export's form)
  if (targetEp === 'cpu') {
    const notes: string[] = [];
    const before = model;
    model = fastDfl(model, { log: (l) => notes.push(l) });
    if (model !== before) {
      passes.push({ name: 'fastDfl', options: {}, notes });
      log(notes.join('; '));
    }
  }

  // CPU EP, INT8 (measured on ORT's CPU EP only): the neck's nearest upsampling on the 8-bit tensors as Expand (ORT
  // runs a uint8 NHWC Resize as a per-element loop, src/optimize/upsample.ts), and the 3-channel stem reading 4
  // pixels as 12 channels so that MLAS's indirect int8 kernel takes it (src/optimize/stem.ts). Both bit-exact.
  if (targetEp === 'cpu' && precision === 'int8') {
    for (const [name, pass] of [['expandNearestResize', expandNearestResize], ['stemColumnsToChannels', stemColumnsToChannels]] as const) {
      const notes: string[] = [];
      const before = model;
      model = pass(model, { log: (l) => notes.push(l) });
      if (model !== before) {
        passes.push({ name, options: {}, notes });
        log(notes.join('; '));
      }
    }
  }

  // ---- metadata ----
  setModelMetadata(model, 'osprey_precision', precision);
  setModelMetadata(model, 'osprey_source_sha256', sourceSha);
  setModelMetadata(model, 'osprey_version', OSPREY_VERSION);
  const bytes = encodeOnnxModel(model);
  const engineModel = decodeOnnxModel(bytes);

  // ---- broken-model check on the engine as written ----
  const check: CheckResult = await checkModel(engineModel, checkFiles);
  assertNotBroken(check, `${precision} engine built from ${basename(options.model)}`);
  log(`check: scores ${check.scores.min.toFixed(4)}..${check.scores.max.toFixed(4)} on ${check.images.join(', ')}; candidates ≥0.25 per image: ${check.candidatesPerImage.join(', ')}`);

  // ---- write: temp dir, then rename ----
  const name = options.name ?? basename(modelDir);
  const version = options.repository !== undefined ? nextVersion(modelDir) : 1;
  const files = new Map<string, Uint8Array>([['model.onnx', bytes], ...extraFiles]);
  const manifest: EngineManifest = {
    format: 'osprey-engine-manifest',
    formatVersion: 1,
    osprey: OSPREY_VERSION,
    createdAt: new Date().toISOString(),
    source: { file: basename(options.model), sha256: sourceSha, bytes: sourceBytes.byteLength },
    precision,
    input: inputFormat,
    passes,
    calibration,
    onnxRuntime: onnxRuntimeVersion(),
    targetExecutionProvider: targetEp,
    gpu: detectGpu(),
    check: { images: check.images, scoreMin: check.scores.min, scoreMax: check.scores.max, candidatesPerImage: check.candidatesPerImage },
    files: Object.fromEntries([...files].map(([f, b]) => [f, { sha256: sha256Hex(b), bytes: b.byteLength }])),
  };
  const config = engineConfig(name, engineModel, detectionSpecOf(engineModel), maxBatch);
  const versionDir = join(modelDir, String(version));
  const existingConfig = join(modelDir, 'config.json');
  if (options.repository !== undefined && existsSync(existingConfig)) {
    // a model's config covers all its versions (as in Triton): the new version must match it
    const parsed = parseModelConfigText(readFileSync(existingConfig, 'utf8'), existingConfig);
    try {
      resolveModelConfig(parsed, name, { inputs: graphInputSpecs(engineModel), outputs: graphOutputSpecs(engineModel) }, existingConfig);
    } catch (err) {
      throw new OspreyError(
        'OSPREY_ERR_CONFIG',
        `${existingConfig} does not fit the new engine (${(err as Error).message}); build it under another --name, or edit config.json`,
        { file: existingConfig },
        { cause: err },
      );
    }
  }
  if (options.out !== undefined) {
    const tmp = join(dirname(modelDir), `.${basename(modelDir)}.tmp-${process.pid}-${Date.now()}`);
    try {
      mkdirSync(join(tmp, String(version)), { recursive: true });
      writeVersion(join(tmp, String(version)), files, manifest);
      writeFileSync(join(tmp, 'config.json'), JSON.stringify(config, null, 2) + '\n');
      if (existsSync(modelDir)) rmSync(modelDir, { recursive: true }); // empty, checked above
      renameSync(tmp, modelDir);
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      throw err;
    }
  } else {
    mkdirSync(modelDir, { recursive: true });
    const tmp = join(modelDir, `.tmp-${process.pid}-${Date.now()}-v${version}`);
    try {
      mkdirSync(tmp);
      writeVersion(tmp, files, manifest);
      renameSync(tmp, versionDir);
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      throw err;
    }
    if (!existsSync(existingConfig)) writeFileAtomic(existingConfig, JSON.stringify(config, null, 2) + '\n');
  }
  log(`wrote ${versionDir}`);
  return { modelDir, version, versionDir, manifest };
}

function writeVersion(dir: string, files: ReadonlyMap<string, Uint8Array>, manifest: EngineManifest): void {
  for (const [f, b] of files) writeFileSync(join(dir, f), b);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
}

function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
