/**
 * Osprey's ONNX layer: lossless model I/O, cheap metadata reads, graph-editing helpers and graph passes.
 *
 * - {@link readModelMetadata}: inputs/outputs as TensorSpec, metadata_props, opsets — no weights decoded
 *   (what engines call before creating a session).
 * - {@link readOnnxModel} / {@link decodeOnnxModel} / {@link encodeOnnxModel} / {@link writeOnnxModel}.
 * - tensor helpers (`tensorToTypedArray`, `makeTensor`, float16), graph helpers (`indexGraph`,
 *   `topologicalSort`, `uniqueNamer`, `getValueShape`, ...).
 */
export { readModelMetadata, type ModelMetadata } from './metadata.js';
export {
  readOnnxModel,
  decodeOnnxModel,
  encodeOnnxModel,
  writeOnnxModel,
  cloneOnnxModel,
  forEachTensor,
  readModelFile,
  type ReadOnnxOptions,
} from './model.js';
export * from './proto-types.js';
export * from './tensor.js';
export * from './graph.js';
export { onnxProtoPath, onnxRoot, onnxType } from './schema.js';
export { inferShapes, inferElemTypes, broadcastShapes, type Shape } from './shapes.js';
export * from './passes/index.js';
