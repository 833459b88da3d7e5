/**
 * The calibration cache: activation statistics of one source model on one calibration set, saved as JSON so a
 * later build (any method) reuses them without the images, plus an export in TensorRT's calibration-table text
 * format.
 *
 * The cache is keyed by the source model's sha256 and the pre-processing (input format, size, letterbox);
 * loading it for another model throws `OSPREY_ERR_CALIBRATION_CACHE`.
 */
import { OspreyError } from '../core/errors.js';
import {
  type CalibrationMethod,
  type TensorRange,
  type TensorStatistics,
  computeTensorRange,
  DEFAULT_PERCENTILE,
} from './calibration.js';

/** Format tag written into every cache file. */
export const CALIBRATION_CACHE_FORMAT = 'osprey-calibration-cache';
export const CALIBRATION_CACHE_VERSION = 1;

/** How calibration images were turned into model inputs (must match inference). */
export interface CalibrationPreprocessing {
  /** Always letterbox (Ultralytics LetterBox semantics, pad value 114, centred). */
  resize: 'letterbox';
  padValue: number;
  /** Model input height and width in pixels. */
  inputHeight: number;
  inputWidth: number;
  /** RGB, float32 NCHW scaled by 1/255 (the calibration always runs the FP32 source graph). */
  layout: 'float32-nchw';
  scale: number;
}

/** Statistics of one tensor as stored (histogram counts as base64 of a little-endian Float32Array). */
export interface CachedTensor {
  min: number;
  max: number;
  histogramMax: number;
  bins: number;
  count: number;
  histogram: string;
}

/** The cache file's JSON. */
export interface CalibrationCacheFile {
  format: typeof CALIBRATION_CACHE_FORMAT;
  version: number;
  /** sha256 (hex) of the source ONNX file the statistics were measured on. */
  modelSha256: string;
  preprocessing: CalibrationPreprocessing;
  /** Number of calibration images and their file names (not paths). */
  imageCount: number;
  images: string[];
  createdAt: string;
  tensors: Record<string, CachedTensor>;
}

export function encodeStatistics(stats: TensorStatistics): CachedTensor {
  const f32 = Float32Array.from(stats.histogram);
  return {
    min: stats.min,
    max: stats.max,
    histogramMax: stats.histogramMax,
    bins: stats.histogram.length,
    count: stats.count,
    histogram: Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength).toString('base64'),
  };
}

export function decodeStatistics(t: CachedTensor, name: string): TensorStatistics {
  const bytes = Buffer.from(t.histogram, 'base64');
  if (bytes.byteLength !== t.bins * 4) {
    throw new OspreyError('OSPREY_ERR_CALIBRATION_CACHE', `calibration cache: tensor ${name} has ${bytes.byteLength} histogram bytes, expected ${t.bins * 4}`);
  }
  const f32 = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return { min: t.min, max: t.max, histogramMax: t.histogramMax, histogram: Float64Array.from(f32), count: t.count };
}

/** Builds the cache JSON object. */
export function createCalibrationCache(args: {
  modelSha256: string;
  preprocessing: CalibrationPreprocessing;
  images: string[];
  statistics: ReadonlyMap<string, TensorStatistics>;
  createdAt?: Date;
}): CalibrationCacheFile {
  const tensors: Record<string, CachedTensor> = {};
  for (const [name, s] of args.statistics) tensors[name] = encodeStatistics(s);
  return {
    format: CALIBRATION_CACHE_FORMAT,
    version: CALIBRATION_CACHE_VERSION,
    modelSha256: args.modelSha256,
    preprocessing: args.preprocessing,
    imageCount: args.images.length,
    images: args.images,
    createdAt: (args.createdAt ?? new Date()).toISOString(),
    tensors,
  };
}

function samePreprocessing(a: CalibrationPreprocessing, b: CalibrationPreprocessing): boolean {
  return a.resize === b.resize && a.padValue === b.padValue && a.inputHeight === b.inputHeight && a.inputWidth === b.inputWidth && a.layout === b.layout && a.scale === b.scale;
}

/**
 * Parses and checks a cache file's text.
 *
 * @param expect the source model sha256 and pre-processing of the build that wants to reuse it
 * @throws OspreyError `OSPREY_ERR_CALIBRATION_CACHE` when the text is not a cache, has another format version,
 *   or was made for another model (sha256 mismatch, both hashes in the message) or other pre-processing.
 */
