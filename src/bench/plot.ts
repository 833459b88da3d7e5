/**
 * Latency-vs-throughput plots as standalone SVG (written by hand: no plotting dependency). Pure TS, no I/O.
 *
 * x axis: throughput (images/s); y axis: latency (ms, the chosen percentile). One polyline per series
 * (a configuration, e.g. "1 instance" across batch sizes, or one server configuration across load steps),
 * points labelled (e.g. "b4", "c8"). An optional horizontal line marks the latency target (SLO / budget).
 */
import type { AnyBenchResult } from './result.js';

export interface PlotPoint {
  /** Throughput, images/s. */
  x: number;
  /** Latency, ms. */
  y: number;
  /** Short label drawn beside the point (e.g. "b4", "c16"). */
  label?: string;
}

export interface PlotSeries {
  name: string;
  points: PlotPoint[];
}

export interface PlotOptions {
  title: string;
  xLabel?: string;
  yLabel?: string;
  /** Draws a dashed horizontal line at this latency (ms), e.g. the SLO. */
  thresholdMs?: number;
  width?: number;
  height?: number;
}

/** Colour-blind-safe palette (Okabe–Ito). */
const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#F0E442'];

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** "Nice" tick values from 0 to at least `max` (1, 2, 2.5, 5 × 10^k steps). */
export function niceTicks(max: number, target = 5): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1];
  const raw = max / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let v = 0; v < max + step * 0.999; v += step) ticks.push(Math.round(v * 1e6) / 1e6);
  return ticks;
}

function tickText(v: number): string {
  return Math.abs(v) >= 10000 ? `${Math.round(v / 100) / 10}k` : String(Math.round(v * 100) / 100);
}

