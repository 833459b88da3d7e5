/**
 * The benchmark runner: one command per suite list, here and on the GPU machine.
 *
 *   npx tsx bench/run.ts --list                      # the suites, what each measures, its device
 *   npx tsx bench/run.ts int8-cpu-speed              # one suite with its defaults
 *   npx tsx bench/run.ts int8-cpu-speed --rounds 12 server-throughput --rounds 5   # options go to the suite before them
 *   npx tsx bench/run.ts cpu                         # every CPU suite (on the GPU machine: `gpu`)
 *   npx tsx bench/run.ts --index                     # only regenerate bench/results/index.json + README.md
 *   npm run bench -- cpu                             # the same through npm
 *
 * Each suite is a script in bench/suites/ run in its own process (so one suite's ONNX Runtime sessions and worker
 * threads are gone before the next starts), with `OSPREY_BENCH_RESULTS_DIR` = bench/results/<device>/ (the device
 * from bench/lib.ts `deviceSlug`, or `--device NAME`) and `OSPREY_BENCH_DATA` = the data folder (`--data DIR`,
 * default ../shared/data). Default options are added only where the command line does not give them. The runner
 * stops at the first suite that fails (exit code of that suite) and regenerates the results index after every run.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { dataDir, deviceSlug, REPO_ROOT, RESULTS_ROOT, writeIndex } from './lib.js';

/** A suite: its script, the device kind it measures, what it measures, and default options (`{results}`, `{data}` substituted). */
export interface Suite {
  script: string;
  device: 'cpu' | 'gpu';
  measures: string;
  defaults: Record<string, string>;
}

export const SUITES: Record<string, Suite> = {
  'int8-cpu-speed': {
    script: 'int8-cpu-speed.ts',
    device: 'cpu',
    measures: 'INT8 vs FP32 engines from osprey build, interleaved (osprey bench engine comparison): throughput ratio min/median/max over rounds, ORT per-operator profiles, mAP50-95 on the held-out split',
    defaults: { '--out': '{results}/int8-cpu-speed.json' },
  },
  'int8-accuracy': {
    script: 'int8-accuracy.ts',
    device: 'cpu',
    measures: 'mAP50-95 of INT8 engines per calibration method (minmax, percentile, entropy) × auto-exclusion, against FP32, held-out split',
    defaults: { '--out': '{results}/int8-accuracy.json' },
  },
  'detect-stages': {
    script: 'detect-stages.ts',
    device: 'cpu',
    measures: 'time of each detect stage on bus.jpg (decode, letterbox, inference, NMS) and the event-loop delay with inference in a worker vs on the main thread',
    defaults: { '--out': '{results}/detect-stages.json' },
  },
  'onnx-passes': {
    script: 'onnx-passes.ts',
    device: 'cpu',
    measures: 'throughput of plain vs uint8-input + top-K / NMS-in-graph engines (dynamic batch), same detections',
    defaults: { '--out': '{results}/onnx-passes.json' },
  },
  'onnx-passes-fp16': {
    script: 'onnx-passes-fp16.ts',
    device: 'cpu',
    measures: 'FP16 pass accuracy against FP32 (box IoU, score difference) per keep-list variant',
    defaults: { '--out': '{results}/onnx-passes-fp16.json' },
  },
  'server-throughput': {
    script: 'server-throughput.ts',
    device: 'cpu',
    measures: 'osprey serve throughput ÷ the engine alone, alternating rounds; event-loop delay; /v2/health/ready latency under load',
    defaults: { '--out': '{results}/server-throughput.json' },
  },
  'streams-capacity': {
    script: 'streams-capacity.ts',
    device: 'cpu',
    measures: 'camera streams (ffmpeg file sources, 5 fps) kept up by one batcher on the INT8 engine; optional memory soak',
    defaults: { '--out': '{results}/streams-capacity.json' },
  },
  'gpu-throughput': {
    script: 'gpu-throughput.ts',
    device: 'gpu',
    measures: 'images/s and latency of Osprey engines on the CUDA EP per batch × instances, beside PyTorch host-uint8 timed in the same run',
    defaults: { '--model': 'yolov8n={data}/models/yolov8n.onnx', '--images': '{data}/coco-val-dev/images', '--out': '{results}/gpu-throughput-yolov8n.json' },
  },
  'streams-capacity-predecoded': {
    script: 'streams-capacity-predecoded.ts',
    device: 'gpu',
    measures: 'simulated cameras (pre-decoded frames) through the batcher, frame inferer and tracker: streams kept up, p50/p99 frame → detections',
    defaults: { '--model': '{data}/models/yolov8n.onnx', '--images': '{data}/coco-val-dev/images', '--out': '{results}/streams-capacity-predecoded-yolov8n.json' },
  },
  'multi-gpu-scaling': {
    script: 'multi-gpu-scaling.ts',
    device: 'gpu',
    measures: 'throughput on 1, 2, 4 GPUs of one host (FP16 batch 32, uint8 in): the engine alone and osprey serve --gpus under osprey bench server; speedup and efficiency over 1 GPU, per-GPU batches, host CPU share',
    defaults: { '--model': 'yolov8n={data}/models/yolov8n.onnx', '--images': '{data}/coco-val-dev/images', '--out': '{results}/multi-gpu-scaling.json' },
  },
  'cuda-cpu-agreement': {
    script: 'cuda-cpu-agreement.ts',
    device: 'gpu',
    measures: 'detections of the CUDA EP vs the CPU EP on the coco-val-dev images (matched by class and IoU, score differences)',
    defaults: { '--model': '{data}/models/yolov8n.onnx', '--images': '{data}/coco-val-dev/images', '--out': '{results}/cuda-cpu-agreement.json' },
  },
};

