/**
 * Osprey's supported library surface (`import { ... } from 'osprey'`): what the CLI commands are built from.
 * Anything not exported here is internal and may change between releases.
 *
 * @example Detect objects in an image (ONNX Runtime in a worker thread, letterbox, NMS, boxes in source pixels)
 *   const detector = await Detector.create({ modelPath: 'yolov8n.onnx', executionProviders: ['cpu'] });
 *   const [result] = await detector.detectFiles(['bus.jpg']);
 *   await detector.close();
 *
 * @example Serve a model repository (KServe v2 HTTP + gRPC, dynamic batching, Prometheus metrics)
 *   const server = await startServer({ modelRepository: './models', httpPort: 8000, grpcPort: 8001 });
 *   // ... await server.close();
 */

// ---- errors: one catalogue, stable codes mapped to HTTP and gRPC status ----
export { ERROR_CATALOGUE, OspreyError, isOspreyError, type ErrorCode } from './core/errors.js';

// ---- core types and algorithms (pure, no I/O) ----
export type { Detection, DetectOptions, ImageResult, Tensor, TensorDataType, TensorSpec, TensorStorage } from './core/types.js';
export { nonMaxSuppression, iouOfBoxes } from './core/nms.js';
export { computeLetterbox, scaleBoxesToSource } from './core/letterbox.js';
export { evaluateCoco } from './core/cocoeval.js';
export { redactText, redactUrl } from './core/redact.js';

// ---- engines: the Engine interface, ONNX Runtime as a backend, instance pools, warmup ----
export type { Engine, EngineFactory, EngineInfo, EngineInstances, EngineLoadOptions, RunOptions } from './engine/engine.js';
export { createOrtEngine, createOrtInstances, EnginePool, type OrtEngineOptions } from './engine/ort-engine.js';
export { InstancePool } from './engine/instance-pool.js';
export { Detector, type DetectorOptions } from './engine/detector.js';

// ---- build: optimized engines (dynamic batch, uint8 input, top-K, FP16, INT8 QDQ with calibration) ----
export { buildEngine, type BuildOptions } from './optimize/build.js';

// ---- val: COCO mAP of an engine ----
export { validateModel, type ValOptions } from './val/runner.js';
export { loadDataset } from './val/dataset.js';

// ---- repository, scheduling and serving ----
export { ModelRepository, type IndexEntry, type LoadRequest, type RepositoryOptions } from './repository/repository.js';
export { ModelVersion, loadModelVersion } from './repository/lifecycle.js';
export { parseModelConfigText, resolveModelConfig, validateModelConfig, type ModelConfig, type ModelConfigFile } from './repository/config.js';
export { DynamicBatcher, type DynamicBatcherOptions, type SubmitOptions, type SubmitResult } from './scheduler/dynamic-batcher.js';
export { InferenceService, type ModelControlMode, type InferRequest, type InferResponse, type DetectRequest, type DetectResponse } from './server/service.js';
export { RoutedInferenceService } from './routing/router.js';
export { startServer, type ServeOptions, type OspreyServer } from './server/server.js';
export { AccessPolicy, bearerRestriction, parseTritonRestriction, readBearerTokens, API_GROUPS, type ApiGroup } from './server/auth.js';

// ---- streams ----
export { startStreamsRuntime, type StreamsRuntime, type StreamsRuntimeOptions } from './streams/runtime.js';
export { parseStreamsConfig, loadStreamsConfig, type StreamsConfig } from './streams/config.js';

// ---- plan: capacity from measurements ----
export { computePlan, formatPlan, type Plan, type PlanRequest } from './bench/planner.js';
