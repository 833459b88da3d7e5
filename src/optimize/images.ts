/**
 * Calibration / check images: a folder of real images, decoded and letterboxed exactly as at inference
 * (`src/image`: sharp decode with EXIF orientation, Ultralytics LetterBox geometry, pad 114, RGB).
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { computeLetterbox } from '../core/letterbox.js';
import { OspreyError, isOspreyError } from '../core/errors.js';
import type { InputFormat } from '../core/model-spec.js';
import { decodeImage } from '../image/decode.js';
import { allocateBatch, letterboxInto } from '../image/letterbox.js';

/** File extensions read as images. */
export const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.bmp']);

/** One letterboxed image. */
export interface PreparedImage {
  name: string;
  /** `float32-nchw`: Float32Array `[1, 3, H, W]` RGB 0..1; `uint8-nhwc`: Uint8Array `[1, H, W, 3]`. */
  data: Float32Array | Uint8Array;
  dims: number[];
}

/**
 * Image files of a folder (non-recursive), sorted by name, optionally only the first `limit`.
 * @throws OspreyError `OSPREY_ERR_CALIBRATION_DATA` when the folder cannot be read or holds no image file.
 */
export function listImageFiles(dir: string, limit?: number, what = 'calibration data'): string[] {
  let entries: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
    entries = readdirSync(dir);
  } catch (err) {
    throw new OspreyError('OSPREY_ERR_CALIBRATION_DATA', `${what} ${dir}: cannot read the folder (${(err as Error).message})`, { path: dir });
  }
  const files = entries.filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase())).sort();
  if (files.length === 0) throw new OspreyError('OSPREY_ERR_CALIBRATION_DATA', `${what} ${dir}: no image files (.jpg/.jpeg/.png/.webp/.tif/.tiff/.bmp)`, { path: dir });
  return (limit !== undefined ? files.slice(0, limit) : files).map((f) => join(dir, f));
}

/**
 * Decodes and letterboxes images one at a time (so only one is in memory), skipping undecodable files
 * (reported through `onSkip`).
 */
export async function* prepareImages(
  files: readonly string[],
  size: { height: number; width: number; format: InputFormat },
  onSkip?: (file: string, err: unknown) => void,
): AsyncGenerator<PreparedImage> {
  for (const file of files) {
    let img;
    try {
      img = await decodeImage(file);
    } catch (err) {
      if (!isOspreyError(err)) throw err;
      onSkip?.(file, err);
      continue;
    }
    const g = computeLetterbox(img.width, img.height, size.width, size.height);
    const batch = allocateBatch(size.format, 1, size.height, size.width);
    await letterboxInto(img, g, batch, 0);
    const dims = size.format === 'uint8-nhwc' ? [1, size.height, size.width, 3] : [1, 3, size.height, size.width];
    yield { name: basename(file), data: batch.data, dims };
  }
}

/** Decodes all images of `files` (skipping bad ones); throws `OSPREY_ERR_CALIBRATION_DATA` if none decodes. */
export async function prepareAllImages(files: readonly string[], size: { height: number; width: number; format: InputFormat }, what = 'calibration data'): Promise<PreparedImage[]> {
  const out: PreparedImage[] = [];
  const skipped: string[] = [];
  for await (const p of prepareImages(files, size, (f) => skipped.push(basename(f)))) out.push(p);
  if (out.length === 0) {
    throw new OspreyError('OSPREY_ERR_CALIBRATION_DATA', `${what}: none of the ${files.length} image file(s) could be decoded (${skipped.slice(0, 5).join(', ')}${skipped.length > 5 ? ', …' : ''})`, { skipped });
  }
  return out;
}
