/**
 * Osprey's GPU engine builder, the steps TensorRT's takes, each a pure function over the plan:
 * parse + lower + fuse ({@link lowerOnnx}) → place NHWC buffers, eliminate Concat/Split, FP16 weights, memory plan by
 * liveness ({@link placeAndPlan}) → tactics timed on the GPU (tactics.ts, with a timing cache) → serialize for one
 * compute capability (serialize.ts). {@link executePlan} runs a plan on the CPU, as the reference the GPU is checked
 * against and the check of the plan itself against ONNX Runtime.
 */
import type { OnnxModel } from '../onnx/index.js';
import { lowerOnnx } from './lower.js';
import { placeAndPlan, type CompiledPlan, type PlaceOptions } from './place.js';

export * from './plan.js';
export * from './lower.js';
export * from './place.js';
export * from './memory.js';
export * from './reference.js';

/** parse → lower → fuse → place → memory plan. */
export function compilePlan(model: OnnxModel, options: PlaceOptions = {}): CompiledPlan {
  return placeAndPlan(lowerOnnx(model), options);
}
