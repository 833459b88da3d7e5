/**
 * uint8 NHWC prefix + top-K suffix (host NMS) and the NMS-in-graph variant on the real yolov8n: same detections as
 * the plain model with host decode + NMS (matched boxes IoU ≥ 0.99, same classes), on real letterboxed images at
 * batch 2. Plus the graph/metadata contract and bad-input refusals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { isOspreyError } from '../../src/core/errors.js';
import { resolveDetectionModelSpec } from '../../src/core/model-spec.js';
import { postprocessImage } from '../../src/core/postprocess.js';
import { DEFAULT_DETECT_OPTIONS, type Detection } from '../../src/core/types.js';
import type { LetterboxGeometry } from '../../src/core/letterbox.js';
import {
  DataType,
  encodeOnnxModel,
  makeNode,
  makeValueInfo,
  readModelMetadata,
  readOnnxModel,
  type OnnxModel,
} from '../../src/onnx/index.js';
import { dynamicBatch, topKOutput, uint8Input } from '../../src/onnx/passes/index.js';
import { IMAGES, YOLO_PATH, loadBatch, session, slice, whole } from '../support/onnx.js';
import { iouOfBoxes } from '../../src/core/nms.js';


/** Matches each reference detection to the best same-class detection; returns the worst IoU and score gap. */
function compare(ref: Detection[], got: Detection[]): { minIoU: number; maxScoreDiff: number } {
  assert.equal(got.length, ref.length, `detection count ${got.length} vs ${ref.length}`);
  let minIoU = 1;
  let maxScoreDiff = 0;
  const used = new Set<number>();
  for (const r of ref) {
    let best = -1;
    let bestIoU = -1;
    got.forEach((d, j) => {
      if (used.has(j) || d.classId !== r.classId) return;
      const v = iouOfBoxes(r.box, d.box);
      if (v > bestIoU) [best, bestIoU] = [j, v];
    });
    assert.ok(best >= 0, `no ${r.className} detection matches [${r.box.map((v) => v.toFixed(1))}]`);
    used.add(best);
    minIoU = Math.min(minIoU, bestIoU);
    maxScoreDiff = Math.max(maxScoreDiff, Math.abs(got[best]!.score - r.score));
  }
  return { minIoU, maxScoreDiff };
}

const LOW_CONF = { ...DEFAULT_DETECT_OPTIONS, confThreshold: 0.05 };

/** Detections per image at the default options and at a low confidence threshold (more boxes through NMS). */
async function detect(s: ort.InferenceSession, model: OnnxModel, feeds: ort.Tensor, geometries: LetterboxGeometry[], offset = 0): Promise<{ dflt: Detection[]; low: Detection[] }[]> {
  const meta = readModelMetadata(encodeOnnxModel(model));
  const spec = resolveDetectionModelSpec(meta.inputs, meta.outputs, meta.metadata);
  const out = (await s.run({ [spec.inputName]: feeds }))[spec.outputName]!;
  const dims = out.dims as number[];
  const o = { dims, data: out.data as Float32Array };
  return Array.from({ length: dims[0]! }, (_, i) => ({
    dflt: postprocessImage(o, spec.layout, i, geometries[offset + i]!, spec.names, DEFAULT_DETECT_OPTIONS, spec.nmsInGraph),
    low: postprocessImage(o, spec.layout, i, geometries[offset + i]!, spec.names, LOW_CONF, spec.nmsInGraph),
  }));
}

