/**
 * `osprey streams --config cameras.yaml [--model PATH] [--port 8080]`
 *
 * Runs the camera pipelines of a cameras.yaml (ffmpeg sources → dynamic batcher → tracker → rules → SQLite events,
 * webhooks) with the streams API, the dashboard (`/dashboard/`) and `/metrics` on one HTTP port. The same pipelines
 * run inside `osprey serve --cameras cameras.yaml`. Stops gracefully on SIGTERM/SIGINT.
 * `--check` validates the config (URLs included: a URL-looking string such as `rtsp//host/x` is refused with a
 * suggestion instead of being read as a file path; file sources must exist) and the model, and exits.
 * The HTTP port also answers `GET /health` (liveness) and `GET /ready` (readiness) for Kubernetes probes.
 */
import { Command, InvalidArgumentError } from 'commander';
import { pino } from 'pino';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { OspreyError } from '../../core/errors.js';
import { redactUrl } from '../../core/redact.js';
import { parseGpuList } from '../../gpu/inventory.js';
import { isFileSource, loadStreamsConfig, parseStore, type StreamsConfig } from '../../streams/config.js';
import { startStreamsRuntime } from '../../streams/runtime.js';
import { AccessPolicy, AUTH_TOKEN_ENV, bearerRestriction, parseApiGroups, readBearerTokens } from '../../server/auth.js';

interface StreamsCliOptions {
  config: string;
  model?: string;
  host: string;
  port: number;
  ep?: string[];
  instances?: number;
  gpus?: number[];
  threads?: number;
  maxQueueDelayUs?: number;
  check?: boolean;
  logLevel: string;
  authTokenFile?: string;
  restrictedApi?: string;
  store?: string;
  replicaId?: string;
}

const port = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`a port is an integer in 0..65535, got '${v}'`);
  return n;
};
const positiveInt = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got '${v}'`);
  return n;
};
const nonNegativeInt = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a non-negative integer, got '${v}'`);
  return n;
};

