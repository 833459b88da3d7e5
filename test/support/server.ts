/**
 * Shared fixtures of the server tests: a temporary Triton-layout repository around the real model in
 * ../shared/data (symlinked, never copied into the repo; the dynamic-batch and uint8 variants are built with
 * Osprey's own graph passes into the temp folder), and small HTTP helpers.
 */
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dynamicBatch, readOnnxModel, uint8Input, writeOnnxModel } from '../../src/onnx/index.js';

/** ../shared/data: test repositories link their models there, so servers under test allow it as a symlink target. */
export { BUS_JPG, MODEL_PATH, SHARED_DATA_DIR, ZIDANE_JPG } from './data.js';
export { tempDir } from './temp.js';
import { MODEL_PATH } from './data.js';

/** Creates `<root>/<name>/<version>/model.onnx` as a symlink (or a written file) and an optional config. */
export async function addModel(root: string, name: string, options: { version?: number; modelFile?: string; config?: unknown; configName?: string; manifest?: unknown } = {}): Promise<string> {
  const dir = join(root, name, String(options.version ?? 1));
  await mkdir(dir, { recursive: true });
  await symlink(options.modelFile ?? MODEL_PATH, join(dir, 'model.onnx'));
  if (options.config !== undefined) {
    const configName = options.configName ?? 'config.json';
    await writeFile(join(root, name, configName), typeof options.config === 'string' ? options.config : JSON.stringify(options.config, null, 2));
  }
  if (options.manifest !== undefined) await writeFile(join(dir, 'manifest.json'), JSON.stringify(options.manifest));
  return dir;
}

/** Builds the dynamic-batch model (and its uint8-input variant) with Osprey's graph passes into `dir`. */
export function buildVariants(dir: string): { dynamic: string; uint8: string } {
  const base = readOnnxModel(MODEL_PATH);
  const dyn = dynamicBatch(base, { maxBatch: 16 });
  const dynamic = join(dir, 'yolov8n-dynamic.onnx');
  writeOnnxModel(dyn, dynamic);
  const uint8 = join(dir, 'yolov8n-dynamic-uint8.onnx');
  writeOnnxModel(uint8Input(dyn), uint8);
  return { dynamic, uint8 };
}


/** A KServe binary-extension body: JSON header + raw tensors. */
export function binaryBody(header: unknown, tensors: ArrayBufferView[]): { body: Buffer; headers: Record<string, string> } {
  const json = Buffer.from(JSON.stringify(header));
  const body = Buffer.concat([json, ...tensors.map((t) => Buffer.from(t.buffer, t.byteOffset, t.byteLength))]);
  return { body, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(json.length) } };
}

/** Splits a binary-extension response into its JSON header and raw bytes. */
export async function readBinaryResponse(res: Response): Promise<{ header: { outputs: Array<{ name: string; shape: number[]; datatype: string; parameters?: { binary_data_size?: number } }> } & Record<string, unknown>; binary: Buffer }> {
  const buf = Buffer.from(await res.arrayBuffer());
  const n = Number(res.headers.get('inference-header-content-length'));
  return { header: JSON.parse(buf.subarray(0, n).toString('utf8')), binary: buf.subarray(n) };
}

export async function json(res: Response): Promise<any> {
  return JSON.parse(await res.text());
}
