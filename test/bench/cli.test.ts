/**
 * `osprey plan` through the real CLI entry (child processes running src/cli/main.ts under tsx, as bin/osprey.js
 * runs dist/): output, exit codes and stable codes. Started in parallel to keep the area's test time low.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ENTRY = `import(${JSON.stringify(new URL('../../src/cli/main.ts', import.meta.url).href)}).then((m) => m.main(['node', 'osprey', ...process.argv.slice(1)]))`;

function osprey(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', '-e', ENTRY, ...args], { cwd: ROOT, timeout: 120000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('osprey plan (CLI): worked example --json → 12 GPUs; not a bench file → OSPREY_ERR_BENCH_FILE; SLO below every p99 → OSPREY_ERR_PLAN_INFEASIBLE', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'osprey-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'bad.json'), '{"kind":"nope"}');
  const server = {
    kind: 'osprey-bench-server', schemaVersion: 1, model: { name: 'm' }, server: { url: 'x', protocol: 'http', endpoint: 'infer' },
    environment: { deviceKind: 'gpu' }, settings: { percentile: 99, serverConfig: { maxBatchSize: 4, instances: 2 } },
    steps: [{ concurrency: 1, requests: 10, errors: 0, imagesPerSecond: 50, latencyMs: { p99: 140 }, percentileMs: 140 }],
  };
  await writeFile(join(dir, 'server.json'), JSON.stringify(server));
  const [example, bad, infeasible] = await Promise.all([
    osprey(['plan', '--streams', '64', '--fps', '10', '--throughput', '80', '--redundancy', '1.5', '--json']),
    osprey(['plan', '--qps', '10', '--slo-p99-ms', '100', '--bench', join(dir, 'bad.json')]),
    osprey(['plan', '--qps', '10', '--slo-p99-ms', '100', '--bench', join(dir, 'server.json')]),
  ]);
  assert.equal(example.code, 0, example.stderr);
  const plan = JSON.parse(example.stdout);
  assert.equal(plan.gpus, 12);
  assert.equal(plan.totalQps, 640);
  assert.equal(plan.unitsWithoutRedundancy, 8);
  assert.equal(plan.unitsExact, 12);
  assert.deepEqual(
    { streams: plan.inputs.streams, fps: plan.inputs.fps, throughput: plan.inputs.throughput, redundancy: plan.inputs.redundancy },
    { streams: 64, fps: 10, throughput: 80, redundancy: 1.5 },
  );
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /OSPREY_ERR_BENCH_FILE/);
  assert.equal(infeasible.code, 2);
  assert.match(infeasible.stderr, /OSPREY_ERR_PLAN_INFEASIBLE: .*best p99 measured is 140 ms .*relax the SLO to ≥ 140 ms/);
});

test('osprey bench engine with two --model (CLI): interleaved comparison table + JSON, --pipeline-depth recorded; --rounds 0 → OSPREY_ERR_USAGE', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'osprey-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const model = fileURLToPath(new URL('../../../shared/data/models/yolov8n.onnx', import.meta.url));
  const out = join(dir, 'cmp.json');
  const [ok, bad] = await Promise.all([
    osprey(['bench', 'engine', '--model', model, '--model', model, '--rounds', '1', '--warmup-ms', '0', '--duration-ms', '200', '--pipeline-depth', '1', '--json', out]),
    osprey(['bench', 'engine', '--model', model, '--model', model, '--rounds', '0']),
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /interleaved comparison/);
  assert.match(ok.stdout, /yolov8n #2 \/ yolov8n #1: throughput ×\d/);
  const { readFile } = await import('node:fs/promises');
  const json = JSON.parse(await readFile(out, 'utf8'));
  assert.equal(json.kind, 'osprey-bench-engine-comparison');
  assert.equal(json.configurations[0].windows.length, 4, 'one round, A B B A');
  assert.equal(json.settings.pipelineDepth, 1, '--pipeline-depth reaches the comparison and is recorded');
  assert.match(ok.stdout, /pipeline depth 1 per instance/);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /OSPREY_ERR_USAGE: --rounds/);
});

test('osprey plan (CLI) uses a per-host figure: a server result whose model was placed on 2 GPUs plans hosts; bench engine --gpus naming a missing GPU exits with OSPREY_ERR_GPU_NOT_FOUND', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'osprey-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // a server bench file as `osprey bench server` writes one against `osprey serve --gpus 0,1` (figures are inputs here)
  const server = {
    kind: 'osprey-bench-server', schemaVersion: 1, model: { name: 'm' }, server: { url: 'x', protocol: 'http', endpoint: 'infer' },
    environment: { deviceKind: 'gpu' }, settings: { percentile: 99, serverConfig: { maxBatchSize: 32, instances: 8, gpus: 2 } },
    steps: [{ concurrency: 8, requests: 100, errors: 0, imagesPerSecond: 3000, latencyMs: { p99: 40 }, percentileMs: 40 }],
  };
  await writeFile(join(dir, 'server.json'), JSON.stringify(server));
  const { readGpuInventory } = await import('../../src/gpu/inventory.js');
  const missing = (await readGpuInventory()).gpus.length;
  const [plan, bench] = await Promise.all([
    osprey(['plan', '--qps', '12000', '--slo-p99-ms', '50', '--redundancy', '1.5', '--bench', join(dir, 'server.json'), '--json']),
    osprey(['bench', 'engine', '--model', fileURLToPath(new URL('../../../shared/data/models/yolov8n.onnx', import.meta.url)), '--gpus', String(missing), '--duration-ms', '100', '--warmup-ms', '0']),
  ]);
  assert.equal(plan.code, 0, plan.stderr);
  const p = JSON.parse(plan.stdout);
  assert.equal(p.hosts, 6);
  assert.equal(p.gpus, 12);
  assert.equal(p.deployment.gpusPerReplica, 2);
  assert.notEqual(bench.code, 0);
  assert.match(bench.stderr, new RegExp(`OSPREY_ERR_GPU_NOT_FOUND.*--gpus: GPU ${missing} does not exist on this machine`));
});
