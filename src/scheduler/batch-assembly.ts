/**
 * Batch tensors of the dynamic batcher: requests' inputs concatenated along the batch axis into one buffer per
 * input (zero-padded up to the size the engine runs at), buffers handed back by the engine reused, and batch
 * outputs split back into per-request views. The main thread only routes: each copy is a typed-array `set`
 * (memcpy) per request, each split a `subarray` per request.
 */
import { OspreyError } from '../core/errors.js';
import type { Tensor, TensorStorage } from '../core/types.js';
import { allocateStorage } from '../repository/datatypes.js';

/** Bytes copied into a batch between two yields of the event loop (≈3–6 ms of memcpy). */
export const ASSEMBLE_YIELD_BYTES = 32 * 1024 * 1024;

/**
 * @example
 *   const assembler = new BatchAssembler('yolov8n:1', 2);
 *   const feeds = await assembler.assemble([req1.inputs, req2.inputs], 2, 4); // images: [4, 640, 640, 3], rows 2–3 zero
 *   const perRequest = assembler.split(outputs, [1, 1], 2);
 */
export class BatchAssembler {
  /**
   * Batch input buffers handed back by the engines after each run, by byte size. Allocating a fresh 39 MB buffer
   * per batch (32 × 640×640×3) costs page faults and GC pressure on every run.
   */
  private readonly pool = new Map<number, ArrayBuffer[]>();
  /** Feeds this assembler made (its own buffers, safe to recycle). */
  private readonly made = new WeakSet<Record<string, Tensor>>();
  private closed = false;

  /**
   * @param name for messages, e.g. `yolov8n:1`.
   * @param keepPerSize recycled buffers kept per byte size (enough for every instance to have one queued).
   */
  constructor(
    private readonly name: string,
    private readonly keepPerSize: number,
  ) {}

  /** True when `feeds` came from {@link assemble} with its own buffers (the engine may hand them back). */
  owns(feeds: Record<string, Tensor>): boolean {
    return this.made.has(feeds);
  }

  /**
   * Concatenates requests' inputs along the batch axis, zero-padded to `padded` rows. The event loop is yielded
   * after every {@link ASSEMBLE_YIELD_BYTES} copied, so a large batch (8 × 4.9 MB FP32 images) never blocks it in
   * one piece, while a batch of small frames (32 × 1.2 MB uint8) is not stretched by a yield per frame.
   * One request that needs no padding is handed over as it is when its tensors own their whole buffer (a view into
   * an HTTP body is copied: it must not be transferred to a worker).
   * @param requests each request's inputs, e.g. `images: uint8 [1, 640, 640, 3]`.
   * @param total batch elements in `requests`; `padded` ≥ total rows in the result.
   * @throws OspreyError `OSPREY_ERR_INVALID_TENSOR` when a request lacks an input the first one has.
   */
  async assemble(requests: ReadonlyArray<Record<string, Tensor>>, total: number, padded: number): Promise<Record<string, Tensor>> {
    const first = requests[0]!;
    if (requests.length === 1 && padded === total) {
      const feeds: Record<string, Tensor> = {};
      for (const [name, t] of Object.entries(first)) {
        const owns = t.data.byteOffset === 0 && t.data.byteLength === t.data.buffer.byteLength && t.data.buffer instanceof ArrayBuffer;
        feeds[name] = owns ? t : { type: t.type, dims: t.dims, data: t.data.slice() as TensorStorage };
      }
      return feeds;
    }
    const feeds: Record<string, Tensor> = {};
    for (const [name, t0] of Object.entries(first)) {
      const perItem = t0.data.length / t0.dims[0]!;
      const data = this.take(t0.type, padded * perItem);
      let offset = 0;
      const dst = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      let sinceYield = 0;
      for (let i = 0; i < requests.length; i++) {
        const t = requests[i]![name];
        if (!t) throw new OspreyError('OSPREY_ERR_INVALID_TENSOR', `${this.name}: a batched request lacks input '${name}'`, { input: name });
        dst.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), offset);
        offset += t.data.byteLength;
        sinceYield += t.data.byteLength;
        if (i + 1 < requests.length && sinceYield >= ASSEMBLE_YIELD_BYTES) {
          sinceYield = 0;
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      }
      if (offset < dst.byteLength) dst.fill(0, offset); // padding rows (a recycled buffer holds old frames)
      feeds[name] = { type: t0.type, dims: [padded, ...t0.dims.slice(1)], data };
    }
    this.made.add(feeds);
    return feeds;
  }

  /** A typed array of `count` elements, on a recycled buffer of the same size when one is free. */
  private take(type: Tensor['type'], count: number): TensorStorage {
    const empty = allocateStorage(type, 0);
    const bytes = count * empty.BYTES_PER_ELEMENT;
    const buf = this.pool.get(bytes)?.pop();
    if (!buf) return allocateStorage(type, count);
    return new (empty.constructor as new (b: ArrayBuffer) => TensorStorage)(buf);
  }

  /** Keeps the buffers an engine handed back (`RunOptions.onInputsReleased`), a few per size. */
  recycle(feeds: Record<string, Tensor>): void {
    if (this.closed) return;
    for (const t of Object.values(feeds)) {
      const buf = t.data.buffer;
      if (!(buf instanceof ArrayBuffer) || buf.byteLength === 0 || t.data.byteOffset !== 0 || t.data.byteLength !== buf.byteLength) continue;
      const list = this.pool.get(buf.byteLength) ?? [];
      if (list.length < this.keepPerSize) list.push(buf);
      this.pool.set(buf.byteLength, list);
    }
  }

  /**
   * Splits batch outputs back per request (views, no copy).
   * @param rows each request's batch elements, in batch order; `total` = their sum.
   * @param batched false for a model without a batch axis (one request; outputs returned as they are).
   * @throws OspreyError `OSPREY_ERR_INFERENCE_FAILED` when an output has fewer rows than the batch.
   */
  split(outputs: Record<string, Tensor>, rows: readonly number[], total: number, batched = true): Record<string, Tensor>[] {
    if (rows.length === 1 && (!batched || Object.values(outputs).every((t) => t.dims[0] === total))) return [outputs];
    const results: Record<string, Tensor>[] = rows.map(() => ({}));
    for (const [name, t] of Object.entries(outputs)) {
      const have = t.dims[0] ?? 0;
      if (have < total) {
        throw new OspreyError('OSPREY_ERR_INFERENCE_FAILED', `${this.name}: output '${name}' has ${have} rows on its first axis for a batch of ${total}`, { output: name });
      }
      const perItem = t.data.length / have;
      let row = 0;
      rows.forEach((n, i) => {
        const data = (t.data as Float32Array).subarray(row * perItem, (row + n) * perItem) as TensorStorage;
        results[i]![name] = { type: t.type, dims: [n, ...t.dims.slice(1)], data };
        row += n;
      });
    }
    return results;
  }

  /** Stops recycling (the model version is unloading) and drops the pooled buffers. */
  close(): void {
    this.closed = true;
    this.pool.clear();
  }
}
