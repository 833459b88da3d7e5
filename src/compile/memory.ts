/**
 * Static memory plan by tensor liveness: every buffer lives from the first layer that writes it to the last layer
 * that reads it; buffers whose lifetimes do not overlap share arena bytes. Offsets are assigned greedily by size
 * (largest first, each at the lowest offset that fits between the already-placed buffers it overlaps in time) —
 * the "greedy by size" strategy of TensorFlow Lite's arena planner (Pisarchyk & Lee, "Efficient Memory Management
 * for Deep Neural Net Inference", 2020), which TensorRT's builder also approximates.
 *
 * Offsets are per image: every activation scales with the batch, so offset·B and size·B are a valid plan for batch B.
 */

export interface LiveRange {
  id: number;
  bytes: number;
  /** First and last step (layer index) the buffer is live, inclusive. */
  first: number;
  last: number;
}

export interface ArenaPlan {
  /** Buffer id → offset, bytes. */
  offsets: Map<number, number>;
  /** Arena size, bytes. */
  arenaBytes: number;
}

/** Rounds up to `alignment` bytes (default 256: cudaMalloc's alignment, enough for 16-byte vector loads). */
export function alignUp(bytes: number, alignment = 256): number {
  return Math.ceil(bytes / alignment) * alignment;
}

/**
 * Assigns arena offsets. Ties in size are broken by the earlier first use, then by id, so the plan is deterministic.
 * @example planArena([{ id: 0, bytes: 100, first: 0, last: 1 }, { id: 1, bytes: 100, first: 2, last: 3 }]).arenaBytes // 256 (both at offset 0)
 */
export function planArena(ranges: readonly LiveRange[], alignment = 256): ArenaPlan {
  const order = [...ranges].sort((a, b) => b.bytes - a.bytes || a.first - b.first || a.id - b.id);
  const placed: Array<{ r: LiveRange; offset: number; size: number }> = [];
  const offsets = new Map<number, number>();
  let arena = 0;
  for (const r of order) {
    const size = alignUp(r.bytes, alignment);
    const overlapping = placed.filter((p) => p.r.first <= r.last && r.first <= p.r.last).sort((a, b) => a.offset - b.offset);
    let offset = 0;
    for (const p of overlapping) {
      if (offset + size <= p.offset) break;
      offset = Math.max(offset, p.offset + p.size);
    }
    placed.push({ r, offset, size });
    offsets.set(r.id, offset);
    arena = Math.max(arena, offset + size);
  }
  return { offsets, arenaBytes: arena };
}

/** True when no two buffers that are live at the same step overlap in the arena (the invariant of a plan). */
export function arenaIsValid(ranges: readonly LiveRange[], plan: ArenaPlan, alignment = 256): boolean {
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      const a = ranges[i]!;
      const b = ranges[j]!;
      if (a.last < b.first || b.last < a.first) continue;
      const oa = plan.offsets.get(a.id)!;
      const ob = plan.offsets.get(b.id)!;
      if (oa < ob + alignUp(b.bytes, alignment) && ob < oa + alignUp(a.bytes, alignment)) return false;
    }
  }
  return true;
}
