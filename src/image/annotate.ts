/**
 * Annotated copies of images: boxes and "label score" tags drawn as an SVG overlay that sharp (librsvg)
 * composites onto the image, written as JPEG or PNG. The source image is never modified.
 */
import { mkdir } from 'node:fs/promises';
import { dirname, extname } from 'node:path';
import sharp from 'sharp';
import { OspreyError } from '../core/errors.js';
import type { Detection } from '../core/types.js';
import { RGB_CHANNELS, type DecodedImage } from './decode.js';

/** Ultralytics' default 20-colour palette (ultralytics/utils/plotting.py `Colors`), indexed by classId mod 20. */
export const CLASS_PALETTE: readonly string[] = [
  '#FF3838', '#FF9D97', '#FF701F', '#FFB21D', '#CFD231', '#48F90A', '#92CC17', '#3DDB86', '#1A9334', '#00D4BB',
  '#2C99A8', '#00C2FF', '#344593', '#6473FF', '#0018EC', '#8438FF', '#520085', '#CB38FF', '#FF95C8', '#FF37C7',
];

export interface AnnotateOptions {
  /** Box line width in pixels. Default: about 0.3% of the image diagonal, at least 2. */
  lineWidth?: number;
  /** JPEG quality (1..100) when writing .jpg/.jpeg. Default 90. */
  quality?: number;
}

function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

/**
 * The SVG overlay (same size as the image) with one rectangle and one label per detection.
 * @param detections boxes in source pixels.
 */
export function detectionsToSvg(width: number, height: number, detections: readonly Detection[], options: AnnotateOptions = {}): string {
  const lw = options.lineWidth ?? Math.max(2, Math.round(Math.hypot(width, height) * 0.003));
  const fontSize = Math.max(12, lw * 6);
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">`];
  for (const d of detections) {
    const [x1, y1, x2, y2] = d.box;
    const colour = CLASS_PALETTE[d.classId % CLASS_PALETTE.length]!;
    const label = escapeXml(`${d.className} ${d.score.toFixed(2)}`);
    const tagW = Math.round(label.length * fontSize * 0.6 + lw * 2);
    const tagH = Math.round(fontSize * 1.3);
    const tagY = y1 - tagH >= 0 ? y1 - tagH : y1; // above the box, or inside when at the top edge
    parts.push(
      `<rect x="${x1.toFixed(1)}" y="${y1.toFixed(1)}" width="${(x2 - x1).toFixed(1)}" height="${(y2 - y1).toFixed(1)}" fill="none" stroke="${colour}" stroke-width="${lw}"/>`,
      `<rect x="${x1.toFixed(1)}" y="${tagY.toFixed(1)}" width="${tagW}" height="${tagH}" fill="${colour}"/>`,
      `<text x="${(x1 + lw).toFixed(1)}" y="${(tagY + fontSize).toFixed(1)}" font-family="DejaVu Sans, sans-serif" font-size="${fontSize}" fill="#FFFFFF">${label}</text>`,
    );
  }
  parts.push('</svg>');
  return parts.join('');
}

/**
 * Draws `detections` on a copy of `image` and writes it to `outPath` (PNG for `.png`, WebP for `.webp`, else JPEG).
 * @param image a decoded image (see `decodeImage`) — boxes are in its pixel space.
 * @returns the path written.
 * @throws OspreyError `OSPREY_ERR_INVALID_ARGUMENT` when the output cannot be written.
 */
export async function annotate(image: DecodedImage, detections: readonly Detection[], outPath: string, options: AnnotateOptions = {}): Promise<string> {
  const svg = Buffer.from(detectionsToSvg(image.width, image.height, detections, options));
  const ext = extname(outPath).toLowerCase();
  let s = sharp(image.data, { raw: { width: image.width, height: image.height, channels: RGB_CHANNELS } }).composite([{ input: svg, top: 0, left: 0 }]);
  s = ext === '.png' ? s.png() : ext === '.webp' ? s.webp() : s.jpeg({ quality: options.quality ?? 90 });
  try {
    await mkdir(dirname(outPath), { recursive: true });
    await s.toFile(outPath);
  } catch (err) {
    throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `${outPath}: cannot write the annotated image (${(err as Error).message.split('\n')[0]})`, { path: outPath }, { cause: err });
  }
  return outPath;
}
