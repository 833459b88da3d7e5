/**
 * Every Prometheus metric name Osprey exports, in one place.
 *
 * Triton's names (`nv_inference_*`, `nv_gpu_*`; `docs/user_guide/metrics.md`) are kept where a metric maps one to one,
 * so dashboards and Model Analyzer that read Triton's metrics read Osprey's; Triton's durations are cumulative
 * microsecond counters (`_us`) and are kept so. Osprey's own metrics (`osprey_*`) use Prometheus base units
 * (`_seconds`, `_bytes`, `_total`, ratios 0..1). Labels: `model`, `version` (as Triton).
 */
export const METRIC = {
  // ---- Triton-compatible, per model and version ----
  /** Counter: requests answered successfully. */
  requestSuccess: 'nv_inference_request_success',
  /** Counter: requests that failed (label `reason` = Osprey error code). */
  requestFailure: 'nv_inference_request_failure',
  /** Counter: batch elements inferred (Triton: inferences, a request of batch n counts n). */
  inferenceCount: 'nv_inference_count',
  /** Counter: model executions (batches). */
  execCount: 'nv_inference_exec_count',
  /** Gauge: requests queued in the scheduler, not yet executing. */
  pendingRequests: 'nv_inference_pending_request_count',
  /** Counter µs: end-to-end request time inside the server. */
  requestDurationUs: 'nv_inference_request_duration_us',
  /** Counter µs: time requests waited in the queue. */
  queueDurationUs: 'nv_inference_queue_duration_us',
  /** Counter µs: batch input assembly. */
  computeInputDurationUs: 'nv_inference_compute_input_duration_us',
  /** Counter µs: model execution. */
  computeInferDurationUs: 'nv_inference_compute_infer_duration_us',
  /** Counter µs: output split/copy. */
  computeOutputDurationUs: 'nv_inference_compute_output_duration_us',

  // ---- Osprey, per model and version, base units ----
  /** Histogram: batch elements per execution. */
  batchSize: 'osprey_batch_size',
  /** Histogram seconds: queue time per request. */
  queueDuration: 'osprey_queue_duration_seconds',
  /** Histogram seconds: end-to-end request time inside the server. */
  requestDuration: 'osprey_request_duration_seconds',
  /** Histogram seconds: compute time per execution, label `phase` = input | infer | output. */
  computeDuration: 'osprey_compute_duration_seconds',
  /** Counter: images received by the detect route. */
  imagesTotal: 'osprey_images_total',
  /** Counter: detections returned by the detect route. */
  detectionsTotal: 'osprey_detections_total',
  /** Counter seconds: time each engine instance spent executing (label `instance`; `gpu` too on a GPU instance). */
  instanceBusySeconds: 'osprey_instance_busy_seconds_total',
  /** Gauge 0..1: fraction of time each instance was executing since the previous scrape. */
  instanceUtilization: 'osprey_instance_utilization_ratio',
  /** Counter seconds: time the instances pinned to each GPU spent executing, summed (label `gpu` = CUDA device ordinal; absent without GPU instances). */
  gpuBusySeconds: 'osprey_gpu_busy_seconds_total',
  /** Counter: batches executed by the instances pinned to each GPU (label `gpu`). */
  gpuExecutions: 'osprey_gpu_executions_total',
  /** Gauge: batches executing now on each GPU (label `gpu`): the queue depth the instance pool spreads by. */
  gpuBusyInstances: 'osprey_gpu_busy_instances',
  /** Gauge: 1 per loaded model version (label `state`). */
  modelState: 'osprey_model_state',
  /**
   * Counter: requests finished, by `outcome` = `success` | `client_error` (the catalogue's 4xx codes: the request
   * was wrong) | `server_error` (5xx: the server failed it). All three series exist from a version's first request
   * (at 0), so an error ratio is 0 rather than absent while nothing fails.
   */
  requestsTotal: 'osprey_requests_total',
  /**
   * Gauge 0/1 per model the repository knows (loaded or not): 1 while the model has a READY version. A model that
   * failed to load shows 0 here (it has no `osprey_model_state` series at all).
   */
  modelReady: 'osprey_model_ready',
  /** Gauge 0/1: the server answers `GET /v2/health/ready` with 200 (0 while loading or draining). */
  serverReady: 'osprey_server_ready',
  /** Gauge: inference and repository requests in flight in the HTTP and gRPC front ends (what a drain waits for). */
  inFlightRequests: 'osprey_inflight_requests',

  // ---- GPU (nvidia-smi; absent without a GPU) ----
  /** Gauge 0..1 (Triton's name). */
  gpuUtilization: 'nv_gpu_utilization',
  gpuMemoryUsedBytes: 'nv_gpu_memory_used_bytes',
  gpuMemoryTotalBytes: 'nv_gpu_memory_total_bytes',
  /** Gauge watts (Triton's name). */
  gpuPowerUsage: 'nv_gpu_power_usage',
  /** Gauge watts (Triton's name). */
  gpuPowerLimit: 'nv_gpu_power_limit',
  /** Gauge °C (not in Triton; DCGM's DCGM_FI_DEV_GPU_TEMP). */
  gpuTemperature: 'osprey_gpu_temperature_celsius',
} as const;

/**
 * Metrics other modules register on the server's registry (src/routing/metrics.ts), named here so rules and
 * dashboards have one list.
 */
