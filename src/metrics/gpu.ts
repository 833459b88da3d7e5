/**
 * GPU statistics from `nvidia-smi --query-gpu` (present on any machine with the NVIDIA driver). Nothing is reported
 * — not zeros — when nvidia-smi is missing or fails: the GPU metrics are then absent from /metrics.
 */
import { execFile } from 'node:child_process';

/** One GPU's readings, in base units. */
export interface GpuReading {
  index: number;
  uuid: string;
  name: string;
  /** 0..1 */
  utilization: number | null;
  memoryUsedBytes: number | null;
  memoryTotalBytes: number | null;
  temperatureCelsius: number | null;
  powerWatts: number | null;
  powerLimitWatts: number | null;
}

const FIELDS = 'index,uuid,name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw,power.limit';
const MIB = 1024 * 1024;

/** Parses `nvidia-smi --query-gpu=<FIELDS> --format=csv,noheader,nounits` output ("[N/A]" → null). */
export function parseNvidiaSmi(csv: string): GpuReading[] {
  const num = (s: string | undefined): number | null => {
    const n = Number((s ?? '').trim());
    return s === undefined || !Number.isFinite(n) || /n\/a|not supported/i.test(s) ? null : n;
  };
  const out: GpuReading[] = [];
  for (const line of csv.split('\n')) {
    if (!line.trim()) continue;
    const f = line.split(',').map((x) => x.trim());
    if (f.length < 9) continue;
    const util = num(f[3]);
    const used = num(f[4]);
    const total = num(f[5]);
    out.push({
      index: Number(f[0]),
      uuid: f[1]!,
      name: f[2]!,
      utilization: util === null ? null : util / 100,
      memoryUsedBytes: used === null ? null : used * MIB,
      memoryTotalBytes: total === null ? null : total * MIB,
      temperatureCelsius: num(f[6]),
      powerWatts: num(f[7]),
      powerLimitWatts: num(f[8]),
    });
  }
  return out;
}

/** Runs nvidia-smi once; null when it is absent or fails. */
export function queryGpus(timeoutMs = 2000): Promise<GpuReading[] | null> {
  return new Promise((resolve) => {
    execFile('nvidia-smi', [`--query-gpu=${FIELDS}`, '--format=csv,noheader,nounits'], { timeout: timeoutMs }, (err, stdout) => {
      if (err) return resolve(null);
      const gpus = parseNvidiaSmi(stdout);
      resolve(gpus.length > 0 ? gpus : null);
    });
  });
}
