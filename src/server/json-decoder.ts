/**
 * Decodes infer request bodies without blocking the event loop: a body whose JSON part is small is decoded inline
 * (the common case: binary tensors carry a few hundred bytes of JSON); a large JSON part (tensors sent as JSON
 * numbers) is decoded in a worker_thread, so `/v2/health/ready` and every other request keep being answered while it
 * is parsed. `JSON.parse` of a 32 MiB body takes hundreds of ms of one core; on the main thread that is the
 * latency of every request behind it.
 *
 * The worker is started on first use and stopped after {@link JsonDecoderOptions.idleMs} without work, so the
 * memory a large parse needed is returned when the burst ends (a V8 isolate keeps its heap grown until it exits).
 */
import type { Worker } from 'node:worker_threads';
import { OspreyError, ERROR_CATALOGUE, type ErrorCode } from '../core/errors.js';
import { siblingModuleUrl, spawnModuleWorker } from '../util/worker-spawn.js';
import { decodeInferRequest, encodeInferResponse } from './kserve-http.js';
import type { InferRequest, InferResponse } from './service.js';

/** JSON parts up to this size are decoded on the calling thread, bytes. */
export const DEFAULT_INLINE_JSON_BYTES = 256 * 1024;

export interface JsonDecoderOptions {
  /** Largest JSON part decoded inline, bytes. Default {@link DEFAULT_INLINE_JSON_BYTES}. */
  inlineBytes?: number;
  /** Stop the worker after this long without work, ms. Default 5000. */
  idleMs?: number;
}

/** Responses with at most this many elements in JSON (non-binary) outputs are encoded on the calling thread. */
export const DEFAULT_INLINE_JSON_ELEMENTS = 65_536;

/** @internal A job for the worker. */
export interface JsonDecodeJob {
  kind: 'decode';
  id: number;
  buffer: ArrayBuffer;
  offset: number;
  length: number;
  headerLength: string | undefined;
}

/** @internal An encode job: a response whose outputs are all sent as JSON numbers. */
export interface JsonEncodeJob {
  kind: 'encode';
  id: number;
  response: InferResponse;
}

/** @internal The worker's answer. */
export type JsonDecodeResult =
  | { id: number; ok: true; request: InferRequest; binaryOutputs: boolean; encoded?: undefined }
  | { id: number; ok: true; encoded: ArrayBuffer; request?: undefined; binaryOutputs?: undefined }
  | { id: number; ok: false; code: string; message: string; details: Record<string, unknown> };

type Decoded = { request: InferRequest; binaryOutputs: boolean };


/**
 * @example
 *   const decoder = new JsonInferDecoder();
 *   const { request } = await decoder.decode(body, req.headers['inference-header-content-length']);
 */
export class JsonInferDecoder {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (d: JsonDecodeResult & { ok: true }) => void; reject: (e: Error) => void }>();
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly inlineBytes: number;
  private readonly idleMs: number;
  private closed = false;

  constructor(options: JsonDecoderOptions = {}) {
    this.inlineBytes = options.inlineBytes ?? DEFAULT_INLINE_JSON_BYTES;
    this.idleMs = options.idleMs ?? 5000;
  }

  /**
   * Decodes a body (see `decodeInferRequest` in src/server/kserve-http.ts for the format and the errors). A body
   * decoded in the worker is moved there: the caller must not use `body` afterwards.
   * @throws OspreyError as `decodeInferRequest`.
   */
  async decode(body: Buffer, headerLength: string | undefined): Promise<Decoded> {
    const n = headerLength === undefined ? body.length : Number(headerLength);
    const ownsBuffer = body.buffer instanceof ArrayBuffer && body.buffer.byteLength - body.byteLength < 64;
    if (this.closed || !(n > this.inlineBytes) || !ownsBuffer) return decodeInferRequest(body, headerLength);
    const worker = this.ensureWorker();
    const id = this.nextId++;
    const job: JsonDecodeJob = { kind: 'decode', id, buffer: body.buffer as ArrayBuffer, offset: body.byteOffset, length: body.byteLength, headerLength };
    const r = await new Promise<JsonDecodeResult & { ok: true }>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage(job, [job.buffer]);
    });
    return { request: r.request!, binaryOutputs: r.binaryOutputs! };
  }

  /**
   * Encodes a response (see `encodeInferResponse`): in the worker when it has more than
   * {@link DEFAULT_INLINE_JSON_ELEMENTS} elements to write as JSON numbers (the output tensors are copied there,
   * not moved: other requests of the same batch may share their buffers), else inline.
   */
  async encode(res: InferResponse, binaryOutputs: boolean): Promise<{ body: Buffer | string; headerLength?: number }> {
    let jsonElements = 0;
    for (const o of res.outputs) if (!(o.binary ?? binaryOutputs)) jsonElements += o.data.length;
    if (this.closed || jsonElements <= DEFAULT_INLINE_JSON_ELEMENTS || jsonElements !== res.outputs.reduce((n, o) => n + o.data.length, 0)) {
      return encodeInferResponse(res, binaryOutputs);
    }
    const worker = this.ensureWorker();
    const id = this.nextId++;
    const job: JsonEncodeJob = { kind: 'encode', id, response: res };
    const r = await new Promise<JsonDecodeResult & { ok: true }>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage(job);
    });
    return { body: Buffer.from(r.encoded!) };
  }

  /** Requests being decoded in the worker. */
  get inFlight(): number {
    return this.pending.size;
  }

  private ensureWorker(): Worker {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.worker) return this.worker;
    const w = spawnModuleWorker(siblingModuleUrl(import.meta.url, './json-decode-worker'));
    w.unref();
    w.on('message', (msg: JsonDecodeResult) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg);
      else p.reject(new OspreyError((msg.code in ERROR_CATALOGUE ? msg.code : 'OSPREY_ERR_INTERNAL') as ErrorCode, msg.message, msg.details));
      if (this.pending.size === 0) this.armIdle();
    });
    const fail = (err: Error): void => {
      for (const p of this.pending.values()) p.reject(new OspreyError('OSPREY_ERR_INTERNAL', `the JSON decode worker stopped (${err.message})`));
      this.pending.clear();
      if (this.worker === w) this.worker = undefined;
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`exit code ${code}`)));
    this.worker = w;
    return w;
  }

  private armIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      const w = this.worker;
      if (w && this.pending.size === 0) {
        this.worker = undefined;
        void w.terminate();
      }
    }, this.idleMs);
    this.idleTimer.unref();
  }

  /** Stops the worker (pending decodes fail). Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }
}
