/**
 * Helpers for editing ONNX graphs in place: node/tensor/value-info builders, attribute access, producer and
 * consumer indexes, constants, value shapes, unique names, topological sort, dead-node removal.
 */
import { OspreyError } from '../core/errors.js';
import type { TensorSpec } from '../core/types.js';
import {
  AttributeType,
  type AttributeProto,
  type GraphProto,
  type Int64,
  type NodeProto,
  type OnnxModel,
  type TensorProto,
  type TypeProto,
  type ValueInfoProto,
} from './proto-types.js';
import { dataTypeName, tensorToNumbers, toTensorDataType } from './tensor.js';

/** Attribute value accepted by {@link makeNode}: number (INT when integer, else FLOAT; use {@link floatAttr} to force FLOAT), string, number[], tensor. */
export type AttributeValue = number | bigint | string | readonly number[] | TensorProto | { float: number } | { floats: readonly number[] } | { graph: GraphProto };

/** Marks a number as a FLOAT attribute even when it is integral (e.g. `alpha: floatAttr(1)`). */
export function floatAttr(value: number): { float: number } {
  return { float: value };
}

/** Builds an AttributeProto from a JS value (see {@link AttributeValue}). */
export function makeAttribute(name: string, value: AttributeValue): AttributeProto {
  if (typeof value === 'bigint') return { name, type: AttributeType.INT, i: value };
  if (typeof value === 'number') {
    return Number.isInteger(value) ? { name, type: AttributeType.INT, i: value } : { name, type: AttributeType.FLOAT, f: value };
  }
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) {
    const nums = value as readonly number[];
    if (nums.every((v) => Number.isInteger(v))) return { name, type: AttributeType.INTS, ints: [...nums] };
    return { name, type: AttributeType.FLOATS, floats: [...nums] };
  }
  if ('float' in value) return { name, type: AttributeType.FLOAT, f: value.float };
  if ('floats' in value) return { name, type: AttributeType.FLOATS, floats: [...value.floats] };
  if ('graph' in value) return { name, type: AttributeType.GRAPH, g: value.graph };
  return { name, type: AttributeType.TENSOR, t: value as TensorProto };
}

/**
 * Builds a node.
 * @example makeNode('Transpose', ['x'], ['y'], { perm: [0, 3, 1, 2] }, 'osprey/pre/Transpose')
 */
export function makeNode(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  attributes: Record<string, AttributeValue> = {},
  name?: string,
  domain?: string,
): NodeProto {
  const node: NodeProto = {
    input: [...inputs],
    output: [...outputs],
    op_type: opType,
    attribute: Object.entries(attributes).map(([k, v]) => makeAttribute(k, v)),
  };
  if (name !== undefined) node.name = name;
  if (domain !== undefined) node.domain = domain;
  return node;
}

/** A tensor ValueInfoProto; `shape` entries are sizes or symbolic names (`'batch'`); `undefined` shape = unknown rank. */
export function makeValueInfo(name: string, elemType: number, shape?: readonly (number | string)[]): ValueInfoProto {
  const tensorType: NonNullable<TypeProto['tensor_type']> = { elem_type: elemType };
  if (shape) tensorType.shape = { dim: shape.map((d) => (typeof d === 'string' ? { dim_param: d } : { dim_value: d })) };
  return { name, type: { tensor_type: tensorType } };
}

