/**
 * `osprey bench search`: Model Analyzer's brute-force search, on a real Osprey server started in-process.
 *
 * For every max batch size × instance count × max queue delay (a delay only matters with batching, so batch 1
 * is measured with delay 0 only): serve the model on 127.0.0.1 with that configuration, sweep the concurrency
 * with the `bench server` client (the sweep of a configuration stops at the first step over the budget), and keep
 * the step with the best throughput whose latency at the percentile is within the budget and that had no errors.
 * The best configuration overall is written into the model's repository config (`maxBatchSize`,
 * `instanceGroup[0].count`, `dynamicBatching.maxQueueDelayMicroseconds`; every other key kept), validated with the
 * repository's own schema.
 */
import { readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { stringify as toYaml, parse as parseYaml } from 'yaml';
import { isOspreyError, OspreyError, toOspreyError } from '../core/errors.js';
import { validateModelConfig, type ModelConfigFile } from '../repository/config.js';
import { Detector } from '../engine/detector.js';
import { startInProcessServer } from './inprocess-server.js';
import { resolveModelPath } from './engine-bench.js';
import { runServerBench } from './server-bench.js';
import type { SearchPoint, SearchResult, ServerBenchStep } from './result.js';
import { benchEnvironment, MemorySampler, sha256File } from './system.js';

export interface SearchOptions {
  /** .onnx file, engine directory or repository model folder. */
  model: string;
  latencyBudgetMs: number;
  /** Repository to write the best config into (with `name`). */
  repository?: string;
  name?: string;
  executionProviders?: readonly string[];
  maxBatchSizes?: number[];
  instanceCounts?: number[];
  maxQueueDelaysMicroseconds?: number[];
  concurrency: number[];
  percentile: number;
  measurementIntervalMs: number;
  warmupMs: number;
  /** 'random' tensors to /infer, or an image folder to /detect. */
  input: string;
  maxDurationMs: number;
  command: string;
  onPoint?: (index: number, total: number, point: SearchPoint | null, label: string) => void;
}

/** Best step under the budget: no errors, latency at the percentile ≤ budget, highest throughput. */
export function bestStep(steps: readonly ServerBenchStep[], budgetMs: number): ServerBenchStep | null {
  let best: ServerBenchStep | null = null;
  for (const s of steps) {
    if (s.errors > 0 || !(s.percentileMs <= budgetMs) || s.requests === 0) continue;
    if (!best || s.imagesPerSecond > best.imagesPerSecond) best = s;
  }
  return best;
}

const CONFIG_FILES = ['config.json', 'config.yaml', 'config.yml'];

/**
 * Writes the chosen configuration into `<repository>/<name>/config.(json|yaml)` (created as config.json when
 * absent), keeping every other key; the result is validated with the repository schema before the file is
 * replaced (write to a temp file, rename).
 * @returns the config file path.
 * @throws OspreyError `OSPREY_ERR_FILE_NOT_FOUND` (no such model folder), `OSPREY_ERR_CONFIG` (the existing file is invalid).
 */
export async function writeBestConfig(repository: string, name: string, best: { maxBatchSize: number; instances: number; maxQueueDelayMicroseconds: number }): Promise<string> {
  const dir = join(repository, name);
  const files = await readdir(dir).catch(() => null);
  if (!files) throw new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `${dir}: no such model folder in the repository`, { path: dir });
  const existing = CONFIG_FILES.find((f) => files.includes(f));
  const path = join(dir, existing ?? 'config.json');
  const yaml = /\.ya?ml$/.test(path);
  let cfg: Record<string, unknown> = {};
  if (existing) {
    const text = await readFile(path, 'utf8');
    try {
      cfg = ((yaml ? parseYaml(text) : JSON.parse(text)) ?? {}) as Record<string, unknown>;
    } catch (err) {
      throw new OspreyError('OSPREY_ERR_CONFIG', `${path}: not valid ${yaml ? 'YAML' : 'JSON'} (${(err as Error).message})`, { file: path });
    }
    validateModelConfig(cfg, path);
  }
  cfg.maxBatchSize = best.maxBatchSize;
  const groups = Array.isArray(cfg.instanceGroup) && cfg.instanceGroup.length > 0 ? (cfg.instanceGroup as Array<Record<string, unknown>>) : [{}];
  groups[0] = { ...groups[0], count: best.instances };
  cfg.instanceGroup = groups.slice(0, 1).concat(groups.slice(1));
  cfg.dynamicBatching = { ...((cfg.dynamicBatching as Record<string, unknown> | undefined) ?? {}), maxQueueDelayMicroseconds: best.maxQueueDelayMicroseconds };
  const valid: ModelConfigFile = validateModelConfig(cfg, path);
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, yaml ? toYaml(valid) : JSON.stringify(valid, null, 2) + '\n');
  await rename(tmp, path);
  return path;
}

