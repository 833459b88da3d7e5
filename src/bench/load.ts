/**
 * Reading bench result files.
 */
import { readFile } from 'node:fs/promises';
import { OspreyError } from '../core/errors.js';
import { parseBenchResult, type AnyBenchResult } from './result.js';

/**
 * Reads and validates a bench result file.
 * @throws OspreyError `OSPREY_ERR_FILE_NOT_FOUND` (unreadable), `OSPREY_ERR_BENCH_FILE` (not JSON, not a bench result).
 */
export async function loadBenchFile(path: string): Promise<AnyBenchResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `${path}: cannot read the bench file`, { path });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new OspreyError('OSPREY_ERR_BENCH_FILE', `${path}: not JSON (${(err as Error).message})`, { path });
  }
  return parseBenchResult(json, path);
}
