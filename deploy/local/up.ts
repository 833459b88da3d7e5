/**
 * One machine, one command: N `osprey serve` replicas behind nginx (HTTP + gRPC) and a Prometheus scraping them
 * with deploy/prometheus's rules, using the same generators as deploy/ and `osprey plan --emit`.
 *
 *   npx tsx deploy/local/up.ts --model ../shared/data/models/yolov8n.onnx [--replicas 3] [--dir osprey-local]
 *   npx tsx deploy/local/up.ts --model-repository models/ --replicas 2 -- --ep cuda,cpu   (after --: more serve flags)
 *
 * `--scrape-interval` (default 15s) is Prometheus' scrape and rule evaluation interval.
 * Ports (defaults): replicas HTTP 8000 + 10·i and gRPC 8001 + 10·i, nginx HTTP 8080 and gRPC 8081, Prometheus 9090.
 * Everything listens on 127.0.0.1. Ctrl-C (or SIGTERM) stops it all: replicas drain first (SIGTERM), then nginx
 * and Prometheus. nginx and Prometheus come from Debian's packages (bash scripts/setup.sh); without them the
 * replicas still start and the script says what is missing. Grafana: point it at deploy/grafana/provisioning.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { toYaml } from '../../src/deploy/files.js';
import { renderNginxConfig } from '../../src/deploy/nginx.js';
import { prometheusConfig } from '../../src/deploy/prometheus.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const split = process.argv.indexOf('--');
const own = split >= 0 ? process.argv.slice(2, split) : process.argv.slice(2);
const serveExtra = split >= 0 ? process.argv.slice(split + 1) : [];
const { values: o } = parseArgs({
  args: own,
  options: {
    model: { type: 'string' },
    'model-repository': { type: 'string' },
    replicas: { type: 'string', default: '3' },
    dir: { type: 'string', default: 'osprey-local' },
    'http-port': { type: 'string', default: '8000' },
    'lb-http-port': { type: 'string', default: '8080' },
    'lb-grpc-port': { type: 'string', default: '8081' },
    'prometheus-port': { type: 'string', default: '9090' },
    'scrape-interval': { type: 'string', default: '15s' },
  },
});
const fail = (msg: string): never => {
  process.stderr.write(`deploy/local/up: ${msg}\n`);
  process.exit(2);
};
if ((o.model === undefined) === (o['model-repository'] === undefined)) fail('give exactly one of --model PATH or --model-repository DIR');
const int = (name: string, v: string | undefined) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) fail(`--${name} must be a positive integer, got '${v}'`);
  return n;
};
const replicas = int('replicas', o.replicas);
const base = int('http-port', o['http-port']);
const dir = resolve(o.dir!);
if (!/^[0-9]+(ms|s|m)$/.test(o['scrape-interval']!)) fail(`--scrape-interval must be a Prometheus duration like 15s, got '${o['scrape-interval']}'`);
const which = (bin: string) => ['/usr/sbin', '/usr/bin', ...(process.env.PATH ?? '').split(':')].map((d) => join(d, bin)).find((p) => spawnSync('test', ['-x', p]).status === 0);

const children: Array<{ name: string; child: ChildProcess; stop: NodeJS.Signals }> = [];
const launch = (name: string, bin: string, args: string[], stop: NodeJS.Signals) => {
  const child = spawn(bin, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  children.push({ name, child, stop });
  child.once('exit', (code, signal) => {
    if (!stopping) process.stderr.write(`deploy/local/up: ${name} exited (${signal ?? code}); stopping everything\n`);
    void shutdown();
  });
  return child;
};
let stopping = false;
const exited = (c: ChildProcess) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r())));
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  // Replicas first (they drain while nginx still routes around them), then the balancer and Prometheus.
  const reps = children.filter((c) => c.name.startsWith('replica'));
  for (const r of reps) r.child.kill(r.stop);
  await Promise.all(reps.map((r) => exited(r.child)));
  const rest = children.filter((c) => !c.name.startsWith('replica'));
  for (const r of rest) r.child.kill(r.stop);
  await Promise.all(rest.map((r) => exited(r.child)));
  process.exit(0);
}
process.on('SIGINT', () => void shutdown());
process.on('SIGTERM', () => void shutdown());

await mkdir(join(dir, 'nginx'), { recursive: true });
await chmod(dir, 0o755);
await chmod(join(dir, 'nginx'), 0o755);
// The compiled CLI when built (npm ci builds it), else the sources through tsx.
const dist = join(ROOT, 'dist/src/cli/main.js');
const cli = existsSync(dist) ? [join(ROOT, 'bin/osprey.js')] : ['--import', 'tsx', join(ROOT, 'deploy/local/osprey.ts')];
const ports = Array.from({ length: replicas }, (_, i) => ({ httpPort: base + 10 * i, grpcPort: base + 10 * i + 1 }));
const source = o.model !== undefined ? ['--model', resolve(o.model)] : ['--model-repository', resolve(o['model-repository']!)];
ports.forEach((p, i) => {
  launch(`replica ${i}`, process.execPath, [...cli, 'serve', ...source, '--host', '127.0.0.1', '--http-port', String(p.httpPort), '--grpc-port', String(p.grpcPort), '--max-connections-per-ip', '4096', '--log-level', 'warn', ...serveExtra], 'SIGTERM');
});

const nginx = which('nginx');
const lbHttp = `127.0.0.1:${int('lb-http-port', o['lb-http-port'])}`;
const lbGrpc = `127.0.0.1:${int('lb-grpc-port', o['lb-grpc-port'])}`;
if (nginx) {
  const conf = join(dir, 'nginx', 'nginx.conf');
  await writeFile(conf, renderNginxConfig({ upstreams: ports.map((p) => ({ host: '127.0.0.1', ...p })), httpListen: lbHttp, grpcListen: lbGrpc, standalone: { prefix: join(dir, 'nginx'), accessLog: true } }));
  launch('nginx', nginx, ['-c', conf, '-p', join(dir, 'nginx'), '-e', join(dir, 'nginx', 'error.log')], 'SIGQUIT');
} else process.stderr.write('deploy/local/up: nginx is not installed (bash scripts/setup.sh): no load balancer\n');

const prometheus = which('prometheus');
const promAddr = `127.0.0.1:${int('prometheus-port', o['prometheus-port'])}`;
if (prometheus) {
  const config = join(dir, 'prometheus.yml');
  await writeFile(config, toYaml(prometheusConfig({ targets: ports.map((p, i) => ({ address: `127.0.0.1:${p.httpPort}`, labels: { replica: `r${i}` } })), ruleFiles: [join(ROOT, 'deploy/prometheus/osprey-rules.yml')], scrapeInterval: o['scrape-interval']! })));
  launch('prometheus', prometheus, [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=${promAddr}`, '--log.level=warn'], 'SIGTERM');
} else process.stderr.write('deploy/local/up: prometheus is not installed (bash scripts/setup.sh): no monitoring\n');

process.stderr.write(
  `deploy/local/up: ${replicas} replicas on ${ports.map((p) => `:${p.httpPort}/:${p.grpcPort}`).join(' ')}` +
    (nginx ? `; HTTP http://${lbHttp}  gRPC ${lbGrpc}` : '') +
    (prometheus ? `; Prometheus http://${promAddr} (alerts: /alerts)` : '') +
    '; Ctrl-C stops all\n',
);
