/**
 * Arm selection: weighted random, or deterministic by a sticky key.
 *
 * A key is hashed with SHA-256 (salted with the alias name, so two aliases split the same keys independently) to a
 * number u in [0, 1); the arm is the first whose cumulative weight exceeds u. The same key therefore always lands on
 * the same arm while the weights stay the same, and a share `w` of all keys lands on an arm of weight `w`. When the
 * weights change, only the keys whose u falls in the moved boundary change arm (consistent with a cumulative split).
 */
import { createHash } from 'node:crypto';

const TWO_POW_32 = 2 ** 32;

/** Hash of `(salt, key)` as a uniform number in [0, 1). */
export function stickyUnit(salt: string, key: string): number {
  const h = createHash('sha256').update(salt).update('\u0000').update(key).digest();
  return h.readUInt32BE(0) / TWO_POW_32;
}

/**
 * Index of the arm for `u` in [0, 1): the first arm whose cumulative weight exceeds u (weights sum to 1; an arm of
 * weight 0 is never chosen).
 */
export function pickByUnit(weights: readonly number[], u: number): number {
  let acc = 0;
  let last = -1;
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i]!;
    if (w <= 0) continue;
    acc += w;
    last = i;
    if (u < acc) return i;
  }
  return last; // rounding: u within float error of 1
}
