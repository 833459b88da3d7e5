/**
 * expandNearestResize: a quantized nearest upsampling rewritten as Expand gives the same bytes as ONNX Runtime's
 * Resize (real ORT sessions, dynamic batch), its index rule matches ORT's Resize for every coordinate/nearest mode
 * pair, and Resizes it cannot prove exact are left with a reason.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeFloatTensor, makeNode, makeTensor, makeValueInfo, DataType } from '../../src/onnx/index.js';
import type { OnnxModel } from '../../src/onnx/index.js';
import { expandNearestResize } from '../../src/optimize/upsample.js';
import { nearestSourceIndex, readsFloorOfFactor } from '../../src/onnx/resize.js';
import { runOnce } from '../support/onnx.js';

const C = 6;
const H = 5;
const W = 7;

/** x uint8 [batch, C, H, W] → DequantizeLinear → Resize → QuantizeLinear → y uint8, the QDQ form of a neck upsampling. */
function qdqUpsample(o: { mode?: string; coordinateMode?: string; nearestMode?: string; scales?: number[]; outScale?: number } = {}): OnnxModel {
  const scales = o.scales ?? [1, 1, 2, 2];
  const resizeAttrs = { mode: o.mode ?? 'nearest', coordinate_transformation_mode: o.coordinateMode ?? 'asymmetric', nearest_mode: o.nearestMode ?? 'floor' };
  return {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    metadata_props: [],
    graph: {
      name: 'upsample',
      node: [
        makeNode('DequantizeLinear', ['x', 's_in', 'z_in'], ['xf'], {}, 'dq'),
        makeNode('Resize', ['xf', '', 'scales'], ['up'], resizeAttrs, 'up/Resize'),
        makeNode('QuantizeLinear', ['up', 's_out', 'z_out'], ['y'], {}, 'q'),
      ],
      initializer: [
        makeFloatTensor('s_in', [0.05], []),
        makeTensor('z_in', [], new Uint8Array([3]), DataType.UINT8),
        makeFloatTensor('s_out', [o.outScale ?? 0.05], []),
        makeTensor('z_out', [], new Uint8Array([3]), DataType.UINT8),
        makeFloatTensor('scales', scales),
      ],
      input: [makeValueInfo('x', DataType.UINT8, ['batch', C, H, W])],
      output: [makeValueInfo('y', DataType.UINT8, ['batch', C, H * scales[2]!, W * scales[3]!])],
      value_info: [],
    },
  };
}

async function run(m: OnnxModel, x: Uint8Array, dims: number[]): Promise<{ data: Uint8Array; dims: readonly number[] }> {
  const y = await runOnce(m, 'x', x, dims, 'y');
  return { data: y.data as Uint8Array, dims: y.dims };
}

test('nearest ×2×3 on a uint8 tensor: Expand gives the same bytes as ORT Resize, batch 2 on a symbolic batch axis', async () => {
  const source = qdqUpsample({ scales: [1, 1, 2, 3] });
  const lines: string[] = [];
  const rewritten = expandNearestResize(source, { log: (l) => lines.push(l) });
  assert.notEqual(rewritten, source);
  assert.match(lines.join('\n'), /up\/Resize: nearest ×2×3 of \[N, 6, 5, 7\] as Expand/);
  const ops = rewritten.graph.node.map((n) => n.op_type);
  assert.deepEqual(ops.filter((o) => o === 'Resize' || o === 'QuantizeLinear' || o === 'DequantizeLinear'), [], 'the DQ → Resize → Q chain is gone');
  assert.equal(ops.filter((o) => o === 'Expand').length, 1);
  assert.equal(source.graph.node.some((n) => n.op_type === 'Resize'), true, 'the input model is left unchanged');
  const dims = [2, C, H, W];
  const x = Uint8Array.from({ length: 2 * C * H * W }, (_, i) => (i * 2654435761) >>> 24);
  const a = await run(source, x, dims);
  const b = await run(rewritten, x, dims);
  assert.deepEqual(b.dims, [2, C, 2 * H, 3 * W]);
  assert.deepEqual(Buffer.from(b.data), Buffer.from(a.data));
  // and the bytes are the input pixels themselves (the pass's premise: Q(DQ(q)) = q)
  assert.equal(b.data[(((1 * C + 4) * 2 * H + 9) * 3 * W) + 20], x[((1 * C + 4) * H + 4) * W + 6]);
});

