/**
 * Writes the generated files under deploy/ from src/deploy (rules, dashboard, nginx, Kubernetes) for the default
 * options: `npx tsx deploy/generate.ts` from the repository root. test/deploy/files.test.ts checks they are current.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultDeployFiles } from '../src/deploy/files.js';

const root = fileURLToPath(new URL('..', import.meta.url));
for (const [path, text] of Object.entries(defaultDeployFiles())) {
  await mkdir(dirname(join(root, path)), { recursive: true });
  await writeFile(join(root, path), text);
  process.stdout.write(`wrote ${path}\n`);
}
