/**
 * Writes the letterboxed uint8 NHWC frames of bus.jpg and zidane.jpg ([2, 640, 640, 3], sharp on this machine) that
 * the device run carries (the GPU machine has no sharp/libvips).  npx tsx bench/gpu-engine/frames.ts OUT.bin
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { decodeImage } from '../../src/image/decode.js';
import { allocateBatch, letterboxImageInto } from '../../src/image/letterbox.js';

const out = process.argv[2] ?? 'frames.bin';
const images = ['bus.jpg', 'zidane.jpg'].map((f) => resolve(import.meta.dirname, '../../../shared/data/images', f));
const batch = allocateBatch('uint8-nhwc', images.length, 640, 640);
for (let i = 0; i < images.length; i++) await letterboxImageInto(await decodeImage(images[i]!), batch, i);
writeFileSync(out, batch.data as Uint8Array);
console.log(`${out}: ${images.length} frames, ${(batch.data as Uint8Array).length} bytes`);
