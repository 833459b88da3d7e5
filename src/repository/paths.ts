/**
 * Path confinement for the model repository: every path that comes from a model config or a load request
 * (`defaultModelFilename`, `modelWarmup[].inputs.*.inputDataFile`, pushed `file:<version>/<name>` entries) must
 * name a file inside the model's folder, and must still be inside it after symbolic links are resolved.
 *
 * Two checks, in this order:
 * 1. lexical (no file system access, so nothing about the disk is revealed): a relative path of plain segments —
 *    not absolute, no `..` or `.` segment, no empty segment, no backslash, no NUL;
 * 2. after symlinks (`realpath`): the file is inside the model folder's own real path, or inside one of the
 *    folders the operator allowed as symlink targets (`osprey serve --allow-symlink-target DIR`, for repositories
 *    whose `model.onnx` links to shared storage).
 *
 * Messages name paths relative to the model folder (`1/model.onnx`), never the server's absolute paths, and a path
 * refused by the lexical check is refused before anything is looked up, so error texts cannot be used to probe
 * which files exist elsewhere on the machine. Reads are bounded: {@link readBoundedFile} refuses anything that is
 * not a regular file (e.g. `/dev/zero`) and any size other than the one the config implies.
 */
import { open, realpath } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { OspreyError } from '../core/errors.js';

/** Where a confined path was found (for messages and key paths). */
export interface PathContext {
  /** The model's name, for messages. */
  model: string;
  /** Config key path or request parameter the path came from, e.g. `defaultModelFilename`. */
  keyPath: string;
}

const PLAIN_SEGMENT = /^[^/\\\0]+$/;

/**
 * Lexical check of a relative path from a config or request (step 1 above).
 * @returns the path's segments.
 * @throws OspreyError `OSPREY_ERR_PATH_NOT_ALLOWED` naming the key path.
 */
export function checkRelativePath(path: string, ctx: PathContext): string[] {
  const refuse = (why: string): never => {
    throw new OspreyError('OSPREY_ERR_PATH_NOT_ALLOWED', `${ctx.model}: ${ctx.keyPath} '${printable(path)}' ${why}`, { model: ctx.model, keyPath: ctx.keyPath });
  };
  if (path.length === 0) refuse('is empty');
  if (path.length > 1024) refuse('is longer than 1024 characters');
  if (path.includes('\0')) refuse('contains a NUL character');
  if (path.includes('\\')) refuse("contains a backslash (use '/')");
  if (isAbsolute(path)) refuse('is an absolute path; give a path relative to the model folder');
  const segments = path.split('/');
  for (const s of segments) {
    if (s === '' || !PLAIN_SEGMENT.test(s)) refuse('has an empty segment');
    if (s === '..' || s === '.') refuse(`has a '${s}' segment; paths must stay inside the model folder`);
  }
  return segments;
}

/** True when `child` is `parent` or inside it (both absolute, normalised). */
export function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..' + sep) && rel !== '..' && !isAbsolute(rel));
}

/**
 * Resolves `rel` (relative to `base`, a folder inside or equal to `modelDir`) to a real path confined to the model
 * folder (step 1 and 2 above).
 * @param modelDir the model folder (`<repository>/<model>`, or the folder of a pushed model).
 * @param base folder `rel` is relative to (e.g. `<modelDir>/1` for a model file, `<modelDir>/warmup`).
 * @param allowedTargets real paths of folders symlinks may point into (besides the model folder).
 * @returns `{ path, display }`: the real path to open, and the path relative to the model folder for messages.
 * @throws OspreyError `OSPREY_ERR_PATH_NOT_ALLOWED` (lexical, or a link that leaves the allowed folders),
 *   `OSPREY_ERR_MODEL_NOT_FOUND_FILE` (no such file in the model folder).
 */
