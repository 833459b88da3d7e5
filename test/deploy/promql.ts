/**
 * The PromQL of the deploy files, extracted from the files themselves: every `expr` of the Grafana dashboard JSON
 * (and the metric selector inside its `label_values(...)` variable queries), every `expr` of the rule file.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { REPO_ROOT } from '../support/processes.js';

export interface ExtractedQuery {
  /** Where it came from: `dashboard: <panel title> [refId]`, `record: <name>`, `alert: <name>`. */
  source: string;
  expr: string;
}

/** Every `expr` string anywhere in a JSON value, with the title of the nearest panel above it. */
export function dashboardExprs(dashboard: unknown): ExtractedQuery[] {
  const out: ExtractedQuery[] = [];
  const walk = (v: unknown, panel: string): void => {
    if (Array.isArray(v)) return v.forEach((x) => walk(x, panel));
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    const title = typeof o.title === 'string' && (o.targets !== undefined || o.type !== undefined) ? o.title : panel;
    if (typeof o.expr === 'string') out.push({ source: `dashboard: ${title} [${String(o.refId ?? '?')}]`, expr: o.expr });
    for (const [k, x] of Object.entries(o)) if (k !== 'expr') walk(x, title);
  };
  walk(dashboard, '(dashboard)');
  // Template variables: label_values(<selector>, label) is Grafana's, the selector inside is PromQL.
  const vars = ((dashboard as { templating?: { list?: Array<{ name: string; definition?: string }> } }).templating?.list ?? []);
  for (const v of vars) {
    const m = /^label_values\((.+),\s*\w+\)$/.exec(v.definition ?? '');
    if (m) out.push({ source: `dashboard variable: ${v.name}`, expr: m[1]! });
  }
  return out;
}

/** Grafana's variables, replaced by what a user with every model selected would send. */
export function substituteGrafanaVariables(expr: string, vars: { job: string; model?: string; rateInterval?: string }): string {
  return expr
    .replaceAll('$__rate_interval', vars.rateInterval ?? '1m')
    .replaceAll('$job', vars.job)
    .replaceAll('$model', vars.model ?? '.*');
}

/** Every rule of a Prometheus rule file: `record:` and `alert:` with their expressions. */
export function ruleExprs(ruleFileText: string): ExtractedQuery[] {
  const doc = parseYaml(ruleFileText) as { groups: Array<{ rules: Array<{ record?: string; alert?: string; expr: string }> }> };
  return doc.groups.flatMap((g) => g.rules.map((r) => ({ source: r.record !== undefined ? `record: ${r.record}` : `alert: ${r.alert}`, expr: r.expr })));
}

export async function committedDashboard(): Promise<unknown> {
  return JSON.parse(await readFile(join(REPO_ROOT, 'deploy/grafana/dashboards/osprey.json'), 'utf8'));
}

export async function committedRules(): Promise<string> {
  return readFile(join(REPO_ROOT, 'deploy/prometheus/osprey-rules.yml'), 'utf8');
}

/** True when the query reads GPU series only (absent on hosts without a GPU). */
export function isGpuQuery(expr: string): boolean {
  return /\b(gpu:|nv_gpu_|DCGM_|osprey_gpu_)/.test(expr);
}

/** Metric names a query reads (identifiers followed by `{`, `[`, or standing alone, minus PromQL keywords/functions). */
export function metricNames(expr: string): string[] {
  const stripped = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\{[^}]*\}/g, '{}').replace(/\[[^\]]*\]/g, '[]');
  const words = stripped.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? [];
  const keywords = new Set(['sum', 'max', 'min', 'avg', 'count', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'rate', 'increase', 'deriv', 'delta', 'histogram_quantile', 'label_replace', 'vector', 'clamp_min', 'offset', 'bool', 'topk', 'abs', 'le', 'model', 'version', 'gpu', 'gpu_uuid', 'camera', 'state', 'outcome', 'instance', 'job', 'stage', 'e']);
  return [...new Set(words.filter((w) => !keywords.has(w) && !/^\d/.test(w)))];
}
