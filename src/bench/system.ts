/**
 * Facts about the machine a bench runs on, and memory sampling: CPU model, GPU name and memory used
 * (nvidia-smi, when present), host RSS, file sha256.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { OSPREY_VERSION, onnxRuntimeVersion } from '../version.js';
import type { BenchEnvironment } from './result.js';

/** Runs nvidia-smi with a query; null when nvidia-smi is absent or fails (no GPU). */
export function nvidiaSmiQuery(fields: string, timeoutMs = 3000): Promise<string[][] | null> {
  return new Promise((resolve) => {
    execFile('nvidia-smi', [`--query-gpu=${fields}`, '--format=csv,noheader,nounits'], { timeout: timeoutMs }, (err, stdout) => {
      if (err) return resolve(null);
      const rows = stdout
        .trim()
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => l.split(',').map((c) => c.trim()));
      resolve(rows.length > 0 ? rows : null);
    });
  });
}

/** GPU names (one per GPU), or null without a GPU. */
export async function gpuNames(): Promise<string[] | null> {
  const rows = await nvidiaSmiQuery('name');
  return rows ? rows.map((r) => r[0]!) : null;
}

/** GPU memory used (bytes) summed over all GPUs, or null without a GPU. nvidia-smi reports MiB. */
export async function gpuMemoryUsedBytes(): Promise<number | null> {
  const rows = await nvidiaSmiQuery('memory.used');
  if (!rows) return null;
  return rows.reduce((sum, r) => sum + Number(r[0]) * 2 ** 20, 0);
}

export { sha256File } from '../util/sha256.js';

/** The environment block of a bench result. `deviceKind` follows the execution provider actually used. */
export async function benchEnvironment(executionProvider: string, command: string): Promise<BenchEnvironment> {
  const cpus = os.cpus();
  const cpuModel = cpus[0]?.model?.trim() || 'unknown CPU';
  const gpus = executionProvider === 'cpu' ? null : await gpuNames();
  const onGpu = executionProvider === 'cuda' || executionProvider === 'tensorrt';
  const env: BenchEnvironment = {
    cpuModel,
    cpuCount: cpus.length,
    deviceKind: onGpu ? 'gpu' : 'cpu',
    device: onGpu && gpus ? gpus[0]! : cpuModel,
    onnxRuntimeVersion: onnxRuntimeVersion(),
    ospreyVersion: OSPREY_VERSION,
    nodeVersion: process.version,
    platform: `${process.platform}-${process.arch}`,
    totalMemoryBytes: os.totalmem(),
    loadAverage: os.loadavg().map((v) => Math.round(v * 100) / 100),
    command,
    createdAt: new Date().toISOString(),
  };
  if (gpus) env.gpuName = gpus[0]!;
  return env;
}

/**
 * Samples host RSS (and GPU memory through nvidia-smi when `gpu` is set) every `intervalMs` and keeps the peaks.
 * Worker threads share the process, so RSS covers every engine instance.
 */
export class MemorySampler {
  peakRssBytes = 0;
  peakGpuMemoryBytes: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private gpuBusy = false;

  constructor(private readonly gpu: boolean, private readonly intervalMs = 100) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  private sample(): void {
    const rss = process.memoryUsage.rss();
    if (rss > this.peakRssBytes) this.peakRssBytes = rss;
    if (this.gpu && !this.gpuBusy) {
      this.gpuBusy = true;
      void gpuMemoryUsedBytes().then((b) => {
        this.gpuBusy = false;
        if (b !== null && (this.peakGpuMemoryBytes === undefined || b > this.peakGpuMemoryBytes)) this.peakGpuMemoryBytes = b;
      });
    }
  }

  stop(): void {
    this.sample();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** The command line as typed (for the results file). */
export function commandLine(argv: readonly string[] = process.argv): string {
  const args = argv.slice(2).map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`));
  return ['osprey', ...args].join(' ');
}

/** CPU time of the whole machine and of this process at one instant (see {@link HostCpuSampler}). */
export interface CpuReading {
  /** /proc/stat aggregate `cpu` line: busy (user+nice+system+irq+softirq), steal and total ticks; null without /proc/stat. */
  host: { busy: number; steal: number; total: number } | null;
  /** This process's CPU time (all threads), µs. */
  ownMicros: number;
  wallMs: number;
}

/**
 * What the rest of the machine did during a measurement: CPU used by other processes, in cores, from Linux's
 * /proc/stat (all CPUs) minus this process's own CPU time (`process.cpuUsage`, worker threads included). A bench
 * states it beside its figures, because on a shared machine it is what moves them.
 */
export class HostCpuSampler {
  private readonly cores = Math.max(1, os.cpus().length);

  /** Reads the counters now. */
  read(): CpuReading {
    const u = process.cpuUsage();
    return { host: readProcStat(), ownMicros: u.user + u.system, wallMs: performance.now() };
  }

  /**
   * Cores used by other processes and stolen by the hypervisor between `before` and now; null without /proc/stat.
   * @example sampler.since(before) // { otherProcessesCores: 0.84, stealCores: 0.02, ownCores: 1.9 }
   */
  since(before: CpuReading): { otherProcessesCores: number; stealCores: number; ownCores: number } | null {
    const now = this.read();
    if (!before.host || !now.host) return null;
    const dTotal = now.host.total - before.host.total;
    const dWallS = (now.wallMs - before.wallMs) / 1000;
    if (dTotal <= 0 || dWallS <= 0) return null;
    const busyCores = (this.cores * (now.host.busy - before.host.busy)) / dTotal;
    const stealCores = (this.cores * (now.host.steal - before.host.steal)) / dTotal;
    const ownCores = (now.ownMicros - before.ownMicros) / 1e6 / dWallS;
    return { otherProcessesCores: Math.max(0, busyCores - ownCores), stealCores, ownCores };
  }
}

function readProcStat(): CpuReading['host'] {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const v = line.trim().split(/\s+/).slice(1).map(Number); // user nice system idle iowait irq softirq steal guest guest_nice
    if (v.length < 8 || v.some((x) => !Number.isFinite(x))) return null;
    const [user, nice, system, idle, iowait, irq, softirq, steal] = v as [number, number, number, number, number, number, number, number];
    // guest time is already counted in user/nice
    return { busy: user + nice + system + irq + softirq, steal, total: user + nice + system + idle + iowait + irq + softirq + steal };
  } catch {
    return null;
  }
}