export async function resolveInModelFolder(modelDir: string, base: string, rel: string, ctx: PathContext, allowedTargets: readonly string[] = []): Promise<{ path: string; display: string }> {
  checkRelativePath(rel, ctx);
  const lexical = join(base, rel);
  const display = relative(modelDir, lexical) || rel;
  const realModelDir = await realpath(modelDir).catch(() => modelDir);
  let real: string;
  try {
    real = await realpath(lexical);
  } catch {
    throw new OspreyError('OSPREY_ERR_MODEL_NOT_FOUND_FILE', `${ctx.model}: ${ctx.keyPath}: '${display}' is not a file in the model folder`, { model: ctx.model, keyPath: ctx.keyPath, path: display });
  }
  if (!isInside(realModelDir, real) && !allowedTargets.some((t) => isInside(t, real))) {
    throw new OspreyError(
      'OSPREY_ERR_PATH_NOT_ALLOWED',
      `${ctx.model}: ${ctx.keyPath}: '${display}' is a symbolic link that leads outside the model folder; the operator can allow its target folder with --allow-symlink-target`,
      { model: ctx.model, keyPath: ctx.keyPath, path: display },
    );
  }
  return { path: real, display };
}

/** Real paths of the operator's allowed symlink target folders (missing ones are dropped). */
export async function realAllowedTargets(dirs: readonly string[] | undefined): Promise<string[]> {
  const out: string[] = [];
  for (const d of dirs ?? []) {
    const r = await realpath(d).catch(() => null);
    if (r) out.push(r);
  }
  return out;
}

/**
 * Reads a regular file of exactly `expectedBytes` bytes (or at most `maxBytes` when `expectedBytes` is undefined),
 * never more: the size is checked on the open handle (`fstat`) before reading, and the read stops at the bound.
 * @param display the path to name in messages (relative to the model folder).
 * @throws OspreyError `OSPREY_ERR_PATH_NOT_ALLOWED` (not a regular file: a device, FIFO or folder),
 *   `OSPREY_ERR_CONFIG` (wrong size, naming both), `OSPREY_ERR_MODEL_NOT_FOUND_FILE` (cannot be opened).
 */
export async function readBoundedFile(path: string, display: string, ctx: PathContext, bound: { expectedBytes?: number; maxBytes?: number }): Promise<Buffer> {
  const fh = await open(path, 'r').catch(() => {
    throw new OspreyError('OSPREY_ERR_MODEL_NOT_FOUND_FILE', `${ctx.model}: ${ctx.keyPath}: cannot open '${display}'`, { model: ctx.model, keyPath: ctx.keyPath, path: display });
  });
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      throw new OspreyError('OSPREY_ERR_PATH_NOT_ALLOWED', `${ctx.model}: ${ctx.keyPath}: '${display}' is not a regular file`, { model: ctx.model, keyPath: ctx.keyPath, path: display });
    }
    const limit = bound.expectedBytes ?? bound.maxBytes ?? 0;
    if ((bound.expectedBytes !== undefined && st.size !== bound.expectedBytes) || (bound.expectedBytes === undefined && st.size > limit)) {
      const want = bound.expectedBytes !== undefined ? `expected exactly ${bound.expectedBytes}` : `at most ${limit} allowed`;
      throw new OspreyError('OSPREY_ERR_CONFIG', `${ctx.model}: ${ctx.keyPath}: '${display}' has ${st.size} bytes, ${want}`, { model: ctx.model, keyPath: ctx.keyPath, path: display });
    }
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < st.size) {
      const { bytesRead } = await fh.read(buf, off, st.size - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    if (off !== st.size) throw new OspreyError('OSPREY_ERR_CONFIG', `${ctx.model}: ${ctx.keyPath}: '${display}' changed while it was read`, { model: ctx.model, keyPath: ctx.keyPath, path: display });
    return buf;
  } finally {
    await fh.close();
  }
}

/** A path string safe to echo back (control characters escaped, long ones cut). */
function printable(s: string): string {
  const cut = s.length > 200 ? `${s.slice(0, 200)}…` : s;
  return cut.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
