/**
 * Shared pieces of the graph passes: options every pass takes, the refusal error, small graph queries.
 */
import { OspreyError } from '../../core/errors.js';
import type { NodeProto, OnnxModel, ValueInfoProto } from '../proto-types.js';

/** Options every pass accepts. */
export interface PassCommonOptions {
  /** Receives one line per rewrite/decision (for build logs and manifests). */
  log?: (line: string) => void;
}

/** A graph pass: a function from model to a new model (the input is not modified). */
export type GraphPass<O> = (model: OnnxModel, options?: O) => OnnxModel;

/** Display name of a node: its name, else `op_type(first output)`. */
export function nodeLabel(n: NodeProto): string {
  return n.name ? `'${n.name}' (${n.op_type})` : `${n.op_type}(${n.output[0] ?? ''})`;
}

/**
 * The error a pass throws when it cannot be applied safely.
 * @example throw passFailed('dynamicBatch', node, 'Reshape to [4,-1] folds the batch axis into axis 0')
 */
export function passFailed(pass: string, node: NodeProto | undefined, reason: string, details: Record<string, unknown> = {}): OspreyError {
  const where = node ? ` at node ${nodeLabel(node)}` : '';
  return new OspreyError('OSPREY_ERR_PASS_FAILED', `${pass}: cannot apply${where}: ${reason}`, { pass, node: node?.name, opType: node?.op_type, ...details });
}

/** Sets axis 0 of a tensor value's declared shape to a symbolic name (no-op when the value has no shape). */
export function setLeadingDimParam(v: ValueInfoProto, name: string): void {
  const shape = v.type?.tensor_type?.shape;
  if (!shape || shape.dim.length === 0) return;
  const d = shape.dim[0]!;
  delete d.dim_value;
  d.dim_param = name;
}
