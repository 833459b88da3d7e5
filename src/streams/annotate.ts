/**
 * Annotated JPEGs of letterboxed frames (live view and event snapshots), drawn with sharp: the padding is cropped
 * off (`extract` of the resized area), boxes, track ids, zones and lines come from one SVG overlay.
 * Output pixels = source pixels × letterbox ratio (e.g. 640×360 for a 768×432 source on a 640×640 canvas).
 */
import sharp from 'sharp';
import type { LetterboxGeometry } from '../core/letterbox.js';
import type { BoxXYXY } from '../core/types.js';
import type { RuleConfig } from './config.js';

export interface AnnotationBox {
  /** Box in source pixels, xyxy. */
  box: BoxXYXY;
  label: string;
  /** Highlight (e.g. the object an event is about). */
  highlight?: boolean;
}

const COLORS = ['#ff3838', '#ff9d97', '#ff701f', '#ffb21d', '#cfd231', '#48f90a', '#92cc17', '#3ddb86', '#1a9334', '#00d4bb', '#2c99a8', '#00c2ff', '#344593', '#6473ff', '#0018ec', '#8438ff', '#520085', '#cb38ff', '#ff95c8', '#ff37c7'];

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * Encodes a letterboxed rgb24 frame (`[g.dstHeight, g.dstWidth, 3]` uint8) as an annotated JPEG of the source area.
 * @param crop optional region in source pixels to cut out (event snapshots of one object), padded by 20%.
 */
export async function annotatedJpeg(
  rgb: Uint8Array,
  g: LetterboxGeometry,
  boxes: readonly AnnotationBox[],
  options: { rules?: readonly RuleConfig[]; quality?: number; crop?: BoxXYXY; colorKey?: (label: string) => number } = {},
): Promise<Buffer> {
  const W = g.resizedWidth;
  const H = g.resizedHeight;
  const r = g.ratio;
  const parts: string[] = [];
  for (const rule of options.rules ?? []) {
    if (rule.type === 'zone') {
      const pts = rule.zone.map(([x, y]) => `${(x * r).toFixed(1)},${(y * r).toFixed(1)}`).join(' ');
      parts.push(`<polygon points="${pts}" fill="rgba(0,160,255,0.15)" stroke="#00a0ff" stroke-width="2"/>`);
    } else {
      const [[x1, y1], [x2, y2]] = rule.line;
      parts.push(`<line x1="${x1 * r}" y1="${y1 * r}" x2="${x2 * r}" y2="${y2 * r}" stroke="#ffd000" stroke-width="3"/>`);
    }
  }
  const fontSize = Math.max(10, Math.round(Math.min(W, H) / 32));
  for (const b of boxes) {
    const [x1, y1, x2, y2] = b.box.map((v) => v * r) as [number, number, number, number];
    const key = options.colorKey?.(b.label) ?? [...b.label].reduce((a, c) => a + c.charCodeAt(0), 0);
    const color = b.highlight ? '#ff0000' : COLORS[key % COLORS.length]!;
    const tw = Math.ceil(b.label.length * fontSize * 0.6) + 6;
    const ty = y1 - fontSize - 4 < 0 ? y1 : y1 - fontSize - 4;
    parts.push(
      `<rect x="${x1.toFixed(1)}" y="${y1.toFixed(1)}" width="${(x2 - x1).toFixed(1)}" height="${(y2 - y1).toFixed(1)}" fill="none" stroke="${color}" stroke-width="${b.highlight ? 3 : 2}"/>`,
      `<rect x="${x1.toFixed(1)}" y="${ty.toFixed(1)}" width="${tw}" height="${fontSize + 4}" fill="${color}"/>`,
      `<text x="${(x1 + 3).toFixed(1)}" y="${(ty + fontSize).toFixed(1)}" font-family="DejaVu Sans, sans-serif" font-size="${fontSize}" fill="#fff">${esc(b.label)}</text>`,
    );
  }
  let img = sharp(rgb, { raw: { width: g.dstWidth, height: g.dstHeight, channels: 3 } }).extract({ left: g.padLeft, top: g.padTop, width: W, height: H });
  if (parts.length) {
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">${parts.join('')}</svg>`;
    // Flatten the crop first so the overlay is composited on the cropped image, not the full canvas.
    img = sharp(await img.raw().toBuffer(), { raw: { width: W, height: H, channels: 3 } }).composite([{ input: Buffer.from(svg), top: 0, left: 0 }]);
  }
  if (options.crop) {
    const [cx1, cy1, cx2, cy2] = options.crop.map((v) => v * r) as [number, number, number, number];
    const padX = (cx2 - cx1) * 0.2 + 8;
    const padY = (cy2 - cy1) * 0.2 + 8;
    const left = Math.max(0, Math.floor(cx1 - padX));
    const top = Math.max(0, Math.floor(cy1 - padY - fontSize));
    const width = Math.max(1, Math.min(W, Math.ceil(cx2 + padX)) - left);
    const height = Math.max(1, Math.min(H, Math.ceil(cy2 + padY)) - top);
    const flat = await img.raw().toBuffer({ resolveWithObject: true });
    img = sharp(flat.data, { raw: { width: W, height: H, channels: flat.info.channels } }).extract({ left, top, width, height });
  }
  return img.jpeg({ quality: options.quality ?? 75 }).toBuffer();
}
