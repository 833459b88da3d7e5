/**
 * Replicas behind a real load balancer, on this machine: 3 `osprey serve` processes (the repository's CLI) behind
 * Debian's nginx with deploy/nginx's configuration (rendered by src/deploy/nginx.ts for the ports the OS gave),
 * HTTP and gRPC, under a small closed-loop load (tiny model, 20 ms max queue delay so every replica always has
 * requests in flight). One replica is SIGKILLed mid-run and restarted; then all three are restarted one by one with
 * SIGTERM (Osprey's drain). The client must see no error in either; nginx's access log shows the retries.
 * Figures (requests, errors, p99 per phase, throughput against one replica) are printed as test diagnostics.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { renderNginxConfig } from '../../src/deploy/nginx.js';
import { grpcClient, sleep, startLoad, summarize, type GrpcClient, type Load } from './load.js';
import { freePort, startNginx, startReplica, tempDir, tinyRepository, which, type Daemon, type Replica } from '../support/processes.js';

const REPLICAS = 3;
const HTTP_CONCURRENCY = 6;
const GRPC_CONCURRENCY = 2;
/**
 * nginx's passive health check skips a failed replica for fail_timeout. A rolling restart moves to the next replica
 * only once the restarted one is ready AND fail_timeout has passed (docs/operations.md): otherwise nginx can hold
 * every replica as failed at once and answer 502 "no live upstreams" without trying any.
 */
const FAIL_TIMEOUT_SECONDS = 2;
const haveNginx = which('nginx') !== null;

interface LogLine {
  atMs: number;
  status: number;
  upstreams: string[];
  upstreamStatuses: string[];
}

/** Parses the access log (src/deploy/nginx.ts NGINX_LOG_FORMAT). */
function parseAccessLog(text: string): LogLine[] {
  const out: LogLine[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+\.\d+) (\d+) \S+ \S+ upstream=\[([^\]]*)\] upstream_status=\[([^\]]*)\]/.exec(line);
    if (!m) continue;
    out.push({ atMs: Number(m[1]) * 1000, status: Number(m[2]), upstreams: m[3]!.split(/, | : /), upstreamStatuses: m[4]!.split(/, | : /) });
  }
  return out;
}

