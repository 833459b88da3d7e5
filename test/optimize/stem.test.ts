/**
 * stemColumnsToChannels: a quantized stride-2 stem over uint8 NHWC pixels, rewritten to read 4 pixels of a row as
 * 12 channels, gives the same bytes as the original in real ONNX Runtime sessions (YOLOv8's 3×3 and YOLOv5's 6×6
 * stems, a vertical stride of 1, uint8 weights with a zero point, batch 2 on a symbolic batch axis); stems it cannot
 * rewrite are left with a reason. The real yolov8n is in test/optimize/qdq.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DataType, encodeOnnxModel, makeFloatTensor, makeNode, makeTensor, makeValueInfo } from '../../src/onnx/index.js';
import type { OnnxModel } from '../../src/onnx/index.js';
import { mergedColumns, stemColumnsToChannels } from '../../src/optimize/stem.js';
import { runOnce } from '../support/onnx.js';

interface StemCase {
  kernel: number;
  pad: number;
  strides?: [number, number];
  width?: number;
  channels?: number;
  /** uint8 weights with zero point 128 instead of symmetric int8. */
  uint8Weights?: boolean;
}

const H = 8;
const M = 8;

/** x uint8 [batch, H, W, C] → Transpose → DequantizeLinear → Conv (8-bit weights, int32 bias) → QuantizeLinear → y. */
function stem(o: StemCase): OnnxModel {
  const w = o.width ?? 16;
  const c = o.channels ?? 3;
  const [sh, sw] = o.strides ?? [2, 2];
  const k = o.kernel;
  const weights = Array.from({ length: M * c * k * k }, (_, i) => (((i * 2654435761) >>> 24) % 255) - 127);
  const xScale = 1 / 255;
  const wScales = Array.from({ length: M }, (_, i) => 0.004 + 0.001 * i);
  const hOut = Math.floor((H + 2 * o.pad - k) / sh) + 1;
  const wOut = Math.floor((w + 2 * o.pad - k) / sw) + 1;
  return {
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    metadata_props: [],
    graph: {
      name: 'stem',
      node: [
        makeNode('Transpose', ['x'], ['x_nchw'], { perm: [0, 3, 1, 2] }, 'pre'),
        makeNode('DequantizeLinear', ['x_nchw', 'x_scale', 'x_zp'], ['xf'], {}, 'dq_x'),
        makeNode('DequantizeLinear', ['w_q', 'w_scale', 'w_zp'], ['wf'], { axis: 0 }, 'dq_w'),
        makeNode('DequantizeLinear', ['b_q', 'b_scale', 'b_zp'], ['bf'], { axis: 0 }, 'dq_b'),
        makeNode('Conv', ['xf', 'wf', 'bf'], ['conv'], { kernel_shape: [k, k], strides: [sh, sw], pads: [o.pad, o.pad, o.pad, o.pad] }, 'stem/Conv'),
        makeNode('QuantizeLinear', ['conv', 'y_scale', 'y_zp'], ['y'], {}, 'q_y'),
      ],
      initializer: [
        makeFloatTensor('x_scale', [xScale], []),
        makeTensor('x_zp', [], new Uint8Array([0]), DataType.UINT8),
        o.uint8Weights
          ? makeTensor('w_q', [M, c, k, k], Uint8Array.from(weights, (v) => v + 128), DataType.UINT8)
          : makeTensor('w_q', [M, c, k, k], Int8Array.from(weights), DataType.INT8),
        makeFloatTensor('w_scale', wScales),
        o.uint8Weights ? makeTensor('w_zp', [M], new Uint8Array(M).fill(128), DataType.UINT8) : makeTensor('w_zp', [M], new Int8Array(M), DataType.INT8),
        makeTensor('b_q', [M], Int32Array.from({ length: M }, (_, i) => (i - 4) * 3000), DataType.INT32),
        makeFloatTensor('b_scale', wScales.map((s) => s * xScale)),
        makeTensor('b_zp', [M], new Int32Array(M), DataType.INT32),
        makeFloatTensor('y_scale', [0.02], []),
        makeTensor('y_zp', [], new Uint8Array([128]), DataType.UINT8),
      ],
      input: [makeValueInfo('x', DataType.UINT8, ['batch', H, w, c])],
      output: [makeValueInfo('y', DataType.UINT8, ['batch', M, hOut, wOut])],
      value_info: [],
    },
  };
}

