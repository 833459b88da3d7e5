/**
 * What the gRPC front-end needs from the inference service: the KServe v2 / Triton operations, with answers in
 * Triton's JSON shapes (snake_case, the same shapes the HTTP API answers — they are also the protobuf messages'
 * field names, so the gRPC layer passes them through). The HTTP server's protocol-independent service is adapted
 * to this port in `service-adapter.ts`; the routing layer (`src/routing/`) wraps one port in another.
 *
 * Every method may throw an {@link OspreyError}; its code picks the gRPC status (`OspreyError.grpcStatus`).
 */
import type { Tensor } from '../../core/types.js';
import type { DurationJson, ModelMetadataJson, ModelStatisticsJson, TensorMetadataJson } from '../kserve-types.js';
import type { DecodedInferRequest, ParameterValue } from './codec.js';

export type { DurationJson, ModelMetadataJson, ModelStatisticsJson, TensorMetadataJson };

export interface ServerMetadataJson {
  name: string;
  version: string;
  extensions: string[];
}

export interface RepositoryIndexEntry {
  name: string;
  version?: string;
  /** `UNAVAILABLE` | `LOADING` | `READY` | `UNLOADING`. */
  state?: string;
  reason?: string;
}

/** An answered inference. */
export interface InferResult {
  modelName: string;
  modelVersion: string;
  id: string;
  parameters?: Record<string, ParameterValue>;
  /** Output name → tensor, in the order returned to the client. */
  outputs: Array<[string, Tensor]>;
}

/** Model bytes and config pushed with a load (Triton's `config` and `file:<version>/<name>` parameters). */
export interface LoadRequestOptions {
  /** JSON text of a config override. */
  config?: string;
  /** `"<version>/<name>"` → bytes. */
  files?: Record<string, Uint8Array>;
}

type MaybePromise<T> = T | Promise<T>;

export interface KserveBackend {
  isLive(): MaybePromise<boolean>;
  isReady(): MaybePromise<boolean>;
  serverMetadata(): MaybePromise<ServerMetadataJson>;
  /** @param version "" = the policy's choice. False for unknown models (never throws for them). */
  modelReady(name: string, version: string): MaybePromise<boolean>;
  /** @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND`. */
  modelMetadata(name: string, version: string): MaybePromise<ModelMetadataJson>;
  /** Triton's config JSON (`toTritonConfigJson`). @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND`. */
  modelConfig(name: string, version: string): MaybePromise<Record<string, unknown>>;
  /** @param name "" = every model. @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND`. */
  modelStatistics(name: string, version: string): MaybePromise<ModelStatisticsJson[]>;
  repositoryIndex(readyOnly: boolean): MaybePromise<RepositoryIndexEntry[]>;
  /** @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND`, `OSPREY_ERR_LOAD_FAILED`, `OSPREY_ERR_CONFIG`. */
  loadModel(name: string, options: LoadRequestOptions): Promise<void>;
  /** @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND`. */
  unloadModel(name: string, options: { unloadDependents: boolean }): Promise<void>;
  /**
   * Runs one request. The input tensors' buffers belong to the backend afterwards (the engine may transfer them).
   * @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND`, `OSPREY_ERR_MODEL_NOT_READY`, `OSPREY_ERR_INVALID_TENSOR`,
   *   `OSPREY_ERR_QUEUE_FULL`, `OSPREY_ERR_TIMEOUT`, `OSPREY_ERR_INFERENCE_FAILED`...
   */
  infer(request: DecodedInferRequest): Promise<InferResult>;
}
