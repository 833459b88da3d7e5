/**
 * Plain-text tables for `osprey bench` results (what the CLI prints without --json).
 */
import type { EngineBenchResult, SearchResult, ServerBenchResult } from './result.js';

const f = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '–');

export function formatEngineResult(r: EngineBenchResult): string {
  const lines = [
    `model ${r.model.name} (${r.model.precision ?? '?'}, sha256 ${r.model.sha256?.slice(0, 12)}…) on ${r.environment.device}, EP ${r.executionProvider}, ` +
      `ONNX Runtime ${r.environment.onnxRuntimeVersion}, Osprey ${r.environment.ospreyVersion}`,
    `warm-up ${r.settings.warmupMs} ms, measured ${r.settings.durationMs} ms per configuration, pipeline depth ${r.settings.pipelineDepth ?? 1} per instance, image ${r.settings.image}`,
    '',
    'batch inst   images/s   min    mean   median  p90    p95    p99    max   (ms per batch)   pre / queue / infer / post (mean ms)   peak RSS',
  ];
  for (const c of r.configurations) {
    const l = c.latencyMs;
    lines.push(
      `${String(c.batchSize).padStart(5)} ${String(c.instances).padStart(4)} ${f(c.imagesPerSecond).padStart(10)} ` +
        [l.min, l.mean, l.median, l.p90, l.p95, l.p99, l.max].map((v) => f(v).padStart(6)).join(' ') +
        `   ${f(c.stagesMs.preprocess.mean, 2)} / ${f(c.stagesMs.queue?.mean ?? 0, 2)} / ${f(c.stagesMs.inference.mean, 2)} / ${f(c.stagesMs.postprocess.mean, 2)}`.padEnd(42) +
        `   ${(c.memory.peakRssBytes / 2 ** 20).toFixed(0)} MiB` +
        (c.memory.peakGpuMemoryBytes !== undefined ? `, GPU ${(c.memory.peakGpuMemoryBytes / 2 ** 20).toFixed(0)} MiB` : ''),
    );
  }
  return lines.join('\n') + '\n';
}

export function formatServerResult(r: ServerBenchResult): string {
  const p = r.settings.percentile;
  const lines = [
    `server ${r.server.url} (${r.server.protocol}, ${r.server.endpoint}), model ${r.model.name}; input ${r.settings.input}`,
    `measurement window ${r.settings.measurementIntervalMs} ms after ${r.settings.warmupMs} ms warm-up; stopped: ${r.stoppedBecause}`,
    '',
    `load        req   err   images/s   median   p${p}     | server per request: queue  input  infer  output (µs)`,
  ];
  for (const s of r.steps) {
    const load = s.concurrency !== undefined ? `c=${s.concurrency}` : `${s.requestRate}/s`;
    const sv = s.server ? `${f(s.server.queueUs, 0).padStart(6)} ${f(s.server.computeInputUs, 0).padStart(6)} ${f(s.server.computeInferUs, 0).padStart(6)} ${f(s.server.computeOutputUs, 0).padStart(6)}` : '  (no stats endpoint)';
    lines.push(`${load.padEnd(9)} ${String(s.requests).padStart(6)} ${String(s.errors).padStart(5)} ${f(s.imagesPerSecond).padStart(10)} ${f(s.latencyMs.median, 2).padStart(8)} ${f(s.percentileMs, 2).padStart(8)}   |                 ${sv}`);
  }
  return lines.join('\n') + '\n';
}

export function formatSearchResult(r: SearchResult): string {
  const lines = [`latency budget p${r.settings.percentile} ≤ ${r.settings.latencyBudgetMs} ms; ${r.points.length} configurations measured`, ''];
  lines.push('max batch  instances  max queue delay µs   best images/s under budget   at p' + r.settings.percentile + ' ms');
  for (const p of r.points) {
    lines.push(
      `${String(p.maxBatchSize).padStart(9)} ${String(p.instances).padStart(10)} ${String(p.maxQueueDelayMicroseconds).padStart(20)}   ` +
        (p.error ? `   failed: ${p.error.code}` : p.best ? `${f(p.best.imagesPerSecond).padStart(26)}   ${f(p.best.percentileMs, 2)} (c=${p.best.concurrency})` : '                      none'),
    );
  }
  lines.push('');
  lines.push(
    r.best
      ? `best: maxBatchSize ${r.best.maxBatchSize}, instanceGroup count ${r.best.instances}, maxQueueDelayMicroseconds ${r.best.maxQueueDelayMicroseconds} → ${f(r.best.imagesPerSecond)} images/s at p${r.settings.percentile} ${f(r.best.percentileMs, 2)} ms`
      : 'no configuration met the latency budget',
  );
  if (r.writtenConfig) lines.push(`written: ${r.writtenConfig}`);
  return lines.join('\n') + '\n';
}
