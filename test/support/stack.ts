/**
 * Shared fixtures of the gRPC and routing tests: a temporary Triton-layout repository (model files linked from
 * ../shared/data, or small ONNX graphs built here), the real server stack (repository → RoutedInferenceService →
 * gRPC on 127.0.0.1, port 0) and a real grpc-js client from the same .proto files.
 */
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { stringify as toYaml } from 'yaml';
import { decodeImage } from '../../src/image/decode.js';
import { allocateBatch, letterboxImageInto } from '../../src/image/letterbox.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { DataType, encodeOnnxModel, readOnnxModel, type OnnxModel } from '../../src/onnx/index.js';
import { GraphBuilder, uint8Input } from '../../src/onnx/passes/index.js';
import { makeValueInfo } from '../../src/onnx/graph.js';
import { ModelRepository } from '../../src/repository/repository.js';
import { RoutedInferenceService, type RoutedServiceOptions } from '../../src/routing/router.js';
import { startGrpcForService, type OspreyGrpcServer } from '../../src/server/grpc/index.js';
import { loadGrpcDefinitions } from '../../src/server/grpc/proto.js';

export { MODEL_PATH, SHARED_DATA_DIR, BUS_JPG } from './data.js';
import { BUS_JPG, MODEL_PATH, SHARED_DATA_DIR } from './data.js';
/** ../shared/data: repositories link their models there (allowed as a symlink target). */

/** bus.jpg letterboxed to 640×640: FP32 [1, 3, 640, 640] RGB 0..1, and UINT8 [1, 640, 640, 3]. */
export async function busInputs(): Promise<{ fp32: Float32Array; uint8: Uint8Array }> {
  const img = await decodeImage(BUS_JPG);
  const f = allocateBatch('float32-nchw', 1, 640, 640);
  await letterboxImageInto(img, f, 0);
  const u = allocateBatch('uint8-nhwc', 1, 640, 640);
  await letterboxImageInto(img, u, 0);
  return { fp32: f.data as Float32Array, uint8: u.data as Uint8Array };
}

function emptyModel(): OnnxModel {
  return {
    ir_version: 8,
    opset_import: [{ domain: '', version: 13 }],
    producer_name: 'osprey-test',
    graph: { name: 'tiny', node: [], initializer: [], input: [], output: [], value_info: [] },
    metadata_props: [],
  };
}

/** A tiny model: `x` FP32 ['batch', 4] → `y = x × scale` (cheap volume tests: one request ≈ a worker round trip). */
export function tinyModelBytes(scale: number): Uint8Array {
  const m = emptyModel();
  const b = new GraphBuilder(m.graph, 'tiny/', 13);
  b.nodes.push({ input: ['x', b.float([scale], DataType.FLOAT, 'scale', [])], output: ['y'], op_type: 'Mul', name: 'mul', attribute: [] });
  m.graph.node.push(...b.nodes);
  m.graph.input.push(makeValueInfo('x', DataType.FLOAT, ['batch', 4]));
  m.graph.output.push(makeValueInfo('y', DataType.FLOAT, ['batch', 4]));
  return encodeOnnxModel(m);
}

/**
 * A tiny model that loads and passes a zero-input warmup but fails at run time when any input value is ≥ 1:
 * `y = x + Gather([0], int(max(x)))` — the index is out of bounds for max(x) ≥ 1 ("indices element out of data
 * bounds" from ONNX Runtime).
 */
export function tinyBrokenModelBytes(): Uint8Array {
  const m = emptyModel();
  const b = new GraphBuilder(m.graph, 'tiny/', 13);
  const idx = b.cast(b.reduceMax('x', [0, 1], false), DataType.INT64);
  const g = b.op1('Gather', [b.float([0], DataType.FLOAT, 'one_value', [1]), idx], { axis: 0 });
  b.nodes.push({ input: ['x', g], output: ['y'], op_type: 'Add', name: 'add', attribute: [] });
  m.graph.node.push(...b.nodes);
  m.graph.input.push(makeValueInfo('x', DataType.FLOAT, ['batch', 4]));
  m.graph.output.push(makeValueInfo('y', DataType.FLOAT, ['batch', 4]));
  return encodeOnnxModel(m);
}

/**
 * yolov8n that loads and passes its warmup (zero input) but fails at run time on a real image: a Gather indexes a
 * one-element constant with `int(max(images))`, which is 0 for the zero warmup input and 1 for any image with a
 * white pixel — ONNX Runtime then fails the run ("indices element out of data bounds").
 */
export function brokenAtRunModelBytes(): Uint8Array {
  const m = readOnnxModel(MODEL_PATH);
  const g = m.graph;
  const b = new GraphBuilder(g, 'osprey_test/broken/', m.opset_import.find((o) => !o.domain)?.version ?? 13);
  const max = b.reduceMax('images', [0, 1, 2, 3], false);
  const idx = b.cast(max, DataType.INT64);
  const gathered = b.op1('Gather', [b.float([0], DataType.FLOAT, 'one_value', [1]), idx], { axis: 0 });
  const out = g.output[0]!.name!;
  const renamed = b.name('output_before');
  for (const n of g.node) n.output = n.output.map((o) => (o === out ? renamed : o));
  b.nodes.push({ input: [renamed, gathered], output: [out], op_type: 'Add', name: b.name('Add'), attribute: [] });
  g.node.push(...b.nodes);
  return encodeOnnxModel(m);
}