/** Named suite lists. */
export const LISTS: Record<string, string[]> = {
  cpu: Object.keys(SUITES).filter((k) => SUITES[k]!.device === 'cpu'),
  gpu: Object.keys(SUITES).filter((k) => SUITES[k]!.device === 'gpu'),
};

/** One planned suite run. */
export interface PlannedRun {
  suite: string;
  args: string[];
}

/**
 * Splits the command line into suite runs: a suite or list name starts a run, the options after it (up to the next
 * suite name) belong to it; runner options (`--device`, `--data`) may come anywhere before the first suite.
 * @throws Error naming an unknown suite.
 */
export function planRuns(argv: readonly string[]): { runs: PlannedRun[]; device?: string; data?: string; list: boolean; indexOnly: boolean } {
  const runs: PlannedRun[] = [];
  let device: string | undefined;
  let data: string | undefined;
  let list = false;
  let indexOnly = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (runs.length === 0 && (a === '--device' || a === '--data')) {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      if (a === '--device') device = v;
      else data = v;
    } else if (a === '--list') list = true;
    else if (a === '--index') indexOnly = true;
    else if (a in LISTS) for (const s of LISTS[a]!) runs.push({ suite: s, args: [] });
    else if (a in SUITES) runs.push({ suite: a, args: [] });
    else if (runs.length > 0 && a.startsWith('-')) runs.at(-1)!.args.push(a);
    else if (runs.length > 0 && argv[i - 1]?.startsWith('-')) runs.at(-1)!.args.push(a);
    else throw new Error(`unknown suite '${a}' (suites: ${Object.keys(SUITES).join(', ')}; lists: ${Object.keys(LISTS).join(', ')})`);
  }
  return { runs, list, indexOnly, ...(device !== undefined ? { device } : {}), ...(data !== undefined ? { data } : {}) };
}

/** The suite's arguments: the given ones, then each default option the given ones do not set. */
export function suiteArgs(suite: Suite, given: readonly string[], vars: { results: string; data: string }): string[] {
  const out = [...given];
  for (const [flag, value] of Object.entries(suite.defaults)) {
    if (given.includes(flag)) continue;
    out.push(flag, value.replaceAll('{results}', vars.results).replaceAll('{data}', vars.data));
  }
  return out;
}

function main(): number {
  const plan = planRuns(process.argv.slice(2));
  if (plan.list || (plan.runs.length === 0 && !plan.indexOnly)) {
    for (const [name, s] of Object.entries(SUITES)) process.stdout.write(`${name.padEnd(28)} ${s.device}  ${s.measures}\n`);
    process.stdout.write(`\nlists: ${Object.entries(LISTS).map(([k, v]) => `${k} = ${v.join(' ')}`).join('; ')}\n`);
    return plan.list ? 0 : 2;
  }
  const data = plan.data ?? dataDir();
  for (const run of plan.runs) {
    const suite = SUITES[run.suite]!;
    const results = join(RESULTS_ROOT, plan.device ?? deviceSlug(suite.device));
    const args = suiteArgs(suite, run.args, { results, data });
    process.stderr.write(`bench/run.ts: ${run.suite} → ${results}\n  node --import tsx bench/suites/${suite.script} ${args.join(' ')}\n`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', join('bench', 'suites', suite.script), ...args], {
      cwd: REPO_ROOT,
      stdio: 'inherit',
      env: { ...process.env, OSPREY_BENCH_RESULTS_DIR: results, OSPREY_BENCH_DATA: data },
    });
    writeIndex();
    if (r.status !== 0) {
      process.stderr.write(`bench/run.ts: ${run.suite} failed (exit ${r.status ?? r.signal})\n`);
      return r.status ?? 1;
    }
  }
  writeIndex();
  process.stderr.write(`bench/run.ts: index written (bench/results/index.json, README.md)\n`);
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('bench/run.ts')) process.exitCode = main();
