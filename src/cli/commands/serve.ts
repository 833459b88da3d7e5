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
import { parseGpuList } from '../../gpu/inventory.js';
import { AccessPolicy, AUTH_TOKEN_ENV, bearerRestriction, DEFAULT_RESTRICTED_GROUPS, parseApiGroups, parseTritonRestriction, readBearerTokens, type Restriction } from '../../server/auth.js';
import { MODEL_CONTROL_MODES, type ModelControlMode } from '../../server/service.js';
import { DEFAULT_REPOSITORY_POLL_SECONDS, startServer } from '../../server/server.js';

interface ServeCliOptions {
  modelRepository?: string;
  model?: string;
  config?: string;
  httpPort: number;
  grpcPort: number;
  metricsPort?: number;
  host: string;
  ep?: string[];
  gpus?: number[];
  maxBodyBytes?: number;
  logLevel: string;
  cameras?: string;
  camerasModel?: string;
  modelControlMode: ModelControlMode;
  loadModel: string[];
  repositoryPollSecs?: number;
  allowSymlinkTarget: string[];
  authTokenFile?: string;
  restrictedApi?: string;
  httpRestrictedApi: string[];
  grpcRestrictedProtocol: string[];
  allowUnauthenticatedControl?: boolean;
  maxJsonBytes?: number;
  maxRequestPixels?: number;
  maxDecodePixels?: number;
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  idleTimeoutMs?: number;
  maxConnectionsPerIp?: number;
  drainTimeoutMs?: number;
}

function collect(v: string, previous: string[]): string[] {
  return [...previous, v];
}