export function parseCalibrationCache(
  text: string,
  expect: { modelSha256: string; preprocessing: CalibrationPreprocessing },
  source = 'calibration cache',
): { cache: CalibrationCacheFile; statistics: Map<string, TensorStatistics> } {
  let cache: CalibrationCacheFile;
  try {
    cache = JSON.parse(text) as CalibrationCacheFile;
  } catch (err) {
    throw new OspreyError('OSPREY_ERR_CALIBRATION_CACHE', `${source}: not JSON (${(err as Error).message})`, { source });
  }
  if (cache === null || typeof cache !== 'object' || cache.format !== CALIBRATION_CACHE_FORMAT || typeof cache.tensors !== 'object' || cache.tensors === null) {
    throw new OspreyError('OSPREY_ERR_CALIBRATION_CACHE', `${source}: not an Osprey calibration cache (format must be "${CALIBRATION_CACHE_FORMAT}")`, { source });
  }
  if (cache.version !== CALIBRATION_CACHE_VERSION) {
    throw new OspreyError('OSPREY_ERR_CALIBRATION_CACHE', `${source}: cache version ${cache.version}, this Osprey reads version ${CALIBRATION_CACHE_VERSION}`, { source });
  }
  if (cache.modelSha256 !== expect.modelSha256) {
    throw new OspreyError(
      'OSPREY_ERR_CALIBRATION_CACHE',
      `${source}: made for another model (cache sha256 ${cache.modelSha256}, model sha256 ${expect.modelSha256}); calibrate again with --calibration-data`,
      { source, cacheModelSha256: cache.modelSha256, modelSha256: expect.modelSha256 },
    );
  }
  if (!cache.preprocessing || !samePreprocessing(cache.preprocessing, expect.preprocessing)) {
    throw new OspreyError(
      'OSPREY_ERR_CALIBRATION_CACHE',
      `${source}: made with other pre-processing (${JSON.stringify(cache.preprocessing)}, build uses ${JSON.stringify(expect.preprocessing)})`,
      { source },
    );
  }
  const statistics = new Map<string, TensorStatistics>();
  for (const [name, t] of Object.entries(cache.tensors)) statistics.set(name, decodeStatistics(t, name));
  return { cache, statistics };
}

/** Ranges of every tensor for one method. */
export function rangesFromStatistics(
  statistics: ReadonlyMap<string, TensorStatistics>,
  method: CalibrationMethod,
  percentile: number = DEFAULT_PERCENTILE,
): Map<string, TensorRange> {
  const out = new Map<string, TensorRange>();
  for (const [name, s] of statistics) out.set(name, computeTensorRange(s, { method, percentile }));
  return out;
}

/** TensorRT's header algorithm names. */
const TRT_ALGORITHM: Record<CalibrationMethod, string> = {
  entropy: 'EntropyCalibration2',
  minmax: 'MinMaxCalibration',
  // TensorRT has no percentile calibrator; its tables from percentile tools are read as entropy tables
  percentile: 'EntropyCalibration2',
};

/** Default TensorRT version number in the header (NV_TENSORRT_VERSION of TensorRT 10.9, the one ORT 1.22 pairs with). */
export const DEFAULT_TRT_VERSION_NUMBER = '100900';

/** Big-endian hex of a float32's bits, as TensorRT writes scales (e.g. 1.0 → "3f800000"). */
export function float32ToHex(x: number): string {
  const b = Buffer.alloc(4);
  b.writeFloatBE(x, 0);
  return b.toString('hex');
}

/** Inverse of {@link float32ToHex}. */
export function hexToFloat32(hex: string): number {
  return Buffer.from(hex, 'hex').readFloatBE(0);
}

/**
 * TensorRT's calibration table text (the cache `IInt8EntropyCalibrator2::writeCalibrationCache` writes, and
 * ORT's TensorRT EP reads with `trt_int8_use_native_calibration_table`):
 *
 * ```
 * TRT-100900-EntropyCalibration2
 * images: 3c010a14
 * /model.0/conv/Conv_output_0: 3d8e5a7b
 * ```
 *
 * one `tensor: hex(float32 scale)` line per tensor, `scale = amax / 127` with `amax = max(|rangeMin|, |rangeMax|)`
 * (TensorRT's implicit INT8 is symmetric).
 */
export function toTensorRtCalibrationTable(
  ranges: ReadonlyMap<string, TensorRange>,
  method: CalibrationMethod,
  trtVersionNumber: string = DEFAULT_TRT_VERSION_NUMBER,
): string {
  const lines = [`TRT-${trtVersionNumber}-${TRT_ALGORITHM[method]}`];
  for (const [name, r] of ranges) {
    const amax = Math.max(Math.abs(r.rangeMin), Math.abs(r.rangeMax));
    lines.push(`${name}: ${float32ToHex(amax / 127)}`);
  }
  return lines.join('\n') + '\n';
}

/** Parses a TensorRT calibration table into tensor → scale (for round-trip checks and importing). */
export function parseTensorRtCalibrationTable(text: string): { header: string; scales: Map<string, number> } {
  const lines = text.split(/\r?\n/).filter((l) => l.length > 0);
  const header = lines.shift() ?? '';
  if (!/^TRT-\d+-\w+$/.test(header)) throw new OspreyError('OSPREY_ERR_CALIBRATION_CACHE', `not a TensorRT calibration table (header "${header}")`);
  const scales = new Map<string, number>();
  for (const line of lines) {
    const i = line.lastIndexOf(': ');
    if (i < 0) throw new OspreyError('OSPREY_ERR_CALIBRATION_CACHE', `TensorRT calibration table: bad line "${line}"`);
    scales.set(line.slice(0, i), hexToFloat32(line.slice(i + 2)));
  }
  return { header, scales };
}
