/**
 * HTTP transport for `osprey bench server`: KServe v2 `POST /v2/models/{m}[/versions/{v}]/infer` with the binary
 * tensor extension (what tritonclient and perf_analyzer send by default), or Osprey's `POST /v2/models/{m}/detect`
 * with image bytes. Keep-alive sockets (node:http Agent), one per concurrent request.
 */
import http from 'node:http';
import { OspreyError } from '../core/errors.js';
import {
  codeForHttpStatus,
  parseServerConfig,
  parseTritonStats,
  unreachable,
  type InferTransport,
  type PreparedRequest,
  type RawInput,
  type RequestOutcome,
  type ServerModelMeta,
  type ServerStatsSnapshot,
} from './transport.js';

export interface HttpTransportOptions {
  /** Base URL, e.g. http://127.0.0.1:8000. */
  url: string;
  /** 'infer' (binary tensors) or 'detect' (image bytes). */
  endpoint: 'infer' | 'detect';
  /** Sockets kept open (≥ the concurrency). */
  maxSockets: number;
  /** Connect + health timeout, ms. Default 3000. */
  connectTimeoutMs?: number;
  /** Per-request timeout, ms (a hung request counts as an OSPREY_ERR_TIMEOUT error). Default 30000. */
  requestTimeoutMs?: number;
}

interface HttpPayload {
  path: string;
  headers: Record<string, string | number>;
  body: Buffer;
}

interface Reply {
  status: number;
  body: Buffer;
}

export class HttpTransport implements InferTransport {
  readonly protocol = 'http';
  readonly endpoint: 'infer' | 'detect';
  private readonly base: URL;
  private readonly agent: http.Agent;
  private readonly connectTimeoutMs: number;
  private readonly requestTimeoutMs: number;

