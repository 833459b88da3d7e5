/**
 * Turning bench result files into plan points for `osprey plan`, with the model check.
 */
import { stat } from 'node:fs/promises';
import { OspreyError } from '../core/errors.js';
import { loadBenchFile } from './load.js';
import { planPoints, resultUnit, type AnyBenchResult } from './result.js';
import type { PlanPoint } from './planner.js';
import { sha256File } from './system.js';
import { resolveModelPath } from './engine-bench.js';

export interface LoadedPlanInputs {
  points: PlanPoint[];
  /** From the files; null when only server results (whose server device is unknown) were given. */
  unit: 'gpu' | 'cpu' | null;
  results: Array<{ file: string; result: AnyBenchResult }>;
  /** What the files were checked against. */
  modelCheck: { model: string; by: 'sha256' | 'name'; value: string } | null;
}

/**
 * Loads bench files, checks they are for one model (and for `model` when given: a file/engine directory is
 * compared by the sha256 of its .onnx, a name by the result's model name), and collects their points.
 * @throws OspreyError `OSPREY_ERR_BENCH_FILE` (unreadable as a result, another model, mixed GPU/CPU results),
 *   `OSPREY_ERR_FILE_NOT_FOUND`.
 */
export async function loadPlanInputs(files: readonly string[], model?: string): Promise<LoadedPlanInputs> {
  const results: Array<{ file: string; result: AnyBenchResult }> = [];
  for (const f of files) results.push({ file: f, result: await loadBenchFile(f) });
  let modelCheck: LoadedPlanInputs['modelCheck'] = null;
  if (model !== undefined) {
    const isPath = await stat(model).then(
      () => true,
      () => false,
    );
    if (isPath) {
      const resolved = await resolveModelPath(model);
      const sha = await sha256File(resolved.onnxPath);
      modelCheck = { model, by: 'sha256', value: sha };
      for (const { file, result } of results) {
        if (result.model.sha256 === undefined) {
          if (result.model.name !== resolved.name) {
            throw new OspreyError('OSPREY_ERR_BENCH_FILE', `${file} was measured on model "${result.model.name}" (no sha256 recorded), not ${model}`, { file, model });
          }
        } else if (result.model.sha256 !== sha) {
          throw new OspreyError(
            'OSPREY_ERR_BENCH_FILE',
            `${file} was measured on another model: its sha256 is ${result.model.sha256.slice(0, 16)}… (${result.model.name}), ${model} has ${sha.slice(0, 16)}…; run osprey bench engine --model ${model}`,
            { file, model, expectedSha256: sha, fileSha256: result.model.sha256 },
          );
        }
      }
    } else {
      modelCheck = { model, by: 'name', value: model };
      for (const { file, result } of results) {
        if (result.model.name !== model) {
          throw new OspreyError('OSPREY_ERR_BENCH_FILE', `${file} was measured on model "${result.model.name}", not "${model}"`, { file, model, fileModel: result.model.name });
        }
      }
    }
  } else if (results.length > 1) {
    const first = results[0]!;
    for (const { file, result } of results.slice(1)) {
      const a = first.result.model;
      const b = result.model;
      const differ = a.sha256 !== undefined && b.sha256 !== undefined ? a.sha256 !== b.sha256 : a.name !== b.name;
      if (differ) {
        throw new OspreyError('OSPREY_ERR_BENCH_FILE', `${file} is for model ${b.name}${b.sha256 ? ` (${b.sha256.slice(0, 12)}…)` : ''}, ${first.file} for ${a.name}${a.sha256 ? ` (${a.sha256.slice(0, 12)}…)` : ''}: plan one model at a time`, {
          file,
        });
      }
    }
  }
  const units = new Set(results.map(({ result }) => resultUnit(result)).filter((u): u is 'gpu' | 'cpu' => u !== null));
  if (units.size > 1) throw new OspreyError('OSPREY_ERR_BENCH_FILE', 'the bench files mix GPU and CPU measurements: plan one kind of unit at a time', {});
  const points = results.flatMap(({ file, result }) => planPoints(result, file));
  if (points.length === 0) throw new OspreyError('OSPREY_ERR_BENCH_FILE', `${files.join(', ')}: no measured points (every step failed?)`, {});
  return { points, unit: [...units][0] ?? null, results, modelCheck };
}
