/**
 * Worker-thread entry: owns ONE ONNX Runtime session (onnxruntime-node's `run()` blocks the thread that calls it,
 * so each session gets its own thread and the main thread only routes messages).
 *
 * Startup: try each execution provider in order, record why each failed, warm up, post `ready`.
 * Then: `run` → session.run → post outputs with their ArrayBuffers in the transfer list (moved, not copied).
 *
 * Shape-specialised sessions (device EPs only): the CUDA EP re-plans every cuDNN convolution whenever the input shape
 * of a session differs from its previous run — about 1.5 s per change for yolov8n on an H100, while a run at an
 * unchanged shape takes 4–14 ms (bench/results/nvidia-h100/shape-switch-yolov8n.json). A dynamic batcher that sends
 * batch 32, then 8, then 32 to one session would pay that every run. So on a device EP this worker opens one session
 * per distinct input shape it is asked to run (up to `maxShapeSessions`; the first shape takes the original session),
 * and each keeps its shape for good: the same idea as TensorRT's optimization profiles. Shapes beyond the limit run
 * on the original session (and pay the re-plan).
 */
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import type { Tensor, TensorDataType, TensorSpec, TensorStorage } from '../core/types.js';
import type { ExecutionProviderFallback } from './engine.js';
import { explainExecutionProviderFailure, normalizeExecutionProvider } from './execution-providers.js';
import { DEFAULT_MAX_SHAPE_SESSIONS, type MainToWorker, type OrtWorkerData, type WorkerToMain } from './worker-protocol.js';
import { readModelMetadata } from '../onnx/metadata.js';
import { isOspreyError } from '../core/errors.js';
import { warmupDims } from './warmup.js';

if (!parentPort) throw new Error('ort-worker must run in a worker_thread');
const port = parentPort;
const config = workerData as OrtWorkerData;

// ORT prints provider-load failures to stderr itself; we report them as `fallbacks` with the real reason instead.
ort.env.logLevel = (process.env.OSPREY_ORT_LOG_LEVEL as typeof ort.env.logLevel | undefined) ?? 'fatal';

function post(msg: WorkerToMain, transfer: ArrayBuffer[] = []): void {
  port.postMessage(msg, transfer);
}

function toSpec(m: ort.InferenceSession.ValueMetadata): TensorSpec {
  if (!m.isTensor) return { name: m.name, type: 'float32', shape: [] };
  return { name: m.name, type: m.type as TensorDataType, shape: m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : String(d))) };
}

function epOption(ep: string): ort.InferenceSession.ExecutionProviderConfig {
  if (ep === 'cuda' || ep === 'tensorrt') return { name: ep, deviceId: config.deviceId } as ort.InferenceSession.ExecutionProviderConfig;
  return ep;
}

function zeroStorage(type: string, size: number): TensorStorage | undefined {
  switch (type) {
    case 'float32': return new Float32Array(size);
    case 'float16': return new Uint16Array(size);
    case 'uint8': return new Uint8Array(size);
    case 'int8': return new Int8Array(size);
    case 'int32': return new Int32Array(size);
    case 'int64': return new BigInt64Array(size);
    case 'float64': return new Float64Array(size);
    case 'bool': return new Uint8Array(size);
    default: return undefined;
  }
}

/** Opens one session of the model on one execution provider (throws ORT's error). */
async function openSession(ep: string): Promise<ort.InferenceSession> {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: [epOption(ep)],
    graphOptimizationLevel: 'all',
  };
  if (config.intraOpNumThreads > 0) options.intraOpNumThreads = config.intraOpNumThreads;
  if (config.intraOpSpinning !== undefined) options.extra = { session: { intra_op: { allow_spinning: config.intraOpSpinning ? '1' : '0' } } };
  return config.modelBytes ? ort.InferenceSession.create(config.modelBytes, options) : ort.InferenceSession.create(config.modelPath, options);
}

