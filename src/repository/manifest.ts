/**
 * Version manifests: `<repo>/<model>/<version>/manifest.json` may record the sha256 of the version's files
 * (`osprey build` writes one). When present it is verified at load; a mismatch refuses that version.
 *
 * Accepted shapes (any of): `{ "sha256": "<hex>" }` (the model file), `{ "modelSha256": "<hex>" }`,
 * `{ "files": { "model.onnx": "<hex>" | { "sha256": "<hex>" } } }`, `{ "files": [{ "path"|"name": "model.onnx", "sha256": "<hex>" }] }`.
 */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { OspreyError } from '../core/errors.js';
import { sha256File } from '../util/sha256.js';

/** sha256 (hex) of a file, streamed. */
export const sha256OfFile = sha256File;

/** File name (relative to the version folder) → expected sha256, from a parsed manifest. */
export function expectedHashes(manifest: unknown, modelFileName: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!manifest || typeof manifest !== 'object') return out;
  const m = manifest as Record<string, unknown>;
  const hex = (v: unknown) => (typeof v === 'string' && /^[0-9a-f]{64}$/i.test(v) ? v.toLowerCase() : undefined);
  const top = hex(m.sha256) ?? hex(m.modelSha256);
  if (top) out.set(modelFileName, top);
  const files = m.files;
  if (Array.isArray(files)) {
    for (const f of files) {
      if (f && typeof f === 'object') {
        const r = f as Record<string, unknown>;
        const name = typeof r.path === 'string' ? r.path : typeof r.name === 'string' ? r.name : undefined;
        const h = hex(r.sha256);
        if (name && h) out.set(name, h);
      }
    }
  } else if (files && typeof files === 'object') {
    for (const [name, v] of Object.entries(files as Record<string, unknown>)) {
      const h = hex(v) ?? (v && typeof v === 'object' ? hex((v as Record<string, unknown>).sha256) : undefined);
      if (h) out.set(name, h);
    }
  }
  return out;
}

/**
 * Verifies the files of a version folder against its `manifest.json`, when there is one.
 * @returns the verified file names (empty when there is no manifest).
 * @throws OspreyError `OSPREY_ERR_HASH_MISMATCH` naming the file, the expected and the actual sha256;
 *   `OSPREY_ERR_CONFIG` when manifest.json is not valid JSON.
 */
export async function verifyManifest(versionDir: string, modelFileName: string): Promise<string[]> {
  const manifestPath = join(versionDir, 'manifest.json');
  let text: string;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch {
    return [];
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new OspreyError('OSPREY_ERR_CONFIG', `${manifestPath}: not valid JSON (${(err as Error).message})`, { file: manifestPath, keyPath: '(root)' });
  }
  const verified: string[] = [];
  for (const [name, expected] of expectedHashes(parsed, basename(modelFileName))) {
    const path = join(versionDir, name);
    let actual: string;
    try {
      actual = await sha256OfFile(path);
    } catch {
      throw new OspreyError('OSPREY_ERR_HASH_MISMATCH', `${path}: listed in ${manifestPath} but cannot be read`, { file: path, expected });
    }
    if (actual !== expected) {
      throw new OspreyError('OSPREY_ERR_HASH_MISMATCH', `${path}: sha256 ${actual} does not match ${expected} recorded in ${manifestPath}`, {
        file: path,
        expected,
        actual,
      });
    }
    verified.push(name);
  }
  return verified;
}
