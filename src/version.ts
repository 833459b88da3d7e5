import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

function readVersion(): string {
  for (const p of ['../package.json', '../../package.json']) {
    try {
      return (require(p) as { version: string }).version;
    } catch {
      /* try next */
    }
  }
  return '0.0.0';
}

/** Osprey's version (package.json). */
export const OSPREY_VERSION: string = readVersion();

/** onnxruntime-node's version, read from its package.json without loading the native binding. */
export function onnxRuntimeVersion(): string {
  try {
    return (require('onnxruntime-node/package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