/** The attribute named `name`, or undefined. */
export function getAttribute(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

/** INT attribute as a number (default when absent). */
export function getIntAttribute(node: NodeProto, name: string, dflt?: number): number | undefined {
  const a = getAttribute(node, name);
  return a?.i !== undefined ? Number(a.i) : dflt;
}

/** INTS attribute as numbers (INT64 extremes become ±9.22e18, fine for comparisons). */
export function getIntsAttribute(node: NodeProto, name: string): number[] | undefined {
  const a = getAttribute(node, name);
  return a?.ints?.map((v: Int64) => Number(v));
}

/** FLOAT attribute. */
export function getFloatAttribute(node: NodeProto, name: string, dflt?: number): number | undefined {
  return getAttribute(node, name)?.f ?? dflt;
}

/** STRING attribute decoded as UTF-8. */
export function getStringAttribute(node: NodeProto, name: string): string | undefined {
  const s = getAttribute(node, name)?.s;
  return s ? new TextDecoder().decode(s) : undefined;
}

/** Sets (replaces) an attribute. */
export function setAttribute(node: NodeProto, name: string, value: AttributeValue): void {
  const attr = makeAttribute(name, value);
  const i = node.attribute.findIndex((a) => a.name === name);
  if (i >= 0) node.attribute[i] = attr;
  else node.attribute.push(attr);
}

/** Producer and consumers of every value of a graph (top level; subgraph reads of outer values count as consumers of the node holding the subgraph). */
export interface GraphIndex {
  /** value name → node producing it. */
  producer: Map<string, NodeProto>;
  /** value name → nodes reading it (a node reading a value twice appears once). */
  consumers: Map<string, NodeProto[]>;
  /** initializer name → tensor. */
  initializers: Map<string, TensorProto>;
}

/** Names a subgraph (and its nested subgraphs) reads from outer scopes. */
export function subgraphOuterInputs(g: GraphProto): Set<string> {
  const defined = new Set<string>();
  for (const i of g.input) if (i.name) defined.add(i.name);
  for (const t of g.initializer) if (t.name) defined.add(t.name);
  for (const n of g.node) for (const o of n.output) defined.add(o);
  const outer = new Set<string>();
  for (const n of g.node) {
    for (const i of nodeInputsWithSubgraphs(n)) if (i && !defined.has(i)) outer.add(i);
  }
  for (const o of g.output) if (o.name && !defined.has(o.name)) outer.add(o.name);
  return outer;
}

/** A node's inputs plus the outer-scope values its subgraph attributes read. */
export function nodeInputsWithSubgraphs(n: NodeProto): string[] {
  const names = [...n.input];
  for (const a of n.attribute) {
    for (const g of [a.g, ...(a.graphs ?? [])]) if (g) names.push(...subgraphOuterInputs(g));
  }
  return names;
}

/** Builds the producer/consumer index of `graph`. Rebuild it after editing the graph. */
export function indexGraph(graph: GraphProto): GraphIndex {
  const producer = new Map<string, NodeProto>();
  const consumers = new Map<string, NodeProto[]>();
  for (const n of graph.node) {
    for (const o of n.output) if (o) producer.set(o, n);
    for (const i of new Set(nodeInputsWithSubgraphs(n))) {
      if (!i) continue;
      let list = consumers.get(i);
      if (!list) consumers.set(i, (list = []));
      list.push(n);
    }
  }
  const initializers = new Map<string, TensorProto>();
  for (const t of graph.initializer) if (t.name) initializers.set(t.name, t);
  return { producer, consumers, initializers };
}

/** The node producing `name`, if any. */
export function findProducer(graph: GraphProto, name: string): NodeProto | undefined {
  return graph.node.find((n) => n.output.includes(name));
}

/** Nodes reading `name` (directly or from a subgraph). */
export function findConsumers(graph: GraphProto, name: string): NodeProto[] {
  return graph.node.filter((n) => nodeInputsWithSubgraphs(n).includes(name));
}

/**
 * The constant tensor behind a value: an initializer (that is not also a graph input, which a caller could
 * override) or the `value` of a Constant node. Undefined when the value is computed at run time.
 */
export function getConstant(graph: GraphProto, name: string, index?: GraphIndex): TensorProto | undefined {
  const init = index ? index.initializers.get(name) : graph.initializer.find((t) => t.name === name);
  if (init) return graph.input.some((i) => i.name === name) ? undefined : init;
  const producer = index ? index.producer.get(name) : findProducer(graph, name);
  if (producer && producer.op_type === 'Constant' && (producer.domain ?? '') === '') {
    const value = getAttribute(producer, 'value');
    if (value?.t) return value.t;
    const ints = getAttribute(producer, 'value_ints');
    if (ints?.ints) return { name, dims: [ints.ints.length], data_type: 7, int64_data: [...ints.ints] };
    const int = getAttribute(producer, 'value_int');
    if (int?.i !== undefined) return { name, dims: [], data_type: 7, int64_data: [int.i] };
    const floats = getAttribute(producer, 'value_floats');
    if (floats?.floats) return { name, dims: [floats.floats.length], data_type: 1, float_data: [...floats.floats] };
    const f = getAttribute(producer, 'value_float');
    if (f?.f !== undefined) return { name, dims: [], data_type: 1, float_data: [f.f] };
  }
  return undefined;
}

/** Integer constant values behind `name` (see {@link getConstant}), or undefined. */
export function getConstantInts(graph: GraphProto, name: string, index?: GraphIndex): number[] | undefined {
  const t = getConstant(graph, name, index);
  return t ? tensorToNumbers(t) : undefined;
}

/** Adds (or replaces, by name) an initializer; returns its name. */
export function addInitializer(graph: GraphProto, tensor: TensorProto): string {
  if (!tensor.name) throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', 'addInitializer: the tensor needs a name');
  const i = graph.initializer.findIndex((t) => t.name === tensor.name);
  if (i >= 0) graph.initializer[i] = tensor;
  else graph.initializer.push(tensor);
  return tensor.name;
}

/** Every name used in a graph (values, nodes, initializers, inputs/outputs, value_info), subgraphs included. */
export function collectNames(graph: GraphProto, into: Set<string> = new Set()): Set<string> {
  for (const v of [...graph.input, ...graph.output, ...graph.value_info]) if (v.name) into.add(v.name);
  for (const t of graph.initializer) if (t.name) into.add(t.name);
  for (const n of graph.node) {
    if (n.name) into.add(n.name);
    for (const x of [...n.input, ...n.output]) if (x) into.add(x);
    for (const a of n.attribute) for (const g of [a.g, ...(a.graphs ?? [])]) if (g) collectNames(g, into);
  }
  return into;
}

/**
 * A name generator that never returns a name already in the graph (or already handed out).
 * @example const fresh = uniqueNamer(graph); fresh('osprey/topk/scores') // 'osprey/topk/scores' or '..._1'
 */
export function uniqueNamer(graph: GraphProto): (base: string) => string {
  const used = collectNames(graph);
  return (base: string) => {
    let name = base;
    for (let k = 1; used.has(name); k++) name = `${base}_${k}`;
    used.add(name);
    return name;
  };
}

/**
 * Sorts `graph.node` topologically in place (Kahn's algorithm, stable: among ready nodes the original
 * order wins, so an already sorted graph is unchanged).
 * @throws OspreyError `OSPREY_ERR_INVALID_MODEL` naming a node on a cycle or reading a value nothing defines.
 */
export function topologicalSort(graph: GraphProto): void {
  const available = new Set<string>(['']);
  for (const i of graph.input) if (i.name) available.add(i.name);
  for (const t of graph.initializer) if (t.name) available.add(t.name);
  const producedBy = new Map<string, number>();
  graph.node.forEach((n, k) => n.output.forEach((o) => o && producedBy.set(o, k)));
  const nodeInputs = graph.node.map((n) => [...new Set(nodeInputsWithSubgraphs(n))]);
  // values neither produced in this graph nor graph inputs/initializers come from an outer scope
  for (const ins of nodeInputs) for (const i of ins) if (!producedBy.has(i)) available.add(i);
  const waiting = nodeInputs.map((ins) => ins.filter((i) => !available.has(i)).length);
  const dependents = new Map<string, number[]>();
  nodeInputs.forEach((ins, k) => {
    for (const i of ins) {
      if (available.has(i)) continue;
      let l = dependents.get(i);
      if (!l) dependents.set(i, (l = []));
      l.push(k);
    }
  });
  // min-heap on original index keeps the order stable
  const heap: number[] = [];
  const push = (k: number) => {
    heap.push(k);
    for (let c = heap.length - 1; c > 0; ) {
      const p = (c - 1) >> 1;
      if (heap[p]! <= heap[c]!) break;
      [heap[p], heap[c]] = [heap[c]!, heap[p]!];
      c = p;
    }
  };
  const pop = (): number => {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length) {
      heap[0] = last;
      for (let p = 0; ; ) {
        const l = 2 * p + 1, r = l + 1;
        let m = p;
        if (l < heap.length && heap[l]! < heap[m]!) m = l;
        if (r < heap.length && heap[r]! < heap[m]!) m = r;
        if (m === p) break;
        [heap[p], heap[m]] = [heap[m]!, heap[p]!];
        p = m;
      }
    }
    return top;
  };
  waiting.forEach((w, k) => w === 0 && push(k));
  const order: NodeProto[] = [];
  const done = new Set<string>();
  while (heap.length) {
    const k = pop();
    const n = graph.node[k]!;
    order.push(n);
    for (const o of n.output) {
      if (!o || done.has(o)) continue;
      done.add(o);
      for (const d of dependents.get(o) ?? []) if (--waiting[d]! === 0) push(d);
    }
  }
  if (order.length !== graph.node.length) {
    const stuck = graph.node.find((_, k) => waiting[k]! > 0)!;
    throw new OspreyError('OSPREY_ERR_INVALID_MODEL', `graph '${graph.name ?? ''}' is not a DAG: node '${stuck.name ?? stuck.op_type}' waits on a cycle`, { node: stuck.name });
  }
  graph.node = order;
}

