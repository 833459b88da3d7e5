/**
 * COCOeval semantics on hand-built cases. Every expected AP is derived by hand in the comments: with the
 * 101 recall thresholds r_i = i·0.01 (i = 0..100), AP at one IoU threshold = (1/101)·Σ_i p_interp(r_i), where
 * p_interp(r) = envelope precision at the first detection whose cumulative recall ≥ r (searchsorted 'left'),
 * and 0 when recall r is never reached.
 *
 * The last test compares with pycocotools itself on seeded random data (values produced by
 * test/core/cocoeval-golden.py; see there).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import {
  COCO_IOU_THRESHOLDS,
  COCO_RECALL_THRESHOLDS,
  cocoBoxIoU,
  evaluateCoco,
  meanPrecisionCurve,
  type CocoDetectionResult,
  type CocoGroundTruth,
} from '../../src/core/cocoeval.js';
import { rng } from '../support/rng.js';

const close = (a: number | null, b: number, eps = 1e-12) => {
  assert.ok(a !== null, `expected ${b}, got null`);
  assert.ok(Math.abs(a - b) < eps, `expected ${b}, got ${a}`);
};

let nextId = 1;
function gt(bbox: [number, number, number, number], o: Partial<CocoGroundTruth> = {}): CocoGroundTruth {
  return { id: nextId++, imageId: 1, categoryId: 1, bbox, area: bbox[2] * bbox[3], iscrowd: 0, ...o };
}
function dt(bbox: [number, number, number, number], score: number, o: Partial<CocoDetectionResult> = {}): CocoDetectionResult {
  return { imageId: 1, categoryId: 1, bbox, score, ...o };
}
const P = { imageIds: [1], categoryIds: [1] };

test('thresholds are numpy linspace: 10 IoU thresholds 0.50..0.95, 101 recall thresholds 0..1', () => {
  assert.equal(COCO_IOU_THRESHOLDS.length, 10);
  assert.equal(COCO_IOU_THRESHOLDS[0], 0.5);
  assert.equal(COCO_IOU_THRESHOLDS[9], 0.95);
  assert.ok(Math.abs(COCO_IOU_THRESHOLDS[5]! - 0.75) < 1e-12);
  assert.equal(COCO_RECALL_THRESHOLDS.length, 101);
  assert.equal(COCO_RECALL_THRESHOLDS[50], 0.5);
  assert.equal(COCO_RECALL_THRESHOLDS[100], 1);
  assert.equal(COCO_RECALL_THRESHOLDS[7], 7 * 0.01); // numpy: i*step, not i/100
});

test('cocoBoxIoU: plain IoU, no overlap 0, crowd divides by the detection area', () => {
  // [0,0,10,10] vs [5,0,10,10]: intersection 5·10 = 50, union 100+100−50 = 150 → 1/3.
  close(cocoBoxIoU(0, 0, 10, 10, 5, 0, 10, 10, false), 1 / 3);
  assert.equal(cocoBoxIoU(0, 0, 10, 10, 10, 0, 10, 10, false), 0); // touching edges: w = 0 → 0
  // det [0,0,10,10] inside crowd region [0,0,100,100]: intersection 100 / area(det) 100 = 1.
  close(cocoBoxIoU(0, 0, 10, 10, 0, 0, 100, 100, true), 1);
});

test('one perfect match: AP 1 at every IoU threshold, AR 1, area small only', () => {
  // One gt [0,0,10,10] (area 100 ≤ 32² → small), one detection on it: IoU 1 ≥ every threshold.
  // rc = [1], pr = [1]: every r_i ≤ 1 → index 0 → precision 1 → AP = 101/101 = 1.
  // medium/large: the gt is outside the range → ignored, no non-ignored gt → -1 → null.
  const r = evaluateCoco([gt([0, 0, 10, 10])], [dt([0, 0, 10, 10], 0.9)], P);
  close(r.summary.map50_95, 1);
  close(r.summary.map50, 1);
  close(r.summary.map75, 1);
  close(r.summary.mapSmall, 1);
  assert.equal(r.summary.mapMedium, null);
  assert.equal(r.summary.mapLarge, null);
  close(r.summary.ar1, 1);
  close(r.summary.ar100, 1);
  close(r.perClass[0]!.ap50_95, 1);
  assert.equal(r.perClass[0]!.numGroundTruth, 1);
});

test('a duplicate detection is a false positive that lowers precision at recall', () => {
  // gts A [0,0,10,10] and B [50,50,10,10]. Dets by score: a1 on A (0.9) TP, a2 on A again (0.8) FP (A is taken,
  // not a crowd), b on B (0.7) TP.
  // tp = [1,1,2], fp = [0,1,1], rc = [.5,.5,1], pr = [1, .5, 2/3] → envelope [1, 2/3, 2/3].
  // r_0..r_50 (0.00..0.50; r_50 = 0.5 = rc[0], 'left' → index 0) → 1: 51 thresholds.
  // r_51..r_100 → index 2 → 2/3: 50 thresholds.  AP = (51 + 50·2/3)/101 = 253/303 ≈ 0.83498 (same at all IoUs).
  const gts = [gt([0, 0, 10, 10]), gt([50, 50, 10, 10])];
  const dts = [dt([0, 0, 10, 10], 0.9), dt([0, 0, 10, 10], 0.8), dt([50, 50, 10, 10], 0.7)];
  const r = evaluateCoco(gts, dts, P);
  close(r.summary.map50_95, 253 / 303);
  close(r.summary.map50, 253 / 303);
  // Without the duplicate: TP, TP → AP 1 (the duplicate cost 1 − 253/303).
  close(evaluateCoco(gts, [dts[0]!, dts[2]!], P).summary.map50_95, 1);
  // AR100 = final recall = 1; AR1 = recall of the top detection only = 1/2.
  close(r.summary.ar100, 1);
  close(r.summary.ar1, 0.5);
});

test('a crowd region: detections on it are ignored (not false positives), matched many times, never a miss', () => {
  // gt A [0,0,10,10] regular; crowd C [100,100,50,50] (iscrowd 1). Dets: c1 [110,110,10,10] 0.95 and
  // c2 [120,120,10,10] 0.9 inside C (IoU with a crowd = intersection/area(det) = 100/100 = 1, both match C
  // because a crowd can be matched many times → both ignored); a on A (0.5) TP.
  // Counted: only the TP: rc = [1], pr = [1] → AP = 1. The crowd is not a gt to find: npig = 1.
  const gts = [gt([0, 0, 10, 10]), gt([100, 100, 50, 50], { iscrowd: 1 })];
  const dts = [dt([110, 110, 10, 10], 0.95), dt([120, 120, 10, 10], 0.9), dt([0, 0, 10, 10], 0.5)];
  const r = evaluateCoco(gts, dts, P);
  close(r.summary.map50_95, 1);
  close(r.summary.ar100, 1);
  assert.equal(r.perClass[0]!.numGroundTruth, 1);
  // Same boxes with the crowd flag off: C is a regular gt with IoU 100/2500 = 0.04 → c1, c2 are FPs:
  // FP, FP, TP; npig = 2 (A and C) → rc = [0,0,.5], pr = [0,0,1/3] → envelope [1/3,1/3,1/3]:
  // r_0 → index 0 → 1/3; r_1..r_50 → index 2 → 1/3; r_51.. → 0. AP = 51·(1/3)/101 = 17/101.
  const plain = evaluateCoco([gts[0]!, gt([100, 100, 50, 50])], dts, P);
  close(plain.summary.map50_95, 17 / 101);
});

test('small vs large objects: area ranges ignore gts and unmatched dets outside the range', () => {
  // gt S [0,0,20,20] area 400 (small), gt L [100,100,200,200] area 40000 (large).
  // Dets: F [400,0,50,50] 0.95 (area 2500: medium, matches nothing), L' on L 0.9, S' on S 0.6.
  // all:    FP, TP, TP, npig 2: rc [0,.5,1], pr [0,.5,2/3] → envelope [2/3,2/3,2/3] → AP = 2/3.
  // small:  L ignored (area out of range) → L' matches an ignored gt → ignored; F unmatched and 2500 > 32² →
  //         ignored; S' TP → AP_s = 1.
  // medium: both gts out of range → no non-ignored gt → -1 → null (F alone does not create an AP).
  // large:  S ignored → S' ignored; F unmatched, 2500 < 96² → ignored; L' TP → AP_l = 1.
  const gts = [gt([0, 0, 20, 20]), gt([100, 100, 200, 200])];
  const dts = [dt([400, 0, 50, 50], 0.95), dt([100, 100, 200, 200], 0.9), dt([0, 0, 20, 20], 0.6)];
  const r = evaluateCoco(gts, dts, P);
  close(r.summary.map50_95, 2 / 3);
  close(r.summary.mapSmall, 1);
  assert.equal(r.summary.mapMedium, null);
  close(r.summary.mapLarge, 1);
  close(r.summary.arSmall, 1);
  close(r.summary.arLarge, 1);
  assert.equal(r.summary.arMedium, null);
});

test('the area ranges use the annotation area field, not the box area', () => {
  // gt box 20×20 (box area 400) with area field 2000 (a segment area): medium, not small.
  const r = evaluateCoco([gt([0, 0, 20, 20], { area: 2000 })], [dt([0, 0, 20, 20], 0.9)], P);
  assert.equal(r.summary.mapSmall, null);
  close(r.summary.mapMedium, 1);
});

test('a class with no ground truth is excluded from the mean (AP null), its detections change nothing', () => {
  // categories 1, 2, 3. Cat 1: perfect match → AP 1. Cat 2: no gt, one det at 0.99 → npig = 0 → -1 → null.
  // Cat 3: neither gt nor det → null. mAP = mean over cats with gt = AP(cat 1) = 1 (not 1/3, not 1/2).
  const r = evaluateCoco(
    [gt([0, 0, 10, 10])],
    [dt([0, 0, 10, 10], 0.9), dt([0, 0, 10, 10], 0.99, { categoryId: 2 })],
    { imageIds: [1], categoryIds: [1, 2, 3] },
  );
  close(r.summary.map50_95, 1);
  assert.equal(r.perClass[1]!.ap50_95, null);
  assert.equal(r.perClass[1]!.numDetections, 1);
  assert.equal(r.perClass[2]!.ap50_95, null);
  // A wrong-class det does not steal cat 1's gt (matching is per category).
  close(r.perClass[0]!.ap50_95, 1);
});

test('a detection beyond maxDets (100) is dropped; AR1/AR10 count only the top 1/10', () => {
  // One gt [0,0,10,10]. 99 FPs far away with scores 0.99..0.5 above the TP (score 0.1): the TP is the 100th
  // detection: tp cum = [0,…,0,1], rc[99] = 1, pr[99] = 1/100 → envelope 0.01 everywhere → every r_i → index 99
  // → AP = 0.01. With 100 FPs above it, the TP is the 101st → cut → rc never > 0: r_0 = 0 → index 0 → pr 0,
  // the rest unreached → AP = 0, AR100 = 0.
  const target = gt([0, 0, 10, 10]);
  const fps = (n: number) => Array.from({ length: n }, (_, i) => dt([1000 + 20 * i, 1000, 10, 10], 0.99 - i * 0.001));
  const tp = dt([0, 0, 10, 10], 0.1);
  const r99 = evaluateCoco([target], [...fps(99), tp], P);
  close(r99.summary.map50_95, 0.01, 1e-12);
  close(r99.summary.ar100, 1);
  close(r99.summary.ar10, 0);
  close(r99.summary.ar1, 0);
  const r100 = evaluateCoco([target], [...fps(100), tp], P);
  close(r100.summary.map50_95, 0);
  close(r100.summary.ar100, 0);
});

test('101-point interpolation: precision envelope from the right, sampled with searchsorted left', () => {
  // 3 gts, dets in score order TP, FP, FP, TP, TP (FPs far away).
  // tp = [1,1,1,2,3], fp = [0,1,2,2,2]; rc = [1/3,1/3,1/3,2/3,1]; pr = [1, 1/2, 1/3, 1/2, 3/5].
  // Envelope (max to the right): [1, 3/5, 3/5, 3/5, 3/5].
  // r_0..r_33 (≤ 1/3) → index 0 → 1 (34 thresholds); r_34..r_66 (≤ 2/3) → index 3 → 3/5 (33);
  // r_67..r_100 → index 4 → 3/5 (34).  AP = (34 + 67·3/5)/101 = 74.2/101 ≈ 0.734653.
  // (Without the envelope index 3 would give 1/2: (34 + 33/2 + 34·3/5)/101 = 70.9/101.)
  const gts = [gt([0, 0, 10, 10]), gt([50, 0, 10, 10]), gt([100, 0, 10, 10])];
  const dts = [
    dt([0, 0, 10, 10], 0.9),
    dt([500, 500, 10, 10], 0.8),
    dt([600, 500, 10, 10], 0.7),
    dt([50, 0, 10, 10], 0.6),
    dt([100, 0, 10, 10], 0.5),
  ];
  const r = evaluateCoco(gts, dts, P);
  close(r.summary.map50_95, 74.2 / 101);
  // The stored curve: precision[t=0, r, k=0, a=all, m=100].
  const { precision } = r;
  const at = (ri: number) => precision[((0 * 101 + ri) * 1 + 0) * 4 * 3 + 0 * 3 + 2]!;
  close(at(33), 1);
  close(at(34), 0.6);
  close(at(100), 0.6);
  // The plotted curve (mean over categories) is the same here: one category.
  const curve = meanPrecisionCurve(r, [0]);
  assert.equal(curve.length, 101);
  close(curve[0]!, 1);
  close(curve[50]!, 0.6);
});

test('IoU threshold: a box with IoU 0.6 counts at 0.50, 0.55 and 0.60 only', () => {
  // gt [0,0,10,10], det [0,0,10,6]: intersection 60, union 100 → IoU 0.6. A detection matches when
  // IoU ≥ t (the loop skips iou < t); t_2 = 2·(0.45/9) + 0.5 is exactly 0.6 in float64 → TP at t = 0.50, 0.55,
  // 0.60 (AP 1 each), FP at 0.65..0.95 (AP 0) → mAP50-95 = 3/10 = 0.3, mAP50 = 1, mAP75 = 0.
  const r = evaluateCoco([gt([0, 0, 10, 10])], [dt([0, 0, 10, 6], 0.9)], P);
  assert.equal(COCO_IOU_THRESHOLDS[2], 0.6);
  close(r.summary.map50_95, 0.3);
  close(r.summary.map50, 1);
  close(r.summary.map75, 0);
});


/** Random COCO-like data: 4 categories with gt, a 5th with none, crowds, jittered TPs, wrong classes, FPs. */
export function goldenData(seed: number) {
  const r = rng(seed);
  const r1 = (v: number) => Math.round(v * 10) / 10;
  const cats = [1, 2, 3, 5, 7];
  const gts: CocoGroundTruth[] = [];
  const dts: CocoDetectionResult[] = [];
  let id = 1;
  for (let img = 1; img <= 12; img++) {
    const n = Math.floor(r() * 8);
    for (let j = 0; j < n; j++) {
      const c = cats[Math.floor(r() * 4)]!;
      const sz = [5 + r() * 25, 30 + r() * 70, 100 + r() * 200][Math.floor(r() * 3)]!;
      const w = r1(sz), h = r1(sz * (0.5 + r() * 1.5));
      const x = r1(r() * (640 - w)), y = r1(r() * Math.max(1, 480 - h));
      const crowd = r() < 0.08 ? 1 : 0;
      gts.push({ id: id++, imageId: img, categoryId: c, bbox: [x, y, w, h], area: r1(w * h * (0.5 + r() * 0.5)), iscrowd: crowd });
      const k = Math.floor(r() * 4);
      for (let q = 0; q < k; q++) {
        const cc = r() < 0.85 ? c : cats[Math.floor(r() * 5)]!;
        const jx = (r() - 0.5) * 0.3;
        dts.push({ imageId: img, categoryId: cc, bbox: [r1(x + jx * w), r1(y + jx * h), r1(Math.max(1, w * (0.85 + r() * 0.3))), r1(Math.max(1, h * (0.85 + r() * 0.3)))], score: Math.round(r() * 100) / 100 });
      }
    }
    const nf = Math.floor(r() * 40);
    for (let q = 0; q < nf; q++) {
      dts.push({ imageId: img, categoryId: cats[Math.floor(r() * 5)]!, bbox: [r1(r() * 500), r1(r() * 400), r1(3 + r() * 200), r1(3 + r() * 200)], score: Math.round(r() * 50) / 100 });
    }
  }
  return { gts, dts, imageIds: Array.from({ length: 12 }, (_, i) => i + 1), categoryIds: cats };
}

