/**
 * Reading bench result files.
 */
import { readFile } from 'node:fs/promises';
import { OspreyError } from '../core/errors.js';
import { comparisonEngineResults, type EngineComparisonResult } from './comparison-result.js';
import { parseBenchResult, type AnyBenchResult } from './result.js';

/**
 * Reads and validates a bench result file.
 * @throws OspreyError `OSPREY_ERR_FILE_NOT_FOUND` (unreadable), `OSPREY_ERR_BENCH_FILE` (not JSON, not a bench result).
 */
export async function loadBenchFile(path: string): Promise<AnyBenchResult> {
  return parseBenchResult(await readJson(path), path);
}

/**
 * Reads a bench file for a report: a single result, or each engine of an interleaved comparison
 * (`osprey-bench-engine-comparison`) as its own engine result named `<file>: <model>`.
 * @throws OspreyError like {@link loadBenchFile}.
 */
export async function loadBenchResults(path: string, name = path): Promise<Array<{ name: string; result: AnyBenchResult }>> {
  const json = await readJson(path);
  if ((json as { kind?: unknown } | null)?.kind === 'osprey-bench-engine-comparison') {
    const c = json as EngineComparisonResult;
    if (!Array.isArray(c.engines) || !Array.isArray(c.configurations)) throw new OspreyError('OSPREY_ERR_BENCH_FILE', `${path}: comparison without engines/configurations`, { path });
    return comparisonEngineResults(c).map((r) => ({ name: `${name}: ${r.model.name}`, result: parseBenchResult(r, path) }));
  }
  return [{ name, result: parseBenchResult(json, path) }];
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `${path}: cannot read the bench file`, { path });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new OspreyError('OSPREY_ERR_BENCH_FILE', `${path}: not JSON (${(err as Error).message})`, { path });
  }
}
