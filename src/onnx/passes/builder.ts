/**
 * A small node builder for passes that add sub-graphs: fresh names under a prefix, constants as
 * initializers, and the opset-dependent forms of ReduceMax / Unsqueeze (axes as attribute before opset
 * 18 / 13, as an input from then on).
 */
import type { GraphProto, NodeProto } from '../proto-types.js';
import { DataType } from '../proto-types.js';
import { addInitializer, makeNode, uniqueNamer, type AttributeValue } from '../graph.js';
import { float32ToFloat16, makeInt64Tensor, makeTensor } from '../tensor.js';

export class GraphBuilder {
  /** Nodes made so far, in creation order (the caller places them in the graph). */
  readonly nodes: NodeProto[] = [];
  private readonly fresh: (base: string) => string;

  /**
   * @param graph graph the initializers go into (nodes are collected in {@link nodes}).
   * @param prefix name prefix of every node, value and initializer made, e.g. `'osprey/post/'`.
   * @param opset the model's ai.onnx opset version.
   */
  constructor(readonly graph: GraphProto, readonly prefix: string, readonly opset: number) {
    this.fresh = uniqueNamer(graph);
  }

  /** A fresh name `prefix + base`. */
  name(base: string): string {
    return this.fresh(this.prefix + base);
  }

  /** Adds a node; returns its output names (`outputs` of them, named after `label`). */
  op(opType: string, inputs: readonly string[], attrs: Record<string, AttributeValue> = {}, label = opType, outputs = 1): string[] {
    const outs = Array.from({ length: outputs }, (_, k) => this.name(outputs === 1 ? `${label}_out` : `${label}_out${k}`));
    this.nodes.push(makeNode(opType, inputs, outs, attrs, this.name(label)));
    return outs;
  }

  /**
   * Adds a node that writes `output`, an existing tensor name whose old producer the caller renames or removes: how a
   * pass replaces a sub-graph while every reader (and value_info) of its result stays valid.
   * @example b.opInto('Transpose', [r], reshapeOut.output[0]!, { perm: [0, 2, 1] }); reshapeOut.output[0] = b.name('unused');
   */
  opInto(opType: string, inputs: readonly string[], output: string, attrs: Record<string, AttributeValue> = {}, label = opType): void {
    this.nodes.push(makeNode(opType, inputs, [output], attrs, this.name(label)));
  }

  /** Single-output {@link op}. */
  op1(opType: string, inputs: readonly string[], attrs: Record<string, AttributeValue> = {}, label = opType): string {
    return this.op(opType, inputs, attrs, label, 1)[0]!;
  }

  /** An INT64 initializer (1-D unless `dims` given). */
  int64(values: readonly number[], label = 'i64', dims?: readonly number[]): string {
    return addInitializer(this.graph, makeInt64Tensor(this.name(label), values, dims ?? [values.length]));
  }

  /** A float initializer of element type `elemType` (FLOAT or FLOAT16); scalar when `dims` is `[]`. */
  float(values: readonly number[], elemType: number = DataType.FLOAT, label = 'f', dims?: readonly number[]): string {
    const f = Float32Array.from(values);
    const d = dims ?? [values.length];
    const t = elemType === DataType.FLOAT16 ? makeTensor(this.name(label), d, float32ToFloat16(f), DataType.FLOAT16) : makeTensor(this.name(label), d, f);
    return addInitializer(this.graph, t);
  }

  /** Slice along `axis` from `start` to `end`. */
  slice(x: string, start: number, end: number, axis: number, label = 'Slice'): string {
    return this.op1('Slice', [x, this.int64([start], 'starts'), this.int64([end], 'ends'), this.int64([axis], 'axes')], {}, label);
  }

  /** Unsqueeze at `axes` (attribute form before opset 13). */
  unsqueeze(x: string, axes: readonly number[], label = 'Unsqueeze'): string {
    return this.opset >= 13 ? this.op1('Unsqueeze', [x, this.int64(axes, 'axes')], {}, label) : this.op1('Unsqueeze', [x], { axes: [...axes] }, label);
  }

  /** ReduceMax over `axes` (attribute form before opset 18). */
  reduceMax(x: string, axes: readonly number[], keepdims: boolean, label = 'ReduceMax'): string {
    const k = keepdims ? 1 : 0;
    return this.opset >= 18
      ? this.op1('ReduceMax', [x, this.int64(axes, 'axes')], { keepdims: k }, label)
      : this.op1('ReduceMax', [x], { axes: [...axes], keepdims: k }, label);
  }

  /** Cast to ONNX element type `to`. */
  cast(x: string, to: number, label = 'Cast'): string {
    return this.op1('Cast', [x], { to }, label);
  }
}