export function register(program: Command): void {
  program
    .command('streams')
    .description('Run multi-camera pipelines (RTSP/HTTP/files via ffmpeg) through one dynamic batcher, with tracking, zone/line rules, events in SQLite or PostgreSQL, webhooks and a live dashboard')
    .requiredOption('--config <file>', 'cameras.yaml (see docs/streams.md)')
    .option('--model <path>', 'detection model (.onnx); overrides `model:` in the config')
    .option('--host <addr>', 'listen address', '127.0.0.1')
    .option('--port <port>', 'HTTP port: API, dashboard (/dashboard/), /metrics', port, 8080)
    .option('--ep <list>', 'execution providers in order (default: cuda,cpu where an NVIDIA GPU is present, else cpu)', (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .option('--instances <n>', 'engine instances (worker threads); with --gpus, on each GPU', positiveInt)
    .option('--gpus <list>', 'CUDA device ordinals, e.g. 0,1: --instances instances on EACH GPU, batches spread across them by queue depth (a GPU that does not exist: OSPREY_ERR_GPU_NOT_FOUND)', (v: string) => parseGpuList(v))
    .option('--threads <n>', 'ONNX Runtime intra-op threads per instance', positiveInt)
    .option('--max-queue-delay-us <n>', 'dynamic batching max queue delay in microseconds (default 2000)', nonNegativeInt)
    .option('--check', 'validate the config (camera URLs, file sources exist) and load the model, then exit')
    .option('--log-level <level>', 'pino log level', 'info')
    .option('--auth-token-file <file>', `bearer tokens (one per line) required on the routes that change cameras and rules; or set ${AUTH_TOKEN_ENV}`)
    .option('--restricted-api <groups>', 'API groups the tokens protect (default camera-control; e.g. camera-control,metadata,metrics)')
    .option('--store <url>', 'event store: postgres://user:password@host:port/db (shared by replicas) or sqlite (events.database); overrides `store:` in the config')
    .option('--replica-id <id>', 'this replica\'s id (outbox claims; with a PostgreSQL store, cameras are shared with the other replicas by leases)')
    .action(async (opts: StreamsCliOptions) => {
      const loaded = loadStreamsConfig(opts.config);
      const config: StreamsConfig = opts.store !== undefined ? { ...loaded, store: parseStore(opts.store, '--store') } : loaded;
      if (opts.replicaId !== undefined && !/^[A-Za-z0-9_.:-]{1,64}$/.test(opts.replicaId)) throw new OspreyError('OSPREY_ERR_USAGE', `--replica-id: expected 1–64 letters, digits, '_', '-', '.', ':', got ${JSON.stringify(opts.replicaId)}`);
      const log = pino({ level: opts.logLevel, base: { service: 'osprey-streams' } }, pino.destination(2));
      const model = {
        ...(opts.model ? { modelPath: opts.model } : {}),
        ...(opts.ep ? { executionProviders: opts.ep } : {}),
        ...(opts.instances ? { instances: opts.instances } : {}),
        ...(opts.gpus ? { gpuIds: opts.gpus } : {}),
        ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
        ...(opts.maxQueueDelayUs !== undefined ? { maxQueueDelayMicroseconds: opts.maxQueueDelayUs } : {}),
      };
      if (opts.check) {
        checkFileSources(opts.config, config);
        const { loadStreamsModel } = await import('../../streams/model.js');
        const modelPath = opts.model ?? config.model;
        let summary = 'no model';
        if (modelPath) {
          const m = await loadStreamsModel({ ...model, modelPath });
          summary = `${modelPath}: ${m.spec.inputWidth}×${m.spec.inputHeight} ${m.spec.inputFormat}, ${m.spec.names.length} classes, batch ${m.spec.batchSize ?? 'dynamic'}, ${m.engine.info.executionProvider}`;
          await m.close();
        }
        process.stdout.write(`${opts.config}: ${config.cameras.length} cameras OK (${config.cameras.map((c) => c.id).join(', ')}); model ${summary}\n`);
        return;
      }
      const tokens = await readBearerTokens({ ...(opts.authTokenFile !== undefined ? { file: opts.authTokenFile } : {}) });
      if (opts.restrictedApi !== undefined && tokens.length === 0) throw new OspreyError('OSPREY_ERR_USAGE', `--restricted-api needs tokens: --auth-token-file FILE or ${AUTH_TOKEN_ENV}`);
      const accessPolicy = new AccessPolicy(tokens.length > 0 ? [bearerRestriction(tokens, opts.restrictedApi !== undefined ? parseApiGroups(opts.restrictedApi, '--restricted-api') : ['camera-control'])] : []);
      const rt = await startStreamsRuntime({ config, model, host: opts.host, port: opts.port, log, accessPolicy, ...(opts.replicaId ? { replicaId: opts.replicaId } : {}) });
      log.info({ url: rt.url, dashboard: `${rt.url}/dashboard/`, cameras: config.cameras.map((c) => c.id) }, 'osprey streams is running');
      await new Promise<void>((resolve) => {
        let signals = 0;
        const onSignal = (sig: NodeJS.Signals): void => {
          if (++signals > 1) process.exit(130);
          log.info({ signal: sig }, 'stopping cameras');
          rt.close().then(resolve, (err: Error) => {
            log.error({ err }, 'shutdown failed');
            process.exitCode = 1;
            resolve();
          });
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
      });
    });
}

/**
 * `--check`: every file source must be a readable file (at run time a missing file makes its camera `failed`).
 * @throws OspreyError `OSPREY_ERR_FILE_NOT_FOUND` naming the camera's key path.
 */
function checkFileSources(file: string, config: StreamsConfig): void {
  config.cameras.forEach((c, i) => {
    if (!isFileSource(c.url)) return;
    let path = c.url;
    try {
      if (/^file:/i.test(c.url)) path = fileURLToPath(c.url);
      if (!statSync(path).isFile()) throw new Error('not a regular file');
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
      throw new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `${file}: cameras[${i}].url: ${JSON.stringify(redactUrl(c.url))} is read as a file path and cannot be read (${why}); a network camera needs a URL such as rtsp://host:554/path`, { keyPath: `cameras[${i}].url` });
    }
  });
}
