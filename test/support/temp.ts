/** Temporary folders for tests, each with its own cleanup. */
import { mkdtempSync, rmSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A fresh folder under the OS temp dir, mode 0755 (nginx's workers run as another user when the master is root and
 * must reach it). `remove()` deletes it recursively.
 * @example const t = await tempDir('osprey-repo-'); try { … t.path … } finally { await t.remove(); }
 */
export async function tempDir(prefix: string): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  await chmod(path, 0o755);
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** The synchronous form: `{ dir, cleanup }`. */
export function tempDirSync(prefix = 'osprey-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
