/**
 * Model facts the builder needs, read from the ONNX graph (no session): input/output specs, metadata, sha256,
 * and the detection spec (input size, output layout) from core `resolveDetectionModelSpec`.
 */
import type { DetectionModelSpec } from '../core/model-spec.js';
import { resolveDetectionModelSpec } from '../core/model-spec.js';
import type { TensorSpec } from '../core/types.js';
import type { OnnxModel, ValueInfoProto } from '../onnx/proto-types.js';
import { toTensorDataType } from '../onnx/tensor.js';

export { sha256Hex } from '../util/sha256.js';

function specOf(v: ValueInfoProto): TensorSpec {
  const tt = v.type?.tensor_type;
  const shape = (tt?.shape?.dim ?? []).map((d) => (d.dim_value !== undefined && d.dim_value > 0 ? d.dim_value : d.dim_param ?? -1));
  return { name: v.name ?? '', type: toTensorDataType(tt?.elem_type ?? 0) ?? 'float32', shape };
}

/** Graph inputs that are not initializers, as TensorSpecs (e.g. `images` float32 `[1, 3, 640, 640]`). */
export function graphInputSpecs(model: OnnxModel): TensorSpec[] {
  const inits = new Set(model.graph.initializer.map((t) => t.name));
  return model.graph.input.filter((i) => !inits.has(i.name)).map(specOf);
}

/** Graph outputs as TensorSpecs (e.g. `output0` float32 `[1, 84, 8400]`). */
export function graphOutputSpecs(model: OnnxModel): TensorSpec[] {
  return model.graph.output.map(specOf);
}

/** metadata_props as a record (Ultralytics writes `names`, `stride`, `imgsz`...). */
export function modelMetadata(model: OnnxModel): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of model.metadata_props) if (p.key !== undefined) out[p.key] = p.value ?? '';
  return out;
}

/** Sets (or replaces) one metadata_props entry. */
export function setModelMetadata(model: OnnxModel, key: string, value: string): void {
  const e = model.metadata_props.find((p) => p.key === key);
  if (e) e.value = value;
  else model.metadata_props.push({ key, value });
}

/**
 * The detection spec of a model from its graph.
 * @throws OspreyError `OSPREY_ERR_UNSUPPORTED_LAYOUT` (output layout), `OSPREY_ERR_UNSUPPORTED_MODEL` (input).
 */
export function detectionSpecOf(model: OnnxModel): DetectionModelSpec {
  return resolveDetectionModelSpec(graphInputSpecs(model), graphOutputSpecs(model), modelMetadata(model));
}
