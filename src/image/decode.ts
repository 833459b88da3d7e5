/**
 * Image decoding with sharp (libvips): JPEG, PNG, WebP, TIFF (and whatever else the bundled libvips reads),
 * EXIF orientation applied, output as packed 8-bit RGB.
 *
 * The header is read first (`sharp().metadata()`, no pixel decode) and images whose declared size is over
 * the pixel limit are refused before any pixel buffer is allocated — a 100000×100000 PNG header must not
 * make us allocate 30 GB.
 */
import { readFile } from 'node:fs/promises';
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import { OspreyError } from '../core/errors.js';
import { DEFAULT_MAX_PIXELS } from './limits.js';

export { DEFAULT_MAX_PIXELS };

/** Number of channels of a decoded image (packed RGB). */
export const RGB_CHANNELS = 3;

/** A decoded image: packed 8-bit RGB pixels, row-major, EXIF orientation already applied. */
export interface DecodedImage {
  /** Where the image came from (file path, or a caller-given name for buffers): used in messages and results. */
  source: string;
  /** Width in source pixels, after EXIF orientation. */
  width: number;
  /** Height in source pixels, after EXIF orientation. */
  height: number;
  /** `[height, width, 3]` uint8 RGB (HWC). */
  data: Uint8Array;
  /** Container format found by libvips (`jpeg`, `png`, `webp`, `tiff`, ...). */
  format: string;
}

export interface DecodeOptions {
  /** Refuse images whose header declares more pixels than this. Default {@link DEFAULT_MAX_PIXELS}. */
  maxPixels?: number;
  /** Name used in messages and `source` when the input is a Buffer. Default `"<buffer>"`. */
  name?: string;
}

/** Header facts read without decoding pixels. */
export interface ImageHeader {
  format: string;
  /** Width after EXIF orientation. */
  width: number;
  /** Height after EXIF orientation. */
  height: number;
  /** EXIF orientation tag (1..8), 1 when absent. */
  orientation: number;
}

/**
 * Reads a file fully, mapping file-system errors to Osprey errors.
 * @throws OspreyError `OSPREY_ERR_FILE_NOT_FOUND` (missing, unreadable, a directory), `OSPREY_ERR_EMPTY_IMAGE` (0 bytes).
 */
export async function readImageFile(path: string): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : code;
    throw new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `${path}: cannot read image (${why})`, { path, errno: code }, { cause: err });
  }
  if (bytes.length === 0) throw new OspreyError('OSPREY_ERR_EMPTY_IMAGE', `${path}: the image file is empty (0 bytes)`, { path });
  return bytes;
}

/**
 * Reads the image header (format, size after EXIF orientation) without decoding pixels, and enforces the pixel limit.
 * @throws OspreyError `OSPREY_ERR_EMPTY_IMAGE`, `OSPREY_ERR_INVALID_IMAGE` (not an image / unreadable header),
 *   `OSPREY_ERR_IMAGE_TOO_LARGE` (declared width×height over `maxPixels`).
 */
export async function readImageHeader(bytes: Uint8Array, name: string, maxPixels = DEFAULT_MAX_PIXELS): Promise<ImageHeader> {
  if (bytes.length === 0) throw new OspreyError('OSPREY_ERR_EMPTY_IMAGE', `${name}: the image is empty (0 bytes)`, { path: name });
  let meta: Metadata;
  try {
    // limitInputPixels: false — we apply our own limit below with a clearer error; metadata() never decodes pixels.
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    const bmp = bytes.length >= 2 && bytes[0] === 0x42 && bytes[1] === 0x4d; // "BM"
    const hint = bmp ? '; BMP is not among the formats the bundled libvips reads: convert it to PNG or JPEG' : '';
    throw new OspreyError('OSPREY_ERR_INVALID_IMAGE', `${name}: not a decodable image (${cleanVipsMessage(err)}${hint})`, { path: name }, { cause: err });
  }
  const rawWidth = meta.width ?? 0;
  const rawHeight = meta.height ?? 0;
  if (!(rawWidth > 0 && rawHeight > 0)) {
    throw new OspreyError('OSPREY_ERR_INVALID_IMAGE', `${name}: the image header has no valid size (${rawWidth}×${rawHeight})`, { path: name });
  }
  const orientation = meta.orientation ?? 1;
  const swap = orientation >= 5 && orientation <= 8;
  const width = swap ? rawHeight : rawWidth;
  const height = swap ? rawWidth : rawHeight;
  if (width * height > maxPixels) {
    throw new OspreyError(
      'OSPREY_ERR_IMAGE_TOO_LARGE',
      `${name}: the image header declares ${width}×${height} = ${width * height} pixels, over the limit of ${maxPixels}; refused before decoding`,
      { path: name, width, height, maxPixels },
    );
  }
  return { format: meta.format ?? 'unknown', width, height, orientation };
}

/**
 * Decodes an image file or buffer to packed 8-bit RGB with EXIF orientation applied.
 * Grayscale is expanded to RGB, alpha is dropped (as OpenCV's `imread(IMREAD_COLOR)` does), 16-bit is reduced to 8-bit.
 *
 * @param input a file path, or the encoded bytes
 * @example
 *   const img = await decodeImage('bus.jpg'); // { width: 810, height: 1080, data: Uint8Array(810*1080*3), ... }
 * @throws OspreyError `OSPREY_ERR_FILE_NOT_FOUND` (path missing/unreadable), `OSPREY_ERR_EMPTY_IMAGE` (0 bytes),
 *   `OSPREY_ERR_IMAGE_TOO_LARGE` (header over the pixel limit; nothing decoded), `OSPREY_ERR_INVALID_IMAGE`
 *   (unknown format, truncated or corrupt data). Every message starts with the file name.
 */
export async function decodeImage(input: string | Uint8Array, options: DecodeOptions = {}): Promise<DecodedImage> {
  const name = typeof input === 'string' ? input : (options.name ?? '<buffer>');
  const bytes = typeof input === 'string' ? await readImageFile(input) : input;
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const header = await readImageHeader(bytes, name, maxPixels);
  let out: { data: Buffer; info: OutputInfo };
  try {
    out = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'warning' })
      .rotate() // EXIF orientation
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new OspreyError('OSPREY_ERR_INVALID_IMAGE', `${name}: not a decodable image (${cleanVipsMessage(err)})`, { path: name }, { cause: err });
  }
  const { width, height, channels } = out.info;
  if (channels !== RGB_CHANNELS || out.data.length !== width * height * RGB_CHANNELS) {
    throw new OspreyError('OSPREY_ERR_INVALID_IMAGE', `${name}: decoded to ${channels} channels, expected RGB`, { path: name });
  }
  return {
    source: name,
    width,
    height,
    data: new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.length),
    format: header.format,
  };
}

/** libvips messages are multi-line and end with a newline; keep the first meaningful line. */
function cleanVipsMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.slice(0, 2).join('; ') || 'unknown error';
}