/**
 * Removes nodes whose outputs nothing reads (not graph outputs, not other nodes), then initializers nothing
 * reads, then value_info of removed values. Returns how many nodes were removed.
 */
export function removeUnusedNodes(graph: GraphProto): number {
  let removed = 0;
  for (;;) {
    const used = new Set<string>(graph.output.map((o) => o.name ?? ''));
    for (const n of graph.node) for (const i of nodeInputsWithSubgraphs(n)) used.add(i);
    const keep = graph.node.filter((n) => n.output.some((o) => o && used.has(o)));
    if (keep.length === graph.node.length) {
      graph.initializer = graph.initializer.filter((t) => used.has(t.name ?? '') || graph.input.some((i) => i.name === t.name));
      const live = new Set<string>([...used, ...graph.node.flatMap((n) => n.output)]);
      graph.value_info = graph.value_info.filter((v) => live.has(v.name ?? ''));
      return removed;
    }
    removed += graph.node.length - keep.length;
    graph.node = keep;
  }
}

/** Renames every read of value `from` to `to` in the graph's nodes (and its graph outputs when `outputs`). */
export function replaceInputs(graph: GraphProto, from: string, to: string, except?: NodeProto): void {
  for (const n of graph.node) {
    if (n === except) continue;
    for (let k = 0; k < n.input.length; k++) if (n.input[k] === from) n.input[k] = to;
  }
}