async function createSession(): Promise<{ session: ort.InferenceSession; ep: string; fallbacks: ExecutionProviderFallback[] } | undefined> {
  const fallbacks: ExecutionProviderFallback[] = [];
  const eps = config.executionProviders.map(normalizeExecutionProvider);
  for (const ep of eps) {
    try {
      const session = await openSession(ep);
      return { session, ep, fallbacks };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (/^Load model from .* failed/i.test(message) || ep === 'cpu') {
        // The model itself cannot be loaded: no provider will do better.
        const missing = /doesn't exist|No such file/i.test(message);
        post({
          type: 'load-error',
          code: missing ? 'OSPREY_ERR_MODEL_NOT_FOUND_FILE' : 'OSPREY_ERR_INVALID_MODEL',
          message: `${config.modelPath}: ONNX Runtime cannot load the model (${message.split('\n')[0]})`,
          details: { modelPath: config.modelPath, executionProvider: ep, fallbacks },
        });
        return undefined;
      }
      fallbacks.push({ executionProvider: ep, reason: explainExecutionProviderFailure(ep, message) });
    }
  }
  post({
    type: 'load-error',
    code: 'OSPREY_ERR_EP_UNAVAILABLE',
    message: `none of the execution providers [${eps.join(', ')}] could be loaded: ${fallbacks.map((f) => f.reason).join('; ')}`,
    details: { fallbacks },
  });
  return undefined;
}

/** The key of a run's input shapes, e.g. `images:32x640x640x3`. */
function shapeKey(feeds: Record<string, { dims: readonly number[] }>): string {
  return Object.entries(feeds)
    .map(([name, t]) => `${name}:${t.dims.join('x')}`)
    .join(',');
}

/**
 * Sessions by input shape (device EPs). The original session is entered under the first shape it runs (its warm-up
 * shape when warmed up); the others are opened on first use of their shape.
 */
class ShapeSessions {
  private readonly byShape = new Map<string, Promise<ort.InferenceSession>>();
  private readonly all: ort.InferenceSession[];

  constructor(
    private readonly main: ort.InferenceSession,
    private readonly ep: string,
    private readonly max: number,
  ) {
    this.all = [main];
  }

  claim(key: string): void {
    if (this.byShape.size === 0) this.byShape.set(key, Promise.resolve(this.main));
  }

  get(key: string): Promise<ort.InferenceSession> {
    const known = this.byShape.get(key);
    if (known) return known;
    if (this.byShape.size === 0) {
      this.claim(key);
      return Promise.resolve(this.main);
    }
    if (this.byShape.size >= this.max) return Promise.resolve(this.main);
    const opened = openSession(this.ep).then((s) => {
      this.all.push(s);
      return s;
    });
    // a failed open is not cached: the run that asked reports the error, a later run may retry
    opened.catch(() => this.byShape.delete(key));
    this.byShape.set(key, opened);
    return opened;
  }

  /** Sessions open (or opening). */
  get count(): number {
    return Math.max(1, this.byShape.size);
  }

  async releaseAll(): Promise<void> {
    await Promise.allSettled([...this.byShape.values()]);
    await Promise.allSettled(this.all.map((s) => s.release()));
  }
}

async function warmup(session: ort.InferenceSession, inputs: TensorSpec[]): Promise<string | undefined> {
  if (config.warmupRuns <= 0) return undefined;
  const feeds: Record<string, ort.Tensor> = {};
  for (const spec of inputs) {
    // A dynamic batch axis takes warmupBatchSize; any other dynamic axis means we cannot guess a valid shape.
    const dims = warmupDims(spec.shape, config.warmupBatchSize);
    if (!dims) return undefined;
    const data = zeroStorage(spec.type, dims.reduce((a, b) => a * b, 1));
    if (!data) return undefined;
    feeds[spec.name] = new ort.Tensor(spec.type as 'float32', data as Float32Array, dims);
  }
  for (let i = 0; i < config.warmupRuns; i++) await session.run(feeds);
  return shapeKey(feeds);
}