test('half_pixel + round_prefer_floor (the ONNX defaults) also reads ⌊y / f⌋ for whole factors and is rewritten, bit-exact', async () => {
  const source = qdqUpsample({ coordinateMode: 'half_pixel', nearestMode: 'round_prefer_floor', scales: [1, 1, 3, 2] });
  const rewritten = expandNearestResize(source);
  assert.equal(rewritten.graph.node.some((n) => n.op_type === 'Resize'), false);
  const x = Uint8Array.from({ length: C * H * W }, (_, i) => (i * 40503) & 255);
  assert.deepEqual(Buffer.from((await run(rewritten, x, [1, C, H, W])).data), Buffer.from((await run(source, x, [1, C, H, W])).data));
});

test('Resizes that are not a whole-factor nearest copy between equal quantization parameters are left, each with its reason', () => {
  const cases: Array<[Parameters<typeof qdqUpsample>[0], RegExp]> = [
    [{ coordinateMode: 'asymmetric', nearestMode: 'ceil' }, /'asymmetric' with nearest_mode 'ceil' does not read pixel ⌊y \/ f⌋/],
    [{ coordinateMode: 'tf_crop_and_resize' }, /tf_crop_and_resize/],
    [{ mode: 'linear' }, /mode 'linear', not nearest/],
    [{ scales: [1, 1, 1.5, 2] }, /not whole upsampling factors/],
    [{ scales: [1, 2, 2, 2] }, /not whole upsampling factors/],
    [{ outScale: 0.06 }, /not per-tensor with equal scale and zero point/],
  ];
  for (const [o, why] of cases) {
    const m = qdqUpsample(o);
    const lines: string[] = [];
    assert.equal(expandNearestResize(m, { log: (l) => lines.push(l) }), m, JSON.stringify(o));
    assert.match(lines.join('\n'), why, JSON.stringify(o));
  }
  // a float graph (no Q/DQ around the Resize) keeps its Resize
  const float = qdqUpsample();
  float.graph.node = [makeNode('Resize', ['x', '', 'scales'], ['y'], { mode: 'nearest' }, 'plain')];
  const lines: string[] = [];
  assert.equal(expandNearestResize(float, { log: (l) => lines.push(l) }), float);
  assert.match(lines.join('\n'), /plain: not between a DequantizeLinear and a single QuantizeLinear/);
});

test('nearestSourceIndex agrees with ORT Resize for every coordinate_transformation_mode × nearest_mode, factors 2 and 3', async () => {
  const coordinateModes = ['half_pixel', 'half_pixel_symmetric', 'pytorch_half_pixel', 'align_corners', 'asymmetric', 'tf_half_pixel_for_nn'];
  const nearestModes = ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'];
  const len = 7;
  let checked = 0;
  for (const factor of [2, 3]) {
    for (const cm of coordinateModes) {
      for (const nm of nearestModes) {
        // a float [1, 1, 1, len] row holding its own indices, resized along the last axis only
        const m: OnnxModel = {
          ir_version: 8,
          // tf_half_pixel_for_nn is deprecated from opset 13 on (ORT warns); half_pixel_symmetric needs opset 19
          opset_import: [{ domain: '', version: cm === 'tf_half_pixel_for_nn' ? 11 : 19 }],
          metadata_props: [],
          graph: {
            name: 'index',
            node: [makeNode('Resize', ['x', 'roi', 'scales'], ['y'], { mode: 'nearest', coordinate_transformation_mode: cm, nearest_mode: nm }, 'r')],
            initializer: [makeFloatTensor('roi', []), makeFloatTensor('scales', [1, 1, 1, factor])],
            input: [makeValueInfo('x', DataType.FLOAT, [1, 1, 1, len])],
            output: [makeValueInfo('y', DataType.FLOAT, [1, 1, 1, len * factor])],
            value_info: [],
          },
        };
        const y = (await runOnce(m, 'x', Float32Array.from({ length: len }, (_, i) => i), [1, 1, 1, len], 'y')).data as Float32Array;
        const ours = Array.from({ length: len * factor }, (_, i) => nearestSourceIndex(i, factor, len * factor, len, cm, nm));
        assert.deepEqual(ours, Array.from(y), `${cm} / ${nm} ×${factor}`);
        checked++;
      }
    }
  }
  assert.equal(checked, 48);
  assert.equal(nearestSourceIndex(0, 2, 4, 2, 'tf_crop_and_resize', 'floor'), undefined);
  // which pairs are a plain copy of pixel ⌊y / f⌋ (what the Expand rewrite and the GPU upsample kernel need)
  assert.equal(readsFloorOfFactor(2, 20, 'asymmetric', 'floor'), true);
  assert.equal(readsFloorOfFactor(2, 20, 'half_pixel', 'round_prefer_floor'), true);
  assert.equal(readsFloorOfFactor(2, 20, 'half_pixel', 'floor'), false, 'reads pixel 0 for y = 2');
  assert.equal(readsFloorOfFactor(2, 20, 'asymmetric', 'ceil'), false);
});
