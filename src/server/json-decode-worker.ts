/**
 * Worker entry of {@link JsonInferDecoder} (src/server/json-decoder.ts): decodes one KServe v2 infer request body
 * (JSON, or JSON header + binary tensors) off the main thread and sends back the decoded request, moving every
 * tensor's buffer (no copies on the way back).
 */
import { parentPort } from 'node:worker_threads';
import { toOspreyError } from '../core/errors.js';
import { decodeInferRequest, encodeInferResponse } from './kserve-http.js';
import type { JsonDecodeJob, JsonDecodeResult, JsonEncodeJob } from './json-decoder.js';

const port = parentPort!;
port.on('message', (job: JsonDecodeJob | JsonEncodeJob) => {
  if (job.kind === 'encode') {
    try {
      const { body } = encodeInferResponse(job.response, false);
      const buf = Buffer.from(body as string, 'utf8');
      const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
      port.postMessage({ id: job.id, ok: true, encoded: ab }, [ab]);
    } catch (err) {
      const e = toOspreyError(err);
      port.postMessage({ id: job.id, ok: false, code: e.code, message: e.message, details: { ...e.details } });
    }
    return;
  }
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
