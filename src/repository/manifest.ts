/**
 * Version manifests: `<repo>/<model>/<version>/manifest.json` may record the sha256 of the version's files
 * (`osprey build` writes one). When present it is verified at load; a mismatch refuses that version.
 *
 * Accepted shapes (any of): `{ "sha256": "<hex>" }` (the model file), `{ "modelSha256": "<hex>" }`,
 * `{ "files": { "model.onnx": "<hex>" | { "sha256": "<hex>" } } }`, `{ "files": [{ "path"|"name": "model.onnx", "sha256": "<hex>" }] }`,
 * `{ "engine": { "file": "model.sm90.engine", "sha256": "<hex>" } }` (`osprey build --engine cuda`).
 */
import { stat } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { OspreyError } from '../core/errors.js';
import { sha256File } from '../util/sha256.js';
import { readBoundedFile, resolveInModelFolder } from './paths.js';

/** Largest manifest.json read, bytes. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

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
  // `osprey build --engine cuda`'s manifest: { engine: { file: "model.sm90.engine", sha256 } }
  const engine = m.engine;
  if (engine && typeof engine === 'object' && typeof (engine as Record<string, unknown>).file === 'string') {
    const h = hex((engine as Record<string, unknown>).sha256);
    if (h) out.set((engine as Record<string, unknown>).file as string, h);
  }
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

/** Where a version folder sits, for path confinement and messages (see src/repository/paths.ts). */
export interface ManifestContext {
  /** The model folder (`<repository>/<model>`); manifest entries must resolve inside it. */
  modelDir: string;
  /** Model name, for messages. */
  model: string;
  /** Real paths of folders symlinks may point into besides the model folder. */
  allowedTargets?: readonly string[];
}

/**
 * Verifies the files of a version folder against its `manifest.json`, when there is one. Every file the manifest
 * names must be a regular file inside the model folder (after symlinks); messages name paths relative to the model
 * folder.
 * @returns the verified file names (empty when there is no manifest).
 * @throws OspreyError `OSPREY_ERR_HASH_MISMATCH` naming the file, the expected and the actual sha256;
 *   `OSPREY_ERR_CONFIG` when manifest.json is not valid JSON or over {@link MAX_MANIFEST_BYTES};
 *   `OSPREY_ERR_PATH_NOT_ALLOWED` for an entry that leaves the model folder.
 */
export async function verifyManifest(versionDir: string, modelFileName: string, ctx?: ManifestContext): Promise<string[]> {
  const modelDir = ctx?.modelDir ?? versionDir;
  const model = ctx?.model ?? basename(modelDir);
  const manifestPath = join(versionDir, 'manifest.json');
  const shown = relative(modelDir, manifestPath) || 'manifest.json';
  const st = await stat(manifestPath).catch(() => null);
  if (!st) return [];
  const where = { model, keyPath: shown };
  const text = (await readBoundedFile(manifestPath, shown, where, { maxBytes: MAX_MANIFEST_BYTES })).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new OspreyError('OSPREY_ERR_CONFIG', `${model}: ${shown}: not valid JSON (${(err as Error).message})`, { file: shown, keyPath: '(root)' });
  }
  const verified: string[] = [];
  for (const [name, expected] of expectedHashes(parsed, basename(modelFileName))) {
    let path: string;
    let display: string;
    try {
      ({ path, display } = await resolveInModelFolder(modelDir, versionDir, name, { model, keyPath: `${shown} files` }, ctx?.allowedTargets ?? []));
    } catch (err) {
      if (err instanceof OspreyError && err.code === 'OSPREY_ERR_MODEL_NOT_FOUND_FILE') {
        throw new OspreyError('OSPREY_ERR_HASH_MISMATCH', `${model}: ${relative(modelDir, join(versionDir, name))}: listed in ${shown} but cannot be read`, { file: name, expected });
      }
      throw err;
    }
    const fst = await stat(path).catch(() => null);
    if (!fst?.isFile()) {
      throw new OspreyError('OSPREY_ERR_PATH_NOT_ALLOWED', `${model}: ${display}: listed in ${shown} but not a regular file`, { file: display });
    }
    let actual: string;
    try {
      actual = await sha256OfFile(path);
    } catch {
      throw new OspreyError('OSPREY_ERR_HASH_MISMATCH', `${model}: ${display}: listed in ${shown} but cannot be read`, { file: display, expected });
    }
    if (actual !== expected) {
      throw new OspreyError('OSPREY_ERR_HASH_MISMATCH', `${model}: ${display}: sha256 ${actual} does not match ${expected} recorded in ${shown}`, {
        file: display,
        expected,
        actual,
      });
    }
    verified.push(name);
  }
  return verified;
}
