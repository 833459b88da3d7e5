/**
 * Osprey's graph passes. Each is `(model, options) → new model` (the input is left unchanged) and they
 * compose: `fp16(topKOutput(uint8Input(dynamicBatch(model))))`. See docs/onnx-passes.md.
 */
export { dynamicBatch, describeDynamicBatch, type DynamicBatchOptions } from './dynamic-batch.js';
export { passFailed, nodeLabel, type PassCommonOptions, type GraphPass } from './common.js';
export { uint8Input, topKOutput, DEFAULT_TOPK, type Uint8InputOptions, type TopKOutputOptions } from './pre-post.js';
export { GraphBuilder } from './builder.js';
export { fp16, DEFAULT_FP16_KEEP_OPS, type Fp16Options } from './fp16.js';
