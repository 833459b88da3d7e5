/**
 * `osprey val --report DIR`: one self-contained HTML page (`index.html`) with inline SVG plots written here
 * (no plotting dependency): per-class AP bars, precision-recall curves at IoU 0.5 and averaged over
 * IoU 0.50:0.95, and a confusion matrix per model; plus `results.json` with the numbers behind them.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { meanPrecisionCurve } from '../core/cocoeval.js';
import { OSPREY_VERSION } from '../version.js';
import type { ConfusionMatrix } from './confusion.js';
import { formatDrop, type Gate } from './gate.js';
import { displayName, type ModelValResult } from './runner.js';

/** Model colours (Okabe–Ito palette, readable by colour-blind readers). */
const COLORS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#F0E442', '#000000'];

export interface ReportInput {
  results: ModelValResult[];
  drops: (number | null)[];
  failed: boolean[];
  gate: Gate;
  dataset: { source: string; images: number; annotations: number; issues: string };
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const fmt = (v: number | null, d = 3) => (v === null ? '—' : v.toFixed(d));

/** Horizontal grouped bars: AP50-95 per class (classes with ground truth), one bar per model. */
export function perClassApSvg(results: readonly ModelValResult[]): string {
  const classes = results[0]!.perClass.filter((c) => c.ap50_95 !== null).sort((a, b) => (b.ap50_95 ?? 0) - (a.ap50_95 ?? 0));
  const M = results.length, bar = 9, gap = 6, labelW = 130, plotW = 420, top = 28 + M * 14;
  const rowH = M * bar + gap;
  const h = top + classes.length * rowH + 30;
  const w = labelW + plotW + 60;
  const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="11" role="img" aria-label="AP50-95 per class">`];
  for (let t = 0; t <= 10; t += 2) {
    const x = labelW + (plotW * t) / 10;
    out.push(`<line x1="${x}" y1="${top - 4}" x2="${x}" y2="${h - 26}" stroke="#ddd"/><text x="${x}" y="${h - 12}" text-anchor="middle">${(t / 10).toFixed(1)}</text>`);
  }
  out.push(`<text x="${labelW + plotW / 2}" y="12" text-anchor="middle" font-weight="bold">AP50-95 per class (sorted by ${esc(displayName(results[0]!.model))}; ground-truth count in brackets)</text>`);
  results.forEach((r, m) => {
    out.push(`<rect x="${labelW}" y="${20 + m * 14}" width="10" height="10" fill="${COLORS[m % COLORS.length]}"/><text x="${labelW + 14}" y="${29 + m * 14}">${esc(displayName(r.model).slice(0, 60))}</text>`);
  });
  classes.forEach((c, i) => {
    const y0 = top + i * rowH;
    out.push(`<text x="${labelW - 6}" y="${y0 + (M * bar) / 2 + 4}" text-anchor="end">${esc(c.name)} (${c.numGroundTruth})</text>`);
    results.forEach((r, m) => {
      const v = r.perClass.find((x) => x.categoryId === c.categoryId)?.ap50_95 ?? 0;
      out.push(`<rect x="${labelW}" y="${y0 + m * bar}" width="${(plotW * v).toFixed(1)}" height="${bar - 1}" fill="${COLORS[m % COLORS.length]}"><title>${esc(displayName(r.model))} ${esc(c.name)}: ${v.toFixed(3)}</title></rect>`);
    });
  });
  out.push('</svg>');
  return out.join('\n');
}

/** Precision-recall curves (mean interpolated precision over classes) for the given IoU threshold indices. */
export function prCurveSvg(results: readonly ModelValResult[], iouIndices: readonly number[], title: string): string {
  const W = 380, H = 300, L = 48, T = 28, pw = W - L - 16, ph = H - T - 40;
  const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11" role="img" aria-label="${esc(title)}">`];
  out.push(`<text x="${L + pw / 2}" y="16" text-anchor="middle" font-weight="bold">${esc(title)}</text>`);
  for (let t = 0; t <= 10; t += 2) {
    const x = L + (pw * t) / 10, y = T + ph - (ph * t) / 10;
    out.push(`<line x1="${x}" y1="${T}" x2="${x}" y2="${T + ph}" stroke="#eee"/><line x1="${L}" y1="${y}" x2="${L + pw}" y2="${y}" stroke="#eee"/>`);
    out.push(`<text x="${x}" y="${T + ph + 14}" text-anchor="middle">${(t / 10).toFixed(1)}</text><text x="${L - 6}" y="${y + 4}" text-anchor="end">${(t / 10).toFixed(1)}</text>`);
  }
  out.push(`<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${L + pw / 2}" y="${H - 8}" text-anchor="middle">recall</text><text x="12" y="${T + ph / 2}" text-anchor="middle" transform="rotate(-90 12 ${T + ph / 2})">precision</text>`);
  results.forEach((r, m) => {
    const curve = meanPrecisionCurve(r.evaluation, iouIndices);
    const rec = r.evaluation.params.recallThresholds;
    const pts: string[] = [];
    for (let i = 0; i < curve.length; i++) {
      if (Number.isNaN(curve[i]!)) continue;
      pts.push(`${(L + pw * rec[i]!).toFixed(1)},${(T + ph - ph * curve[i]!).toFixed(1)}`);
    }
    out.push(`<polyline fill="none" stroke="${COLORS[m % COLORS.length]}" stroke-width="2" points="${pts.join(' ')}"><title>${esc(displayName(r.model))}</title></polyline>`);
    const ly = T + ph - 8 - (results.length - m) * 14; // legend bottom-left: curves fall to the right
    out.push(`<rect x="${L + 8}" y="${ly}" width="10" height="10" fill="${COLORS[m % COLORS.length]}"/><text x="${L + 22}" y="${ly + 9}">${esc(displayName(r.model).slice(0, 40))}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

/** Confusion matrix heat map (columns normalized: each true class sums to 1), classes with any count only. */
export function confusionSvg(cm: ConfusionMatrix, title: string): string {
  const n = cm.labels.length, N = n + 1;
  const keep: number[] = [];
  for (let k = 0; k < n; k++) {
    let s = 0;
    for (let j = 0; j < N; j++) s += cm.matrix[k * N + j]! + cm.matrix[j * N + k]!;
    if (s > 0) keep.push(k);
  }
  keep.push(n);
  const labels = keep.map((k) => (k === n ? 'background' : cm.labels[k]!));
  const cell = keep.length > 40 ? 9 : 16, L = 110, T = 110;
  const size = keep.length * cell;
  const W = L + size + 20, H = T + size + 40;
  const colSum = keep.map((t) => keep.reduce((s, p) => s + cm.matrix[p * N + t]!, 0));
  const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="${cell > 10 ? 10 : 8}" role="img" aria-label="${esc(title)}">`];
  out.push(`<text x="${L}" y="14" font-weight="bold" font-size="12">${esc(title)}</text>`);
  keep.forEach((p, i) => {
    out.push(`<text x="${L - 4}" y="${T + i * cell + cell - 2}" text-anchor="end">${esc(labels[i]!)}</text>`);
    out.push(`<text transform="translate(${L + i * cell + cell - 2} ${T - 4}) rotate(-90)">${esc(labels[i]!)}</text>`);
    keep.forEach((t, j) => {
      const v = cm.matrix[p * N + t]!;
      const f = colSum[j]! > 0 ? v / colSum[j]! : 0;
      if (v === 0) return;
      const shade = Math.round(255 - 200 * f);
      out.push(`<rect x="${L + j * cell}" y="${T + i * cell}" width="${cell}" height="${cell}" fill="rgb(${shade},${shade},255)"><title>pred ${esc(labels[i]!)} / true ${esc(labels[j]!)}: ${v} (${(f * 100).toFixed(0)}%)</title></rect>`);
    });
  });
  out.push(`<rect x="${L}" y="${T}" width="${size}" height="${size}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${L + size / 2}" y="${H - 20}" text-anchor="middle" font-size="11">true class (columns normalized)</text>`);
  out.push(`<text x="${L + size / 2}" y="${H - 6}" text-anchor="middle" font-size="10">rows: predicted class; conf &gt; ${cm.conf}, IoU &gt; ${cm.iou}</text>`);
  out.push('</svg>');
  return out.join('\n');
}

/** The HTML page. */
export function renderReportHtml(input: ReportInput): string {
  const { results, drops, failed, gate, dataset } = input;
  const rows = results
    .map((r, i) => {
      const status = i === 0 ? 'reference' : failed[i] ? `<b style="color:#b00">FAIL</b>` : 'pass';
      return `<tr><td title="${esc(r.modelPath)}">${esc(displayName(r.model))}</td><td>${fmt(r.map50_95)}</td><td>${fmt(r.map50)}</td><td>${fmt(r.map75)}</td><td>${fmt(r.mapSmall)}</td><td>${fmt(r.mapMedium)}</td><td>${fmt(r.mapLarge)}</td><td>${fmt(r.ar100)}</td><td>${r.images.evaluated}</td><td>${r.msPerImage.toFixed(1)}</td><td>${i === 0 ? '—' : formatDrop(drops[i] ?? null, gate)}</td><td>${status}</td></tr>`;
    })
    .join('\n');
  const sections = [
    `<h2>AP per class</h2>${perClassApSvg(results)}`,
    `<h2>Precision-recall curves</h2><p>Mean interpolated precision over classes at COCO's 101 recall thresholds (area all, maxDets 100).</p>` +
      `${prCurveSvg(results, [0], 'IoU 0.50')}${prCurveSvg(results, Array.from(results[0]!.evaluation.params.iouThresholds, (_, t) => t), 'IoU 0.50:0.95 (mean)')}`,
    `<h2>Confusion matrices</h2>${results.filter((r, i) => results.findIndex((x) => x.modelPath === r.modelPath) === i).map((r) => confusionSvg(r.confusion, displayName(r.model))).join('\n')}`,
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>osprey val report</title>
<style>body{font-family:sans-serif;margin:24px;max-width:1200px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}svg{margin:8px 16px 8px 0;vertical-align:top}</style>
</head><body>
<h1>osprey val</h1>
<p>Dataset <code>${esc(dataset.source)}</code>: ${dataset.images} images evaluated, ${dataset.annotations} annotations${dataset.issues ? `; data issues: ${esc(dataset.issues)}` : ''}.
Settings: conf ${results[0]!.settings.conf}, NMS IoU ${results[0]!.settings.iou}, max ${results[0]!.settings.maxDet} detections, input ${results[0]!.settings.inputWidth}×${results[0]!.settings.inputHeight} letterbox.
Gate: mAP50-95 drop against the first model ≤ ${esc(gate.text)}. Osprey ${OSPREY_VERSION}, ${new Date().toISOString()}.</p>
<table><tr><th>model</th><th>mAP50-95</th><th>mAP50</th><th>mAP75</th><th>APs</th><th>APm</th><th>APl</th><th>AR100</th><th>images</th><th>ms/img</th><th>drop</th><th>gate</th></tr>
${rows}
</table>
${sections.join('\n')}
</body></html>
`;
}

/** Writes `DIR/index.html` and `DIR/results.json`. @returns the HTML path. */
export async function writeReport(dir: string, input: ReportInput, json: unknown): Promise<string> {
  await mkdir(dir, { recursive: true });
  const html = join(dir, 'index.html');
  await writeFile(html, renderReportHtml(input));
  await writeFile(join(dir, 'results.json'), `${JSON.stringify(json, null, 2)}\n`);
  return html;
}