// pycocotools 2.0 (COCOeval bbox, defaults) on goldenData(seed): E.stats and per-class AP (area all, maxDets 100).
// Produced with: OSPREY_GOLDEN_DUMP=/tmp/g node --import tsx --test test/core/cocoeval.test.ts
//                python test/core/cocoeval-golden.py /tmp/g
const GOLDEN: Record<number, { stats: number[]; perClass: (number | null)[] }> = {
  1: {"stats": [0.1919220272085896, 0.46500774464603994, 0.11360674179940677, 0.2621692169216922, 0.2753126547126762, 0.1359109720495859, 0.16333333333333333, 0.3730555555555556, 0.3730555555555556, 0.35, 0.5900000000000001, 0.1766666666666667], "perClass": [0.28407342923157447, 0.14555824246019067, 0.1616681172761239, 0.17638831986646938, null]},
  2: {"stats": [0.21218896680512098, 0.43733502552429354, 0.19470956412411428, 0.3258294043690083, 0.15142452666319262, 0.20542115430952185, 0.1471200980392157, 0.40278799019607847, 0.4103247549019608, 0.42750000000000005, 0.2916666666666667, 0.5325892857142858], "perClass": [0.2935947896601032, 0.12039909679305195, 0.22762968419712318, 0.2071322965702056, null]},
  3: {"stats": [0.18762399412923556, 0.36774298516253023, 0.1600719951027361, 0.22882288228822883, 0.26695494549454946, 0.23071222300801505, 0.20198863636363634, 0.34393939393939393, 0.353030303030303, 0.3444444444444444, 0.4541666666666667, 0.36928571428571433], "perClass": [0.06332472377672549, 0.2571543703674051, 0.2926288578560742, 0.13738802451673737, null]},
};

