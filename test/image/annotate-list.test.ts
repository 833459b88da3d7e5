import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import sharp from 'sharp';
import type { Detection } from '../../src/core/types.js';
import { annotate, detectionsToSvg } from '../../src/image/annotate.js';
import { decodeImage, type DecodedImage } from '../../src/image/decode.js';
import { listImages } from '../../src/image/list.js';
import { tempDir } from '../support/images.js';

const grey = (w: number, h: number): DecodedImage => ({ source: 'grey', width: w, height: h, data: new Uint8Array(w * h * 3).fill(50), format: 'raw' });

describe('annotate', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());
  const dets: Detection[] = [
    { classId: 0, className: 'person', score: 0.91, box: [10, 20, 60, 90] },
    { classId: 5, className: 'bus <&>', score: 0.5, box: [0, 0, 100, 40] },
  ];

  it('SVG escapes labels and has one box per detection', () => {
    const svg = detectionsToSvg(100, 100, dets);
    assert.ok(svg.includes('person 0.91'));
    assert.ok(svg.includes('bus &lt;&amp;&gt; 0.50'));
    assert.equal(svg.match(/stroke=/g)?.length, 2);
  });

  it('writes a JPEG and a PNG copy of the same size with the box drawn, leaving the source untouched', async () => {
    const img = grey(120, 100);
    const before = Buffer.from(img.data);
    for (const name of ['out/a.jpg', 'out/a.png']) {
      const path = join(tmp.dir, name);
      await annotate(img, dets, path);
      const meta = await sharp(path).metadata();
      assert.equal(meta.format, name.endsWith('.png') ? 'png' : 'jpeg');
      assert.deepEqual([meta.width, meta.height], [120, 100]);
      const back = await decodeImage(path);
      // The person box's left edge (x=10, y=55) is coloured; the image centre far from boxes stays grey.
      const at = (x: number, y: number) => [...back.data.subarray((y * 120 + x) * 3, (y * 120 + x) * 3 + 3)];
      assert.ok(Math.max(...at(10, 55).map((v) => Math.abs(v - 50))) > 60, `edge pixel ${at(10, 55)}`);
      assert.ok(Math.max(...at(100, 80).map((v) => Math.abs(v - 50))) <= 8, `background pixel ${at(100, 80)}`);
    }
    assert.deepEqual(Buffer.from(img.data), before);
  });
});

describe('listImages', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  it('expands directories (sorted, image extensions only, case-insensitive) and keeps files as given, in order', async () => {
    const d = join(tmp.dir, 'frames');
    mkdirSync(d);
    for (const n of ['b.JPG', 'a.png', 'c.webp', 'notes.txt', 'd.tiff', 'e.bmp']) writeFileSync(join(d, n), 'x');
    mkdirSync(join(d, 'sub.jpg')); // a directory with an image-like name is not a file
    const single = join(tmp.dir, 'single.dat');
    writeFileSync(single, 'x');
    const entries = await listImages([single, d]);
    assert.deepEqual(
      entries.map((e) => e.path),
      [single, join(d, 'a.png'), join(d, 'b.JPG'), join(d, 'c.webp'), join(d, 'd.tiff'), join(d, 'e.bmp')],
    );
    assert.ok(entries.every((e) => !e.error));
  });

  it('directory with no images → OSPREY_ERR_NO_IMAGES entry; missing path → OSPREY_ERR_FILE_NOT_FOUND entry; the others still listed', async () => {
    const empty = join(tmp.dir, 'empty');
    mkdirSync(empty);
    writeFileSync(join(empty, 'readme.md'), 'x');
    const img = join(tmp.dir, 'x.jpg');
    writeFileSync(img, 'x');
    const entries = await listImages([empty, join(tmp.dir, 'nope'), img]);
    assert.equal(entries.length, 3);
    assert.equal(entries[0]!.error?.code, 'OSPREY_ERR_NO_IMAGES');
    assert.ok(entries[0]!.error?.message.includes(empty));
    assert.equal(entries[1]!.error?.code, 'OSPREY_ERR_FILE_NOT_FOUND');
    assert.deepEqual(entries[2], { path: img });
  });
});