/**
 * Runs the search.
 * @throws OspreyError `OSPREY_ERR_USAGE` (bad figures; a batch size a fixed-batch model cannot take), model errors.
 */
export async function runSearch(o: SearchOptions): Promise<SearchResult> {
  if (!(o.latencyBudgetMs > 0)) throw new OspreyError('OSPREY_ERR_USAGE', `--latency-budget-ms must be > 0, got ${o.latencyBudgetMs}`, {});
  if ((o.repository === undefined) !== (o.name === undefined)) throw new OspreyError('OSPREY_ERR_USAGE', '--repository and --name go together', {});
  const resolved = await resolveModelPath(o.model);
  const eps = o.executionProviders ?? ['cpu'];
  const probe = await Detector.create({ modelPath: resolved.onnxPath, executionProviders: eps, instances: 1, warmup: 0 });
  const fixed = probe.spec.batchSize;
  const executionProvider = probe.engine.info.executionProvider;
  const inputSpec = probe.engine.info.inputs.find((i) => i.name === probe.spec.inputName)!;
  await probe.close();
  const maxBatchSizes = o.maxBatchSizes ?? (fixed !== null ? [fixed] : [1, 2, 4, 8]);
  if (fixed !== null && maxBatchSizes.some((b) => b !== fixed)) {
    throw new OspreyError('OSPREY_ERR_USAGE', `--max-batch-sizes ${maxBatchSizes.join(',')}: ${resolved.onnxPath} has a fixed batch size of ${fixed}; build a dynamic-batch engine (osprey build --max-batch N) to search batch sizes`, {});
  }
  const instanceCounts = o.instanceCounts ?? [1, 2];
  const delays = o.maxQueueDelaysMicroseconds ?? [0, 2000, 10000];
  for (const [name, vs, min] of [['--max-batch-sizes', maxBatchSizes, 1], ['--instances', instanceCounts, 1], ['--max-queue-delays-us', delays, 0]] as const) {
    for (const v of vs) if (!Number.isInteger(v) || v < min) throw new OspreyError('OSPREY_ERR_USAGE', `${name}: ${v} is not an integer ≥ ${min}`, {});
  }
  const combos: Array<{ maxBatchSize: number; instances: number; maxQueueDelayMicroseconds: number }> = [];
  for (const mb of maxBatchSizes) for (const n of instanceCounts) for (const d of mb === 1 ? [0] : delays) combos.push({ maxBatchSize: mb, instances: n, maxQueueDelayMicroseconds: d });

  const environment = await benchEnvironment(executionProvider, o.command);
  const name = o.name ?? resolved.name;
  const points: SearchPoint[] = [];
  const deadline = performance.now() + o.maxDurationMs;
  for (let k = 0; k < combos.length; k++) {
    const c = combos[k]!;
    const label = `max batch ${c.maxBatchSize}, ${c.instances} instance(s), delay ${c.maxQueueDelayMicroseconds} µs`;
    const remaining = deadline - performance.now();
    if (remaining <= 0) {
      o.onPoint?.(k, combos.length, null, `${label}: skipped (--max-duration-ms reached)`);
      continue;
    }
    const sampler = new MemorySampler(executionProvider === 'cuda' || executionProvider === 'tensorrt');
    sampler.start();
    let server;
    try {
      server = await startInProcessServer({
        modelPath: resolved.onnxPath,
        name,
        executionProviders: eps,
        config: {
          maxBatchSize: c.maxBatchSize,
          instanceGroup: [{ count: c.instances }],
          dynamicBatching: { maxQueueDelayMicroseconds: c.maxQueueDelayMicroseconds },
        } as ModelConfigFile,
      });
    } catch (err) {
      sampler.stop();
      const e = toOspreyError(err);
      const point: SearchPoint = { ...c, steps: [], best: null, peakRssBytes: sampler.peakRssBytes, error: { code: e.code, message: e.message } };
      points.push(point);
      o.onPoint?.(k, combos.length, point, `${label}: failed to load (${e.code})`);
      continue;
    }
    try {
      const r = await runServerBench({
        url: server.url,
        model: name,
        protocol: 'http',
        concurrency: o.concurrency,
        input: o.input,
        percentile: o.percentile,
        latencyThresholdMs: o.latencyBudgetMs,
        measurementIntervalMs: o.measurementIntervalMs,
        warmupMs: o.warmupMs,
        maxRequestsPerStep: 100000,
        minRequestsPerStep: 3,
        maxDurationMs: remaining,
        command: o.command,
      });
      const point: SearchPoint = { ...c, steps: r.steps, best: bestStep(r.steps, o.latencyBudgetMs), peakRssBytes: 0 };
      sampler.stop();
      point.peakRssBytes = sampler.peakRssBytes;
      points.push(point);
      o.onPoint?.(k, combos.length, point, label);
    } catch (err) {
      if (isOspreyError(err, 'OSPREY_ERR_USAGE') || isOspreyError(err, 'OSPREY_ERR_NO_IMAGES') || isOspreyError(err, 'OSPREY_ERR_FILE_NOT_FOUND')) throw err;
      const e = toOspreyError(err);
      const point: SearchPoint = { ...c, steps: [], best: null, peakRssBytes: sampler.peakRssBytes, error: { code: e.code, message: e.message } };
      points.push(point);
      o.onPoint?.(k, combos.length, point, `${label}: failed (${e.code})`);
    } finally {
      sampler.stop();
      await server.close();
    }
  }
  let best: SearchResult['best'] = null;
  for (const p of points) {
    if (p.best && (!best || p.best.imagesPerSecond > best.imagesPerSecond)) {
      best = {
        maxBatchSize: p.maxBatchSize,
        instances: p.instances,
        maxQueueDelayMicroseconds: p.maxQueueDelayMicroseconds,
        ...(p.best.concurrency !== undefined ? { concurrency: p.best.concurrency } : {}),
        imagesPerSecond: p.best.imagesPerSecond,
        percentileMs: p.best.percentileMs,
      };
    }
  }
  const result: SearchResult = {
    kind: 'osprey-bench-search',
    schemaVersion: 1,
    model: { name, path: o.model, sha256: await sha256File(resolved.onnxPath), input: { name: inputSpec.name, type: inputSpec.type, shape: inputSpec.shape }, ...(resolved.precision ? { precision: resolved.precision } : {}) },
    environment,
    executionProvider,
    settings: {
      latencyBudgetMs: o.latencyBudgetMs,
      percentile: o.percentile,
      maxBatchSizes,
      instanceCounts,
      maxQueueDelaysMicroseconds: delays,
      concurrencyRange: o.concurrency,
      measurementIntervalMs: o.measurementIntervalMs,
    },
    points,
    best,
  };
  const repository = o.repository ?? (resolved.repositoryModelDir ? dirname(resolved.repositoryModelDir) : undefined);
  const repoName = o.name ?? (resolved.repositoryModelDir ? basename(resolved.repositoryModelDir) : undefined);
  if (best && repository && repoName) result.writtenConfig = await writeBestConfig(repository, repoName, best);
  return result;
}