describe('nginx in front of 3 osprey serve replicas (HTTP + gRPC)', { skip: haveNginx ? false : 'nginx is not installed (bash scripts/setup.sh)' }, () => {
  let tmp: { path: string; remove: () => Promise<void> };
  let repo: string;
  const replicas: Replica[] = [];
  const ports: Array<{ httpPort: number; grpcPort: number }> = [];
  let nginx: Daemon | undefined;
  let lbHttp: string;
  let lbGrpc: string;
  let accessLog: string;
  let client: GrpcClient;
  const report: Record<string, unknown> = {};

  const replicaArgs = ['--model-repository', '', '--max-connections-per-ip', '4096', '--drain-timeout-ms', '5000'];
  const start = (i: number) => {
    const args = [...replicaArgs];
    args[1] = repo;
    return startReplica({ dir: tmp.path, httpPort: ports[i]!.httpPort, grpcPort: ports[i]!.grpcPort, args });
  };

  before(async () => {
    tmp = await tempDir('osprey-nginx-');
    repo = await tinyRepository(join(tmp.path, 'models'));
    for (let i = 0; i < REPLICAS; i++) ports.push({ httpPort: await freePort(), grpcPort: await freePort() });
    replicas.push(...(await Promise.all(ports.map((_, i) => start(i)))));
    const prefix = join(tmp.path, 'nginx');
    await mkdir(prefix, { recursive: true });
    const httpListen = `127.0.0.1:${await freePort()}`;
    const grpcListen = `127.0.0.1:${await freePort()}`;
    const conf = renderNginxConfig({
      upstreams: ports.map((p) => ({ host: '127.0.0.1', ...p })),
      httpListen,
      grpcListen,
      workerProcesses: 1,
      failTimeout: `${FAIL_TIMEOUT_SECONDS}s`,
      standalone: { prefix, accessLog: true },
    });
    const confPath = join(prefix, 'nginx.conf');
    await writeFile(confPath, conf);
    accessLog = join(prefix, 'access.log');
    lbHttp = `http://${httpListen}`;
    lbGrpc = grpcListen;
    nginx = await startNginx(confPath, prefix, `${lbHttp}/v2/health/live`);
    client = grpcClient(lbGrpc);
  });

  after(async () => {
    client?.close();
    await nginx?.stop();
    await Promise.all(replicas.map((r) => r.stop('SIGKILL')));
    await tmp?.remove();
  });

  it('routes HTTP and gRPC through nginx; /metrics through the balancer is refused with a pointer to the replicas', async () => {
    const res = await fetch(`${lbHttp}/v2/models/tiny/infer`, { method: 'POST', body: JSON.stringify({ inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }), headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 200);
    assert.deepEqual(((await res.json()) as { outputs: Array<{ data: number[] }> }).outputs[0]!.data, [2, 4, 6, 8]);
    const metrics = await fetch(`${lbHttp}/metrics`);
    assert.equal(metrics.status, 404);
    assert.equal(((await metrics.json()) as { code: string }).code, 'OSPREY_ERR_NO_ROUTE');
    const load = startLoad({ grpc: client, grpcConcurrency: 1 });
    await sleep(200);
    const samples = await load.stop();
    assert.ok(samples.length > 0 && samples.every((s) => s.ok), JSON.stringify(samples.find((s) => !s.ok)));
  });

  it('throughput: one replica directly against three through nginx, same client concurrency', async (t) => {
    const seconds = 2.5;
    const direct = startLoad({ httpBase: replicas[0]!.url, httpConcurrency: HTTP_CONCURRENCY, phase: 'direct' });
    await sleep(seconds * 1000);
    const d = summarize(await direct.stop(), seconds * 1000);
    const viaLb = startLoad({ httpBase: lbHttp, httpConcurrency: HTTP_CONCURRENCY, phase: 'nginx' });
    await sleep(seconds * 1000);
    const n = summarize(await viaLb.stop(), seconds * 1000);
    report.throughput = { oneReplicaDirect: d, threeReplicasThroughNginx: n, ratio: Math.round((n.requestsPerSecond / d.requestsPerSecond) * 100) / 100 };
    t.diagnostic(`throughput ${JSON.stringify(report.throughput)}`);
    assert.equal(d.errors, 0, d.errorMessages.join('; '));
    assert.equal(n.errors, 0, n.errorMessages.join('; '));
    // Every replica got traffic through the balancer.
    const lines = parseAccessLog(await readFile(accessLog, 'utf8'));
    for (const p of ports) assert.ok(lines.some((l) => l.upstreams.includes(`127.0.0.1:${p.httpPort}`)), `replica :${p.httpPort} got no request through nginx`);
  });

  it('SIGKILL of one replica mid-run, then its restart: no client error; what it had in flight was retried on another replica', async (t) => {
    const load: Load = startLoad({ httpBase: lbHttp, httpConcurrency: HTTP_CONCURRENCY, grpc: client, grpcConcurrency: GRPC_CONCURRENCY, phase: 'before' });
    const t0 = Date.now();
    const phaseStart: Record<string, number> = { before: t0 };
    const enter = (p: string) => {
      load.phase = p;
      phaseStart[p] = Date.now();
    };
    await sleep(1000);
    const victim = 1;
    enter('killed');
    const killedAtMs = Date.now();
    await replicas[victim]!.stop('SIGKILL');
    await sleep(500);
    enter('restarting');
    replicas[victim] = await start(victim);
    enter('after');
    await sleep(1000);
    const samples = await load.stop();
    const endMs = Date.now();
    const totalMs = endMs - t0;
    const order = ['before', 'killed', 'restarting', 'after'];
    const phases = Object.fromEntries(order.map((p, i) => [p, summarize(samples.filter((s) => s.phase === p), (phaseStart[order[i + 1]!] ?? endMs) - phaseStart[p]!)]));
    const lines = parseAccessLog(await readFile(accessLog, 'utf8')).filter((l) => l.atMs >= killedAtMs - 50);
    const victimAddrs = [`127.0.0.1:${ports[victim]!.httpPort}`, `127.0.0.1:${ports[victim]!.grpcPort}`];
    // HTTP: nginx re-sent the request to another replica (upstream list "killed, other").
    const retried = lines.filter((l) => l.upstreams.length > 1 && victimAddrs.includes(l.upstreams[0]!));
    // gRPC: nginx answered UNAVAILABLE (trailers-only, HTTP 204) for a call the killed replica held; the client retried it.
    const grpcUnavailable = lines.filter((l) => l.status === 204 && victimAddrs.includes(l.upstreams[0]!));
    const all = summarize(samples, totalMs);
    report.sigkill = {
      requests: all.requests,
      clientErrors: all.errors,
      httpRetriedByNginx: retried.length,
      httpRetriedStatuses: [...new Set(retried.map((l) => l.upstreamStatuses.join(',')))],
      grpcRetriedByClient: grpcUnavailable.length,
      phases,
    };
    t.diagnostic(`sigkill ${JSON.stringify(report.sigkill)}`);
    assert.equal(all.errors, 0, `client errors: ${all.errorMessages.join('; ')}`);
    assert.ok(retried.length + grpcUnavailable.length >= 1, 'the requests the killed replica held were retried');
    assert.ok(retried.every((l) => l.status === 200), 'every request nginx re-sent succeeded');
  });

  it('rolling restart with SIGTERM (drain), one replica at a time (next once ready + fail_timeout): zero client errors', async (t) => {
    await sleep(FAIL_TIMEOUT_SECONDS * 1000 + 500); // the replica restarted by the previous test is live again for nginx
    const load: Load = startLoad({ httpBase: lbHttp, httpConcurrency: HTTP_CONCURRENCY, grpc: client, grpcConcurrency: GRPC_CONCURRENCY, phase: 'rolling' });
    const t0 = Date.now();
    await sleep(500);
    const exits: Array<number | null> = [];
    for (let i = 0; i < REPLICAS; i++) {
      exits.push(await replicas[i]!.stop('SIGTERM'));
      replicas[i] = await start(i);
      await sleep(FAIL_TIMEOUT_SECONDS * 1000 + 500);
    }
    const samples = await load.stop();
    const ms = Date.now() - t0;
    const lines = parseAccessLog(await readFile(accessLog, 'utf8')).filter((l) => l.atMs >= t0);
    const retried = lines.filter((l) => l.upstreams.length > 1);
    const grpcUnavailable = lines.filter((l) => l.status === 204);
    const http = summarize(samples.filter((s) => s.proto === 'http'), ms);
    const grpcS = summarize(samples.filter((s) => s.proto === 'grpc'), ms);
    const all = summarize(samples, ms);
    report.rolling = { requests: all.requests, clientErrors: all.errors, p99Ms: all.p99Ms, http, grpc: grpcS, httpRetriedByNginx: retried.length, httpRetriedStatuses: [...new Set(retried.map((l) => l.upstreamStatuses.join(',')))], grpcRetriedByClient: grpcUnavailable.length, exitCodes: exits };
    t.diagnostic(`rolling ${JSON.stringify(report.rolling)}`);
    assert.deepEqual(exits, [0, 0, 0], 'each replica drained and exited 0');
    assert.equal(all.errors, 0, `client errors: ${all.errorMessages.join('; ')}`);
    assert.ok(http.requests > 0 && grpcS.requests > 0);
  });
});

