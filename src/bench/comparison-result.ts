/**
 * The result of an interleaved engine comparison (`osprey bench engine` with several `--model`,
 * src/bench/engine-compare.ts), its text table, and each engine as a single-engine result. No I/O and no engine
 * imports: `osprey bench report` reads these files without loading ONNX Runtime.
 */
import type { BenchEnvironment, BenchModel, EngineBenchConfiguration, EngineBenchResult } from './result.js';
import { mean, percentile, round } from './stats.js';

/** One engine's measured window in one round. */
export interface ComparisonWindow {
  round: number;
  /** Index into `engines`. */
  engine: number;
  /** Position of this window in the round (0 = first; a round is A B … … B A, two windows per engine). */
  order: number;
  durationMs: number;
  batches: number;
  images: number;
  imagesPerSecond: number;
  /** Median end-to-end batch latency, ms. */
  medianLatencyMs: number;
  /** Mean inference time per batch (engine.run), ms. */
  inferenceMeanMs: number;
  /**
   * CPU used by other processes during the window, in cores (e.g. 0.8 = most of one of the 2 cores), from
   * /proc/stat minus this process's own CPU time; null where /proc/stat is not readable.
   */
  otherProcessesCores: number | null;
  /** CPU stolen by the hypervisor during the window, in cores (/proc/stat `steal`); null without /proc/stat. */
  stealCores: number | null;
  /** 1-minute load average at the window's start. */
  loadAverage1m: number;
}

/** min / median / max (and mean) of a ratio over the rounds. */
export interface RatioSummary {
  min: number;
  median: number;
  max: number;
  mean: number;
  /** One value per round, in round order. */
  perRound: number[];
}

/** The comparison of one engine with the baseline in one configuration. */
export interface EngineRatio {
  /** Index into `engines`. */
  engine: number;
  /** `"<engine name> / <baseline name>"`. */
  label: string;
  /** images/s of the engine ÷ images/s of the baseline, per round. */
  throughputRatio: RatioSummary;
  /** Baseline's mean inference time ÷ the engine's, per round (pre- and post-processing excluded). */
  inferenceSpeedup: RatioSummary;
}

/** One configuration (batch × instances) of the comparison. */
export interface ComparisonConfiguration {
  batchSize: number;
  instances: number;
  windows: ComparisonWindow[];
  /** Each engine's figures over all its windows, in the single-engine bench's shape. */
  perEngine: EngineBenchConfiguration[];
  ratios: EngineRatio[];
  /** CPU used by other processes over all windows (cores): min / median / max; null without /proc/stat. */
  otherProcessesCores: { min: number; median: number; max: number } | null;
}

/** The JSON `osprey bench engine` writes with several `--model`. */
export interface EngineComparisonResult {
  kind: 'osprey-bench-engine-comparison';
  schemaVersion: number;
  engines: Array<BenchModel & { executionProvider: string }>;
  environment: BenchEnvironment;
  settings: { rounds: number; warmupMs: number; durationMs: number; /** `ABBA-within-round`: each round A B … … B A, `durationMs / 2` per window; `ABBA` (files before it): one window per engine per round, order reversed every other round. */ order: 'ABBA' | 'ABBA-within-round'; image: string; pipelineDepth?: number; intraOpNumThreads?: number; intraOpSpinning?: boolean };
  configurations: ComparisonConfiguration[];
}

/** min / median / max / mean of per-round values (median: numpy's linear interpolation). */
export function summarizeRatios(perRound: readonly number[]): RatioSummary {
  if (perRound.length === 0) throw new RangeError('no rounds to summarise');
  const r = (v: number) => round(v, 4);
  return {
    min: r(Math.min(...perRound)),
    median: r(percentile(perRound, 50)),
    max: r(Math.max(...perRound)),
    mean: r(mean(perRound)),
    perRound: perRound.map(r),
  };
}

/**
 * One engine's figures in one round, over its windows: images/s = Σ images ÷ Σ window time; inference mean
 * weighted by batches.
 */
export function roundFigures(windows: readonly ComparisonWindow[], r: number, k: number): { imagesPerSecond: number; inferenceMeanMs: number } {
  const ws = windows.filter((w) => w.round === r && w.engine === k);
  if (ws.length === 0) throw new RangeError(`no window of engine ${k} in round ${r}`);
  const images = ws.reduce((a, w) => a + w.images, 0);
  const ms = ws.reduce((a, w) => a + w.durationMs, 0);
  const batches = ws.reduce((a, w) => a + w.batches, 0);
  return { imagesPerSecond: (images * 1000) / ms, inferenceMeanMs: ws.reduce((a, w) => a + w.inferenceMeanMs * w.batches, 0) / batches };
}

