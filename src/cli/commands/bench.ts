/**
 * `osprey bench engine | server | search | report`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { OspreyError } from '../../core/errors.js';
import { parseGpuList } from '../../gpu/inventory.js';

/** "1,8,32" → [1, 8, 32]; @throws OspreyError OSPREY_ERR_USAGE. */
export function parseIntList(text: string, option: string): number[] {
  const parts = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (parts.length === 0) throw new OspreyError('OSPREY_ERR_USAGE', `${option} is empty`, { option });
  return parts.map((p) => {
    const v = Number(p);
    if (!Number.isInteger(v) || v < 1) throw new OspreyError('OSPREY_ERR_USAGE', `${option}: ${JSON.stringify(p)} is not a positive integer`, { option, value: p });
    return v;
  });
}

/** A number option; @throws OspreyError OSPREY_ERR_USAGE when not a number (sign checked by the callee). */
export function parseNumber(text: string | undefined, option: string): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v)) throw new OspreyError('OSPREY_ERR_USAGE', `${option}: ${JSON.stringify(text)} is not a number`, { option, value: text });
  return v;
}

async function writeOut(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
  process.stderr.write(`wrote ${path}\n`);
}

function progressBar(total: number, label: string): cliProgress.SingleBar {
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: `${label} [{bar}] {value}/{total} {what}`, hideCursor: false, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { what: '' });
  return bar;
}

interface EngineOpts {
  model: string[];
  rounds: string;
  ep: string;
  batch: string;
  instances: string;
  warmupMs: string;
  durationMs: string;
  image?: string;
  intraOpThreads?: string;
  intraOpSpinning?: boolean;
  pipelineDepth: string;
  gpus?: string;
  json?: string;
  plot?: string;
}

/** `--pipeline-depth`: one positive integer. @throws OspreyError OSPREY_ERR_USAGE. */
function pipelineDepthOf(o: EngineOpts): number {
  const d = parseIntList(o.pipelineDepth, '--pipeline-depth');
  if (d.length !== 1) throw new OspreyError('OSPREY_ERR_USAGE', `--pipeline-depth takes one number, got ${o.pipelineDepth}`, {});
  return d[0]!;
}

interface ServerOpts {
  url: string;
  model: string;
  modelVersion?: string;
  protocol: string;
  concurrencyRange?: string;
  requestRateRange?: string;
  requestDistribution: string;
  input: string;
  batchSize: string;
  percentile: string;
  latencyThresholdMs?: string;
  measurementIntervalMs: string;
  warmupMs: string;
  maxRequests: string;
  minRequests: string;
  maxDurationMs: string;
  requestTimeoutMs: string;
  json?: string;
  plot?: string;
}

interface SearchOpts {
  model: string;
  latencyBudgetMs: string;
  repository?: string;
  name?: string;
  ep: string;
  maxBatchSizes?: string;
  instances: string;
  maxQueueDelaysUs: string;
  concurrencyRange: string;
  input: string;
  percentile: string;
  measurementIntervalMs: string;
  warmupMs: string;
  maxDurationMs: string;
  json?: string;
  plot?: string;
}

/** `osprey bench engine` with several --model: the interleaved comparison. */
async function compareEngines(o: EngineOpts): Promise<void> {
  const { runEngineComparison, formatComparisonResult, comparisonEngineResults } = await import('../../bench/engine-compare.js');
  const { commandLine } = await import('../../bench/system.js');
  const threads = parseNumber(o.intraOpThreads, '--intra-op-threads');
  const rounds = parseIntList(o.rounds, '--rounds');
  if (rounds.length !== 1) throw new OspreyError('OSPREY_ERR_USAGE', `--rounds takes one number, got ${o.rounds}`, {});
  const letters = o.model.map((_, k) => String.fromCharCode(65 + k));
  const result = await runEngineComparison({
    models: o.model,
    executionProviders: o.ep.split(',').map((s) => s.trim()).filter(Boolean),
    batchSizes: parseIntList(o.batch, '--batch'),
    instanceCounts: parseIntList(o.instances, '--instances'),
    rounds: rounds[0]!,
    warmupMs: parseNumber(o.warmupMs, '--warmup-ms')!,
    durationMs: parseNumber(o.durationMs, '--duration-ms')!,
    ...(o.image ? { image: o.image } : {}),
    ...(threads !== undefined ? { intraOpNumThreads: threads } : {}),
    pipelineDepth: pipelineDepthOf(o),
    ...(o.intraOpSpinning !== undefined ? { intraOpSpinning: o.intraOpSpinning } : {}),
    command: commandLine(),
    onWindow: (w, cfg) =>
      process.stderr.write(
        `batch ${cfg.batchSize} × ${cfg.instances}, round ${w.round + 1}: ${letters[w.engine]} ${w.imagesPerSecond.toFixed(2)} images/s` +
          (w.otherProcessesCores !== null ? ` (other processes ${w.otherProcessesCores.toFixed(2)} cores)` : '') + '\n',
      ),
  });
  process.stdout.write(formatComparisonResult(result));
  if (o.json) await writeOut(o.json, JSON.stringify(result, null, 1) + '\n');
  if (o.plot) {
    const { plotResults } = await import('../../bench/plot.js');
    await writeOut(o.plot, plotResults(comparisonEngineResults(result).map((r) => ({ name: `${r.model.name} (${r.model.precision ?? ''})`, result: r })), `interleaved comparison on ${result.environment.device}`));
  }
}

