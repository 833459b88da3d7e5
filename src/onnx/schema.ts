/**
 * The ONNX protobuf schema (`proto/onnx.proto` at the package root, written from the public ONNX IR
 * specification), loaded once with protobufjs. Field names are kept exactly as in the specification
 * (`raw_data`, `opset_import`, ...), so code here reads like the ONNX docs.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { OspreyError } from '../core/errors.js';

let cached: protobuf.Root | undefined;

/**
 * Path of `proto/onnx.proto`: found by walking up from this module, so it works from `src/onnx/` (tsx)
 * and from `dist/src/onnx/` (compiled; `proto/` ships in the package's `files`).
 */
export function onnxProtoPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const candidate = join(dir, 'proto', 'onnx.proto');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new OspreyError('OSPREY_ERR_INTERNAL', 'proto/onnx.proto not found above ' + dirname(fileURLToPath(import.meta.url)));
}

/** The protobufjs root holding the `onnx.*` types (loaded once, snake_case field names kept). */
export function onnxRoot(): protobuf.Root {
  if (!cached) {
    const root = new protobuf.Root();
    root.loadSync(onnxProtoPath(), { keepCase: true });
    root.resolveAll();
    cached = root;
  }
  return cached;
}

/** A message type of the schema, e.g. `onnxType('ModelProto')`. */
export function onnxType(name: string): protobuf.Type {
  return onnxRoot().lookupType('onnx.' + name);
}
