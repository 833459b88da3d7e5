/**
 * {@link readModelMetadata}: the facts an engine needs (inputs, outputs, metadata_props, opsets) without
 * decoding the weights: the ModelProto is walked field by field and only the graph's inputs, outputs and
 * initializer names are decoded (tensor bytes are skipped, not copied).
 */
import protobuf from 'protobufjs';
import { OspreyError } from '../core/errors.js';
import type { TensorSpec } from '../core/types.js';
import { valueInfoToTensorSpec } from './graph.js';
import { readModelFile } from './model.js';
import type { ValueInfoProto } from './proto-types.js';
import { onnxType } from './schema.js';

/** What {@link readModelMetadata} returns. */
export interface ModelMetadata {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  /** Operator sets imported, domain '' = ai.onnx, e.g. `[{ domain: '', version: 17 }]`. */
  opsetImports: { domain: string; version: number }[];
  /** metadata_props as a record, e.g. Ultralytics' `{ names: "{0: 'person', ...}", stride: '32', imgsz: '[640, 640]' }`. */
  metadata: Record<string, string>;
  /** Graph inputs (initializers listed as inputs left out), e.g. `[{ name: 'images', type: 'float32', shape: [1, 3, 640, 640] }]`. */
  inputs: TensorSpec[];
  /** Graph outputs, e.g. `[{ name: 'output0', type: 'float32', shape: [1, 84, 8400] }]`. */
  outputs: TensorSpec[];
}

const WIRE_LEN = 2;

/**
 * Reads a model's inputs/outputs, metadata_props and opset imports, cheaply (no weights decoded).
 * Symbolic axes come back as their names (`'batch'`), unnamed dynamic axes as -1.
 *
 * @param pathOrBytes model file path or its bytes.
 * @example
 *   const meta = readModelMetadata('../shared/data/models/yolov8n.onnx');
 *   meta.outputs[0]; // { name: 'output0', type: 'float32', shape: [1, 84, 8400] }
 * @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND_FILE`, `OSPREY_ERR_ONNX_PARSE`, `OSPREY_ERR_INVALID_MODEL`
 *   (no graph), `OSPREY_ERR_UNSUPPORTED_MODEL` (an input/output that is not a tensor of a supported type).
 */
export function readModelMetadata(pathOrBytes: string | Uint8Array): ModelMetadata {
  const source = typeof pathOrBytes === 'string' ? pathOrBytes : '<bytes>';
  const bytes = typeof pathOrBytes === 'string' ? readModelFile(pathOrBytes) : pathOrBytes;
  const VI = onnxType('ValueInfoProto');
  const OSI = onnxType('OperatorSetIdProto');
  const SSE = onnxType('StringStringEntryProto');
  const out: ModelMetadata = { irVersion: 0, producerName: '', producerVersion: '', opsetImports: [], metadata: {}, inputs: [], outputs: [] };
  let hasGraph = false;
  let hasIr = false;
  const inputs: ValueInfoProto[] = [];
  const outputs: ValueInfoProto[] = [];
  const initNames = new Set<string>();
  try {
    const r = protobuf.Reader.create(bytes);
    while (r.pos < r.len) {
      const tag = r.uint32();
      const field = tag >>> 3;
      const wire = tag & 7;
      if (field === 1 && wire === 0) {
        out.irVersion = Number(r.int64().toString());
        hasIr = true;
      } else if (field === 2 && wire === WIRE_LEN) out.producerName = r.string();
      else if (field === 3 && wire === WIRE_LEN) out.producerVersion = r.string();
      else if (field === 8 && wire === WIRE_LEN) {
        const o = OSI.toObject(OSI.decode(r.bytes()), { longs: Number }) as { domain?: string; version?: number };
        out.opsetImports.push({ domain: o.domain ?? '', version: o.version ?? 0 });
      } else if (field === 14 && wire === WIRE_LEN) {
        const e = SSE.decode(r.bytes()) as unknown as { key?: string; value?: string };
        if (e.key !== undefined) out.metadata[e.key] = e.value ?? '';
      } else if (field === 7 && wire === WIRE_LEN) {
        hasGraph = true;
        const len = r.uint32();
        const end = r.pos + len;
        if (end > r.len) throw new Error('graph field runs past the end of the file');
        while (r.pos < end) {
          const gtag = r.uint32();
          const gf = gtag >>> 3;
          const gw = gtag & 7;
          if ((gf === 11 || gf === 12) && gw === WIRE_LEN) {
            const v = VI.toObject(VI.decode(r.bytes()), { longs: Number }) as ValueInfoProto;
            (gf === 11 ? inputs : outputs).push(v);
          } else if (gf === 5 && gw === WIRE_LEN) {
            const name = tensorName(r);
            if (name !== undefined) initNames.add(name);
          } else r.skipType(gw);
        }
      } else r.skipType(wire);
    }
  } catch (err) {
    if (err instanceof OspreyError) throw err;
    throw new OspreyError('OSPREY_ERR_ONNX_PARSE', `${source}: not an ONNX model (protobuf parse failed: ${(err as Error).message})`, { path: source }, { cause: err });
  }
  if (!hasGraph || !hasIr) {
    throw new OspreyError('OSPREY_ERR_INVALID_MODEL', `${source}: not an ONNX model (${bytes.length === 0 ? 'empty file' : !hasGraph ? 'no graph' : 'no ir_version'})`, { path: source });
  }
  out.inputs = inputs.filter((v) => !initNames.has(v.name ?? '')).map(valueInfoToTensorSpec);
  out.outputs = outputs.map(valueInfoToTensorSpec);
  return out;
}

/** Reads one length-delimited TensorProto from `r`, returning only its name (field 8); data skipped. */
function tensorName(r: protobuf.Reader): string | undefined {
  const len = r.uint32();
  const end = r.pos + len;
  if (end > r.len) throw new Error('initializer runs past the end of the file');
  let name: string | undefined;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag >>> 3 === 8 && (tag & 7) === WIRE_LEN) name = r.string();
    else r.skipType(tag & 7);
  }
  return name;
}