export function register(program: Command): void {
  const bench = program.command('bench').description('Measure engines (trtexec-like), servers (perf_analyzer-like), search server configurations (Model Analyzer-like)');

  bench
    .command('engine')
    .description(
      'Throughput, latency percentiles and pre/infer/post split of the detector per batch size × instance count; ' +
        'with several --model, an interleaved comparison (alternating rounds, ratios to the first model with min/median/max over rounds)',
    )
    .requiredOption('--model <path>', 'an .onnx file or an engine directory (osprey build output / repository model folder); repeat to compare engines', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--rounds <n>', 'comparison (several --model): rounds, each measuring every engine once after its own warm-up', '10')
    .option('--ep <list>', 'execution providers in order, e.g. cuda,cpu', 'cpu')
    .option('--batch <list>', 'batch sizes, e.g. 1,8,32 (a fixed-batch model accepts only its own)', '1')
    .option('--instances <list>', 'instance counts (sessions, one worker thread each), e.g. 1,2,4', '1')
    .option('--warmup-ms <ms>', 'unmeasured warm-up per configuration (comparison: per engine per round)', '1000')
    .option('--duration-ms <ms>', 'measured time per configuration, the run stops on duration (comparison: per engine per round)', '5000')
    .option('--image <file>', 'image decoded + letterboxed on every iteration (default: a synthetic 1280×720 JPEG)')
    .option('--intra-op-threads <n>', 'ONNX Runtime intra-op threads per session (default: ORT decides)')
    .option('--intra-op-spinning', "ONNX Runtime's intra-op threads spin between parallel sections (ORT's own default; Osprey's default: spin at --pipeline-depth 1, sleep at ≥ 2 on CPU)")
    .option('--no-intra-op-spinning', "ONNX Runtime's intra-op threads sleep instead of spinning (session.intra_op.allow_spinning 0)")
    .option(
      '--pipeline-depth <n>',
      'batches in flight per instance: 2 decodes + letterboxes batch N+1 while N runs and post-processes N while N+1 runs; 1 = serial (pre → infer → post)',
      '2',
    )
    .option('--gpus <list>', 'CUDA device ordinals, e.g. 0,1: each --instances count goes on EACH GPU (Triton placement); checked against the GPUs found')
    .option('--json <file>', 'write the result as JSON')
    .option('--plot <file>', 'write a latency-vs-throughput SVG')
    .action(async (o: EngineOpts) => {
      if (o.model.length > 1) return compareEngines(o);
      const { runEngineBench } = await import('../../bench/engine-bench.js');
      const { formatEngineResult } = await import('../../bench/format.js');
      const { commandLine } = await import('../../bench/system.js');
      const batchSizes = parseIntList(o.batch, '--batch');
      const instanceCounts = parseIntList(o.instances, '--instances');
      const threads = parseNumber(o.intraOpThreads, '--intra-op-threads');
      let bar: cliProgress.SingleBar | undefined;
      const result = await runEngineBench({
        model: o.model[0]!,
        executionProviders: o.ep.split(',').map((s) => s.trim()).filter(Boolean),
        batchSizes,
        instanceCounts,
        warmupMs: parseNumber(o.warmupMs, '--warmup-ms')!,
        durationMs: parseNumber(o.durationMs, '--duration-ms')!,
        ...(o.image ? { image: o.image } : {}),
        ...(threads !== undefined ? { intraOpNumThreads: threads } : {}),
        pipelineDepth: pipelineDepthOf(o),
        ...(o.intraOpSpinning !== undefined ? { intraOpSpinning: o.intraOpSpinning } : {}),
        ...(o.gpus !== undefined ? { gpuIds: parseGpuList(o.gpus) } : {}),
        command: commandLine(),
        onConfiguration: (ev, k, total, b, i) => {
          if (ev === 'start') {
            bar ??= progressBar(total, 'bench engine');
            bar.update(k, { what: `batch ${b} × ${i} instance(s)` });
          } else if (k + 1 === total) bar?.stop();
          else bar?.update(k + 1);
        },
      });
      bar?.stop();
      process.stdout.write(formatEngineResult(result));
      if (o.json) await writeOut(o.json, JSON.stringify(result, null, 1) + '\n');
      if (o.plot) {
        const { plotResults } = await import('../../bench/plot.js');
        await writeOut(o.plot, plotResults([{ result }], `${result.model.name} (${result.model.precision ?? ''}) on ${result.environment.device}, EP ${result.executionProvider}`));
      }
    });

  bench
    .command('server')
    .description('Client latency percentiles and throughput per load step against a KServe v2 server, with the server-side queue/compute split')
    .option('--url <url>', 'server base URL', 'http://127.0.0.1:8000')
    .requiredOption('--model <name>', 'model name on the server')
    .option('--model-version <v>', 'model version (default: the server picks)')
    .option('--protocol <p>', 'http or grpc', 'http')
    .option('--concurrency-range <start:end:step>', 'closed-loop concurrency steps (perf_analyzer: additive step; x2 multiplies; end 0 = until the threshold)')
    .option('--request-rate-range <start:end:step>', 'open-loop request rates, requests/s')
    .option('--request-distribution <d>', 'constant or poisson (request-rate mode)', 'constant')
    .option('--input <dir|random>', 'random tensors to /infer, or a directory of images to /detect', 'random')
    .option('--batch-size <n>', 'images per /infer request (random input)', '1')
    .option('--percentile <p>', 'percentile reported and compared with the threshold', '99')
    .option('--latency-threshold-ms <ms>', 'stop after the first step whose percentile latency exceeds this')
    .option('--measurement-interval-ms <ms>', 'measurement window per step', '5000')
    .option('--warmup-ms <ms>', 'unmeasured time at the start of each step', '1000')
    .option('--max-requests <n>', 'end a step’s window early after this many requests', '100000')
    .option('--min-requests <n>', 'a window also lasts until this many requests completed (bounded by --max-duration-ms)', '1')
    .option('--max-duration-ms <ms>', 'upper bound on the whole sweep', '600000')
    .option('--request-timeout-ms <ms>', 'a request with no answer after this counts as OSPREY_ERR_TIMEOUT', '30000')
    .option('--json <file>', 'write the result as JSON')
    .option('--plot <file>', 'write a latency-vs-throughput SVG')
    .action(async (o: ServerOpts) => {
      const { runServerBench, parseRange } = await import('../../bench/server-bench.js');
      const { formatServerResult } = await import('../../bench/format.js');
      const { commandLine } = await import('../../bench/system.js');
      if (o.protocol !== 'http' && o.protocol !== 'grpc') throw new OspreyError('OSPREY_ERR_USAGE', `--protocol must be http or grpc, got ${o.protocol}`, {});
      if (o.requestDistribution !== 'constant' && o.requestDistribution !== 'poisson') throw new OspreyError('OSPREY_ERR_USAGE', `--request-distribution must be constant or poisson`, {});
      if (o.concurrencyRange !== undefined && o.requestRateRange !== undefined) {
        throw new OspreyError('OSPREY_ERR_USAGE', 'give one of --concurrency-range or --request-rate-range, not both', {});
      }
      const threshold = parseNumber(o.latencyThresholdMs, '--latency-threshold-ms');
      const concurrency = o.requestRateRange === undefined ? parseRange(o.concurrencyRange ?? '1', '--concurrency-range', { integer: true, allowOpenEnd: threshold !== undefined }) : undefined;
      const requestRates = o.requestRateRange !== undefined ? parseRange(o.requestRateRange, '--request-rate-range', { integer: false, allowOpenEnd: threshold !== undefined }) : undefined;
      const result = await runServerBench({
        url: o.url,
        model: o.model,
        ...(o.modelVersion ? { version: o.modelVersion } : {}),
        protocol: o.protocol,
        ...(concurrency ? { concurrency } : {}),
        ...(requestRates ? { requestRates } : {}),
        requestDistribution: o.requestDistribution,
        input: o.input,
        batchSize: parseNumber(o.batchSize, '--batch-size')!,
        percentile: parseNumber(o.percentile, '--percentile')!,
        ...(threshold !== undefined ? { latencyThresholdMs: threshold } : {}),
        measurementIntervalMs: parseNumber(o.measurementIntervalMs, '--measurement-interval-ms')!,
        warmupMs: parseNumber(o.warmupMs, '--warmup-ms')!,
        maxRequestsPerStep: parseNumber(o.maxRequests, '--max-requests')!,
        minRequestsPerStep: parseNumber(o.minRequests, '--min-requests')!,
        maxDurationMs: parseNumber(o.maxDurationMs, '--max-duration-ms')!,
        requestTimeoutMs: parseNumber(o.requestTimeoutMs, '--request-timeout-ms')!,
        command: commandLine(),
        onStep: (s, i, total) =>
          process.stderr.write(`step ${i + 1}/${total} ${s.concurrency !== undefined ? `c=${s.concurrency}` : `${s.requestRate}/s`}: ${s.imagesPerSecond.toFixed(1)} images/s, p${o.percentile} ${s.percentileMs.toFixed(2)} ms\n`),
      });
      process.stdout.write(formatServerResult(result));
      if (o.json) await writeOut(o.json, JSON.stringify(result, null, 1) + '\n');
      if (o.plot) {
        const { plotResults } = await import('../../bench/plot.js');
        await writeOut(o.plot, plotResults([{ result }], `${result.model.name} via ${result.server.protocol} ${result.server.endpoint}`, threshold));
      }
    });

  bench
    .command('search')
    .description('Model Analyzer-like search: max batch size × instances × max queue delay on a real in-process server; writes the best configuration under the budget into the repository config')
    .requiredOption('--model <path>', '.onnx file, engine directory, or repository model folder (<repo>/<name>)')
    .requiredOption('--latency-budget-ms <ms>', 'latency budget at --percentile')
    .option('--repository <dir>', 'model repository to write the best config into (with --name)')
    .option('--name <name>', 'model name in the repository')
    .option('--ep <list>', 'execution providers in order', 'cpu')
    .option('--max-batch-sizes <list>', 'max batch sizes to try (default 1,2,4,8; a fixed-batch model: its own)')
    .option('--instances <list>', 'instance counts to try', '1,2')
    .option('--max-queue-delays-us <list>', 'max queue delays to try, microseconds (batch 1 uses 0 only)', '0,2000,10000')
    .option('--concurrency-range <start:end:step>', 'client concurrency steps per configuration', '1:16:x2')
    .option('--input <dir|random>', 'random tensors to /infer, or a directory of images to /detect', 'random')
    .option('--percentile <p>', 'percentile compared with the budget', '99')
    .option('--measurement-interval-ms <ms>', 'measurement window per step', '3000')
    .option('--warmup-ms <ms>', 'unmeasured time at the start of each step', '1000')
    .option('--max-duration-ms <ms>', 'upper bound on the whole search', '1800000')
    .option('--json <file>', 'report of all points (default osprey-search-<name>.json)')
    .option('--plot <file>', 'SVG of all points (default osprey-search-<name>.svg)')
    .action(async (o: SearchOpts) => {
      const { runSearch } = await import('../../bench/search.js');
      const { parseRange } = await import('../../bench/server-bench.js');
      const { formatSearchResult } = await import('../../bench/format.js');
      const { commandLine } = await import('../../bench/system.js');
      const { plotResults } = await import('../../bench/plot.js');
      const budget = parseNumber(o.latencyBudgetMs, '--latency-budget-ms')!;
      const delays = o.maxQueueDelaysUs.split(',').map((v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0) throw new OspreyError('OSPREY_ERR_USAGE', `--max-queue-delays-us: ${JSON.stringify(v)} is not an integer ≥ 0`, {});
        return n;
      });
      const result = await runSearch({
        model: o.model,
        latencyBudgetMs: budget,
        ...(o.repository !== undefined ? { repository: o.repository } : {}),
        ...(o.name !== undefined ? { name: o.name } : {}),
        executionProviders: o.ep.split(',').map((s) => s.trim()).filter(Boolean),
        ...(o.maxBatchSizes !== undefined ? { maxBatchSizes: parseIntList(o.maxBatchSizes, '--max-batch-sizes') } : {}),
        instanceCounts: parseIntList(o.instances, '--instances'),
        maxQueueDelaysMicroseconds: delays,
        concurrency: parseRange(o.concurrencyRange, '--concurrency-range'),
        percentile: parseNumber(o.percentile, '--percentile')!,
        measurementIntervalMs: parseNumber(o.measurementIntervalMs, '--measurement-interval-ms')!,
        warmupMs: parseNumber(o.warmupMs, '--warmup-ms')!,
        input: o.input,
        maxDurationMs: parseNumber(o.maxDurationMs, '--max-duration-ms')!,
        command: commandLine(),
        onPoint: (k, total, p, label) =>
          process.stderr.write(`configuration ${k + 1}/${total} ${label}: ${p?.best ? `${p.best.imagesPerSecond.toFixed(1)} images/s at p${o.percentile} ${p.best.percentileMs.toFixed(1)} ms` : p ? 'nothing under the budget' : ''}\n`),
      });
      process.stdout.write(formatSearchResult(result));
      const base = `osprey-search-${result.model.name}`;
      await writeOut(o.json ?? `${base}.json`, JSON.stringify(result, null, 1) + '\n');
      await writeOut(o.plot ?? `${base}.svg`, plotResults([{ result }], `${result.model.name}: search under p${result.settings.percentile} ≤ ${budget} ms`, budget));
      if (!result.best) {
        throw new OspreyError('OSPREY_ERR_PLAN_INFEASIBLE', `no configuration met p${result.settings.percentile} ≤ ${budget} ms (the report lists every point); relax the budget or try smaller batches / fewer clients`, {});
      }
    });

  bench
    .command('profile')
    .description("Where ONNX Runtime's CPU EP spends a model's time, per operator type and node (ORT's profiler), and the op counts of the graph it actually runs (trtexec --dumpProfile)")
    .requiredOption('--model <path>', 'an .onnx file or an engine directory')
    .option('--runs <n>', 'profiled runs (after 3 warm-up runs)', '20')
    .option('--intra-op-threads <n>', 'ONNX Runtime intra-op threads (default: ORT decides)')
    .option('--json <file>', 'write the result as JSON')
    .action(async (o: { model: string; runs: string; intraOpThreads?: string; json?: string }) => {
      const { profileModel, formatProfile } = await import('../../bench/ort-profile.js');
      const { commandLine } = await import('../../bench/system.js');
      const threads = parseNumber(o.intraOpThreads, '--intra-op-threads');
      const r = await profileModel({ model: o.model, runs: parseIntList(o.runs, '--runs')[0]!, ...(threads !== undefined ? { intraOpNumThreads: threads } : {}), command: commandLine() });
      process.stdout.write(formatProfile(r));
      if (o.json) await writeOut(o.json, JSON.stringify(r, null, 1) + '\n');
    });

  bench
    .command('report')
    .description('An HTML page showing bench result files side by side (tables + latency-vs-throughput plots)')
    .argument('<results...>', 'bench result JSON files')
    .requiredOption('--out <file>', 'HTML file to write')
    .option('--title <text>', 'page title', 'Osprey bench results')
    .option('--plot <file>', 'also write the combined latency-vs-throughput SVG')
    .action(async (files: string[], o: { out: string; title: string; plot?: string }) => {
      const { loadBenchResults } = await import('../../bench/load.js');
      const { renderReportHtml } = await import('../../bench/report.js');
      const results = [];
      for (const f of files) results.push(...(await loadBenchResults(f, basename(f))));
      await writeOut(o.out, renderReportHtml(results, o.title));
      if (o.plot) {
        const { plotResults } = await import('../../bench/plot.js');
        await writeOut(o.plot, plotResults(results.map(({ name, result }) => ({ name, result })), o.title));
      }
    });

}
