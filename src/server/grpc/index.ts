/**
 * gRPC front-end of `osprey serve`: KServe v2 `inference.GRPCInferenceService` + `grpc.health.v1.Health` over the
 * same {@link InferenceService} as HTTP.
 *
 * @example
 *   const grpcServer = await startGrpcForService(service, { port: 8001 });
 *   // ... on SIGTERM: await grpcServer.close();
 */
import type { InferenceService } from '../service.js';
import { startGrpcServer, type GrpcServerOptions, type OspreyGrpcServer } from './server.js';
import { serviceBackend } from './service-adapter.js';

export { startGrpcServer, DEFAULT_GRPC_PORT, DEFAULT_GRPC_MAX_RECEIVE_MESSAGE_BYTES, type GrpcServerOptions, type OspreyGrpcServer } from './server.js';
export { serviceBackend } from './service-adapter.js';
export { loadGrpcDefinitions, protoDir } from './proto.js';

/** Starts the gRPC server over an inference service (a `RoutedInferenceService` adds aliases and swap probation). */
export function startGrpcForService(service: InferenceService, options: GrpcServerOptions = {}): Promise<OspreyGrpcServer> {
  return startGrpcServer(serviceBackend(service), options);
}
