/**
 * What the benchmark suites and their runner (bench/run.ts) share: where the data and the results live, the
 * device folder a result belongs in, and the generated index of bench/results/.
 *
 * Layout: `bench/results/<device>/<suite result>.json` (plus the plots, logs and profiles a suite writes), where
 * `<device>` names the hardware the figures belong to: `nvidia-h100`, `nvidia-h200` (GPU suites: the first GPU's
 * name), `cpu-2core-amd-epyc`, `cpu-16core-intel-xeon` (CPU suites: core count and CPU model). Figures from
 * different devices are never divided by each other. `bench/results/index.json` and `bench/results/README.md` list
 * every file with what made it; {@link writeIndex} regenerates both (the runner does after every run, and
 * test/project/bench-results.test.ts checks they are current).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** bench/results. */
export const RESULTS_ROOT = join(REPO_ROOT, 'bench', 'results');

/** The shared data folder (models, images, COCO subset): `$OSPREY_BENCH_DATA`, else `../shared/data` beside the checkout. */
export function dataDir(): string {
  return resolve(process.env.OSPREY_BENCH_DATA ?? join(REPO_ROOT, '..', 'shared', 'data'));
}

/** `OSPREY_BENCH_RESULTS_DIR` (set by the runner), else `bench/results/<this machine's device>` for `kind`. */
export function resultsDir(kind: 'cpu' | 'gpu' = 'cpu'): string {
  const dir = process.env.OSPREY_BENCH_RESULTS_DIR ?? join(RESULTS_ROOT, deviceSlug(kind));
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Lower-case words joined by '-', trademarks and filler words dropped: 'Intel(R) Xeon(R) Processor' → 'intel-xeon'. */
export function slug(text: string, maxWords = 3): string {
  return text
    .toLowerCase()
    .replace(/\((r|tm)\)/g, ' ')
    .split(/[^a-z0-9]+/)
    .filter((w) => w && !['processor', 'cpu', 'core', 'with', 'radeon', 'graphics'].includes(w) && !/^\d+-core$/.test(w))
    .slice(0, maxWords)
    .join('-');
}

/**
 * The device folder name for results measured here: for `gpu`, the first GPU's name from nvidia-smi (two words:
 * 'NVIDIA H100 80GB HBM3' → 'nvidia-h100'); for `cpu`, core count and CPU model ('cpu-2core-amd-epyc').
 * @example deviceSlug('cpu') // 'cpu-2core-amd-epyc' on the 2-vCPU AMD EPYC VM
 */
export function deviceSlug(kind: 'cpu' | 'gpu'): string {
  if (kind === 'gpu') {
    try {
      const name = execFileSync('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], { encoding: 'utf8', timeout: 5000 }).split('\n')[0]!.trim();
      if (name) return slug(name, 2);
    } catch {
      /* no GPU: fall through to the CPU name */
    }
  }
  const c = cpus();
  return `cpu-${c.length}core-${slug(c[0]?.model ?? 'unknown', 2)}`;
}

/** One file of bench/results as the index lists it. */
export interface ResultEntry {
  /** Path under bench/results, e.g. `cpu-2core-amd-epyc/int8-cpu-speed.json`. */
  file: string;
  bytes: number;
  /** JSON `kind` or `benchmark` field, when the file has one. */
  kind?: string;
  createdAt?: string;
  /** The command that made it, as recorded in the file. */
  command?: string;
  /** Model name(s) measured, when recorded. */
  model?: string;
}

/** The generated index: one entry per file, grouped by device folder. */
export interface ResultsIndex {
  format: 'osprey-bench-results-index';
  devices: Array<{ device: string; files: ResultEntry[] }>;
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const f of readdirSync(dir).sort()) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

function describe(path: string): Omit<ResultEntry, 'file' | 'bytes'> {
  if (!path.endsWith('.json')) return {};
  try {
    const j = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    const env = (j.environment ?? {}) as Record<string, unknown>;
    const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
    const models = (j.engines as Array<{ name?: string }> | undefined)?.map((e) => e.name).join(' vs ');
    const model = str((j.model as { name?: unknown } | undefined)?.name) ?? str(j.model) ?? models;
    const out: Omit<ResultEntry, 'file' | 'bytes'> = {};
    const kind = str(j.kind) ?? str(j.benchmark);
    const createdAt = str(j.createdAt) ?? str(env.createdAt);
    const command = str(j.command) ?? str(env.command);
    if (kind) out.kind = kind;
    if (createdAt) out.createdAt = createdAt;
    if (command) out.command = command;
    if (model) out.model = model;
    return out;
  } catch {
    return {};
  }
}

/** Builds the index of `root` (default bench/results): every file below a device folder. */
export function buildIndex(root = RESULTS_ROOT): ResultsIndex {
  const devices = readdirSync(root)
    .filter((d) => statSync(join(root, d)).isDirectory())
    .sort()
    .map((device) => ({
      device,
      files: walk(join(root, device)).map((p) => ({ file: relative(root, p), bytes: statSync(p).size, ...describe(p) })),
    }));
  return { format: 'osprey-bench-results-index', devices };
}

/** The README.md of bench/results, generated from the index. */
export function renderIndexReadme(index: ResultsIndex): string {
  const lines = [
    '# bench/results',
    '',
    '<!-- generated by `npx tsx bench/run.ts --index` (bench/lib.ts); do not edit by hand -->',
    '',
    'Results of the benchmark suites, one folder per device (figures from different devices are never divided by',
    'each other). Each JSON records its device, versions, load and the command that made it. How to run the suites:',
    '[docs/bench.md](../../docs/bench.md#benchmark-suites-benchrunts); what the figures mean: the docs that cite them.',
    '',
  ];
  for (const d of index.devices) {
    lines.push(`## ${d.device}`, '', '| file | kind | model | created | bytes |', '|---|---|---|---|---|');
    for (const f of d.files) {
      const name = f.file.slice(d.device.length + 1);
      lines.push(`| [${name}](${f.file}) | ${f.kind ?? ''} | ${f.model ?? ''} | ${f.createdAt?.slice(0, 10) ?? ''} | ${f.bytes} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

/** Writes bench/results/index.json and bench/results/README.md. */
export function writeIndex(root = RESULTS_ROOT): ResultsIndex {
  const index = buildIndex(root);
  writeFileSync(join(root, 'index.json'), JSON.stringify(index, null, 1) + '\n');
  writeFileSync(join(root, 'README.md'), renderIndexReadme(index));
  return index;
}

/** `--name value` from argv, else `fallback`. */
export function argValue(argv: readonly string[], name: string, fallback: string): string;
export function argValue(argv: readonly string[], name: string): string | undefined;
export function argValue(argv: readonly string[], name: string, fallback?: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
}

/** True when `path` exists. */
export const exists = (path: string): boolean => existsSync(path);