export const ROUTING_METRIC = {
  /** Counter: requests routed through an alias (labels alias, arm, role = primary | shadow, outcome = success | failure). */
  routeRequests: 'osprey_route_requests_total',
  /** Histogram seconds: latency of routed requests per arm (labels alias, arm, role; a shadow's own call). */
  routeRequestDuration: 'osprey_route_request_duration_seconds',
  /** Histogram: detections per image answered by each arm (labels alias, arm, role). */
  routeDetectionsPerImage: 'osprey_route_detections_per_image',
  /** Counter: shadow boxes matching a primary box (same class, IoU ≥ threshold; labels alias, arm, primary_arm). */
  shadowMatchedBoxes: 'osprey_route_shadow_matched_boxes_total',
  /** Counter: distinct boxes of primary and shadow, |P| + |S| − matched (labels alias, arm, primary_arm). */
  shadowComparedBoxes: 'osprey_route_shadow_compared_boxes_total',
  /** Gauge 0..1: shadow agreement with the primary since start, matched / compared boxes (labels alias, arm). */
  shadowAgreement: 'osprey_route_shadow_agreement_ratio',
  /** Counter: model version swaps, label `outcome` = switched | failed | confirmed | rolled_back | rollback_failed. */
  modelSwaps: 'osprey_model_swaps_total',
  /** Counter: automatic rollbacks during probation, label `reason` = error_rate | latency. */
  modelRollbacks: 'osprey_model_rollbacks_total',
} as const;

/** The camera pipeline's metrics (registered by src/streams/manager.ts), label `camera` on each. */
export const STREAM_METRIC = {
  /** Counter: frames per camera and stage (`decoded`, `sampled`, `dropped`, `processed`). */
  frames: 'osprey_stream_frames_total',
  /** Gauge: 1 for the camera's current state (label `state`: starting, streaming, starved, stalled, reconnecting, failed, stopped), 0 for the others. */
  state: 'osprey_stream_camera_state',
  /** Counter: state changes (labels `to`, `reason` = the reason code, a closed set). */
  stateChanges: 'osprey_stream_state_changes_total',
  /** Gauge: processed frames per second over the camera's sliding window (0 when none). */
  fps: 'osprey_stream_fps',
  /** Gauge: frames per second from the source (after ffmpeg's fps filter) over the same window. */
  decodedFps: 'osprey_stream_decoded_fps',
  /** Histogram seconds: frame arrival → detections ready. */
  latency: 'osprey_stream_frame_latency_seconds',
  /** Counter: rule events (labels camera, rule). */
  events: 'osprey_stream_events_total',
  /** Gauge: webhook outbox rows (labels sink, status). */
  outbox: 'osprey_stream_webhook_outbox',
  /** Histogram seconds: one event-store operation (label `op`: insert, query, claimOutbox, renewLeases, …). */
  storeLatency: 'osprey_event_store_latency_seconds',
  /** Gauge: camera leases this replica holds. */
  leasesHeld: 'osprey_stream_leases_held',
  /** Counter: cameras this replica took over from a replica whose lease expired (label camera). */
  failovers: 'osprey_stream_failovers_total',
  /** Counter: events not written (labels camera, reason: `lease_lost`, `store_error`). */
  eventWriteFailures: 'osprey_stream_event_write_failures_total',
} as const;

/**
 * Metrics that Osprey does not export itself but that its deployment files derive (prometheus-adapter rules for
 * the Kubernetes HorizontalPodAutoscaler, src/deploy/kubernetes.ts).
 */
export const DERIVED_METRIC = {
  /** Custom pods metric, seconds: mean queue delay over 2 minutes, from `osprey_queue_duration_seconds_sum / _count`. */
  queueDelay: 'osprey_queue_delay_seconds',
} as const;

// ---- Histogram buckets, one definition each ----
/** Request / compute / queue durations, seconds (0.5 ms … 10 s). */
export const LATENCY_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;
/** Batch elements per execution. */
export const BATCH_SIZE_BUCKETS = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128] as const;
/** Detections per image. */
export const DETECTIONS_PER_IMAGE_BUCKETS = [0, 1, 2, 5, 10, 20, 50, 100, 300] as const;
/** Camera frame arrival → detections ready, seconds (10 ms … 5 s: a stream frame waits for a batch). */
export const FRAME_LATENCY_BUCKETS_SECONDS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const;

/**
 * NVIDIA DCGM exporter (dcgm-exporter's default counters) ↔ Osprey's own GPU metrics. On Kubernetes with the GPU
 * Operator, dcgm-exporter is already there: the recording rules in deploy/prometheus read either source into one
 * `gpu:*` series per GPU (joined on the GPU UUID), so panels and alerts work with either or both. Units differ:
 * `scale` turns the DCGM figure into Osprey's unit.
 */
export const DCGM_MAPPING = [
  { dcgm: 'DCGM_FI_DEV_GPU_UTIL', dcgmUnit: 'percent 0..100', osprey: METRIC.gpuUtilization, ospreyUnit: 'ratio 0..1', scale: 0.01 },
  { dcgm: 'DCGM_FI_DEV_FB_USED', dcgmUnit: 'MiB', osprey: METRIC.gpuMemoryUsedBytes, ospreyUnit: 'bytes', scale: 1048576 },
  { dcgm: 'DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE', dcgmUnit: 'MiB', osprey: METRIC.gpuMemoryTotalBytes, ospreyUnit: 'bytes', scale: 1048576 },
  { dcgm: 'DCGM_FI_DEV_GPU_TEMP', dcgmUnit: '°C', osprey: METRIC.gpuTemperature, ospreyUnit: '°C', scale: 1 },
  { dcgm: 'DCGM_FI_DEV_POWER_USAGE', dcgmUnit: 'W', osprey: METRIC.gpuPowerUsage, ospreyUnit: 'W', scale: 1 },
] as const;

/** The label dcgm-exporter puts the GPU UUID in (Osprey's is `gpu_uuid`). */
export const DCGM_UUID_LABEL = 'UUID';