/** yolov8n with Osprey's uint8 NHWC input prefix (src/onnx `uint8Input` pass): `images` UINT8 [1, 640, 640, 3]. */
export function uint8ModelBytes(): Uint8Array {
  return encodeOnnxModel(uint8Input(readOnnxModel(MODEL_PATH)));
}

/** A version's model: a path to link (shared data, never copied) or bytes to write. */
export type VersionSource = string | Uint8Array;

export interface RepoLayout {
  [model: string]: { config?: Record<string, unknown>; versions: Record<number, VersionSource> };
}

/** Writes a Triton-layout repository in a temp folder; returns its path. */
export async function makeRepo(layout: RepoLayout, aliases?: Record<string, unknown>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'osprey-grpc-test-'));
  for (const [name, m] of Object.entries(layout)) {
    await mkdir(join(root, name), { recursive: true });
    if (m.config) await writeFile(join(root, name, 'config.json'), JSON.stringify(m.config));
    for (const [v, src] of Object.entries(m.versions)) await addVersion(root, name, Number(v), src);
  }
  if (aliases) await writeFile(join(root, 'aliases.yaml'), toYaml(aliases));
  return root;
}

/** Adds a version folder to a model of the repository. */
export async function addVersion(root: string, model: string, version: number, src: VersionSource): Promise<void> {
  const dir = join(root, model, String(version));
  await mkdir(dir, { recursive: true });
  if (typeof src === 'string') await symlink(src, join(dir, 'model.onnx'));
  else await writeFile(join(dir, 'model.onnx'), src);
}

export interface Stack {
  root: string;
  repo: ModelRepository;
  service: RoutedInferenceService;
  metrics: ServerMetrics;
  grpcServer: OspreyGrpcServer;
  client: grpc.Client & Record<string, Function>;
  health: grpc.Client & Record<string, Function>;
  /** Log lines the service wrote (warn/error/info objects with their message). */
  logs: Array<{ level: string; msg: string; obj: object }>;
  close(): Promise<void>;
}

/** Starts the real stack on 127.0.0.1 (gRPC port 0) over a repository folder. */
export async function startStack(
  root: string,
  options: { service?: Partial<RoutedServiceOptions>; maxReceiveMessageBytes?: number; removeRoot?: boolean } = {},
): Promise<Stack> {
  const logs: Stack['logs'] = [];
  const log = {
    info: (obj: object, msg?: string) => logs.push({ level: 'info', msg: msg ?? '', obj }),
    warn: (obj: object, msg?: string) => logs.push({ level: 'warn', msg: msg ?? '', obj }),
    error: (obj: object, msg?: string) => logs.push({ level: 'error', msg: msg ?? '', obj }),
  };
  const repo = await ModelRepository.open(root, { executionProviders: ['cpu'], allowedSymlinkTargets: [SHARED_DATA_DIR] });
  const metrics = new ServerMetrics({ processMetrics: false, gpuMetrics: false });
  const service = new RoutedInferenceService({ repository: repo, metrics, log, ...options.service });
  const grpcServer = await startGrpcForService(service, { host: '127.0.0.1', port: 0, logger: log, ...(options.maxReceiveMessageBytes ? { maxReceiveMessageBytes: options.maxReceiveMessageBytes } : {}) });
  const defs = loadGrpcDefinitions();
  const target = `127.0.0.1:${grpcServer.port}`;
  const clientOptions = { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1 };
  const client = new defs.InferenceClient(target, grpc.credentials.createInsecure(), clientOptions) as Stack['client'];
  const health = new defs.HealthClient(target, grpc.credentials.createInsecure()) as Stack['health'];
  return {
    root,
    repo,
    service,
    metrics,
    grpcServer,
    client,
    health,
    logs,
    async close() {
      client.close();
      health.close();
      await grpcServer.close(2000);
      await service.shutdown();
      if (options.removeRoot !== false) await rm(root, { recursive: true, force: true });
    },
  };
}

export interface CallOutcome<T> {
  res?: T;
  err?: grpc.ServiceError;
}

/** A unary call as a promise that never rejects (the error is returned, for asserting its status). */
export function call<T = Record<string, unknown>>(client: Stack['client'], method: string, request: object, options: grpc.CallOptions = {}): Promise<CallOutcome<T>> {
  return new Promise((resolve) => {
    client[method]!(request, new grpc.Metadata(), options, (err: grpc.ServiceError | null, res: T) => resolve(err ? { err } : { res }));
  });
}

/** The `osprey-error-code` trailer of a failed call. */
export function errorCode(err: grpc.ServiceError | undefined): string | undefined {
  return err?.metadata?.get('osprey-error-code')[0]?.toString();
}

/** A ModelInferRequest with one FP32/UINT8 raw input. */
export function rawInfer(model: string, input: { name: string; datatype: string; shape: number[]; data: ArrayBufferView }, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model_name: model,
    inputs: [{ name: input.name, datatype: input.datatype, shape: input.shape }],
    raw_input_contents: [Buffer.from(input.data.buffer, input.data.byteOffset, input.data.byteLength)],
    ...extra,
  };
}

/** Float32 view of a raw output entry. */
export function rawFloat32(bytes: Uint8Array): Float32Array {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Float32Array(copy.buffer);
}

export { Registry };
