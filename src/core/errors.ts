/**
 * Osprey's one error catalogue.
 *
 * Every failure Osprey reports on purpose is an {@link OspreyError} with a stable `code` from
 * {@link ERROR_CATALOGUE}. The catalogue maps each code once to an HTTP status (Triton/KServe v2 mapping),
 * a gRPC status code (numeric, as in `@grpc/grpc-js`'s `status` enum) and a one-line "how to solve".
 * `docs/errors.md` is generated from this table and a test keeps the two in sync
 * (`npm run docs:errors` rewrites it).
 *
 * Pure TS: no imports from node, ORT, sharp or fastify.
 */

/** gRPC status codes (numeric values of the public gRPC spec, same as `@grpc/grpc-js` `status`). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export interface ErrorSpec {
  /** What went wrong, in one line. */
  readonly meaning: string;
  /** HTTP status the server answers with. */
  readonly http: number;
  /** gRPC status code (numeric). */
  readonly grpc: number;
  /** How a user fixes it. */
  readonly solve: string;
}

const G = GrpcStatus;

/**
 * The catalogue. Add a code here (and regenerate docs/errors.md) before throwing it.
 * Codes are grouped by area; keep them sorted within a group.
 */
export const ERROR_CATALOGUE = {
  // ---- usage / generic ----
  OSPREY_ERR_USAGE: { meaning: 'Invalid command-line usage or option value', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'Run the command with --help and correct the option named in the message' },
  OSPREY_ERR_INVALID_ARGUMENT: { meaning: 'An argument or parameter has an invalid value', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'Correct the value named in the message' },
  OSPREY_ERR_INTERNAL: { meaning: 'An unexpected internal error', http: 500, grpc: G.INTERNAL, solve: 'Report it with the message and the log' },
  OSPREY_ERR_NO_ROUTE: { meaning: 'No route for this method and path', http: 404, grpc: G.UNIMPLEMENTED, solve: 'Check the URL; GET /v2 lists the extensions this server implements' },
  OSPREY_ERR_NOT_IMPLEMENTED: { meaning: 'The feature is not available in this build or on this platform', http: 501, grpc: G.UNIMPLEMENTED, solve: 'Use one of the alternatives named in the message' },

  // ---- images / input files ----
  OSPREY_ERR_FILE_NOT_FOUND: { meaning: 'A file or directory does not exist or cannot be read', http: 404, grpc: G.NOT_FOUND, solve: 'Check the path and its permissions' },
  OSPREY_ERR_NO_IMAGES: { meaning: 'A directory holds no image file Osprey can read', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'Point at a directory with .jpg/.jpeg/.png/.webp/.tif/.tiff/.bmp files' },
  OSPREY_ERR_EMPTY_IMAGE: { meaning: 'The image file or body is empty (0 bytes)', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'Send a non-empty JPEG/PNG/WebP/TIFF image' },
  OSPREY_ERR_INVALID_IMAGE: { meaning: 'The bytes are not a decodable image (unknown format, truncated or corrupt)', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'Send a valid JPEG/PNG/WebP/TIFF image' },
  OSPREY_ERR_IMAGE_TOO_LARGE: { meaning: 'The image header declares dimensions over the configured pixel limit; refused before decoding', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'Resize the image or raise the pixel limit (--max-pixels)' },

  // ---- models / engines ----
  OSPREY_ERR_MODEL_NOT_FOUND_FILE: { meaning: 'The model file does not exist or cannot be read', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'Check the --model path' },
  OSPREY_ERR_INVALID_MODEL: { meaning: 'The file is not a valid ONNX model', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'Export the model to ONNX again (e.g. `yolo export format=onnx`)' },
  OSPREY_ERR_UNSUPPORTED_LAYOUT: { meaning: 'The model output layout is none of [B,4+nc,N], [B,N,5+nc], [B,K,6]', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'Use a YOLOv5/v8/v11 detection export or an end-to-end [B,K,6] model' },
  OSPREY_ERR_UNSUPPORTED_MODEL: { meaning: 'The model uses a feature Osprey does not support (e.g. external data, an input shape it cannot feed)', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'See the message for the feature and the alternative' },
  OSPREY_ERR_EP_UNAVAILABLE: { meaning: 'None of the requested execution providers could be loaded', http: 503, grpc: G.UNAVAILABLE, solve: 'Run `osprey doctor` to see why each provider failed; add `cpu` to --ep as a fallback' },
  OSPREY_ERR_ENGINE_CLOSED: { meaning: 'The engine was closed or its worker died', http: 503, grpc: G.UNAVAILABLE, solve: 'Reload the model; check the log for the worker error' },
  OSPREY_ERR_INFERENCE_FAILED: { meaning: 'ONNX Runtime failed while running the model', http: 500, grpc: G.INTERNAL, solve: 'Check the message; the input shape or the model may be wrong' },
  OSPREY_ERR_LABELS: { meaning: 'The labels file cannot be read or does not match the model', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'One class name per line, as many lines as the model has classes' },

  // ---- build / onnx / calibration ----
  OSPREY_ERR_ONNX_PARSE: { meaning: 'The ONNX protobuf could not be parsed', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'Check that the file is a complete ONNX model' },
  OSPREY_ERR_EXTERNAL_DATA: { meaning: 'The model stores tensors in external data files, which this operation does not support', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'Save the model with all tensors inside the .onnx file' },
  OSPREY_ERR_PASS_FAILED: { meaning: 'A graph pass cannot be applied safely to this model', http: 400, grpc: G.FAILED_PRECONDITION, solve: 'See the message for the node that blocks the pass' },
  OSPREY_ERR_CALIBRATION_DATA: { meaning: 'The calibration folder has no decodable images', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'Point --calibration-data at a folder of real images' },
  OSPREY_ERR_CALIBRATION_CACHE: { meaning: 'The calibration cache is invalid or was made for another model (hash mismatch)', http: 400, grpc: G.FAILED_PRECONDITION, solve: 'Delete the cache or calibrate again with --calibration-data' },
  OSPREY_ERR_BROKEN_MODEL: { meaning: 'The model runs but its outputs are degenerate (e.g. constant or zero class scores)', http: 400, grpc: G.FAILED_PRECONDITION, solve: 'Rebuild the engine (e.g. exclude the detection head from quantization)' },

  // ---- val ----
  OSPREY_ERR_DATASET: { meaning: 'The dataset is invalid, empty or unreadable', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'See the message for the file and the counts' },
  OSPREY_ERR_CLASS_MAPPING: { meaning: 'Model class names do not match the dataset categories', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'Use a dataset whose category names match the model names' },
  OSPREY_ERR_GATE_FAILED: { meaning: 'An engine lost more accuracy than the gate allows', http: 422, grpc: G.FAILED_PRECONDITION, solve: 'Rebuild with another precision, calibration method or exclusions' },

  // ---- serving / protocol ----
  OSPREY_ERR_MALFORMED_REQUEST: { meaning: 'The request body is malformed (JSON, protobuf or binary framing)', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'Follow the KServe v2 request format' },
  OSPREY_ERR_INVALID_TENSOR: { meaning: 'A tensor has the wrong name, shape, datatype or data size', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'Read the model metadata (GET /v2/models/{name}) for the expected inputs' },
  OSPREY_ERR_PAYLOAD_TOO_LARGE: { meaning: 'The request body is over the configured limit', http: 413, grpc: G.RESOURCE_EXHAUSTED, solve: 'Send smaller requests or raise --max-body-bytes' },
  OSPREY_ERR_MODEL_NOT_FOUND: { meaning: 'Unknown model or version', http: 404, grpc: G.NOT_FOUND, solve: 'List models with POST /v2/repository/index' },
  OSPREY_ERR_MODEL_NOT_READY: { meaning: 'The model exists but is not ready (loading, unloading or failed)', http: 503, grpc: G.UNAVAILABLE, solve: 'Wait for it to load, or check its state in the repository index' },
  OSPREY_ERR_QUEUE_FULL: { meaning: 'The model queue is full (queue policy maxQueueSize)', http: 429, grpc: G.RESOURCE_EXHAUSTED, solve: 'Retry later, add instances or raise maxQueueSize' },
  OSPREY_ERR_TIMEOUT: { meaning: 'The request timed out in the queue (queue policy timeout)', http: 504, grpc: G.DEADLINE_EXCEEDED, solve: 'Raise the timeout or add capacity' },
  OSPREY_ERR_SHUTTING_DOWN: { meaning: 'The server is shutting down', http: 503, grpc: G.UNAVAILABLE, solve: 'Retry on another replica' },
  OSPREY_ERR_CONFIG: { meaning: 'A configuration file is invalid (the message names the key path)', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'Correct the key named in the message' },
  OSPREY_ERR_HASH_MISMATCH: { meaning: 'A file does not match the sha256 recorded in its manifest', http: 400, grpc: G.FAILED_PRECONDITION, solve: 'Rebuild the engine or restore the original file' },
  OSPREY_ERR_LOAD_FAILED: { meaning: 'A model version failed to load', http: 400, grpc: G.FAILED_PRECONDITION, solve: 'See the message; the previous version keeps serving' },
  OSPREY_ERR_PATH_NOT_ALLOWED: { meaning: 'A path in a model config or load request leaves the model folder (absolute, `..`, a symbolic link outside it) or is not a regular file', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'Give a path relative to the model folder; an operator can allow a symlink target folder with --allow-symlink-target' },
  OSPREY_ERR_MODEL_CONTROL_DISABLED: { meaning: 'Model load/unload requests are not accepted in this model control mode', http: 400, grpc: G.FAILED_PRECONDITION, solve: 'Start the server with --model-control-mode explicit (and credentials) to load and unload models over the API' },
  OSPREY_ERR_UNAUTHENTICATED: { meaning: 'The route needs credentials and the request had none or wrong ones', http: 401, grpc: G.UNAUTHENTICATED, solve: 'Send `Authorization: Bearer <token>` (gRPC: metadata `authorization`) with a token the server was given' },
  OSPREY_ERR_JSON_TOO_DEEP: { meaning: 'The JSON body nests deeper than the server allows', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'Send tensor data as a flat list (or with the binary tensor extension)' },
  OSPREY_ERR_MALFORMED_MULTIPART: { meaning: 'The multipart body is truncated or malformed', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'Send a complete multipart/form-data body with its closing boundary' },
  OSPREY_ERR_IMAGE_BUDGET: { meaning: 'The images of one request decode to more pixels than the per-request budget', http: 413, grpc: G.RESOURCE_EXHAUSTED, solve: 'Send fewer or smaller images per request, or raise --max-request-pixels' },
  OSPREY_ERR_DECODE_BUSY: { meaning: 'The server is already decoding as many pixels as its process budget allows', http: 429, grpc: G.RESOURCE_EXHAUSTED, solve: 'Retry after a short delay, or raise --max-decode-pixels' },
  OSPREY_ERR_OPCUA: { meaning: 'The OPC UA server could not start (certificate store not writable, node-opcua failed)', http: 500, grpc: G.INTERNAL, solve: 'Check opcua.certificateDir is writable and the message; see docs/scada.md' },
  OSPREY_ERR_ADDRESS_IN_USE: { meaning: 'A listener could not bind its address (port in use or not permitted)', http: 500, grpc: G.INTERNAL, solve: 'Choose another port or stop the process that holds it' },
  OSPREY_ERR_TOO_MANY_CONNECTIONS: { meaning: 'A client address holds more connections than the server allows', http: 429, grpc: G.RESOURCE_EXHAUSTED, solve: 'Reuse connections (keep-alive) or raise --max-connections-per-ip' },

  // ---- streams ----
  OSPREY_ERR_CAMERA: { meaning: 'A camera source failed (refused, unreachable, unauthorized, not found, no frames, not a video); live sources keep retrying', http: 502, grpc: G.UNAVAILABLE, solve: 'Read the camera\'s reasonCode and reason (GET /api/cameras, the dashboard); fix the URL, credentials or network' },
  OSPREY_ERR_CAMERA_NOT_FOUND: { meaning: 'Unknown camera id', http: 404, grpc: G.NOT_FOUND, solve: 'List cameras with GET /api/cameras' },
  OSPREY_ERR_EVENT_STORE: { meaning: 'The event store (SQLite file or PostgreSQL server) cannot be opened, migrated or written', http: 503, grpc: G.UNAVAILABLE, solve: 'Check events.database / store.url (the message names the store without its password) and that PostgreSQL is up and reachable' },
  OSPREY_ERR_LEASE_LOST: { meaning: 'A replica wrote for a camera whose lease it no longer holds (fenced out: another replica took the camera)', http: 409, grpc: G.ABORTED, solve: 'Nothing to do: the camera runs on its new holder; check why this replica missed its renewals (GET /api/streams/leases)' },
  OSPREY_ERR_ZONE: { meaning: 'A zone or line is invalid (e.g. outside the frame)', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'Use coordinates inside the frame, at least 3 polygon points' },

  // ---- bench / plan ----
  OSPREY_ERR_UNREACHABLE: { meaning: 'A server could not be reached', http: 502, grpc: G.UNAVAILABLE, solve: 'Check the --url and that the server is running' },
  OSPREY_ERR_BENCH_FILE: { meaning: 'A bench result file is invalid or was made for another model', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'Run `osprey bench engine` for this model and pass its JSON' },
  OSPREY_ERR_PLAN_INFEASIBLE: { meaning: 'No measured configuration meets the latency target', http: 422, grpc: G.FAILED_PRECONDITION, solve: 'Relax the SLO or measure more configurations (the message says which)' },

  // ---- gpu ----
  OSPREY_ERR_GPU_INSTALL: { meaning: 'Installing the GPU execution-provider libraries failed', http: 500, grpc: G.INTERNAL, solve: 'See the message for the library and the reason' },
  OSPREY_ERR_CUDA_LIBRARY: { meaning: 'A CUDA library Osprey\'s GPU engine needs (libcuda, NVRTC, cuDNN) was not found or could not be loaded', http: 503, grpc: G.UNAVAILABLE, solve: 'Run `osprey doctor`: it lists what was found where, and the fix for each missing library' },
  OSPREY_ERR_CUDA: { meaning: 'A CUDA driver, NVRTC or cuDNN call failed', http: 500, grpc: G.INTERNAL, solve: 'The message names the call and its status (e.g. CUDA_ERROR_OUT_OF_MEMORY); check the GPU with nvidia-smi' },
  OSPREY_ERR_GPU_COMPILE: { meaning: 'The GPU engine builder cannot lower, fuse or plan the model', http: 400, grpc: G.INVALID_ARGUMENT, solve: 'The message names the node and the unsupported feature; use the ONNX Runtime engine (--ep cuda) for this model' },
  OSPREY_ERR_GPU_NOT_FOUND: { meaning: 'A GPU the model config (`instanceGroup[].gpus`), `--gpus` or the GPU engine needs does not exist on this machine, or no NVIDIA GPU/driver is present', http: 400, grpc: G.FAILED_PRECONDITION, solve: 'Run `osprey doctor` to list the GPUs found (CUDA device ordinals); use one of their ids, or a KIND_CPU instance group on a machine without a GPU' },
  OSPREY_ERR_ENGINE_INCOMPATIBLE: { meaning: 'A GPU engine file was built for another GPU architecture, driver or library version, or is damaged', http: 400, grpc: G.FAILED_PRECONDITION, solve: 'Rebuild the engine on this machine: osprey build --engine cuda' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/**
 * Base class of every error Osprey raises on purpose.
 *
 * @example
 *   throw new OspreyError('OSPREY_ERR_INVALID_IMAGE', `${path}: not a decodable image (truncated JPEG)`, { path });
 */
export class OspreyError extends Error {
  readonly code: ErrorCode;
  /** Extra machine-readable facts (file path, key path, shape found...). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OspreyError';
    this.code = code;
    this.details = details;
  }

  /** HTTP status from the catalogue. */
  get httpStatus(): number {
    return ERROR_CATALOGUE[this.code].http;
  }

  /** gRPC status code (numeric) from the catalogue. */
  get grpcStatus(): number {
    return ERROR_CATALOGUE[this.code].grpc;
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** True when `err` is an {@link OspreyError} (optionally with the given code). */
export function isOspreyError(err: unknown, code?: ErrorCode): err is OspreyError {
  return err instanceof OspreyError && (code === undefined || err.code === code);
}

/** Wraps any thrown value as an OspreyError (keeps OspreyErrors as they are). */
export function toOspreyError(err: unknown, fallback: ErrorCode = 'OSPREY_ERR_INTERNAL'): OspreyError {
  if (err instanceof OspreyError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new OspreyError(fallback, message, {}, { cause: err });
}

/** The markdown table written to docs/errors.md (code | meaning | HTTP | gRPC | how to solve). */
export function renderErrorTable(): string {
  const grpcName = new Map<number, string>(Object.entries(GrpcStatus).map(([k, v]) => [v, k]));
  const lines = [
    '# Osprey error codes',
    '',
    'Generated from `src/core/errors.ts` (`npm run docs:errors`); a test keeps this file in sync.',
    '',
    '| code | meaning | HTTP | gRPC | how to solve |',
    '|---|---|---|---|---|',
  ];
  for (const [code, spec] of Object.entries(ERROR_CATALOGUE) as [ErrorCode, ErrorSpec][]) {
    lines.push(`| \`${code}\` | ${spec.meaning} | ${spec.http} | ${grpcName.get(spec.grpc)} (${spec.grpc}) | ${spec.solve} |`);
  }
  return lines.join('\n') + '\n';
}
