/**
 * `osprey_topk`'s selection (src/compile/kernels.ts) executed on the CPU: the 4 radix passes over the score bits
 * (8 bits each, histogram from the top digit down), the compaction of the scores above the K-th and of as many equal
 * ones as needed, and the descending (score, −index) order of the bitonic sort. Checked against a plain sort on
 * random scores, with ties and with K = A. The GPU run checks the kernel itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rng } from '../support/rng.js';

function topkEmulated(scores: Float32Array, K: number): number[] {
  const bits = new Uint32Array(scores.buffer);
  let prefix = 0;
  let mask = 0;
  let remaining = K;
  for (let shift = 24; shift >= 0; shift -= 8) {
    const hist = new Uint32Array(256);
    for (const v of bits) if (((v & mask) >>> 0) === prefix) hist[(v >>> shift) & 255]!++;
    let cum = 0;
    let d = 255;
    for (; d > 0; d--) {
      if (cum + hist[d]! >= remaining) break;
      cum += hist[d]!;
    }
    remaining -= cum;
    prefix = (prefix | (d << shift)) >>> 0;
    mask = (mask | (255 << shift)) >>> 0;
  }
  const take = remaining;
  const gtTotal = K - take;
  const keys: Array<[number, number]> = new Array(1024).fill([0, 0]);
  let gt = 0;
  let eq = 0;
  bits.forEach((v, a) => {
    const key: [number, number] = [v, 0xffffffff - a];
    if (v > prefix) keys[gt++] = key;
    else if (v === prefix) {
      const e = eq++;
      if (e < take) keys[gtTotal + e] = key;
    }
  });
  assert.equal(gt, gtTotal, 'the elements above the threshold are exactly K − (equal ones taken)');
  keys.sort((x, y) => y[0] - x[0] || y[1] - x[1]);
  return keys.slice(0, K).map(([, i]) => 0xffffffff - i);
}

function topkPlain(scores: Float32Array, K: number): number[] {
  return Array.from({ length: scores.length }, (_, i) => i)
    .sort((a, b) => scores[b]! - scores[a]! || a - b)
    .slice(0, K);
}

test('top-K radix select (emulated): equals a full sort, with ties, K = 300 / 1000 / all anchors', () => {
  const r = rng(9);
  for (const [A, K, levels] of [
    [8400, 300, 0],
    [8400, 1000, 0],
    [8400, 300, 64], // heavy ties: only 64 distinct scores
    [1000, 1000, 16],
    [700, 700, 0],
  ] as const) {
    const s = new Float32Array(A).map(() => (levels ? Math.floor(r() * levels) / levels : r()) * 0.999 + 1e-6);
    const got = topkEmulated(s, K);
    const want = topkPlain(s, K);
    assert.deepEqual(got.map((i) => s[i]), want.map((i) => s[i]), `A=${A} K=${K}: the same scores in the same order`);
    if (!levels) assert.deepEqual(got, want);
    else assert.deepEqual([...got].slice(0, 10).map((i) => s[i]), [...want].slice(0, 10).map((i) => s[i]));
  }
});
