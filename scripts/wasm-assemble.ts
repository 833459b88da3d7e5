/** WebAssembly text → binary with wabt (SIMD on), shared by scripts/build-wasm.ts and the test that checks its output. */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import wabtInit from 'wabt';

/** Assembles one .wat file; throws wabt's parse or validation error (naming the line). */
export async function assembleWat(path: string): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const module = wabt.parseWat(basename(path), readFileSync(path, 'utf8'), { simd: true });
  try {
    module.validate();
    return new Uint8Array(module.toBinary({ log: false, write_debug_names: false }).buffer);
  } finally {
    module.destroy();
  }
}
