/**
 * mulberry32: a tiny seeded PRNG, so tests that need random-looking data are reproducible and never depend on
 * Math.random. Returns numbers in [0, 1).
 * @example const r = rng(42); r(); // → the same value on every run
 */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
