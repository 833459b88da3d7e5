/**
 * Multi-object tracker in the style of ByteTrack (Zhang et al., "ByteTrack: Multi-Object Tracking by Associating
 * Every Detection Box", ECCV 2022, arXiv:2110.06864).
 *
 * Per frame:
 * 1. Detections are split into high-score (≥ `highThreshold`) and low-score (≥ `lowThreshold`) sets.
 * 2. Every track predicts its box with a constant-velocity model (box corners + velocity × frames since last
 *    update). This replaces ByteTrack's Kalman filter: simpler, and enough at the 5–15 fps streams are sampled at.
 * 3. First association: high detections ↔ active and lost tracks by IoU (≥ `matchIoU`).
 * 4. Second association: low detections ↔ the active tracks still unmatched (≥ `lowMatchIoU`) — ByteTrack's key
 *    idea: occluded objects' weak boxes keep their tracks alive instead of spawning new ids.
 * 5. Tentative tracks (born last frame) ↔ remaining high detections (≥ `tentativeMatchIoU`); unmatched tentative
 *    tracks die.
 * 6. Unmatched tracks become lost; lost for more than `maxLostFrames` frames → removed.
 * 7. Remaining high detections with score ≥ `newTrackThreshold` start tentative tracks (active immediately on the
 *    first frame, as ByteTrack does, or always with `minHits: 1` — for low-fps streams where an object moves too far
 *    between two frames for the tentative IoU match).
 * Matching is greedy by descending IoU (ByteTrack uses the Hungarian algorithm; greedy gives the same result
 * whenever the best pairs are unambiguous, which is the normal case for boxes of one stream at 5+ fps).
 * Association is class-aware by default (a car never continues a person's track).
 *
 * Boxes are xyxy in source pixels. Track ids are positive integers, unique per tracker, never reused.
 */
import { iouOfBoxes } from '../core/nms.js';
import type { BoxXYXY, Detection } from '../core/types.js';

export interface TrackerOptions {
  /** ByteTrack `track_high_thresh`. Default 0.5. */
  highThreshold: number;
  /** ByteTrack `track_low_thresh`. Default 0.1. */
  lowThreshold: number;
  /** ByteTrack `new_track_thresh`. Default 0.6. */
  newTrackThreshold: number;
  /** IoU for the first association (ByteTrack `match_thresh` 0.8 on cost = 1 − IoU). Default 0.2. */
  matchIoU: number;
  /** IoU for the second (low-score) association. Default 0.5. */
  lowMatchIoU: number;
  /** IoU for tentative tracks. Default 0.3. */
  tentativeMatchIoU: number;
  /** ByteTrack `track_buffer`: frames a lost track is kept. Default 30. */
  maxLostFrames: number;
  /** Only same-class detections continue a track. Default true. */
  classAware: boolean;
  /** Matches before a new track is reported: 2 = ByteTrack (born tentative, confirmed by the next frame), 1 = at once. Default 2. */
  minHits: number;
}

export const DEFAULT_TRACKER_OPTIONS: Readonly<TrackerOptions> = Object.freeze({
  highThreshold: 0.5,
  lowThreshold: 0.1,
  newTrackThreshold: 0.6,
  matchIoU: 0.2,
  lowMatchIoU: 0.5,
  tentativeMatchIoU: 0.3,
  maxLostFrames: 30,
  classAware: true,
  minHits: 2,
});

type TrackState = 'tentative' | 'active' | 'lost';

export interface Track {
  id: number;
  state: TrackState;
  box: BoxXYXY;
  /** Per-frame velocity of the four box coordinates. */
  velocity: [number, number, number, number];
  classId: number;
  className: string;
  score: number;
  hits: number;
  lastFrame: number;
  firstSeenMs: number;
}

/** A track reported for the current frame (only tracks updated by a detection in this frame). */
export interface TrackedObject {
  trackId: number;
  classId: number;
  className: string;
  /** Score of the detection that updated the track this frame. */
  score: number;
  /** Detected box in source pixels (xyxy). */
  box: BoxXYXY;
  /** When the track was born, ms (the time base passed to {@link ByteTracker.update}). */
  firstSeenMs: number;
  /** Frames the track has been matched in. */
  hits: number;
}

/** {@link ByteTracker.snapshot}: JSON-serializable. */
export interface TrackerSnapshot {
  tracks: Track[];
  nextId: number;
  frame: number;
}

export class ByteTracker {
  private readonly o: TrackerOptions;
  private tracks: Track[] = [];
  private nextId = 1;
  private frame = 0;

  constructor(options: Partial<TrackerOptions> = {}) {
    this.o = { ...DEFAULT_TRACKER_OPTIONS, ...options };
  }

