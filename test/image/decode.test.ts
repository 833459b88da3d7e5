import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { isOspreyError } from '../../src/core/errors.js';
import { decodeImage, readImageHeader } from '../../src/image/decode.js';
import { BUS_JPG, forgedPngHeader, tempDir, writeBadInputs, type BadInputs } from '../support/images.js';

async function rejectsWithCode(p: Promise<unknown>, code: string, mustMention?: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isOspreyError(err), `expected an OspreyError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (mustMention) assert.ok(err.message.includes(mustMention), `message should name ${mustMention}: ${err.message}`);
    return true;
  });
}

describe('decodeImage', () => {
  const tmp = tempDir();
  let bad: BadInputs;
  before(() => {
    bad = writeBadInputs(tmp.dir);
  });
  after(() => tmp.cleanup());

  it('decodes bus.jpg to packed RGB at its size', async () => {
    const img = await decodeImage(BUS_JPG);
    assert.equal(img.width, 810);
    assert.equal(img.height, 1080);
    assert.equal(img.format, 'jpeg');
    assert.equal(img.data.length, 810 * 1080 * 3);
    assert.equal(img.source, BUS_JPG);
  });

  it('decodes a Buffer with the given name', async () => {
    const img = await decodeImage(readFileSync(BUS_JPG), { name: 'upload.jpg' });
    assert.equal(img.source, 'upload.jpg');
    assert.equal(img.width, 810);
  });

  it('applies EXIF orientation (6 = rotate 90° clockwise swaps width and height)', async () => {
    // 40×20 image, left half red, right half blue, stored with orientation 6.
    const raw = Buffer.alloc(40 * 20 * 3);
    for (let y = 0; y < 20; y++) for (let x = 0; x < 40; x++) raw.set(x < 20 ? [255, 0, 0] : [0, 0, 255], (y * 40 + x) * 3);
    const jpeg = await sharp(raw, { raw: { width: 40, height: 20, channels: 3 } }).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
    const header = await readImageHeader(jpeg, 'rotated.jpg');
    assert.equal(header.orientation, 6);
    assert.deepEqual([header.width, header.height], [20, 40]);
    const img = await decodeImage(jpeg, { name: 'rotated.jpg' });
    assert.deepEqual([img.width, img.height], [20, 40]);
    // After a 90° clockwise turn the left (red) half is on top.
    assert.ok(img.data[0]! > 200 && img.data[2]! < 60, `top-left should be red, got ${[...img.data.subarray(0, 3)]}`);
    const last = img.data.length - 3;
    assert.ok(img.data[last + 2]! > 200 && img.data[last]! < 60, 'bottom should be blue');
  });

  it('reads PNG (grayscale + alpha → RGB), WebP and TIFF', async () => {
    const gray = Buffer.alloc(8 * 6 * 2, 128); // grey + alpha
    const png = await sharp(gray, { raw: { width: 8, height: 6, channels: 2 } }).png().toBuffer();
    const rgb = Buffer.alloc(8 * 6 * 3, 77);
    const webp = await sharp(rgb, { raw: { width: 8, height: 6, channels: 3 } }).webp({ lossless: true }).toBuffer();
    const tiff = await sharp(rgb, { raw: { width: 8, height: 6, channels: 3 } }).tiff().toBuffer();
    for (const [name, bytes, format] of [['g.png', png, 'png'], ['c.webp', webp, 'webp'], ['c.tif', tiff, 'tiff']] as const) {
      const img = await decodeImage(bytes, { name });
      assert.equal(img.format, format);
      assert.deepEqual([img.width, img.height, img.data.length], [8, 6, 8 * 6 * 3], name);
    }
  });

  it('empty file → OSPREY_ERR_EMPTY_IMAGE naming the file', async () => {
    await rejectsWithCode(decodeImage(bad.empty), 'OSPREY_ERR_EMPTY_IMAGE', bad.empty);
    await rejectsWithCode(decodeImage(new Uint8Array(0), { name: 'body' }), 'OSPREY_ERR_EMPTY_IMAGE', 'body');
  });

  it('truncated JPEG → OSPREY_ERR_INVALID_IMAGE naming the file', async () => {
    await rejectsWithCode(decodeImage(bad.truncatedJpeg), 'OSPREY_ERR_INVALID_IMAGE', bad.truncatedJpeg);
  });

  it('text file named .jpg → OSPREY_ERR_INVALID_IMAGE naming the file', async () => {
    await rejectsWithCode(decodeImage(bad.textNamedJpg), 'OSPREY_ERR_INVALID_IMAGE', bad.textNamedJpg);
  });

  it('PNG header claiming 100000×100000 → OSPREY_ERR_IMAGE_TOO_LARGE before decoding', async () => {
    const bytes = readFileSync(bad.absurdPng);
    assert.ok(bytes.length < 100, 'the forged PNG is tiny');
    const before = process.memoryUsage().rss;
    await rejectsWithCode(decodeImage(bad.absurdPng), 'OSPREY_ERR_IMAGE_TOO_LARGE', bad.absurdPng);
    // Refused from the header: nowhere near 100000² × 3 bytes (30 GB) was allocated.
    assert.ok(process.memoryUsage().rss - before < 512 * 1024 * 1024);
    await assert.rejects(decodeImage(bad.absurdPng), /100000×100000/);
  });

  it('a pixel limit applies to ordinary images too', async () => {
    await rejectsWithCode(decodeImage(BUS_JPG, { maxPixels: 1000 }), 'OSPREY_ERR_IMAGE_TOO_LARGE', BUS_JPG);
  });

  it('a forged header under the limit still fails as OSPREY_ERR_INVALID_IMAGE (truncated pixel data)', async () => {
    const p = join(tmp.dir, 'small-forged.png');
    writeFileSync(p, forgedPngHeader(64, 64));
    await rejectsWithCode(decodeImage(p), 'OSPREY_ERR_INVALID_IMAGE', p);
  });

  it('BMP (listed from directories, but not read by the bundled libvips) → OSPREY_ERR_INVALID_IMAGE with a hint', async () => {
    // 1×1 24-bit BMP: BITMAPFILEHEADER (14 bytes) + BITMAPINFOHEADER (40 bytes) + one padded pixel row.
    const bmp = Buffer.alloc(58);
    bmp.write('BM', 0, 'latin1');
    bmp.writeUInt32LE(58, 2);
    bmp.writeUInt32LE(54, 10);
    bmp.writeUInt32LE(40, 14);
    bmp.writeInt32LE(1, 18);
    bmp.writeInt32LE(1, 22);
    bmp.writeUInt16LE(1, 26);
    bmp.writeUInt16LE(24, 28);
    bmp.writeUInt32LE(4, 34);
    await rejectsWithCode(decodeImage(bmp, { name: 'tiny.bmp' }), 'OSPREY_ERR_INVALID_IMAGE', 'tiny.bmp');
    await assert.rejects(decodeImage(bmp, { name: 'tiny.bmp' }), /convert it to PNG or JPEG/);
  });

  it('unreadable path → OSPREY_ERR_FILE_NOT_FOUND (missing file, directory)', async () => {
    await rejectsWithCode(decodeImage(bad.missing), 'OSPREY_ERR_FILE_NOT_FOUND', bad.missing);
    await rejectsWithCode(decodeImage(bad.emptyDir), 'OSPREY_ERR_FILE_NOT_FOUND', bad.emptyDir);
  });
});
