/**
 * Shared fixtures for the image / engine / detect tests: paths into ../shared/data (never copied into the repo)
 * and bad inputs made on the fly in a temp folder.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { makeNode, makeValueInfo } from '../../src/onnx/graph.js';
import { writeOnnxModel } from '../../src/onnx/model.js';
import { DataType, type OnnxModel } from '../../src/onnx/proto-types.js';

import { BUS_JPG, REPO_ROOT } from './data.js';
export { BUS_JPG, MODEL_PATH, REPO_ROOT, SHARED_DATA_DIR as SHARED_DATA, ZIDANE_JPG } from './data.js';
export { tempDirSync as tempDir } from './temp.js';
export const REFERENCE_BOXES = join(REPO_ROOT, 'test', 'fixtures', 'golden', 'reference-boxes.json');


function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const typeAndData = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typeAndData) >>> 0);
  return Buffer.concat([len, typeAndData, crc]);
}

/**
 * A tiny PNG whose IHDR claims `width × height` RGB8 pixels (with a correct CRC, so it is a well-formed header),
 * followed by a few bytes of IDAT: a decoder that trusts the header would allocate width × height × 3 bytes.
 */
export function forgedPngHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  ihdr[10] = 0; // compression
  ihdr[11] = 0; // filter
  ihdr[12] = 0; // interlace
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  // zlib stream of a few zero bytes (not the whole image: the file stays tiny)
  const idat = Buffer.from([0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01]);
  return Buffer.concat([signature, pngChunk('IHDR', ihdr), pngChunk('IDAT', idat), pngChunk('IEND', Buffer.alloc(0))]);
}

/** Paths of every bad image input named in issue 2, written into `dir`. */
export interface BadInputs {
  empty: string;
  truncatedJpeg: string;
  textNamedJpg: string;
  absurdPng: string;
  missing: string;
  emptyDir: string;
}

export function writeBadInputs(dir: string): BadInputs {
  const bus = readFileSync(BUS_JPG);
  const p: BadInputs = {
    empty: join(dir, 'empty.jpg'),
    truncatedJpeg: join(dir, 'truncated.jpg'),
    textNamedJpg: join(dir, 'notes.jpg'),
    absurdPng: join(dir, 'absurd.png'),
    missing: join(dir, 'does-not-exist.jpg'),
    emptyDir: join(dir, 'no-images'),
  };
  writeFileSync(p.empty, Buffer.alloc(0));
  writeFileSync(p.truncatedJpeg, bus.subarray(0, Math.floor(bus.length / 3)));
  writeFileSync(p.textNamedJpg, 'this is a text file, not a JPEG\n');
  writeFileSync(p.absurdPng, forgedPngHeader(100000, 100000));
  mkdirSync(p.emptyDir);
  writeFileSync(join(p.emptyDir, 'readme.txt'), 'no images here\n');
  return p;
}

/**
 * Writes a valid ONNX model with an image input `[1, 3, 32, 32]` float32 and a classifier-like output `[1, 3]`
 * (GlobalAveragePool → Flatten): it loads and runs, but its output is none of the three detection layouts.
 */
export function writeUnsupportedLayoutModel(path: string): void {
  const model: OnnxModel = {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    producer_name: 'osprey-test',
    metadata_props: [],
    graph: {
      name: 'not-a-detector',
      node: [makeNode('GlobalAveragePool', ['images'], ['pooled']), makeNode('Flatten', ['pooled'], ['logits'], { axis: 1 })],
      input: [makeValueInfo('images', DataType.FLOAT, [1, 3, 32, 32])],
      output: [makeValueInfo('logits', DataType.FLOAT, [1, 3])],
      initializer: [],
      value_info: [],
    },
  };
  writeOnnxModel(model, path);
}
