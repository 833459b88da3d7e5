/**
 * A real Osprey server started inside this process on 127.0.0.1 (an ephemeral port), for `osprey bench search`
 * and the bench tests: one-model repository from a model file, with a given config, the KServe v2 HTTP app.
 */
import type { ModelConfigFile } from '../repository/config.js';
import { ModelRepository } from '../repository/repository.js';
import { buildHttpApp } from '../server/http.js';
import { InferenceService } from '../server/service.js';

export interface InProcessServer {
  /** e.g. http://127.0.0.1:43121 */
  url: string;
  /** gRPC `host:port` when started with `grpc: true`. */
  grpcUrl?: string;
  /** Model name served. */
  name: string;
  close(): Promise<void>;
}

/**
 * Loads `modelPath` as model `name` with `config` and serves it over HTTP on 127.0.0.1.
 * @throws OspreyError as `ModelRepository.fromModelFile` (the model must load).
 */
export async function startInProcessServer(options: {
  modelPath: string;
  name: string;
  config?: ModelConfigFile;
  executionProviders?: readonly string[];
  /** Also start the KServe v2 gRPC front end on 127.0.0.1 (ephemeral port). Default false. */
  grpc?: boolean;
}): Promise<InProcessServer> {
  const repository = await ModelRepository.fromModelFile(options.modelPath, {
    name: options.name,
    ...(options.config ? { config: options.config } : {}),
    executionProviders: options.executionProviders ?? ['cpu'],
  });
  let app;
  let grpcServer: { port: number; close(graceMs?: number): Promise<void> } | undefined;
  try {
    const service = new InferenceService({ repository });
    app = await buildHttpApp({ service, metricsRoute: false });
    await app.listen({ host: '127.0.0.1', port: 0 });
    if (options.grpc) {
      const { startGrpcServer } = await import('../server/grpc/server.js');
      const { serviceBackend } = await import('../server/grpc/service-adapter.js');
      grpcServer = await startGrpcServer(serviceBackend(service), { host: '127.0.0.1', port: 0 });
    }
  } catch (err) {
    await grpcServer?.close(0).catch(() => undefined);
    await app?.close().catch(() => undefined);
    await repository.close();
    throw err;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const a = app;
  return {
    url: `http://127.0.0.1:${port}`,
    name: options.name,
    ...(grpcServer ? { grpcUrl: `127.0.0.1:${grpcServer.port}` } : {}),
    close: async () => {
      await grpcServer?.close(1000);
      await a.close();
      await repository.close();
    },
  };
}