test('uint8 prefix + top-K suffix (host NMS) and NMS in graph give the plain model detections (IoU ≥ 0.99, same classes)', async (t) => {
  const original = readOnnxModel(YOLO_PATH);
  const dyn = dynamicBatch(original);
  const fused = topKOutput(uint8Input(dyn), { k: 1000 });
  const nms = topKOutput(uint8Input(dyn), { k: 1000, nmsInGraph: true });
  const fusedMeta = readModelMetadata(encodeOnnxModel(fused));
  assert.deepEqual(fusedMeta.inputs, [{ name: 'images', type: 'uint8', shape: ['batch', 640, 640, 3] }]);
  assert.deepEqual(fusedMeta.outputs, [{ name: 'output0', type: 'float32', shape: ['batch', 1000, 6] }]);
  assert.equal(fusedMeta.metadata.osprey_postprocess, 'topk');
  assert.equal(fusedMeta.metadata.osprey_nms_in_graph, 'false');
  assert.equal(fusedMeta.metadata.osprey_input_format, 'uint8-nhwc');
  assert.ok(fusedMeta.metadata.names?.startsWith("{0: 'person'"));
  const nmsMeta = readModelMetadata(encodeOnnxModel(nms));
  assert.deepEqual(nmsMeta.outputs[0]!.shape, ['batch', 300, 6]);
  assert.equal(nmsMeta.metadata.osprey_nms_in_graph, 'true');

  const paths = IMAGES.slice(0, 2);
  const f = await loadBatch(paths, 'float32-nchw');
  const u = await loadBatch(paths, 'uint8-nhwc');
  const plainS = await session(original);
  const fusedS = await session(fused);
  const nmsS = await session(nms);
  try {
    const ref: { dflt: Detection[]; low: Detection[] }[] = [];
    for (let i = 0; i < paths.length; i++) ref.push(...(await detect(plainS, original, slice(f.batch, i), f.geometries, i)));
    const viaTopK = await detect(fusedS, fused, whole(u.batch), u.geometries);
    const viaNms = await detect(nmsS, nms, whole(u.batch), u.geometries);
    for (let i = 0; i < paths.length; i++) {
      const name = paths[i]!.split('/').pop();
      for (const level of ['dflt', 'low'] as const) {
        const r = ref[i]![level];
        assert.ok(r.length >= 2, `${name}: reference found ${r.length} detections`);
        const a = compare(r, viaTopK[i]![level]);
        const b = compare(r, viaNms[i]![level]);
        t.diagnostic(
          `${name} conf ${level === 'dflt' ? DEFAULT_DETECT_OPTIONS.confThreshold : LOW_CONF.confThreshold}: ${r.length} detections; ` +
            `top-K + host NMS: min IoU ${a.minIoU.toFixed(6)}, max |Δscore| ${a.maxScoreDiff.toExponential(2)}; ` +
            `NMS in graph: min IoU ${b.minIoU.toFixed(6)}, max |Δscore| ${b.maxScoreDiff.toExponential(2)}`,
        );
        assert.ok(a.minIoU >= 0.99 && b.minIoU >= 0.99);
        assert.ok(a.maxScoreDiff <= 1e-3 && b.maxScoreDiff <= 1e-3);
      }
    }
    // NMS output: kept rows first, then all-zero padding rows
    const raw = (await nmsS.run({ images: whole(u.batch, 1) })).output0!;
    const d = raw.data as Float32Array;
    let seenZero = false;
    for (let r = 0; r < 300; r++) {
      const row = d.subarray(r * 6, r * 6 + 6);
      if (row[4] === 0) {
        seenZero = true;
        assert.ok(row.every((v) => v === 0), `padding row ${r} is all zero`);
      } else assert.ok(!seenZero, 'kept rows come before padding');
    }
  } finally {
    await Promise.all([plainS.release(), fusedS.release(), nmsS.release()]);
  }
});

function tinyDetector(outputShape: number[]): OnnxModel {
  return {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    metadata_props: [],
    graph: {
      name: 'tiny',
      node: [makeNode('Identity', ['x'], ['y'], {}, 'id')],
      initializer: [],
      input: [makeValueInfo('x', DataType.FLOAT, outputShape)],
      output: [makeValueInfo('y', DataType.FLOAT, outputShape)],
      value_info: [],
    },
  };
}

test('topKOutput on a YOLOv5-style [B,N,5+nc] output: score = objectness × class, corners from cx,cy,w,h', async () => {
  // 8 anchors (5 all-zero), 2 classes
  const m = topKOutput(tinyDetector([1, 8, 7]), { k: 2 });
  const s = await session(m);
  try {
    const x = new Float32Array([
      100, 100, 20, 10, 0.5, 0.2, 0.8, // score 0.4 class 1
      50, 60, 10, 10, 0.9, 0.9, 0.1, // score 0.81 class 0
      10, 10, 4, 4, 0.1, 0.5, 0.5, // score 0.05
      ...new Array(5 * 7).fill(0),
    ]);
    const y = (await s.run({ x: new ort.Tensor('float32', x, [1, 8, 7]) })).y!;
    assert.deepEqual(y.dims, [1, 2, 6]);
    const got = Array.from(y.data as Float32Array).map((v) => Math.round(v * 1e4) / 1e4);
    assert.deepEqual(got, [45, 55, 55, 65, 0.81, 0, 90, 95, 110, 105, 0.4, 1]);
  } finally {
    await s.release();
  }
});

test('topKOutput on an output that is no YOLO layout → OSPREY_ERR_UNSUPPORTED_LAYOUT', () => {
  assert.throws(() => topKOutput(tinyDetector([1, 4, 4])), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_UNSUPPORTED_LAYOUT'));
});

test('uint8Input on an input that is not [B,3,H,W] float → OSPREY_ERR_PASS_FAILED', () => {
  assert.throws(() => uint8Input(tinyDetector([1, 84, 8400])), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_PASS_FAILED') && /not \[batch, 3, height, width\]/.test(e.message));
});
