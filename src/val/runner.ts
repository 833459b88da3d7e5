/**
 * Validation runner: runs a model over a {@link ValDataset} through the same {@link Detector} pipeline as
 * serving (sharp decode → 640×640-style square letterbox at the model's input size → ORT engine in a worker
 * thread → decode + NMS → source pixels), converts detections to COCO results and evaluates them with
 * {@link evaluateCoco}.
 *
 * Defaults are Ultralytics' validation settings: confidence threshold 0.001, NMS IoU 0.7, at most 300
 * detections per image (`ultralytics/models/yolo/detect/val.py`; COCOeval then scores the top 100).
 * One difference from Ultralytics' val: it letterboxes rectangular batches (minimal stride-aligned padding,
 * `rect=True`); Osprey feeds the model's fixed input size (a square letterbox), exactly as it serves.
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { evaluateCoco, type CocoDetectionResult, type CocoEvalResult, type CocoSummary } from '../core/cocoeval.js';
import { OspreyError } from '../core/errors.js';
import type { ImageResult } from '../core/types.js';
import { Detector } from '../engine/detector.js';
import { confusionMatrix, type ConfusionMatrix } from './confusion.js';
import { describeIssues, mapClasses, type ClassMapping, type ValDataset, type ValImage } from './dataset.js';

/** Ultralytics' validation defaults. */
export const VAL_DEFAULTS = Object.freeze({ conf: 0.001, iou: 0.7, maxDet: 300 });

export interface ValOptions {
  /** Execution providers, in order (default: the engine's default, cuda then cpu). */
  executionProviders?: readonly string[];
  /** Confidence threshold. Default 0.001. */
  conf?: number;
  /** NMS IoU threshold. Default 0.7. */
  iou?: number;
  /** Max detections per image after NMS. Default 300. */
  maxDet?: number;
  /** Evaluate only the first N images (by image id, deterministic). */
  limit?: number;
  /** ORT intra-op threads. */
  intraOpNumThreads?: number;
  /** Called after each image (done, total). */
  onProgress?: (done: number, total: number) => void;
}

/** Per-class result with the model's class name. */
export interface ValClassResult {
  /** Dataset category id. */
  categoryId: number;
  name: string;
  /** Model class index (-1 when the model has no class of this name). */
  classId: number;
  numGroundTruth: number;
  numDetections: number;
  /** null where the class has no ground truth in the evaluated images. */
  ap50_95: number | null;
  ap50: number | null;
  ap75: number | null;
}

/** One model's validation result (the `--json` entry, plus what the report needs). */
export interface ModelValResult extends CocoSummary {
  /** The model as given on the command line. */
  model: string;
  /** The .onnx file that ran. */
  modelPath: string;
  executionProvider: string;
  perClass: ValClassResult[];
  images: {
    /** Images the mAP covers. */
    evaluated: number;
    /** Images listed by the dataset. */
    listed: number;
    /** Listed but missing files. */
    missing: number;
    /** Images that failed to decode or run (left out of the mAP). */
    failed: number;
    /**
     * Evaluated images whose decoded size (after EXIF orientation) differs from the width/height the annotations
     * state: their boxes and the ground truth may not be in the same frame (wrong annotation file, rotated images).
     */
    sizeMismatch: number;
  };
  /** Each failed image with its error code. */
  failures: Array<{ image: string; code: string; message: string }>;
  /** Data problems found while loading (one line; '' when none). */
  datasetIssues: string;
  classMapping: 'name' | 'index';
  settings: { conf: number; iou: number; maxDet: number; inputWidth: number; inputHeight: number };
  /** Wall time of inference + post-processing over the dataset. */
  durationSeconds: number;
  msPerImage: number;
  /** COCO results (source pixels, [x, y, w, h]), not printed by --json. */
  detections: CocoDetectionResult[];
  /** Full evaluator output, for the report. */
  evaluation: CocoEvalResult;
  confusion: ConfusionMatrix;
}

/**
 * Resolves `--model`: an `.onnx` file, or an engine directory from `osprey build` — either a version folder holding
 * `model.onnx`, or the model folder (`config.json` + numbered version folders), whose highest version is taken.
 * @example resolveModelPath('engines/yolov8n-int8') // → '/abs/engines/yolov8n-int8/3/model.onnx'
 * @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND_FILE`.
 */
export function resolveModelPath(model: string): string {
  const p = resolve(model);
  const isFile = (f: string) => {
    try {
      return statSync(f).isFile();
    } catch {
      return false;
    }
  };
  let st;
  try {
    st = statSync(p);
  } catch {
    throw new OspreyError('OSPREY_ERR_MODEL_NOT_FOUND_FILE', `${model}: no such model file or engine directory`, { path: p });
  }
  if (!st.isDirectory()) return p;
  if (isFile(join(p, 'model.onnx'))) return join(p, 'model.onnx');
  const versions = readdirSync(p)
    .filter((d) => /^\d+$/.test(d) && isFile(join(p, d, 'model.onnx')))
    .map(Number)
    .sort((a, b) => b - a);
  if (versions.length > 0) return join(p, String(versions[0]), 'model.onnx');
  throw new OspreyError('OSPREY_ERR_MODEL_NOT_FOUND_FILE', `${model}: an engine directory must hold model.onnx or numbered version folders with one`, { path: p });
}

/** The images to evaluate: all, or the first `limit` by id. */
export function selectImages(dataset: ValDataset, limit?: number): ValImage[] {
  const sorted = [...dataset.images].sort((a, b) => a.id - b.id);
  if (limit === undefined) return sorted;
  if (!Number.isInteger(limit) || limit < 1) throw new OspreyError('OSPREY_ERR_USAGE', `--limit must be a positive integer, got ${limit}`);
  return sorted.slice(0, limit);
}