/** The ValueInfoProto describing `name` (graph input, output or value_info), if any. */
export function findValueInfo(graph: GraphProto, name: string): ValueInfoProto | undefined {
  return graph.input.find((v) => v.name === name) ?? graph.output.find((v) => v.name === name) ?? graph.value_info.find((v) => v.name === name);
}

/**
 * Shape of a value from the graph's declarations: a graph input/output or value_info entry, or an
 * initializer's dims. Entries: size, symbolic name, or -1 when unknown. Undefined when nothing declares it.
 */
export function getValueShape(graph: GraphProto, name: string): (number | string)[] | undefined {
  const vi = findValueInfo(graph, name);
  const shape = vi?.type?.tensor_type?.shape;
  if (shape) return shape.dim.map((d) => (d.dim_value !== undefined ? d.dim_value : d.dim_param !== undefined && d.dim_param !== '' ? d.dim_param : -1));
  const init = graph.initializer.find((t) => t.name === name);
  return init ? [...init.dims] : undefined;
}

/** Element type (ONNX code) of a value from its declaration or initializer, if known. */
export function getValueElemType(graph: GraphProto, name: string): number | undefined {
  const vi = findValueInfo(graph, name);
  const e = vi?.type?.tensor_type?.elem_type;
  if (e !== undefined) return e;
  return graph.initializer.find((t) => t.name === name)?.data_type;
}

/** A ValueInfoProto as a TensorSpec (`['batch', 3, 640, 640]`, type `'float32'`). */
export function valueInfoToTensorSpec(v: ValueInfoProto): TensorSpec {
  const tt = v.type?.tensor_type;
  const name = v.name ?? '';
  if (!tt) {
    throw new OspreyError('OSPREY_ERR_UNSUPPORTED_MODEL', `value '${name}' is not a tensor (sequence/map/optional values are not supported as model inputs/outputs)`, { name });
  }
  const type = toTensorDataType(tt.elem_type ?? 0);
  if (!type) {
    throw new OspreyError('OSPREY_ERR_UNSUPPORTED_MODEL', `value '${name}' has element type ${dataTypeName(tt.elem_type ?? 0)}, which Osprey does not feed or read`, { name });
  }
  const shape = (tt.shape?.dim ?? []).map((d) => (d.dim_value !== undefined ? d.dim_value : d.dim_param ? d.dim_param : -1));
  return { name, type, shape };
}

/** Graph inputs that are real inputs (not initializers listed as inputs, as IR < 4 models do). */
export function modelInputs(model: OnnxModel): ValueInfoProto[] {
  const inits = new Set(model.graph.initializer.map((t) => t.name));
  return model.graph.input.filter((i) => !inits.has(i.name));
}

/** Reads metadata_props as a record. */
export function getMetadata(model: OnnxModel): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of model.metadata_props) if (p.key !== undefined) out[p.key] = p.value ?? '';
  return out;
}

/** Sets (or replaces) metadata_props entries, keeping the order of existing keys. */
export function setMetadata(model: OnnxModel, entries: Record<string, string>): void {
  for (const [key, value] of Object.entries(entries)) {
    const e = model.metadata_props.find((p) => p.key === key);
    if (e) e.value = value;
    else model.metadata_props.push({ key, value });
  }
}

/** The opset version of a domain ('' = ai.onnx), or undefined when not imported. */
export function opsetVersion(model: OnnxModel, domain = ''): number | undefined {
  const e = model.opset_import.find((o) => (o.domain ?? '') === domain || (domain === '' && o.domain === 'ai.onnx'));
  return e?.version;
}