/** Renders series as an SVG document (string). */
export function renderLatencyThroughputSvg(series: readonly PlotSeries[], opts: PlotOptions): string {
  const longest = Math.max(0, ...series.map((s) => s.name.length));
  const legendWidth = Math.min(360, Math.max(140, Math.ceil(longest * 6.8) + 56)); // ~6.8 px per 12 px glyph
  const W = (opts.width ?? 540) + legendWidth;
  const H = opts.height ?? 440;
  const m = { left: 64, right: legendWidth, top: 40, bottom: 52 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const all = series.flatMap((s) => s.points);
  const maxX = Math.max(1e-9, ...all.map((p) => p.x));
  const maxY = Math.max(1e-9, ...all.map((p) => p.y), opts.thresholdMs ?? 0);
  const xt = niceTicks(maxX * 1.05);
  const yt = niceTicks(maxY * 1.05);
  const xMax = xt[xt.length - 1]!;
  const yMax = yt[yt.length - 1]!;
  const sx = (x: number) => m.left + (x / xMax) * pw;
  const sy = (y: number) => m.top + ph - (y / yMax) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${m.left}" y="22" font-size="15" font-weight="bold">${escapeXml(opts.title)}</text>`);
  // grid + ticks
  for (const v of xt) {
    const x = sx(v).toFixed(1);
    out.push(`<line x1="${x}" y1="${m.top}" x2="${x}" y2="${m.top + ph}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${x}" y="${m.top + ph + 16}" text-anchor="middle">${tickText(v)}</text>`);
  }
  for (const v of yt) {
    const y = sy(v).toFixed(1);
    out.push(`<line x1="${m.left}" y1="${y}" x2="${m.left + pw}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.left - 6}" y="${(sy(v) + 4).toFixed(1)}" text-anchor="end">${tickText(v)}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${H - 12}" text-anchor="middle">${escapeXml(opts.xLabel ?? 'throughput (images/s)')}</text>`);
  out.push(`<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${escapeXml(opts.yLabel ?? 'latency p99 (ms)')}</text>`);
  if (opts.thresholdMs !== undefined) {
    const y = sy(opts.thresholdMs).toFixed(1);
    out.push(`<line x1="${m.left}" y1="${y}" x2="${m.left + pw}" y2="${y}" stroke="#b00" stroke-dasharray="6 4"/>`);
    out.push(`<text x="${m.left + pw - 4}" y="${(sy(opts.thresholdMs) - 5).toFixed(1)}" text-anchor="end" fill="#b00">target ${tickText(opts.thresholdMs)} ms</text>`);
  }
  series.forEach((s, i) => {
    const c = PALETTE[i % PALETTE.length]!;
    const pts = s.points; // in load order (batch size, concurrency or rate), as the series lists them
    if (pts.length > 1) {
      out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ')}"/>`);
    }
    for (const p of pts) {
      out.push(`<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="4" fill="${c}"><title>${escapeXml(`${s.name} ${p.label ?? ''}: ${p.x.toFixed(1)} img/s, ${p.y.toFixed(2)} ms`)}</title></circle>`);
      if (p.label) out.push(`<text x="${(sx(p.x) + 6).toFixed(1)}" y="${(sy(p.y) - 6).toFixed(1)}" font-size="10" fill="${c}">${escapeXml(p.label)}</text>`);
    }
    const ly = m.top + 8 + i * 18;
    out.push(`<line x1="${m.left + pw + 14}" y1="${ly}" x2="${m.left + pw + 34}" y2="${ly}" stroke="${c}" stroke-width="3"/>`);
    out.push(`<text x="${m.left + pw + 40}" y="${ly + 4}">${escapeXml(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/**
 * Series for a bench result: engine → one series per instance count across batch sizes; server → one series
 * across load steps; search → one series per configuration across load steps. y is the p99 (or `percentile`).
 */
export function seriesFromResult(r: AnyBenchResult, prefix = ''): PlotSeries[] {
  if (r.kind === 'osprey-bench-engine') {
    const byInst = new Map<number, Array<PlotPoint & { batch: number }>>();
    for (const c of r.configurations) {
      const arr = byInst.get(c.instances) ?? [];
      arr.push({ x: c.imagesPerSecond, y: c.latencyMs.p99, label: `b${c.batchSize}`, batch: c.batchSize });
      byInst.set(c.instances, arr);
    }
    for (const arr of byInst.values()) arr.sort((a, b) => a.batch - b.batch);
    return [...byInst.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([inst, points]) => ({ name: `${prefix}${inst} instance${inst === 1 ? '' : 's'}`, points }));
  }
  if (r.kind === 'osprey-bench-server') {
    return [
      {
        name: `${prefix}${r.model.name} (${r.server.protocol})`,
        points: r.steps.map((s) => ({ x: s.imagesPerSecond, y: s.percentileMs, label: s.concurrency !== undefined ? `c${s.concurrency}` : `r${s.requestRate}` })),
      },
    ];
  }
  return r.points.map((p) => ({
    name: `${prefix}max batch ${p.maxBatchSize} · ${p.instances} inst · ${p.maxQueueDelayMicroseconds} µs`,
    points: p.steps.map((s) => ({ x: s.imagesPerSecond, y: s.percentileMs, label: `c${s.concurrency ?? ''}` })),
  }));
}

/** Plot of one or more results (the `--plot FILE` output). */
export function plotResults(results: ReadonlyArray<{ result: AnyBenchResult; name?: string }>, title: string, thresholdMs?: number): string {
  const series = results.flatMap(({ result, name }) => seriesFromResult(result, results.length > 1 ? `${name ?? result.model.name}: ` : ''));
  const percentileLabel =
    results.length === 1 && results[0]!.result.kind !== 'osprey-bench-engine' ? `latency p${percentileOf(results[0]!.result)} (ms)` : 'latency p99 (ms)';
  return renderLatencyThroughputSvg(series, { title, yLabel: percentileLabel, ...(thresholdMs !== undefined ? { thresholdMs } : {}) });
}

function percentileOf(r: AnyBenchResult): number {
  if (r.kind === 'osprey-bench-server') return r.settings.percentile;
  if (r.kind === 'osprey-bench-search') return r.settings.percentile;
  return 99;
}
