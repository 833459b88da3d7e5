/**
 * Adapts the protocol-independent {@link InferenceService} (src/server/service.ts, shared with HTTP) to the port the
 * gRPC front-end speaks ({@link KserveBackend}). With a {@link RoutedInferenceService} the gRPC requests get the
 * same aliases, shadows and swap probation as HTTP.
 */
import { OspreyError } from '../../core/errors.js';
import type { Tensor } from '../../core/types.js';
import { fromKserveDatatype } from '../../repository/datatypes.js';
import type { InferenceService } from '../service.js';
import type { InferResult, KserveBackend } from './backend.js';
import type { DecodedInferRequest, ParameterValue } from './codec.js';

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
    modelMetadata: (name, version) => service.modelMetadata(name, version || undefined),
    modelConfig: (name, version) => service.modelConfig(name, version || undefined),
    modelStatistics: (name, version) => service.stats(name || undefined, version || undefined).model_stats,
    repositoryIndex: (readyOnly) => service.repositoryIndex(readyOnly),
    loadModel: (name, options) => service.loadModel(name, { ...(options.config !== undefined ? { config: options.config } : {}), ...(options.files ? { files: options.files } : {}) }),
    unloadModel: (name) => service.unloadModel(name),
    async infer(request: DecodedInferRequest): Promise<InferResult> {
      // Passed as sent: the service validates schedule parameters, once, for every protocol.
      const priority = request.parameters.priority as number | undefined;
      const timeout = request.parameters.timeout as number | undefined;
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
