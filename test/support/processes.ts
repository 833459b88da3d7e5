/**
 * Real processes for the deploy tests, each on 127.0.0.1 with ports from the OS, stopped after: `osprey serve`
 * replicas (the repository's own CLI through tsx), Debian's nginx, Prometheus and mosquitto. Nothing here is a mock.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tinyModelBytes } from './stack.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
export { REPO_ROOT } from './data.js';
import { acceptsTcp, waitFor } from './net.js';
export { freePort } from './net.js';
export { tempDir } from './temp.js';

/** A binary on PATH (or in /usr/sbin), or null. */
export function which(binary: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin'])) {
    const r = spawnSync('test', ['-x', join(dir, binary)]);
    if (r.status === 0) return join(dir, binary);
  }
  return null;
}


/**
 * A repository with the tiny model `tiny` (`y = 2x`, x FP32 [batch, 4]), dynamic batching with a max queue delay
 * (so each request stays in flight for about that long: a kill or drain always finds requests on the replica).
 */
export async function tinyRepository(root: string, maxQueueDelayMicroseconds = 20_000): Promise<string> {
  await mkdir(join(root, 'tiny', '1'), { recursive: true });
  await writeFile(join(root, 'tiny', '1', 'model.onnx'), tinyModelBytes(2));
  await writeFile(join(root, 'tiny', 'config.json'), JSON.stringify({ maxBatchSize: 8, dynamicBatching: { maxQueueDelayMicroseconds }, instanceGroup: [{ count: 1, kind: 'KIND_CPU' }] }));
  return root;
}

export interface Replica {
  httpPort: number;
  grpcPort: number;
  url: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  log(): string;
  /** Sends the signal and waits for the exit (SIGKILL: at once; SIGTERM: after the drain). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `osprey serve` as a process (`node --import tsx src/cli/main.ts serve …`) on the given ports and resolves
 * once `/v2/health/ready` answers 200.
 */
export async function startReplica(options: { dir: string; httpPort: number; grpcPort: number; args?: string[]; timeoutMs?: number }): Promise<Replica> {
  const script = join(options.dir, 'osprey.mts');
  await writeFile(script, `import { main } from ${JSON.stringify(MAIN)};\nawait main(process.argv);\n`);
  const args = [
    '--import', 'tsx', script, 'serve',
    '--host', '127.0.0.1',
    '--http-port', String(options.httpPort),
    '--grpc-port', String(options.grpcPort),
    '--ep', 'cpu',
    '--log-level', 'warn',
    ...(options.args ?? []),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${options.httpPort}`;
  let dead = false;
  void exited.then(() => (dead = true));
  await waitFor(
    async () => {
      if (dead) throw new Error(`osprey serve exited before it was ready:\n${stderr.slice(-3000)}`);
      return fetch(`${url}/v2/health/ready`).then(
        (r) => r.status === 200,
        () => false,
      );
    },
    options.timeoutMs ?? 90_000,
    `osprey serve on ${url}`,
    () => stderr,
  );
  return {
    httpPort: options.httpPort,
    grpcPort: options.grpcPort,
    url,
    child,
    exited,
    log: () => stderr,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export interface Daemon {
  child: ChildProcess;
  log(): string;
  stop(): Promise<void>;
}

function spawnDaemon(binary: string, args: string[], stopSignal: NodeJS.Signals): Daemon {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    log: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill(stopSignal);
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Starts nginx (foreground: the config has `daemon off`) and resolves once `probeUrl` answers. */
export async function startNginx(confPath: string, prefix: string, probeUrl: string): Promise<Daemon> {
  const nginx = which('nginx');
  if (!nginx) throw new Error('nginx is not installed (bash scripts/setup.sh installs it)');
  const d = spawnDaemon(nginx, ['-c', confPath, '-p', prefix, '-e', join(prefix, 'error.log')], 'SIGQUIT');
  await waitFor(() => fetch(probeUrl).then(() => true, () => false), 20_000, 'nginx', d.log);
  return d;
}

/** Starts Debian's mosquitto on 127.0.0.1:`port` and resolves once it accepts TCP connections. */
export async function startMosquitto(port: number): Promise<Daemon> {
  const bin = which('mosquitto');
  if (!bin) throw new Error('mosquitto is not installed (bash scripts/setup.sh installs it)');
  const d = spawnDaemon(bin, ['-p', String(port)], 'SIGTERM');
  await waitFor(() => acceptsTcp(port), 10_000, `mosquitto listening on ${port}`, d.log);
  return d;
}

/** Starts Prometheus on 127.0.0.1:`port` with temp storage and resolves once it is ready. */
export async function startPrometheus(configPath: string, dataDir: string, port: number): Promise<Daemon & { url: string }> {
  const bin = which('prometheus');
  if (!bin) throw new Error('prometheus is not installed (bash scripts/setup.sh installs it)');
  const d = spawnDaemon(
    bin,
    [`--config.file=${configPath}`, `--storage.tsdb.path=${dataDir}`, `--web.listen-address=127.0.0.1:${port}`, '--storage.tsdb.retention.time=1h', '--log.level=warn'],
    'SIGTERM',
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor(() => fetch(`${url}/-/ready`).then((r) => r.status === 200, () => false), 30_000, 'prometheus', d.log);
  return { ...d, url };
}
