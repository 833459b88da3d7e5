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
  /** Counter seconds: time each engine instance spent executing (label `instance`). */
  instanceBusySeconds: 'osprey_instance_busy_seconds_total',
  /** Gauge 0..1: fraction of time each instance was executing since the previous scrape. */
  instanceUtilization: 'osprey_instance_utilization_ratio',
  /** Gauge: 1 per loaded model version (label `state`). */
  modelState: 'osprey_model_state',

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
