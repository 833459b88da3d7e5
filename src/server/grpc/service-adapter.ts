/**
 * Adapts the protocol-independent {@link InferenceService} (src/server/service.ts, shared with HTTP) to the port the
 * gRPC front-end speaks ({@link KserveBackend}). With a {@link RoutedInferenceService} the gRPC requests get the
 * same aliases, shadows and swap probation as HTTP.
 */
import { OspreyError } from '../../core/errors.js';
import type { Tensor } from '../../core/types.js';
import { fromKserveDatatype } from '../../repository/datatypes.js';
import type { InferenceService } from '../service.js';
import type { InferResult, KserveBackend, ModelMetadataJson, ModelStatisticsJson } from './backend.js';
import type { DecodedInferRequest, ParameterValue } from './codec.js';

function intParameter(params: Record<string, ParameterValue>, key: string): number | undefined {
  const v = params[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `parameter '${key}' must be a non-negative integer (int64_param), got ${JSON.stringify(v)}`);
  }
  return v;
}

/** The gRPC port over an inference service. */
export function serviceBackend(service: InferenceService): KserveBackend {
  return {
    isLive: () => service.isLive(),
    isReady: () => service.isReady(),
    serverMetadata: () => service.serverMetadata(),
    modelReady(name, version) {
      try {
        return service.modelReady(name, version || undefined);
      } catch (err) {
        // Triton answers ready=false for a model it does not know.
        if (err instanceof OspreyError && err.code === 'OSPREY_ERR_MODEL_NOT_FOUND') return false;
        throw err;
      }
    },
    modelMetadata: (name, version) => service.modelMetadata(name, version || undefined) as unknown as ModelMetadataJson,
    modelConfig: (name, version) => service.modelConfig(name, version || undefined),
    modelStatistics: (name, version) => service.stats(name || undefined, version || undefined).model_stats as unknown as ModelStatisticsJson[],
    repositoryIndex: (readyOnly) => service.repositoryIndex(readyOnly),
    loadModel: (name, options) => service.loadModel(name, { ...(options.config !== undefined ? { config: options.config } : {}), ...(options.files ? { files: options.files } : {}) }),
    unloadModel: (name) => service.unloadModel(name),
    async infer(request: DecodedInferRequest): Promise<InferResult> {
      const priority = intParameter(request.parameters, 'priority');
      const timeout = intParameter(request.parameters, 'timeout');
      const res = await service.infer(request.modelName, request.modelVersion || undefined, {
        ...(request.id ? { id: request.id } : {}),
        inputs: request.inputs.map((i) => ({ name: i.name, datatype: i.datatype, shape: i.shape, data: i.tensor.data, type: i.tensor.type })),
        ...(request.outputs.length > 0 ? { outputs: request.outputs.map((name) => ({ name })) } : {}),
        ...(priority !== undefined ? { priority } : {}),
        ...(timeout !== undefined ? { timeoutMicroseconds: timeout } : {}),
        parameters: request.parameters,
      });
      const params = res.parameters;
      return {
        modelName: res.modelName,
        modelVersion: res.modelVersion,
        id: res.id ?? request.id,
        ...(params ? { parameters: params } : {}),
        outputs: res.outputs.map((o): [string, Tensor] => [o.name, { type: fromKserveDatatype(o.datatype)!, dims: o.shape, data: o.data }]),
      };
    },
  };
}
