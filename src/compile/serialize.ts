/**
 * The engine file (`model.sm90.engine`): the plan, the chosen tactics and the compiled kernels for ONE compute
 * capability, driver and library versions, with a manifest and sha256 of every blob. Layout:
 *
 * ```
 * bytes 0..7    "OSPRYGE1"
 * bytes 8..11   header length (uint32 LE)
 * header        UTF-8 JSON ({@link EngineFileHeader})
 * blobs         weights, cubin — each at a 256-byte aligned offset from the file start
 * ```
 * Pure functions over bytes (no GPU): written by `osprey build --engine cuda`, read by the GPU engine, which refuses
 * a file built for another GPU architecture, driver or library version ({@link checkEngineCompatible}).
 */
import { createHash } from 'node:crypto';
import { OspreyError } from '../core/errors.js';
import type { EnginePlan } from './plan.js';

export const ENGINE_MAGIC = 'OSPRYGE1';
export const ENGINE_FORMAT_VERSION = 1;

/** What the engine was built for; loading checks each field. */
export interface EngineTarget {
  gpuName: string;
  /** e.g. "9.0". */
  computeCapability: string;
  /** CUDA driver API version, e.g. "13.0". */
  driverVersion: string;
  nvrtcVersion: string;
  /** cuDNN version the tactics were chosen with (null: no cuDNN tactic used). */
  cudnnVersion: string | null;
}

export interface BlobRef {
  offset: number;
  bytes: number;
  sha256: string;
}

export interface EngineFileHeader {
  format: 'osprey-gpu-engine';
  formatVersion: number;
  createdAt: string;
  osprey: string;
  source: { file: string; sha256: string };
  target: EngineTarget;
  plan: EnginePlan;
  /** Conv tactic per layer index, e.g. `{ "3": { "kind": "own", "tile": [128, 64] } }`. */
  tactics: Record<string, unknown>;
  /** Build figures: autotuning time, timed layers, kernel compile time. */
  build: Record<string, unknown>;
  blobs: { weights: BlobRef; cubin: BlobRef };
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const align = (n: number) => Math.ceil(n / 256) * 256;

/** Serializes an engine. Returns the file bytes. */
export function writeEngineFile(h: Omit<EngineFileHeader, 'format' | 'formatVersion' | 'blobs'>, weights: Uint8Array, cubin: Uint8Array): Uint8Array {
  // the header holds the blob offsets, which depend on the header length: grow the first offset until it fits
  let start = 256;
  let headerBytes: Uint8Array;
  let offsets: { weights: number; cubin: number };
  for (;;) {
    offsets = { weights: start, cubin: align(start + weights.length) };
    const header: EngineFileHeader = {
      format: 'osprey-gpu-engine',
      formatVersion: ENGINE_FORMAT_VERSION,
      ...h,
      blobs: { weights: { offset: offsets.weights, bytes: weights.length, sha256: sha(weights) }, cubin: { offset: offsets.cubin, bytes: cubin.length, sha256: sha(cubin) } },
    };
    headerBytes = new TextEncoder().encode(JSON.stringify(header));
    const need = align(12 + headerBytes.length);
    if (need <= start) break;
    start = need;
  }
  const total = offsets.cubin + cubin.length;
  const out = new Uint8Array(total);
  out.set(new TextEncoder().encode(ENGINE_MAGIC), 0);
  new DataView(out.buffer).setUint32(8, headerBytes.length, true);
  out.set(headerBytes, 12);
  out.set(weights, offsets.weights);
  out.set(cubin, offsets.cubin);
  return out;
}

/**
 * Parses an engine file and verifies every blob's sha256.
 * @throws OspreyError `OSPREY_ERR_ENGINE_INCOMPATIBLE` when it is not an engine file, of another format version, or damaged.
 */
export function readEngineFile(bytes: Uint8Array, name = 'engine'): { header: EngineFileHeader; weights: Uint8Array; cubin: Uint8Array } {
  const bad = (why: string) => new OspreyError('OSPREY_ERR_ENGINE_INCOMPATIBLE', `${name}: ${why}; rebuild it with osprey build --engine cuda`, { file: name });
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== ENGINE_MAGIC) throw bad('not an Osprey GPU engine file (bad magic)');
  const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true);
  if (12 + len > bytes.length) throw bad('truncated header');
  let header: EngineFileHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + len))) as EngineFileHeader;
  } catch {
    throw bad('unreadable header');
  }
  if (header.format !== 'osprey-gpu-engine' || header.formatVersion !== ENGINE_FORMAT_VERSION) throw bad(`format ${header.format} v${header.formatVersion}, this Osprey reads v${ENGINE_FORMAT_VERSION}`);
  const blob = (ref: BlobRef, what: string) => {
    if (ref.offset + ref.bytes > bytes.length) throw bad(`the ${what} blob is truncated`);
    const b = bytes.subarray(ref.offset, ref.offset + ref.bytes);
    if (sha(b) !== ref.sha256) throw bad(`the ${what} blob's sha256 does not match the manifest (damaged file)`);
    return b;
  };
  return { header, weights: blob(header.blobs.weights, 'weights'), cubin: blob(header.blobs.cubin, 'kernel') };
}

/**
 * Refuses an engine built for another GPU architecture, driver or library version.
 * @throws OspreyError `OSPREY_ERR_ENGINE_INCOMPATIBLE` naming what differs and saying to rebuild.
 */
export function checkEngineCompatible(target: EngineTarget, here: EngineTarget, name = 'engine'): void {
  const diffs: string[] = [];
  if (target.computeCapability !== here.computeCapability) diffs.push(`compute capability ${target.computeCapability} (built on ${target.gpuName}) ≠ ${here.computeCapability} (${here.gpuName})`);
  if (target.driverVersion !== here.driverVersion) diffs.push(`CUDA driver ${target.driverVersion} ≠ ${here.driverVersion}`);
  if (target.nvrtcVersion !== here.nvrtcVersion) diffs.push(`NVRTC ${target.nvrtcVersion} ≠ ${here.nvrtcVersion}`);
  if (target.cudnnVersion !== null && target.cudnnVersion !== here.cudnnVersion) diffs.push(`cuDNN ${target.cudnnVersion} ≠ ${here.cudnnVersion ?? 'none'}`);
  if (diffs.length > 0) {
    throw new OspreyError('OSPREY_ERR_ENGINE_INCOMPATIBLE', `${name} was built for another GPU or library version: ${diffs.join('; ')}. Rebuild it on this machine: osprey build --engine cuda`, {
      file: name,
      built: target,
      here,
    });
  }
}

/** The file name for a compute capability, e.g. `model.sm90.engine` (for the repository's `ccModelFilenames`). */
export function engineFileName(computeCapability: string, base = 'model'): string {
  return `${base}.sm${computeCapability.replace('.', '')}.engine`;
}