/**
 * Each engine of a comparison as a single-engine result (its figures over all its windows), for plots, reports
 * and plans.
 */
export function comparisonEngineResults(c: EngineComparisonResult): EngineBenchResult[] {
  return c.engines.map(({ executionProvider, ...model }, k) => ({
    kind: 'osprey-bench-engine',
    schemaVersion: c.schemaVersion,
    model,
    executionProvider,
    environment: c.environment,
    settings: {
      warmupMs: c.settings.warmupMs,
      durationMs: c.settings.durationMs * c.settings.rounds,
      image: c.settings.image,
      ...(c.settings.pipelineDepth !== undefined ? { pipelineDepth: c.settings.pipelineDepth } : {}),
      ...(c.settings.intraOpNumThreads !== undefined ? { intraOpNumThreads: c.settings.intraOpNumThreads } : {}),
      ...(c.settings.intraOpSpinning !== undefined ? { intraOpSpinning: c.settings.intraOpSpinning } : {}),
    },
    configurations: c.configurations.map((cfg) => cfg.perEngine[k]!),
    skipped: [],
  }));
}

/** The text table `osprey bench engine` prints for a comparison. */
export function formatComparisonResult(c: EngineComparisonResult): string {
  const f = (v: number | null | undefined, d = 2) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(d));
  const names = c.engines.map((e, k) => `${String.fromCharCode(65 + k)} = ${e.name} (${e.precision ?? '?'}, ${e.executionProvider}, sha256 ${e.sha256?.slice(0, 12)}…)`);
  const lines = [
    `interleaved comparison on ${c.environment.device}, ONNX Runtime ${c.environment.onnxRuntimeVersion}, Osprey ${c.environment.ospreyVersion}`,
    ...names.map((n) => `  ${n}`),
    `${c.settings.rounds} rounds; per engine per round ${c.settings.warmupMs} ms warm-up + ${c.settings.durationMs} ms measured; order ${c.settings.order === 'ABBA-within-round' ? 'A B … B A in every round (two half windows per engine)' : 'ABBA over rounds'}; ` +
      `pipeline depth ${c.settings.pipelineDepth ?? 1} per instance; image ${c.settings.image}`,
  ];
  for (const cfg of c.configurations) {
    lines.push('', `batch ${cfg.batchSize} × ${cfg.instances} instance(s)`);
    const letters = c.engines.map((_, k) => String.fromCharCode(65 + k));
    lines.push(
      'round  ' + letters.map((l) => `${l} img/s`.padStart(9)).join(' ') + '  ' + cfg.ratios.map((r) => `${letters[r.engine]}/A`.padStart(6)).join(' ') + '   other processes (cores)  load 1m',
    );
    for (let r = 0; r < c.settings.rounds; r++) {
      const ws = cfg.windows.filter((w) => w.round === r);
      const ips = letters.map((_, k) => roundFigures(cfg.windows, r, k).imagesPerSecond);
      const others = ws.map((w) => f(w.otherProcessesCores)).join(' / ');
      lines.push(
        `${String(r + 1).padStart(5)}  ` + ips.map((v) => f(v).padStart(9)).join(' ') + '  ' + cfg.ratios.map((x) => f(x.throughputRatio.perRound[r]).padStart(6)).join(' ') + `   ${others.padEnd(24)} ${f(ws[0]!.loadAverage1m)}`,
      );
    }
    for (const x of cfg.ratios) {
      const t = x.throughputRatio;
      const i = x.inferenceSpeedup;
      lines.push(`${x.label}: throughput ×${f(t.median)} median (min ${f(t.min)}, max ${f(t.max)}) over ${t.perRound.length} rounds; inference alone ×${f(i.median)} (min ${f(i.min)}, max ${f(i.max)})`);
    }
    for (let k = 0; k < c.engines.length; k++) {
      const e = cfg.perEngine[k]!;
      lines.push(
        `  ${letters[k]}: ${f(e.imagesPerSecond, 1)} images/s overall, median ${f(e.latencyMs.median, 1)} ms per batch, pre / queue / infer / post ${f(e.stagesMs.preprocess.mean)} / ${f(e.stagesMs.queue?.mean ?? 0)} / ${f(e.stagesMs.inference.mean)} / ${f(e.stagesMs.postprocess.mean)} ms, peak RSS ${(e.memory.peakRssBytes / 2 ** 20).toFixed(0)} MiB`,
      );
    }
    if (cfg.otherProcessesCores) lines.push(`  other processes used ${f(cfg.otherProcessesCores.min)}–${f(cfg.otherProcessesCores.max)} cores (median ${f(cfg.otherProcessesCores.median)}) of ${c.environment.cpuCount} during the windows`);
  }
  return lines.join('\n') + '\n';
}