  /** @throws OspreyError `OSPREY_ERR_USAGE` for a URL that is not http://host:port. */
  constructor(opts: HttpTransportOptions) {
    let base: URL;
    try {
      base = new URL(opts.url);
    } catch {
      throw new OspreyError('OSPREY_ERR_USAGE', `--url ${JSON.stringify(opts.url)} is not a URL (e.g. http://127.0.0.1:8000)`, { url: opts.url });
    }
    if (base.protocol !== 'http:') {
      throw new OspreyError('OSPREY_ERR_USAGE', `--url ${opts.url}: only http:// URLs are supported by the http protocol`, { url: opts.url });
    }
    this.base = base;
    this.endpoint = opts.endpoint;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: Math.max(1, opts.maxSockets) });
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 3000;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30000;
  }

  private request(method: string, path: string, body: Buffer | null, headers: Record<string, string | number>, timeoutMs: number): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          protocol: this.base.protocol,
          hostname: this.base.hostname,
          port: this.base.port || 80,
          method,
          path: this.base.pathname.replace(/\/$/, '') + path,
          agent: this.agent,
          headers: body ? { ...headers, 'Content-Length': body.length } : headers,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end(body ?? undefined);
    });
  }

  private async getJson(path: string): Promise<{ status: number; json: unknown }> {
    let r: Reply;
    try {
      r = await this.request('GET', path, null, {}, this.connectTimeoutMs);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw unreachable(this.base.origin, `${e.code ?? ''} ${e.message}`.trim());
    }
    let json: unknown = null;
    try {
      json = r.body.length ? JSON.parse(r.body.toString('utf8')) : null;
    } catch {
      json = null;
    }
    return { status: r.status, json };
  }

  async connect(model: string, version?: string): Promise<ServerModelMeta> {
    const live = await this.getJson('/v2/health/live');
    if (live.status !== 200) throw unreachable(this.base.origin, `GET /v2/health/live answered HTTP ${live.status}`);
    const vpath = `/v2/models/${encodeURIComponent(model)}${version ? `/versions/${encodeURIComponent(version)}` : ''}`;
    const meta = await this.getJson(vpath);
    if (meta.status === 404 || meta.status === 400) {
      let known = '';
      try {
        const idx = await this.request('POST', '/v2/repository/index', Buffer.from('{}'), { 'Content-Type': 'application/json' }, this.connectTimeoutMs);
        const list = JSON.parse(idx.body.toString('utf8')) as Array<{ name: string }>;
        if (Array.isArray(list)) known = ` (the server has: ${[...new Set(list.map((m) => m.name))].join(', ') || 'no models'})`;
      } catch {
        /* index is optional */
      }
      throw new OspreyError('OSPREY_ERR_MODEL_NOT_FOUND', `the server at ${this.base.origin} has no model ${JSON.stringify(model)}${version ? ` version ${version}` : ''}${known}`, {
        model,
        version,
      });
    }
    if (meta.status !== 200 || typeof meta.json !== 'object' || meta.json === null) {
      throw new OspreyError('OSPREY_ERR_MODEL_NOT_READY', `GET ${vpath} answered HTTP ${meta.status}`, { model });
    }
    const m = meta.json as { name?: string; versions?: string[]; inputs?: ServerModelMeta['inputs']; outputs?: ServerModelMeta['outputs'] };
    const out: ServerModelMeta = { name: m.name ?? model, versions: m.versions ?? [], inputs: m.inputs ?? [], outputs: m.outputs ?? [] };
    const cfg = await this.getJson(`${vpath}/config`);
    if (cfg.status === 200) {
      const c = parseServerConfig(cfg.json);
      if (c) out.config = c;
    }
    return out;
  }

  /**
   * Builds a binary-tensor infer request (JSON header + raw little-endian bytes, `binary_data_output` set).
   */
  prepareInfer(model: string, version: string | undefined, inputs: ReadonlyArray<RawInput>, images: number, outputs: readonly string[]): PreparedRequest {
    const header = {
      inputs: inputs.map((i) => ({ name: i.name, datatype: i.datatype, shape: i.shape, parameters: { binary_data_size: i.data.byteLength } })),
      outputs: outputs.map((name) => ({ name, parameters: { binary_data: true } })),
      parameters: { binary_data_output: true },
    };
    const json = Buffer.from(JSON.stringify(header), 'utf8');
    const body = Buffer.concat([json, ...inputs.map((i) => Buffer.from(i.data.buffer, i.data.byteOffset, i.data.byteLength))]);
    const payload: HttpPayload = {
      path: `/v2/models/${encodeURIComponent(model)}${version ? `/versions/${encodeURIComponent(version)}` : ''}/infer`,
      headers: { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': json.length },
      body,
    };
    return { images, payload };
  }

  /** Builds a /detect request carrying one image file's bytes. */
  prepareDetect(model: string, image: Buffer, contentType: string): PreparedRequest {
    const payload: HttpPayload = { path: `/v2/models/${encodeURIComponent(model)}/detect`, headers: { 'Content-Type': contentType }, body: image };
    return { images: 1, payload };
  }

  async send(req: PreparedRequest): Promise<RequestOutcome> {
    const p = req.payload as HttpPayload;
    let r: Reply;
    try {
      r = await this.request('POST', p.path, p.body, p.headers, this.requestTimeoutMs);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ETIMEDOUT') return { ok: false, code: 'OSPREY_ERR_TIMEOUT', message: e.message };
      return { ok: false, code: 'OSPREY_ERR_UNREACHABLE', message: `${e.code ?? ''} ${e.message}`.trim() };
    }
    if (r.status === 200) return { ok: true };
    let code = codeForHttpStatus(r.status);
    let message = `HTTP ${r.status}`;
    try {
      const j = JSON.parse(r.body.toString('utf8')) as { error?: string | { code?: string; message?: string }; code?: string };
      if (typeof j.error === 'string') message = j.error;
      else if (j.error && typeof j.error === 'object') {
        if (j.error.code) code = j.error.code;
        if (j.error.message) message = j.error.message;
      }
      if (typeof j.code === 'string' && j.code.startsWith('OSPREY_ERR_')) code = j.code;
    } catch {
      /* non-JSON error body */
    }
    return { ok: false, code, message };
  }

  async stats(model: string, version?: string): Promise<ServerStatsSnapshot | null> {
    try {
      const r = await this.getJson(`/v2/models/${encodeURIComponent(model)}${version ? `/versions/${encodeURIComponent(version)}` : ''}/stats`);
      if (r.status !== 200) return null;
      return parseTritonStats(r.json, model);
    } catch {
      return null;
    }
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }
}