/**
 * Converts detections of one image (source-pixel xyxy boxes, model class ids) to COCO results, dropping classes
 * the dataset lacks.
 */
export function toCocoResults(imageId: number, detections: readonly { classId: number; score: number; box: readonly number[] }[], mapping: ClassMapping, out: CocoDetectionResult[]): void {
  for (const d of detections) {
    const categoryId = mapping.modelToCategory[d.classId] ?? -1;
    if (categoryId < 0) continue;
    const [x1, y1, x2, y2] = d.box as [number, number, number, number];
    out.push({ imageId, categoryId, bbox: [x1, y1, x2 - x1, y2 - y1], score: d.score });
  }
}

/**
 * Validates one model on a dataset.
 * @throws OspreyError from loading the model (`OSPREY_ERR_MODEL_NOT_FOUND_FILE`, `OSPREY_ERR_INVALID_MODEL`,
 *   `OSPREY_ERR_UNSUPPORTED_LAYOUT`, `OSPREY_ERR_EP_UNAVAILABLE`), `OSPREY_ERR_CLASS_MAPPING` (names do not
 *   match), `OSPREY_ERR_DATASET` (every image failed: the mAP would be meaningless).
 */
export async function validateModel(model: string, dataset: ValDataset, options: ValOptions = {}): Promise<ModelValResult> {
  const modelPath = resolveModelPath(model);
  const conf = options.conf ?? VAL_DEFAULTS.conf;
  const iou = options.iou ?? VAL_DEFAULTS.iou;
  const maxDet = options.maxDet ?? VAL_DEFAULTS.maxDet;
  const images = selectImages(dataset, options.limit);
  const detector = await Detector.create({
    modelPath,
    ...(options.executionProviders ? { executionProviders: options.executionProviders } : {}),
    ...(options.intraOpNumThreads ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
  });
  try {
    const mapping = mapClasses(detector.spec.names, dataset);
    const detections: CocoDetectionResult[] = [];
    const failures: ModelValResult['failures'] = [];
    const okIds: number[] = [];
    let done = 0;
    let sizeMismatch = 0;
    const t0 = performance.now();
    const onResult = (i: number, r: ImageResult): void => {
      const img = images[i]!;
      if ('error' in r) failures.push({ image: img.fileName, code: r.error.code, message: r.error.message });
      else {
        okIds.push(img.id);
        if (img.width !== undefined && img.height !== undefined && (r.width !== img.width || r.height !== img.height)) sizeMismatch++;
        toCocoResults(img.id, r.detections, mapping, detections);
      }
      options.onProgress?.(++done, images.length);
    };
    options.onProgress?.(0, images.length);
    await detector.detectFiles(images.map((im) => im.path), { confThreshold: conf, iouThreshold: iou, maxDetections: maxDet }, { onResult });
    const durationSeconds = (performance.now() - t0) / 1000;
    if (okIds.length === 0) {
      const codes = [...new Set(failures.map((f) => f.code))].join(', ');
      throw new OspreyError(
        'OSPREY_ERR_DATASET',
        `${dataset.source}: all ${images.length} images failed (${codes}; first: ${failures[0]?.message ?? 'none'}): no mAP can be computed`,
        { failed: failures.length, codes },
      );
    }
    okIds.sort((a, b) => a - b);
    const categoryIds = dataset.categories.map((c) => c.id);
    const evaluation = evaluateCoco(dataset.annotations, detections, { imageIds: okIds, categoryIds });
    const perClass: ValClassResult[] = evaluation.perClass.map((c) => ({
      categoryId: c.categoryId,
      name: dataset.categories.find((x) => x.id === c.categoryId)!.name,
      classId: mapping.categoryToModel.get(c.categoryId) ?? -1,
      numGroundTruth: c.numGroundTruth,
      numDetections: c.numDetections,
      ap50_95: c.ap50_95,
      ap50: c.ap50,
      ap75: c.ap75,
    }));
    const confusion = confusionMatrix(dataset.annotations, detections, okIds, categoryIds, dataset.categories.map((c) => c.name));
    return {
      model,
      modelPath,
      executionProvider: (detector.engine.info as { executionProvider: string }).executionProvider,
      ...evaluation.summary,
      perClass,
      images: { evaluated: okIds.length, listed: dataset.listedImages, missing: dataset.issues.missingImages, failed: failures.length, sizeMismatch },
      failures,
      datasetIssues: describeIssues(dataset.issues),
      classMapping: mapping.method,
      settings: { conf, iou, maxDet, inputWidth: detector.spec.inputWidth, inputHeight: detector.spec.inputHeight },
      durationSeconds,
      msPerImage: (durationSeconds * 1000) / images.length,
      detections,
      evaluation,
      confusion,
    };
  } finally {
    await detector.close();
  }
}

/** A short display name for a model path (engine dirs by their folder name). */
export function displayName(model: string): string {
  return basename(model.replace(/\/+$/, '')) || model;
}

/** COCO results JSON (`image_id`, `category_id`, `bbox` [x,y,w,h] rounded to 3 decimals, `score` to 5), as Ultralytics' `--save-json`. */
export function cocoResultsJson(detections: readonly CocoDetectionResult[]): string {
  const r3 = (v: number) => Math.round(v * 1000) / 1000;
  return JSON.stringify(
    detections.map((d) => ({ image_id: d.imageId, category_id: d.categoryId, bbox: d.bbox.map(r3), score: Math.round(d.score * 1e5) / 1e5 })),
  );
}
