/**
 * KServe v2 / Triton JSON shapes both front ends answer with (snake_case, as the protocol spells them; they are also
 * the gRPC messages' field names): model metadata and per-model statistics. The protocol-independent service
 * (service.ts) returns them, HTTP sends them as they are, gRPC passes them to protobuf.
 */
export interface TensorMetadataJson {
  name: string;
  datatype: string;
  /** -1 marks a variable dimension. */
  shape: number[];
}

export interface ModelMetadataJson {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMetadataJson[];
  outputs: TensorMetadataJson[];
}

export interface DurationJson {
  count: number;
  ns: number;
}

/** Triton's per-model statistics (`GET /v2/models/{m}/stats` → `model_stats[]`). */
export interface ModelStatisticsJson {
  name: string;
  version: string;
  last_inference: number;
  inference_count: number;
  execution_count: number;
  inference_stats: Record<string, DurationJson>;
  batch_stats: Array<{ batch_size: number; compute_input: DurationJson; compute_infer: DurationJson; compute_output: DurationJson }>;
  /** Osprey's extra block (queue, instances, rejections, routing); not in Triton's message, dropped by gRPC. */
  osprey?: Record<string, unknown>;
}