/** ONNX metadata_props (ORT-node does not expose them), read here so the main thread never parses the model. */
function readMetadata(): Record<string, string> | undefined {
  if (!config.readMetadata) return {};
  try {
    // Walks the protobuf; weights are skipped, not decoded.
    return readModelMetadata(config.modelBytes ?? config.modelPath).metadata;
  } catch (err) {
    const code = isOspreyError(err) ? (err.code === 'OSPREY_ERR_ONNX_PARSE' ? 'OSPREY_ERR_INVALID_MODEL' : err.code) : 'OSPREY_ERR_INVALID_MODEL';
    const message = (err instanceof Error ? err.message : String(err)).replace('<bytes>', config.modelPath);
    post({ type: 'load-error', code, message, details: { modelPath: config.modelPath } });
    return undefined;
  }
}

async function main(): Promise<void> {
  const metadata = readMetadata();
  if (!metadata) return;
  const t0 = performance.now();
  const created = await createSession();
  if (!created) return;
  const { session, ep, fallbacks } = created;
  const loadMs = performance.now() - t0;
  const inputs = session.inputMetadata.map(toSpec);
  const outputs = session.outputMetadata.map(toSpec);
  const t1 = performance.now();
  const sessions = new ShapeSessions(session, ep, config.maxShapeSessions ?? (ep === 'cpu' ? 1 : DEFAULT_MAX_SHAPE_SESSIONS));
  try {
    const warmedShape = await warmup(session, inputs);
    if (warmedShape) sessions.claim(warmedShape);
  } catch (err) {
    post({
      type: 'load-error',
      code: 'OSPREY_ERR_INFERENCE_FAILED',
      message: `${config.modelPath}: warmup run failed (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`,
      details: { modelPath: config.modelPath },
    });
    await session.release();
    return;
  }
  const warmupMs = performance.now() - t1;
  post({ type: 'ready', info: { inputs, outputs, executionProvider: ep, fallbacks, metadata, loadMs, warmupMs } });

  port.on('message', (msg: MainToWorker) => {
    if (msg.type === 'close') {
      void sessions.releaseAll().finally(() => {
        post({ type: 'closed' });
        port.close();
      });
      return;
    }
    if (msg.type === 'run') void handleRun(sessions, msg.id, msg.feeds, msg.returnInputs === true);
  });
}

async function handleRun(sessions: ShapeSessions, id: number, feeds: Record<string, Tensor>, returnInputs: boolean): Promise<void> {
  const t = performance.now();
  let results: ort.InferenceSession.OnnxValueMapType;
  try {
    const session = await sessions.get(shapeKey(feeds));
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, tensor] of Object.entries(feeds)) {
      // ORT-node rejects typed arrays over a SharedArrayBuffer ("Invalid argument"): copy those once.
      const data = tensor.data.buffer instanceof SharedArrayBuffer ? tensor.data.slice() : tensor.data;
      ortFeeds[name] = new ort.Tensor(tensor.type as 'float32', data as Float32Array, tensor.dims as number[]);
    }
    results = await session.run(ortFeeds);
  } catch (err) {
    post({ type: 'run-error', id, message: err instanceof Error ? err.message : String(err) });
    return;
  }
  const runMs = performance.now() - t;
  const outputs: Record<string, Tensor> = {};
  const transfer = new Set<ArrayBuffer>();
  for (const [name, value] of Object.entries(results)) {
    const data = value.data as TensorStorage;
    outputs[name] = { type: value.type as TensorDataType, dims: [...value.dims], data };
    if (data.buffer instanceof ArrayBuffer) transfer.add(data.buffer);
  }
  if (returnInputs) {
    // Hand the input buffers back (moved, not copied) so the caller can refill them for its next run.
    for (const t of Object.values(feeds)) if (t.data.buffer instanceof ArrayBuffer) transfer.add(t.data.buffer);
    post({ type: 'result', id, outputs, runMs, sessions: sessions.count, inputs: feeds }, [...transfer]);
    return;
  }
  post({ type: 'result', id, outputs, runMs, sessions: sessions.count }, [...transfer]);
}

void main().catch((err: unknown) => {
  post({ type: 'load-error', code: 'OSPREY_ERR_INTERNAL', message: err instanceof Error ? err.message : String(err) });
});
