/**
 * sha256 digests (hex), the one implementation used for manifests, bench files, calibration caches and the GPU
 * provider libraries.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';

/** sha256 (hex) of bytes. */
export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** sha256 (hex) of a file, streamed (constant memory, for large models). */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => h.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

/** sha256 (hex) of a file, read at once (synchronous callers). */
export function sha256FileSync(path: string): string {
  return sha256Hex(readFileSync(path));
}