function controlMode(v: string): ModelControlMode {
  if (!(MODEL_CONTROL_MODES as readonly string[]).includes(v)) throw new InvalidArgumentError(`one of ${MODEL_CONTROL_MODES.join(', ')}, got '${v}'`);
  return v as ModelControlMode;
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
    .option('--gpus <list>', 'CUDA device ordinals, e.g. 0,1: every non-CPU instance group puts its count instances on EACH of them (replaces instanceGroup[].gpus; a GPU that does not exist fails the load with OSPREY_ERR_GPU_NOT_FOUND)', (v: string) => parseGpuList(v))
    .option('--max-body-bytes <n>', 'request body limit in bytes (413 over it)', positiveInt)
    .option('--log-level <level>', 'pino log level (trace, debug, info, warn, error, silent)', 'info')
    .option('--cameras <file>', 'also run the camera pipelines of this cameras.yaml in this process, batched with API requests (dashboard at /dashboard/; see docs/streams.md)')
    .option('--cameras-model <name>', 'with --cameras: the served model the cameras use (default: the only one)')
    .option('--model-control-mode <mode>', "Triton's model control: none (load all at start, no load/unload API), poll (also re-read the repository), explicit (load/unload API; give credentials)", controlMode, 'none')
    .option('--load-model <name>', 'explicit mode: a model to load at start (repeatable; * = all)', collect, [])
    .option('--repository-poll-secs <n>', `poll mode: seconds between repository scans (default ${DEFAULT_REPOSITORY_POLL_SECONDS})`, positiveInt)
    .option('--allow-symlink-target <dir>', 'let symlinks inside model folders point into this folder (repeatable; default: links must stay inside their model folder)', collect, [])
    .option('--auth-token-file <file>', `bearer tokens (one per line) required on the restricted API groups; or set ${AUTH_TOKEN_ENV}`)
    .option('--restricted-api <groups>', `API groups the bearer tokens protect (default ${DEFAULT_RESTRICTED_GROUPS.join(',')}; groups: health, metadata, inference, model-config, model-repository, statistics, metrics, camera-control)`)
    .option('--http-restricted-api <groups:key=value>', "Triton's form: HTTP requests to these groups need header key=value (repeatable; the value is visible in ps: prefer --auth-token-file)", collect, [])
    .option('--grpc-restricted-protocol <groups:key=value>', "Triton's form for gRPC metadata (repeatable)", collect, [])
    .option('--allow-unauthenticated-control', 'start even though explicit model control is open to the network without credentials')
    .option('--max-json-bytes <n>', 'JSON infer request limit in bytes (413 over it; binary tensors are not limited by it)', positiveInt)
    .option('--max-request-pixels <n>', 'decoded pixels (width × height) the images of one /detect request may total (413 over it)', positiveInt)
    .option('--max-decode-pixels <n>', 'decoded pixels in decode at once over all requests (429 over it)', positiveInt)
    .option('--headers-timeout-ms <ms>', 'request headers must arrive within this', positiveInt)
    .option('--request-timeout-ms <ms>', 'a whole request must arrive within this', positiveInt)
    .option('--idle-timeout-ms <ms>', 'close a connection silent for this long', positiveInt)
    .option('--max-connections-per-ip <n>', 'open connections one client address may hold (429 past it)', positiveInt)
    .option('--drain-timeout-ms <ms>', 'at shutdown, wait at most this long for in-flight requests', positiveInt)
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
      // ---- credentials (never logged: only group and header names are) ----
      const restrictions: Restriction[] = [];
      const grpcRestrictions: Restriction[] = [];
      const tokens = await readBearerTokens({ ...(opts.authTokenFile !== undefined ? { file: opts.authTokenFile } : {}) });
      if (opts.restrictedApi !== undefined && tokens.length === 0) throw new OspreyError('OSPREY_ERR_USAGE', `--restricted-api needs tokens: --auth-token-file FILE or ${AUTH_TOKEN_ENV}`);
      if (tokens.length > 0) {
        const bearer = bearerRestriction(tokens, opts.restrictedApi !== undefined ? parseApiGroups(opts.restrictedApi, '--restricted-api') : DEFAULT_RESTRICTED_GROUPS);
        restrictions.push(bearer);
        grpcRestrictions.push(bearer);
      }
      for (const spec of opts.httpRestrictedApi) restrictions.push(parseTritonRestriction(spec, '--http-restricted-api'));
      for (const spec of opts.grpcRestrictedProtocol) grpcRestrictions.push(parseTritonRestriction(spec, '--grpc-restricted-protocol'));
      const timeouts = {
        ...(opts.headersTimeoutMs !== undefined ? { headersTimeoutMs: opts.headersTimeoutMs } : {}),
        ...(opts.requestTimeoutMs !== undefined ? { requestTimeoutMs: opts.requestTimeoutMs } : {}),
        ...(opts.idleTimeoutMs !== undefined ? { idleTimeoutMs: opts.idleTimeoutMs } : {}),
        ...(opts.maxConnectionsPerIp !== undefined ? { maxConnectionsPerIp: opts.maxConnectionsPerIp } : {}),
      };
      const cameras = opts.cameras !== undefined ? (await import('../../streams/attach.js')).camerasExtension({ camerasFile: opts.cameras, host: opts.host, ...(opts.camerasModel ? { model: opts.camerasModel } : {}) }) : undefined;
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
        ...(opts.gpus ? { gpuIds: opts.gpus } : {}),
        ...(opts.maxBodyBytes !== undefined ? { maxBodyBytes: opts.maxBodyBytes } : {}),
        logLevel: opts.logLevel,
        modelControlMode: opts.modelControlMode,
        loadModels: opts.loadModel,
        ...(opts.repositoryPollSecs !== undefined ? { repositoryPollSeconds: opts.repositoryPollSecs } : {}),
        allowedSymlinkTargets: opts.allowSymlinkTarget,
        accessPolicy: new AccessPolicy(restrictions),
        grpcAccessPolicy: new AccessPolicy(grpcRestrictions),
        ...(opts.allowUnauthenticatedControl ? { allowUnauthenticatedControl: true } : {}),
        ...(opts.maxJsonBytes !== undefined ? { maxJsonBytes: opts.maxJsonBytes } : {}),
        ...(opts.maxRequestPixels !== undefined ? { maxRequestPixels: opts.maxRequestPixels } : {}),
        ...(opts.maxDecodePixels !== undefined ? { maxDecodePixels: opts.maxDecodePixels } : {}),
        ...(Object.keys(timeouts).length > 0 ? { httpTimeouts: timeouts } : {}),
        ...(opts.drainTimeoutMs !== undefined ? { drainTimeoutMs: opts.drainTimeoutMs } : {}),
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
