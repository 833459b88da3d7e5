/**
 * Per-camera rules over tracked objects: polygon zones with minimum dwell time, line crossings with direction,
 * class and confidence filters, cool-down and de-duplication. A rule firing is an event.
 *
 * The point of a track tested against zones and lines is its anchor: the bottom-centre of its box (where an object
 * touches the ground; the same default as Frigate's zones and supervision's `PolygonZone`). Coordinates are source
 * pixels.
 *
 * - Zone: fires once per stay when a track's anchor has been inside the polygon continuously for `minDwellMs`
 *   (leaving resets the stay).
 * - Line: fires when the anchor changes side of the line (segment-bounded: the crossing point must lie on the
 *   segment), in the configured direction; sides are as seen on screen walking from `line[0]` to `line[1]`.
 * - Cool-down: after a firing, the rule is quiet for `cooldownMs` (all tracks).
 * - De-duplication: a firing whose box has IoU ≥ `dedupIoU` with one of the same rule's firings within
 *   `dedupWindowMs` is dropped (one object, new track id after an occlusion).
 */
import { iouOfBoxes } from '../core/nms.js';
import type { BoxXYXY } from '../core/types.js';
import type { LineRule, RuleConfig, ZoneRule } from './config.js';
import type { TrackedObject } from './tracker.js';

/** A rule firing (the event before storage). Times are `Date.now()` ms. */
export interface RuleFiring {
  rule: string;
  ruleType: 'zone' | 'line';
  trackId: number;
  classId: number;
  className: string;
  score: number;
  /** Box in source pixels, xyxy. */
  box: BoxXYXY;
  atMs: number;
  /** Zone: time inside when it fired. */
  dwellMs?: number;
  /** Line: direction of the crossing. */
  direction?: 'left-to-right' | 'right-to-left';
}

/** Ray casting point-in-polygon (boundary points count as inside for convex edges; good enough for zones). */
export function pointInPolygon(x: number, y: number, poly: ReadonlyArray<readonly [number, number]>): boolean {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i]!;
    const [xj, yj] = poly[j]!;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Side of point p relative to the line a→b on screen (image y down): +1 right, −1 left, 0 on the line. */
export function sideOfLine(a: readonly [number, number], b: readonly [number, number], p: readonly [number, number]): number {
  const cross = (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]);
  return cross > 0 ? 1 : cross < 0 ? -1 : 0;
}

/** True when segment p→q crosses segment a→b. */
function segmentsIntersect(a: readonly [number, number], b: readonly [number, number], p: readonly [number, number], q: readonly [number, number]): boolean {
  const d1 = sideOfLine(a, b, p);
  const d2 = sideOfLine(a, b, q);
  const d3 = sideOfLine(p, q, a);
  const d4 = sideOfLine(p, q, b);
  return d1 !== d2 && d3 !== d4;
}

export const anchorOf = (box: BoxXYXY): [number, number] => [(box[0] + box[2]) / 2, box[3]];

export interface TrackRuleState {
  /** Zone: when the current stay started (ms), or -1 outside. */
  enteredAtMs: number;
  /** Zone: fired during the current stay. */
  fired: boolean;
  /** Line: last anchor (for the crossing segment). */
  lastAnchor: [number, number] | null;
  lastSeenMs: number;
}

/** {@link RuleEngine.snapshot}: JSON-serializable. */
export interface RuleEngineSnapshot {
  state: Array<[string, Array<[number, TrackRuleState]>]>;
  lastFiredMs: Array<[string, number]>;
  recent: Array<[string, Array<{ box: BoxXYXY; atMs: number }>]>;
}

/** Evaluates one camera's rules frame by frame. */
export class RuleEngine {
  private rules: RuleConfig[];
  private state = new Map<string, Map<number, TrackRuleState>>();
  private lastFiredMs = new Map<string, number>();
  private recent = new Map<string, Array<{ box: BoxXYXY; atMs: number }>>();

  constructor(rules: readonly RuleConfig[], private readonly forgetAfterMs = 30000) {
    this.rules = [...rules];
  }

  /** Replaces the rules (zone drawing at run time); state of removed or changed rules is dropped. */
  setRules(rules: readonly RuleConfig[]): void {
    this.rules = [...rules];
    this.state.clear();
    this.lastFiredMs.clear();
    this.recent.clear();
  }