test('agrees with pycocotools (golden values) on seeded random data with crowds, area ranges and wrong classes', () => {
  const dump = process.env['OSPREY_GOLDEN_DUMP'];
  for (const seed of [1, 2, 3]) {
    const d = goldenData(seed);
    if (dump) {
      mkdirSync(dump, { recursive: true });
      writeFileSync(`${dump}/seed${seed}.json`, JSON.stringify({
        images: d.imageIds.map((id) => ({ id, width: 640, height: 480, file_name: `${id}.jpg` })),
        categories: d.categoryIds.map((id) => ({ id, name: `c${id}` })),
        annotations: d.gts.map((g) => ({ id: g.id, image_id: g.imageId, category_id: g.categoryId, bbox: g.bbox, area: g.area, iscrowd: g.iscrowd })),
        results: d.dts.map((x) => ({ image_id: x.imageId, category_id: x.categoryId, bbox: x.bbox, score: x.score })),
      }));
    }
    const ref = GOLDEN[seed];
    if (!ref) { assert.ok(dump, `no golden values for seed ${seed}`); continue; }
    const r = evaluateCoco(d.gts, d.dts, { imageIds: d.imageIds, categoryIds: d.categoryIds });
    const s = r.summary;
    const mine = [s.map50_95, s.map50, s.map75, s.mapSmall, s.mapMedium, s.mapLarge, s.ar1, s.ar10, s.ar100, s.arSmall, s.arMedium, s.arLarge];
    mine.forEach((v, i) => {
      if (ref.stats[i] === -1) assert.equal(v, null, `stat ${i}`);
      else close(v, ref.stats[i]!, 1e-9);
    });
    r.perClass.forEach((c, k) => {
      const e = ref.perClass[k];
      if (e === null || e === undefined) assert.equal(c.ap50_95, null);
      else close(c.ap50_95, e, 1e-9);
    });
  }
});
