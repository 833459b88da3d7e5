/**
 * Decoded-pixel budgets of a server: a decoded image costs `width × height × 3` bytes (packed RGB) whatever its
 * encoded size, so a few kilobytes of PNG can ask for gigabytes. `osprey serve` bounds pixels per request and
 * pixels being decoded at once in the process, from the image headers, before any pixel is decoded.
 */
import { OspreyError } from '../core/errors.js';
import { DEFAULT_MAX_PIXELS } from './limits.js';

/** Default pixels one request's images may decode to in all: one maximum-size image (8192², ~67 Mpx, ~200 MB RGB). */
export const DEFAULT_MAX_REQUEST_PIXELS = DEFAULT_MAX_PIXELS;
/** Default pixels the process decodes at once, over all requests: four maximum-size images (~268 Mpx, ~805 MB RGB). */
export const DEFAULT_MAX_DECODE_PIXELS = 4 * DEFAULT_MAX_PIXELS;

/**
 * A counting budget of pixels in decode (a semaphore that refuses rather than waits: a client told 429 backs off,
 * a queue of multi-megapixel decodes would only hold memory longer).
 *
 * @example
 *   const budget = new PixelBudget(4 * 8192 * 8192);
 *   const release = budget.reserve(4000 * 3000);   // throws OSPREY_ERR_DECODE_BUSY when it does not fit
 *   try { await decode(); } finally { release(); }
 */
export class PixelBudget {
  private used = 0;

  /** @param limitPixels pixels in decode at once (Infinity = no limit). */
  constructor(readonly limitPixels: number = DEFAULT_MAX_DECODE_PIXELS) {}

  /** Pixels reserved now. */
  get inUsePixels(): number {
    return this.used;
  }

  /**
   * Reserves `pixels`.
   * @returns the release function (idempotent).
   * @throws OspreyError `OSPREY_ERR_DECODE_BUSY` (429 / RESOURCE_EXHAUSTED) when they do not fit now.
   */
  reserve(pixels: number): () => void {
    if (pixels > 0 && this.used + pixels > this.limitPixels) {
      throw new OspreyError(
        'OSPREY_ERR_DECODE_BUSY',
        `the server is decoding ${(this.used / 1e6).toFixed(1)} Mpx and this request needs ${(pixels / 1e6).toFixed(1)} Mpx more, over its ${(this.limitPixels / 1e6).toFixed(1)} Mpx budget; retry shortly`,
        { inUsePixels: this.used, requestPixels: pixels, limitPixels: this.limitPixels },
      );
    }
    this.used += pixels;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= pixels;
    };
  }
}

/**
 * Checks one request's pixel total against the per-request budget.
 * @throws OspreyError `OSPREY_ERR_IMAGE_BUDGET` (413 / RESOURCE_EXHAUSTED).
 */
export function checkRequestPixels(totalPixels: number, images: number, limitPixels: number): void {
  if (totalPixels > limitPixels) {
    throw new OspreyError(
      'OSPREY_ERR_IMAGE_BUDGET',
      `the request's ${images} image(s) decode to ${(totalPixels / 1e6).toFixed(1)} Mpx, over the per-request budget of ${(limitPixels / 1e6).toFixed(1)} Mpx`,
      { requestPixels: totalPixels, limitPixels },
    );
  }
}
