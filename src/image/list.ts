/**
 * Expanding command-line image arguments (files and directories) into an ordered list of image files.
 */
import { readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { OspreyError } from '../core/errors.js';

/** File extensions taken from a directory (lower case, with the dot). */
export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.bmp'];

/** One entry of {@link listImages}: an image path, or an argument that yields no image, with its error. */
export interface ImageEntry {
  path: string;
  /** Set when the argument is a directory without images (`OSPREY_ERR_NO_IMAGES`) or cannot be read (`OSPREY_ERR_FILE_NOT_FOUND`). */
  error?: OspreyError;
}

/** True when the file name has an image extension (case-insensitive). */
export function isImageFileName(name: string): boolean {
  return IMAGE_EXTENSIONS.includes(extname(name).toLowerCase());
}

/**
 * Expands paths in order: a directory becomes its image files (not recursive, sorted by name), a file stays as
 * given (whatever its extension: the decoder decides). A directory without images, or a path that cannot be read,
 * becomes an entry with an error, so the other arguments are still processed.
 *
 * @example
 *   await listImages(['bus.jpg', 'frames/']) // → [{ path: 'bus.jpg' }, { path: 'frames/0001.jpg' }, ...]
 */
export async function listImages(paths: readonly string[]): Promise<ImageEntry[]> {
  const out: ImageEntry[] = [];
  for (const p of paths) {
    let isDir = false;
    try {
      isDir = (await stat(p)).isDirectory();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
      out.push({ path: p, error: new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `${p}: cannot read (${code === 'ENOENT' ? 'no such file or directory' : code})`, { path: p, errno: code }) });
      continue;
    }
    if (!isDir) {
      out.push({ path: p });
      continue;
    }
    let names: string[];
    try {
      names = (await readdir(p, { withFileTypes: true })).filter((d) => d.isFile() && isImageFileName(d.name)).map((d) => d.name);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
      out.push({ path: p, error: new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `${p}: cannot list the directory (${code})`, { path: p, errno: code }) });
      continue;
    }
    if (names.length === 0) {
      out.push({ path: p, error: new OspreyError('OSPREY_ERR_NO_IMAGES', `${p}: the directory holds no image files (${IMAGE_EXTENSIONS.join(', ')})`, { path: p }) });
      continue;
    }
    names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const n of names) out.push({ path: join(p, n) });
  }
  return out;
}