async function run(m: OnnxModel, x: Uint8Array, dims: number[]): Promise<{ data: Uint8Array; dims: readonly number[] }> {
  const y = await runOnce(m, 'x', x, dims, 'y');
  return { data: y.data as Uint8Array, dims: y.dims };
}

test('mergedColumns: YOLOv8 3×3 p1 → kernel width 2, left pad 1; YOLOv5 6×6 p2 → width 3, pads 1 and 1; odd output widths refused', () => {
  assert.deepEqual(mergedColumns(3, 1, 1, 640), { kernelWidth: 2, firstOffset: -1, padRight: 0, outWidth: 320 });
  assert.deepEqual(mergedColumns(6, 2, 2, 640), { kernelWidth: 3, firstOffset: -1, padRight: 1, outWidth: 320 });
  assert.equal(mergedColumns(3, 0, 0, 16), undefined, 'output width 7 is odd');
  assert.equal(mergedColumns(3, 1, 1, 18), undefined, 'width 18 is not divisible by 4');
});

for (const c of [
  { kernel: 3, pad: 1 },
  { kernel: 6, pad: 2 },
  { kernel: 3, pad: 1, strides: [1, 2] as [number, number] },
  { kernel: 3, pad: 1, uint8Weights: true },
]) {
  test(`stem ${c.kernel}×${c.kernel} pad ${c.pad} strides ${JSON.stringify(c.strides ?? [2, 2])}${c.uint8Weights ? ' uint8 weights' : ''}: 12-channel Conv gives the same bytes, batch 2`, async () => {
    const source = stem(c);
    const lines: string[] = [];
    const rewritten = stemColumnsToChannels(source, { log: (l) => lines.push(l) });
    assert.notEqual(rewritten, source, lines.join('\n'));
    assert.match(lines.join('\n'), /stem\/Conv: 3 → 12 channels \(4 pixels of a row\), 16 outputs \(2 column phases\)/);
    const conv = rewritten.graph.node.filter((n) => n.op_type === 'Conv');
    assert.equal(conv.length, 1);
    const w = rewritten.graph.initializer.find((t) => t.name === rewritten.graph.node.find((n) => n.output[0] === conv[0]!.input[1])!.input[0])!;
    assert.deepEqual(w.dims.slice(0, 2), [16, 12]);
    assert.equal(source.graph.node.find((n) => n.op_type === 'Conv')!.input[0], 'xf', 'the input model is left unchanged');
    const dims = [2, H, 16, 3];
    const x = Uint8Array.from({ length: 2 * H * 16 * 3 }, (_, i) => (i * 40503 + 17) & 255);
    const a = await run(source, x, dims);
    const b = await run(rewritten, x, dims);
    assert.deepEqual(b.dims, a.dims);
    assert.deepEqual(Buffer.from(b.data), Buffer.from(a.data));
    assert.ok(new Set(a.data).size > 20, 'the outputs vary (not a constant that would match by accident)');
  });
}

test('stems that cannot be rewritten are left, each with its reason', () => {
  const cases: Array<[StemCase, RegExp]> = [
    [{ kernel: 3, pad: 1, width: 18 }, /width 18 not divisible by 4/],
    [{ kernel: 3, pad: 1, strides: [2, 1] }, /horizontal stride 1 \(needs 2\)/],
    [{ kernel: 3, pad: 1, channels: 4 }, /4 input channels are already a multiple of 4/],
    [{ kernel: 3, pad: 0 }, /odd output width/],
  ];
  for (const [o, why] of cases) {
    const m = stem(o);
    const lines: string[] = [];
    assert.equal(stemColumnsToChannels(m, { log: (l) => lines.push(l) }), m, JSON.stringify(o));
    assert.match(lines.join('\n'), why, JSON.stringify(o));
  }
});
