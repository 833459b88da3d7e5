/**
 * The docs' links and the benchmark results stay consistent: every relative link in README.md, docs/*.md and
 * bench/results/README.md resolves, every `bench/…` path the docs name in code spans exists, every file under
 * bench/results/ sits in a device folder, and the generated index (bench/results/index.json, README.md) is current.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { buildIndex, renderIndexReadme, REPO_ROOT, RESULTS_ROOT } from '../../bench/lib.js';
import { LISTS, planRuns, SUITES, suiteArgs } from '../../bench/run.js';

const docs = ['README.md', ...readdirSync(join(REPO_ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`), 'bench/results/README.md'];

test('every relative markdown link in the README, docs/ and bench/results/README.md resolves', () => {
  const broken: string[] = [];
  let checked = 0;
  for (const doc of docs) {
    const text = readFileSync(join(REPO_ROOT, doc), 'utf8');
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1]!.split('#')[0]!;
      if (!target || /^[a-z]+:/i.test(target)) continue;
      checked++;
      if (!existsSync(join(REPO_ROOT, dirname(doc), decodeURIComponent(target)))) broken.push(`${doc}: ${m[1]}`);
    }
  }
  assert.ok(checked > 50, `${checked} links checked`);
  assert.deepEqual(broken, []);
});

test('every bench/ path the docs name in code spans exists (results, suites, the runner)', () => {
  const missing: string[] = [];
  for (const doc of docs) {
    const text = readFileSync(join(REPO_ROOT, doc), 'utf8');
    for (const m of text.matchAll(/(?:^|[\s`(\[])((?:\.\.\/)?bench\/(?:results|suites|run\.ts|lib\.ts)[\w./$-]*)/g)) {
      let p = m[1]!.replace(/^\.\.\//, '').replace(/[.,;:]+$/, '');
      if (/[<*{$]/.test(p)) continue; // a pattern, not a path (paths in code spans are from the repository root)
      if (!existsSync(join(REPO_ROOT, p))) missing.push(`${doc}: ${p}`);
    }
  }
  assert.deepEqual(missing, []);
});

test('bench/results holds only device folders (plus the generated index), and the index is current', () => {
  const top = readdirSync(RESULTS_ROOT).filter((f) => !statSync(join(RESULTS_ROOT, f)).isDirectory());
  assert.deepEqual(top.sort(), ['README.md', 'index.json']);
  const index = buildIndex();
  assert.ok(index.devices.length >= 2, JSON.stringify(index.devices.map((d) => d.device)));
  for (const d of index.devices) assert.match(d.device, /^(cpu-\d+core-[a-z0-9-]+|nvidia-[a-z0-9]+)$/, d.device);
  assert.deepEqual(JSON.parse(readFileSync(join(RESULTS_ROOT, 'index.json'), 'utf8')), index, 'run `npx tsx bench/run.ts --index`');
  assert.equal(readFileSync(join(RESULTS_ROOT, 'README.md'), 'utf8'), renderIndexReadme(index), 'run `npx tsx bench/run.ts --index`');
  const big = index.devices.flatMap((d) => d.files).filter((f) => f.bytes > 1024 * 1024);
  assert.deepEqual(big, [], 'results over 1 MB are not committed');
});

test('bench/run.ts: every suite script exists; suite lists, per-suite options and defaults', () => {
  for (const [name, s] of Object.entries(SUITES)) assert.ok(existsSync(join(REPO_ROOT, 'bench', 'suites', s.script)), name);
  assert.deepEqual([...LISTS.cpu!, ...LISTS.gpu!].sort(), Object.keys(SUITES).sort());
  const p = planRuns(['--device', 'cpu-test', 'int8-cpu-speed', '--rounds', '12', '--skip-map', 'server-throughput', '--rounds', '5']);
  assert.equal(p.device, 'cpu-test');
  assert.deepEqual(p.runs, [
    { suite: 'int8-cpu-speed', args: ['--rounds', '12', '--skip-map'] },
    { suite: 'server-throughput', args: ['--rounds', '5'] },
  ]);
  assert.deepEqual(planRuns(['gpu']).runs.map((r) => r.suite), LISTS.gpu);
  assert.throws(() => planRuns(['no-such-suite']), /unknown suite 'no-such-suite'/);
  // defaults fill in only what the command line leaves out
  const s = SUITES['gpu-throughput']!;
  const args = suiteArgs(s, ['--out', '/x.json'], { results: '/r', data: '/d' });
  assert.deepEqual(args.slice(0, 2), ['--out', '/x.json']);
  assert.ok(!args.slice(2).includes('--out'));
  assert.ok(args.includes('yolov8n=/d/models/yolov8n.onnx'));
});