  /** The engine's per-track, cool-down and de-duplication state as plain JSON data (a resume checkpoint). */
  snapshot(): RuleEngineSnapshot {
    return {
      state: [...this.state].map(([rule, m]) => [rule, [...m].map(([id, st]) => [id, { ...st, lastAnchor: st.lastAnchor ? [...st.lastAnchor] : null }])]),
      lastFiredMs: [...this.lastFiredMs],
      recent: [...this.recent].map(([rule, list]) => [rule, list.map((r) => ({ box: [...r.box] as BoxXYXY, atMs: r.atMs }))]),
    };
  }

  /** Restores a {@link snapshot} (taken with the same rules). */
  restore(s: RuleEngineSnapshot): void {
    this.state = new Map(s.state.map(([rule, list]) => [rule, new Map(list.map(([id, st]) => [id, { ...st }]))]));
    this.lastFiredMs = new Map(s.lastFiredMs);
    this.recent = new Map(s.recent);
  }

  get ruleList(): readonly RuleConfig[] {
    return this.rules;
  }

  /** Feeds the tracks of one frame; returns the firings (already filtered by cool-down and de-duplication). */
  evaluate(objects: readonly TrackedObject[], nowMs: number): RuleFiring[] {
    const out: RuleFiring[] = [];
    for (const rule of this.rules) {
      let perTrack = this.state.get(rule.name);
      if (!perTrack) this.state.set(rule.name, (perTrack = new Map()));
      for (const obj of objects) {
        if (rule.classes.length > 0 && !rule.classes.includes(obj.className)) continue;
        if (obj.score < rule.minConfidence) continue;
        let st = perTrack.get(obj.trackId);
        if (!st) perTrack.set(obj.trackId, (st = { enteredAtMs: -1, fired: false, lastAnchor: null, lastSeenMs: nowMs }));
        st.lastSeenMs = nowMs;
        const firing = rule.type === 'zone' ? this.zone(rule, obj, st, nowMs) : this.line(rule, obj, st, nowMs);
        if (firing && this.admit(rule, firing)) out.push(firing);
      }
      for (const [id, st] of perTrack) if (nowMs - st.lastSeenMs > this.forgetAfterMs) perTrack.delete(id);
    }
    return out;
  }

  private zone(rule: ZoneRule, obj: TrackedObject, st: TrackRuleState, nowMs: number): RuleFiring | null {
    const [x, y] = anchorOf(obj.box);
    if (!pointInPolygon(x, y, rule.zone)) {
      st.enteredAtMs = -1;
      st.fired = false;
      return null;
    }
    if (st.enteredAtMs < 0) st.enteredAtMs = nowMs;
    const dwellMs = nowMs - st.enteredAtMs;
    if (st.fired || dwellMs < rule.minDwellMs) return null;
    st.fired = true;
    return { rule: rule.name, ruleType: 'zone', trackId: obj.trackId, classId: obj.classId, className: obj.className, score: obj.score, box: obj.box, atMs: nowMs, dwellMs };
  }

  private line(rule: LineRule, obj: TrackedObject, st: TrackRuleState, nowMs: number): RuleFiring | null {
    const p = anchorOf(obj.box);
    const prev = st.lastAnchor;
    st.lastAnchor = p;
    if (!prev) return null;
    const [a, b] = rule.line;
    const s0 = sideOfLine(a, b, prev);
    const s1 = sideOfLine(a, b, p);
    if (s0 === 0 || s1 === 0 || s0 === s1 || !segmentsIntersect(a, b, prev, p)) {
      if (s1 === 0) st.lastAnchor = prev; // touching the line: wait for a clear side
      return null;
    }
    const direction = s0 < 0 ? 'left-to-right' : 'right-to-left';
    if (rule.direction !== 'any' && rule.direction !== direction) return null;
    return { rule: rule.name, ruleType: 'line', trackId: obj.trackId, classId: obj.classId, className: obj.className, score: obj.score, box: obj.box, atMs: nowMs, direction };
  }

  private admit(rule: RuleConfig, f: RuleFiring): boolean {
    const last = this.lastFiredMs.get(rule.name);
    if (last !== undefined && rule.cooldownMs > 0 && f.atMs - last < rule.cooldownMs) return false;
    const recent = (this.recent.get(rule.name) ?? []).filter((r) => f.atMs - r.atMs <= rule.dedupWindowMs);
    const dup = rule.dedupIoU > 0 && recent.some((r) => iouOfBoxes(r.box, f.box) >= rule.dedupIoU);
    if (dup) {
      this.recent.set(rule.name, recent);
      return false;
    }
    recent.push({ box: f.box, atMs: f.atMs });
    this.recent.set(rule.name, recent.slice(-64));
    this.lastFiredMs.set(rule.name, f.atMs);
    return true;
  }
}
