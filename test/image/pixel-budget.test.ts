/** Decoded-pixel budgets (src/image/pixel-budget.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isOspreyError } from '../../src/core/errors.js';
import { checkRequestPixels, PixelBudget } from '../../src/image/pixel-budget.js';

test('reservations add up to the limit, past it OSPREY_ERR_DECODE_BUSY; release is idempotent', () => {
  const b = new PixelBudget(100);
  const r1 = b.reserve(60);
  assert.throws(() => b.reserve(50), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_DECODE_BUSY'));
  const r2 = b.reserve(40);
  r1();
  r1();
  assert.equal(b.inUsePixels, 40);
  r2();
  assert.equal(b.inUsePixels, 0);
});

test('a request over its budget is OSPREY_ERR_IMAGE_BUDGET naming the totals', () => {
  checkRequestPixels(100, 2, 100);
  assert.throws(() => checkRequestPixels(16 * 64e6, 16, 67e6), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_IMAGE_BUDGET') && /16 image\(s\) decode to 1024\.0 Mpx/.test(e.message));
});
