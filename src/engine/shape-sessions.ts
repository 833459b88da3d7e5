/**
 * Default number of shape-specialised ONNX Runtime sessions per engine instance on a device execution provider
 * (see `OrtEngineOptions.maxShapeSessions`): enough for the dynamic batcher's default buckets up to batch 64
 * (1, 2, 4, 8, 16, 32, 64). Kept in its own module so the worker does not import the engine's main-thread code.
 */
export const DEFAULT_MAX_SHAPE_SESSIONS = 8;
