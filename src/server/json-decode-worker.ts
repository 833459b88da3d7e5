/**
 * Worker entry of {@link JsonInferDecoder} (src/server/json-decoder.ts): decodes one KServe v2 infer request body
 * (JSON, or JSON header + binary tensors) off the main thread and sends back the decoded request, moving every
 * tensor's buffer (no copies on the way back).
 */
import { parentPort } from 'node:worker_threads';
import { toOspreyError } from '../core/errors.js';
import { decodeInferRequest } from './kserve-http.js';
import type { JsonDecodeJob, JsonDecodeResult } from './json-decoder.js';

const port = parentPort!;
port.on('message', (job: JsonDecodeJob) => {
  const body = Buffer.from(job.buffer, job.offset, job.length);
  let msg: JsonDecodeResult;
  const transfer: ArrayBuffer[] = [];
  try {
    const { request, binaryOutputs } = decodeInferRequest(body, job.headerLength);
    const seen = new Set<ArrayBufferLike>();
    for (const t of request.inputs) {
      const b = t.data.buffer;
      if (!seen.has(b) && b instanceof ArrayBuffer) {
        seen.add(b);
        transfer.push(b);
      }
    }
    msg = { id: job.id, ok: true, request, binaryOutputs };
  } catch (err) {
    const e = toOspreyError(err);
    msg = { id: job.id, ok: false, code: e.code, message: e.message, details: { ...e.details } };
  }
  port.postMessage(msg, transfer);
});
