/**
 * The WebAssembly SIMD resize kernel (src/image/resample.wat): its committed bytes are the assembly of the committed
 * text, it gives the same bytes as the TypeScript loop (real images, random sizes up and down, rectangles inside a
 * larger canvas that must stay untouched around them, a source larger than the kernel's memory so far), and under
 * `node --jitless` (no WebAssembly) the TypeScript loop takes over with the same result.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { assembleWat } from '../../scripts/wasm-assemble.js';
import { decodeImage, readImageFile } from '../../src/image/decode.js';
import { RESAMPLE_WASM_BASE64 } from '../../src/image/resample-wasm.js';
import { resizeBilinearRgbInto, resizeBilinearRgbScalar } from '../../src/image/resample.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const data = join(root, '../shared/data');

/** Pseudo-random bytes (a fixed LCG, so a failure reproduces). */
function noise(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** Both implementations into canvases pre-filled with 7; returns them. */
function both(src: Uint8Array, sw: number, sh: number, stride: number, canvasRows: number, rw: number, rh: number, left: number, top: number): [Buffer, Buffer] {
  const a = Buffer.alloc(stride * canvasRows * 3, 7);
  const b = Buffer.alloc(stride * canvasRows * 3, 7);
  resizeBilinearRgbInto(src, sw, sh, a, stride, rw, rh, left, top);
  resizeBilinearRgbScalar(src, sw, sh, b, stride, rw, rh, left, top);
  return [a, b];
}

test('the committed kernel bytes are the assembly of src/image/resample.wat (npx tsx scripts/build-wasm.ts)', async () => {
  const bytes = await assembleWat(join(root, 'src/image/resample.wat'));
  assert.equal(Buffer.from(RESAMPLE_WASM_BASE64, 'base64').toString('hex'), Buffer.from(bytes).toString('hex'));
});

test('WebAssembly and TypeScript give the same bytes on bus.jpg and zidane.jpg letterboxed to 640 and 320', async () => {
  for (const name of ['bus.jpg', 'zidane.jpg']) {
    const img = await decodeImage(await readImageFile(join(data, 'images', name)));
    for (const side of [640, 320]) {
      const scale = Math.min(side / img.width, side / img.height);
      const rw = Math.round(img.width * scale);
      const rh = Math.round(img.height * scale);
      const left = Math.floor((side - rw) / 2);
      const top = Math.floor((side - rh) / 2);
      const [a, b] = both(img.data, img.width, img.height, side, side, rw, rh, left, top);
      assert.ok(a.equals(b), `${name} → ${rw}×${rh} in ${side}×${side}`);
    }
  }
});

test('same bytes for 300 random sizes (shrinking, enlarging, 1-pixel sources), the pixels around the rectangle untouched', () => {
  for (let i = 0; i < 300; i++) {
    const r = noise(8, 1000 + i);
    const sw = 1 + (r[0]! % 61);
    const sh = 1 + (r[1]! % 47);
    const rw = 1 + (r[2]! % 70);
    const rh = 1 + (r[3]! % 55);
    const left = r[4]! % 5;
    const top = r[5]! % 4;
    const stride = rw + left + (r[6]! % 3);
    const rows = rh + top + (r[7]! % 3);
    const src = noise(sw * sh * 3, i);
    const [a, b] = both(src, sw, sh, stride, rows, rw, rh, left, top);
    assert.ok(a.equals(b), `${sw}×${sh} → ${rw}×${rh} at (${left}, ${top}) in ${stride}×${rows}`);
    for (let y = 0; y < rows; y++) {
      for (let x = 0; x < stride; x++) {
        if (x >= left && x < left + rw && y >= top && y < top + rh) continue;
        const o = (y * stride + x) * 3;
        assert.ok(a[o] === 7 && a[o + 1] === 7 && a[o + 2] === 7, `pixel (${x}, ${y}) outside the rectangle was written`);
      }
    }
  }
});

test('a 4000×3000 source after small ones (the kernel memory grows) still matches', () => {
  const src = noise(4000 * 3000 * 3, 42);
  const [a, b] = both(src, 4000, 3000, 640, 640, 640, 480, 0, 80);
  assert.ok(a.equals(b));
  const [c, d] = both(src.subarray(0, 30 * 20 * 3), 30, 20, 64, 64, 64, 43, 0, 10);
  assert.ok(c.equals(d), 'and a small one after it');
});

test('under node --jitless (no WebAssembly) resizeBilinearRgbInto falls back to the TypeScript loop: same bytes', async () => {
  const img = await decodeImage(await readImageFile(join(data, 'images/bus.jpg')));
  const expected = Buffer.alloc(320 * 320 * 3, 114);
  resizeBilinearRgbInto(img.data, img.width, img.height, expected, 320, 240, 320, 40, 0);
  const script = [
    "import { readFileSync } from 'node:fs';",
    "import { createHash } from 'node:crypto';",
    `import { resizeBilinearRgbInto } from ${JSON.stringify(join(root, 'src/image/resample.ts'))};`,
    `const src = readFileSync(process.argv[1]);`,
    "const out = Buffer.alloc(320 * 320 * 3, 114);",
    `resizeBilinearRgbInto(src, ${img.width}, ${img.height}, out, 320, 240, 320, 40, 0);`,
    "console.log(typeof WebAssembly, createHash('sha256').update(out).digest('hex'));",
  ].join('\n');
  const work = mkdtempSync(join(tmpdir(), 'osprey-jitless-'));
  const rgb = join(work, 'bus.rgb');
  writeFileSync(rgb, img.data);
  try {
    const r = spawnSync(process.execPath, ['--jitless', '--import', 'tsx', '--input-type=module', '-e', script, rgb], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), `undefined ${createHash('sha256').update(expected).digest('hex')}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
