/**
 * `osprey serve --model-repository DIR [--http-port 8000] [--grpc-port 8001] [--metrics-port 8002]`
 * `osprey serve --model PATH` (a one-model repository in memory; model name = file name without extension)
 *
 * A Triton-compatible (KServe v2) inference server with dynamic batching. Flags use Triton's names. Stops
 * gracefully on SIGTERM/SIGINT: readiness goes false, new requests get 503, in-flight requests finish, sessions
 * are released. A second signal exits at once.
 */
import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError } from 'commander';
import { OspreyError } from '../../core/errors.js';
import { parseModelConfigText } from '../../repository/config.js';
import { startServer } from '../../server/server.js';

interface ServeCliOptions {
  modelRepository?: string;
  model?: string;
  config?: string;
  httpPort: number;
  grpcPort: number;
  metricsPort?: number;
  host: string;
  ep?: string[];
  maxBodyBytes?: number;
  logLevel: string;
  cameras?: string;
  camerasModel?: string;
}

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`a port is an integer in 0..65535, got '${v}'`);
  return n;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got '${v}'`);
  return n;
}

function list(v: string): string[] {
  const parts = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0) throw new InvalidArgumentError(`expected a list like cuda,cpu, got '${v}'`);
  return parts;
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('Serve models over KServe v2 / Triton-compatible HTTP and gRPC with dynamic batching, a model repository and Prometheus metrics')
    .option('--model-repository <dir>', "a Triton-layout model repository: <dir>/<model>/config.(json|yaml) + <dir>/<model>/<version>/model.onnx")
    .option('--model <path>', 'serve one .onnx file as a one-model repository (model name = file name without extension)')
    .option('--config <file>', 'with --model: a config.json/config.yaml for it (Triton keys in camelCase)')
    .option('--http-port <port>', 'HTTP port (KServe v2 REST + /metrics)', port, 8000)
    .option('--grpc-port <port>', 'gRPC port (KServe v2 GRPCInferenceService)', port, 8001)
    .option('--metrics-port <port>', "also serve /metrics on this port (Triton's 8002)", port)
    .option('--host <addr>', 'listen address', '0.0.0.0')
    .option('--ep <list>', 'execution providers for KIND_AUTO instance groups, in order (default: cuda,cpu where an NVIDIA GPU is present, else cpu)', list)
    .option('--max-body-bytes <n>', 'request body limit in bytes (413 over it)', positiveInt)
    .option('--log-level <level>', 'pino log level (trace, debug, info, warn, error, silent)', 'info')
    .option('--cameras <file>', 'also run the camera pipelines of this cameras.yaml in this process, batched with API requests (dashboard at /dashboard/; see docs/streams.md)')
    .option('--cameras-model <name>', 'with --cameras: the served model the cameras use (default: the only one)')
    .action(async (opts: ServeCliOptions) => {
      if ((opts.modelRepository === undefined) === (opts.model === undefined)) {
        throw new OspreyError('OSPREY_ERR_USAGE', 'give exactly one of --model-repository DIR or --model PATH');
      }
      if (opts.config !== undefined && opts.model === undefined) throw new OspreyError('OSPREY_ERR_USAGE', '--config goes with --model (a repository has one config per model folder)');
      let modelConfig;
      if (opts.config !== undefined) {
        const text = await readFile(opts.config, 'utf8').catch(() => {
          throw new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `${opts.config}: cannot read the config file`, { path: opts.config });
        });
        modelConfig = parseModelConfigText(text, opts.config);
      }
      const cameras = opts.cameras !== undefined ? (await import('../../streams/attach.js')).camerasExtension({ camerasFile: opts.cameras, ...(opts.camerasModel ? { model: opts.camerasModel } : {}) }) : undefined;
      const server = await startServer({
        ...(cameras ? { extendHttp: (app, ctx) => cameras.extendHttp(app, ctx) } : {}),
        ...(opts.modelRepository !== undefined ? { modelRepository: opts.modelRepository } : {}),
        ...(opts.model !== undefined ? { model: opts.model } : {}),
        ...(modelConfig ? { modelConfig } : {}),
        host: opts.host,
        httpPort: opts.httpPort,
        grpcPort: opts.grpcPort,
        ...(opts.metricsPort !== undefined ? { metricsPort: opts.metricsPort } : {}),
        ...(opts.ep ? { executionProviders: opts.ep } : {}),
        ...(opts.maxBodyBytes !== undefined ? { maxBodyBytes: opts.maxBodyBytes } : {}),
        logLevel: opts.logLevel,
      });
      await new Promise<void>((resolve) => {
        let signals = 0;
        const onSignal = (sig: NodeJS.Signals): void => {
          signals++;
          if (signals > 1) {
            server.logger.warn({ signal: sig }, 'second signal: exiting without draining');
            process.exit(130);
          }
          server.logger.info({ signal: sig }, 'signal received: graceful shutdown');
          server.close().then(
            () => resolve(),
            (err: Error) => {
              server.logger.error({ err }, 'shutdown failed');
              process.exitCode = 1;
              resolve();
            },
          );
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
      });
    });
}
