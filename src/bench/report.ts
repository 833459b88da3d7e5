/**
 * `osprey bench report`: one static HTML page showing bench results side by side (a combined latency-vs-throughput
 * plot, then one column per result with its environment, its own plot and its table). Pure TS, no I/O.
 */
import { escapeXml, plotResults } from './plot.js';
import type { AnyBenchResult } from './result.js';

const e = escapeXml;
const f = (v: number | undefined, d = 1): string => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(d));
const mib = (b: number | undefined): string => (b === undefined ? '–' : (b / 2 ** 20).toFixed(0));

function table(r: AnyBenchResult): string {
  if (r.kind === 'osprey-bench-engine') {
    const rows = r.configurations.map(
      (c) =>
        `<tr><td>${c.batchSize}</td><td>${c.instances}</td><td>${f(c.imagesPerSecond)}</td><td>${f(c.latencyMs.median, 2)}</td><td>${f(c.latencyMs.p90, 2)}</td>` +
        `<td>${f(c.latencyMs.p99, 2)}</td><td>${f(c.stagesMs.preprocess.mean, 2)} / ${f(c.stagesMs.inference.mean, 2)} / ${f(c.stagesMs.postprocess.mean, 2)}</td>` +
        `<td>${mib(c.memory.peakRssBytes)}</td><td>${mib(c.memory.peakGpuMemoryBytes)}</td></tr>`,
    );
    const skipped = r.skipped.map((s) => `<li>batch ${s.batchSize} × ${s.instances}: ${e(s.reason)}</li>`).join('');
    return (
      `<table><thead><tr><th>batch</th><th>instances</th><th>images/s</th><th>median ms</th><th>p90 ms</th><th>p99 ms</th>` +
      `<th>pre / infer / post ms (mean)</th><th>peak RSS MiB</th><th>peak GPU MiB</th></tr></thead><tbody>${rows.join('')}</tbody></table>` +
      (skipped ? `<p>skipped:</p><ul>${skipped}</ul>` : '')
    );
  }
  const steps =
    r.kind === 'osprey-bench-server'
      ? [{ name: '', steps: r.steps }]
      : r.points.map((p) => ({
          name: `max batch ${p.maxBatchSize}, ${p.instances} inst, delay ${p.maxQueueDelayMicroseconds} µs${p.error ? ` — failed: ${p.error.code}: ${p.error.message}` : ''}`,
          steps: p.steps,
        }));
  const pct = r.settings.percentile;
  return steps
    .map(
      (g) =>
        (g.name ? `<h4>${e(g.name)}</h4>` : '') +
        `<table><thead><tr><th>load</th><th>req</th><th>err</th><th>images/s</th><th>median ms</th><th>p${pct} ms</th><th>server queue µs</th><th>server infer µs</th></tr></thead><tbody>` +
        g.steps
          .map(
            (s) =>
              `<tr><td>${s.concurrency !== undefined ? `c=${s.concurrency}` : `${s.requestRate}/s`}</td><td>${s.requests}</td><td>${s.errors}</td><td>${f(s.imagesPerSecond)}</td>` +
              `<td>${f(s.latencyMs.median, 2)}</td><td>${f(s.percentileMs, 2)}</td><td>${f(s.server?.queueUs, 0)}</td><td>${f(s.server?.computeInferUs, 0)}</td></tr>`,
          )
          .join('') +
        `</tbody></table>`,
    )
    .join('');
}

function environment(r: AnyBenchResult): string {
  const env = r.environment;
  const ep = 'executionProvider' in r ? (r as { executionProvider: string }).executionProvider : r.kind === 'osprey-bench-server' ? r.server.protocol : '';
  return (
    `<dl><dt>model</dt><dd>${e(r.model.name)}${r.model.precision ? ` (${e(r.model.precision)})` : ''}</dd>` +
    (r.model.sha256 ? `<dt>sha256</dt><dd><code>${e(r.model.sha256.slice(0, 16))}…</code></dd>` : '') +
    `<dt>device</dt><dd>${e(env?.device ?? '?')} (${env?.cpuCount ?? '?'} CPUs)</dd>` +
    `<dt>${r.kind === 'osprey-bench-server' ? 'protocol' : 'execution provider'}</dt><dd>${e(ep)}</dd>` +
    `<dt>versions</dt><dd>Osprey ${e(env?.ospreyVersion ?? '?')}, ONNX Runtime ${e(env?.onnxRuntimeVersion ?? '?')}, Node ${e(env?.nodeVersion ?? '?')}</dd>` +
    `<dt>when</dt><dd>${e(env?.createdAt ?? '?')}</dd>` +
    `<dt>command</dt><dd><code>${e(env?.command ?? '?')}</code></dd></dl>`
  );
}

/** Renders the page. `results[i].name` is the column title (usually the file name). */
export function renderReportHtml(results: ReadonlyArray<{ name: string; result: AnyBenchResult }>, title = 'Osprey bench results'): string {
  const combined = plotResults(results.map(({ name, result }) => ({ name, result })), 'All results: latency vs throughput');
  const columns = results
    .map(
      ({ name, result }) =>
        `<section class="col"><h2>${e(name)}</h2><p class="kind">${e(result.kind)}</p>${environment(result)}` +
        `<div class="plot">${plotResults([{ result }], result.model.name)}</div>${table(result)}</section>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${e(title)}</title>
<style>
body{font-family:"DejaVu Sans",Arial,sans-serif;margin:24px;color:#222}
.cols{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.col{flex:1 1 520px;border:1px solid #ddd;border-radius:6px;padding:12px;min-width:480px}
.col svg{max-width:100%;height:auto}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f3f3f3}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 10px;font-size:13px}
dt{font-weight:bold}dd{margin:0;word-break:break-all}
.kind{color:#666;margin-top:-8px}
</style></head><body>
<h1>${e(title)}</h1>
<p>Latency is the p99 per request (per batch call for engine results); throughput is images per second.
Percentiles use linear interpolation (numpy's default).</p>
<div class="plot">${combined}</div>
<div class="cols">
${columns}
</div>
</body></html>
`;
}