  /** Number of tracks kept (active, tentative and lost). */
  get size(): number {
    return this.tracks.length;
  }

  reset(): void {
    this.tracks = [];
    this.frame = 0;
  }

  /** The tracker's whole state as plain JSON data (a checkpoint a camera resumes from on another replica). */
  snapshot(): TrackerSnapshot {
    return { tracks: this.tracks.map((t) => ({ ...t, box: [...t.box], velocity: [...t.velocity] })), nextId: this.nextId, frame: this.frame };
  }

  /** Restores a {@link snapshot}: the next `update` continues exactly as the tracker that took it would have. */
  restore(s: TrackerSnapshot): void {
    this.tracks = s.tracks.map((t) => ({ ...t, box: [...t.box], velocity: [...t.velocity] }));
    this.nextId = s.nextId;
    this.frame = s.frame;
  }

  /**
   * Feeds one frame's detections (source pixels) and returns the confirmed tracks updated in this frame.
   * @param nowMs the frame's time in ms (only stored, for dwell times).
   */
  update(detections: readonly Detection[], nowMs: number): TrackedObject[] {
    const o = this.o;
    this.frame++;
    const high: number[] = [];
    const low: number[] = [];
    detections.forEach((d, i) => {
      if (d.score >= o.highThreshold) high.push(i);
      else if (d.score >= o.lowThreshold) low.push(i);
    });
    // Predicted boxes.
    const pred = new Map<Track, BoxXYXY>();
    for (const t of this.tracks) {
      const k = this.frame - t.lastFrame;
      pred.set(t, [t.box[0] + t.velocity[0] * k, t.box[1] + t.velocity[1] * k, t.box[2] + t.velocity[2] * k, t.box[3] + t.velocity[3] * k]);
    }
    const updated: Track[] = [];
    const matched = new Set<Track>();
    const usedDet = new Set<number>();

    const associate = (tracks: Track[], dets: number[], minIoU: number): void => {
      const pairs: Array<[number, Track, number]> = [];
      for (const t of tracks) {
        const p = pred.get(t)!;
        for (const di of dets) {
          const d = detections[di]!;
          if (o.classAware && d.classId !== t.classId) continue;
          const iou = iouOfBoxes(p, d.box);
          if (iou >= minIoU) pairs.push([iou, t, di]);
        }
      }
      pairs.sort((a, b) => b[0] - a[0]);
      for (const [, t, di] of pairs) {
        if (matched.has(t) || usedDet.has(di)) continue;
        matched.add(t);
        usedDet.add(di);
        this.apply(t, detections[di]!);
        updated.push(t);
      }
    };

    const confirmed = this.tracks.filter((t) => t.state !== 'tentative');
    associate(confirmed, high, o.matchIoU);
    associate(confirmed.filter((t) => t.state === 'active' && !matched.has(t)), low, o.lowMatchIoU);
    const tentative = this.tracks.filter((t) => t.state === 'tentative');
    associate(tentative, high.filter((i) => !usedDet.has(i)), o.tentativeMatchIoU);

    const kept: Track[] = [];
    for (const t of this.tracks) {
      if (matched.has(t)) {
        t.state = 'active';
        kept.push(t);
      } else if (t.state === 'tentative') {
        // dies
      } else if (this.frame - t.lastFrame <= o.maxLostFrames) {
        t.state = 'lost';
        kept.push(t);
      }
    }
    for (const di of high) {
      if (usedDet.has(di)) continue;
      const d = detections[di]!;
      if (d.score < o.newTrackThreshold) continue;
      const t: Track = {
        id: this.nextId++,
        state: this.frame === 1 || o.minHits <= 1 ? 'active' : 'tentative',
        box: [...d.box],
        velocity: [0, 0, 0, 0],
        classId: d.classId,
        className: d.className,
        score: d.score,
        hits: 1,
        lastFrame: this.frame,
        firstSeenMs: nowMs,
      };
      kept.push(t);
      if (t.state === 'active') updated.push(t);
    }
    this.tracks = kept;
    return updated
      .filter((t) => t.state === 'active')
      .map((t) => ({ trackId: t.id, classId: t.classId, className: t.className, score: t.score, box: [...t.box], firstSeenMs: t.firstSeenMs, hits: t.hits }));
  }

  private apply(t: Track, d: Detection): void {
    const k = Math.max(1, this.frame - t.lastFrame);
    for (let j = 0; j < 4; j++) {
      const v = (d.box[j]! - t.box[j]!) / k;
      t.velocity[j] = t.hits === 1 ? v : 0.5 * t.velocity[j]! + 0.5 * v;
    }
    t.box = [...d.box];
    t.score = d.score;
    t.hits++;
    t.lastFrame = this.frame;
  }
}
