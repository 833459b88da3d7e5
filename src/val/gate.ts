/**
 * The precision gate: how much mAP50-95 an engine may lose against the first (reference) model.
 *
 * `--max-drop 2%` is a relative drop ((ref − m) / ref × 100); `--max-drop 1.0pt` is an absolute drop in mAP
 * points ((ref − m) × 100). Default 2% (the seeds' rule: an optimized engine may lose at most 2% against FP32).
 */
import { OspreyError } from '../core/errors.js';

export interface Gate {
  /** `relative`: percent of the reference mAP; `absolute`: mAP points (mAP × 100). */
  kind: 'relative' | 'absolute';
  /** Largest allowed drop in the gate's unit. */
  maxDrop: number;
  /** As the user wrote it, e.g. "2%". */
  text: string;
}

export const DEFAULT_GATE_TEXT = '2%';

/**
 * Parses `2%`, `0.5 %`, `1.0pt`, `1pts`, `1 point`.
 * @throws OspreyError `OSPREY_ERR_USAGE` for anything else (a bare number is refused: say `%` or `pt`).
 */
export function parseGate(text: string = DEFAULT_GATE_TEXT): Gate {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(%|pts?|points?)\s*$/i.exec(text);
  if (!m) {
    throw new OspreyError('OSPREY_ERR_USAGE', `--max-drop '${text}': write a relative drop like 2% or an absolute drop in mAP points like 1.0pt`, { value: text });
  }
  return { kind: m[2] === '%' ? 'relative' : 'absolute', maxDrop: Number(m[1]), text: text.trim() };
}

/**
 * The drop of `map` against `reference` in the gate's unit (positive = worse; null when a value is missing or a
 * relative drop against a reference of 0).
 */
export function computeDrop(reference: number | null, map: number | null, gate: Gate): number | null {
  if (reference === null || map === null) return null;
  if (gate.kind === 'absolute') return (reference - map) * 100;
  if (reference <= 0) return null;
  return ((reference - map) / reference) * 100;
}

/** "12.3%" or "1.20pt". */
export function formatDrop(drop: number | null, gate: Gate): string {
  if (drop === null) return 'n/a';
  return gate.kind === 'relative' ? `${drop.toFixed(1)}%` : `${drop.toFixed(2)}pt`;
}

/** True when the drop is over the gate (a missing mAP for a compared model also fails). */
export function failsGate(drop: number | null, map: number | null, gate: Gate): boolean {
  if (map === null) return true;
  return drop !== null && drop > gate.maxDrop + 1e-12;
}
