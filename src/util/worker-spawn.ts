/**
 * Starts a worker_thread from a module beside the caller, from dist/ (plain JS) or under tsx (tests,
 * `npx tsx bench/...`): Node 20 does not apply the parent's `--import tsx` loader hooks to a worker's entry
 * reliably, so a two-line bootstrap registers tsx in the worker first, then imports the .ts entry.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * The URL of a sibling module of `importMetaUrl` (the caller's `import.meta.url`), `.ts` under tsx and `.js` from dist/.
 * @example moduleUrl(import.meta.url, './ort-worker')
 */
export function siblingModuleUrl(importMetaUrl: string, stem: string): URL {
  const ext = new URL(importMetaUrl).pathname.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`${stem}${ext}`, importMetaUrl);
}

/** Creates the worker for `url` (see the module doc). */
export function spawnModuleWorker(url: URL, options: Omit<WorkerOptions, 'eval'> = {}): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url, options);
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const code =
    `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); })` +
    `.catch((e) => { setImmediate(() => { throw e; }); });`;
  return new Worker(code, { ...options, eval: true });
}
