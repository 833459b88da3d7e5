/**
 * Event sinks: webhooks (HTTP POST of each event as JSON) and MQTT (publish of the same JSON), both through an outbox
 * table in the events database (SQLite or PostgreSQL, store.ts).
 *
 * - An event is written to the outbox before any delivery attempt, so nothing is lost when the receiver is down,
 *   slow (per-attempt `timeoutMs`) or the process restarts (pending rows are picked up again).
 * - Retries back off exponentially: `initialDelayMs × 2^(attempts−1)`, capped at `maxDelayMs`, ±20% jitter.
 * - After `maxAttempts` failures a row is marked `failed` (kept for inspection, no more retries).
 * - Bounded: at most `outboxMaxSize` rows per webhook; beyond it the oldest rows are dropped and counted.
 * Delivery is one request at a time per sink, oldest first. The transport (HTTP or MQTT) only sends one payload and
 * says whether it was accepted; everything else (durability, order, retries, bounds) is the outbox's.
 */
import { hostname } from 'node:os';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import type { MqttSinkConfig, WebhookConfig } from './config.js';
import type { EventStore, OutboxRow, OutboxWrite, StoredEvent } from './store.js';

/** The outbox policy a sink's config carries (webhook and MQTT alike). */
export type OutboxPolicy = Pick<WebhookConfig, 'timeoutMs' | 'maxAttempts' | 'initialDelayMs' | 'maxDelayMs' | 'outboxMaxSize'>;

/** Sends one event payload; resolves `null` when the receiver accepted it, else the error text. Never rejects. */
export interface SinkTransport {
  /** What the sink delivers to, for stats (URL; for MQTT, URL + topic template). */
  readonly target: string;
  start?(): void;
  stop?(): Promise<void>;
  send(payload: string, timeoutMs: number, signal: AbortSignal): Promise<string | null>;
}

export interface WebhookStats {
  url: string;
  pending: number;
  failed: number;
  delivered: number;
  dropped: number;
  attempts: number;
  lastError: string | null;
}

/** Default dispatcher id: host and process (a replica passes its `--replica-id`). */
export const defaultHolder = (): string => `${hostname()}:${process.pid}`;

/**
 * A sink: the outbox, its retries and bounds, over one {@link SinkTransport}. Several replicas may run the same sink
 * over one PostgreSQL store: each row is claimed by one dispatcher at a time (store.claimOutbox), for the attempt's
 * timeout plus a margin, and removed by the one that delivered it.
 */
export class OutboxSink {
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private delivered = 0;
  private dropped = 0;
  private attemptsTotal = 0;
  private lastError: string | null = null;
  private stopped = false;
  private inflight: AbortController | null = null;
  private counts = { pending: 0, failed: 0 };

  constructor(
    private readonly store: EventStore,
    readonly config: OutboxPolicy,
    /** Outbox key, e.g. `webhooks[0]`, `mqtt[0]`. */
    readonly sink: string,
    private readonly transport: SinkTransport,
    private readonly pollMs = 200,
    /** Dispatcher id written in the rows it claims. */
    readonly holder: string = defaultHolder(),
  ) {}

  /** Starts delivering; resolves once the outbox counts have been read from the store. */
  start(): Promise<void> {
    this.stopped = false;
    this.transport.start?.();
    this.timer = setInterval(() => void this.drain(), this.pollMs);
    this.timer.unref();
    return this.refreshCounts();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.inflight?.abort();
    while (this.busy) await new Promise((r) => setTimeout(r, 10));
    await this.transport.stop?.();
  }

  /** The outbox row to write with an event (same transaction): this sink's key and bound. */
  outboxWrite(extra?: (event: StoredEvent) => Record<string, unknown>): OutboxWrite {
    return { sink: this.sink, maxSize: this.config.outboxMaxSize, ...(extra ? { extra } : {}) };
  }

  /** Counts rows the store dropped for this sink's bound and starts a delivery (after the event's transaction). */
  written(dropped: number): void {
    this.dropped += dropped;
    this.counts.pending++;
    if (!this.busy && this.timer) void this.drain();
  }

  /** Adds an already stored event to the outbox (dropping the oldest rows beyond the bound). */
  async enqueue(event: StoredEvent, extra: Record<string, unknown> = {}): Promise<void> {
    this.written(await this.store.enqueueOutbox(this.sink, event, extra, this.config.outboxMaxSize));
    await this.refreshCounts();
  }

  /** Counters; `pending` and `failed` as last read from the store (refreshed by every delivery round). */
  stats(): WebhookStats {
    return { url: this.transport.target, pending: this.counts.pending, failed: this.counts.failed, delivered: this.delivered, dropped: this.dropped, attempts: this.attemptsTotal, lastError: this.lastError };
  }

  /** Reads `pending` / `failed` from the store. */
  async refreshCounts(): Promise<void> {
    if (!this.store.isOpen) return;
    try {
      this.counts = await this.store.outboxCounts(this.sink);
    } catch {
      /* store unreachable: keep the last counts */
    }
  }

  /**
   * Delivers pending rows strictly in event order: the oldest pending row goes first, and while it waits for its
   * retry (or another replica's claim) no younger row overtakes it (a receiver sees events in the order they
   * happened, also across retries).
   */
  async drain(): Promise<void> {
    if (this.busy || this.stopped || !this.store.isOpen) return;
    this.busy = true;
    try {
      for (;;) {
        if (this.stopped || !this.store.isOpen) break;
        const claim = await this.store.claimOutbox(this.sink, this.holder, this.config.timeoutMs + 5000);
        if (!claim || !('row' in claim)) break;
        await this.deliver(claim.row);
      }
    } catch (err) {
      this.lastError = (err as Error).message;
    } finally {
      await this.refreshCounts();
      this.busy = false;
    }
  }

  private async deliver(row: OutboxRow): Promise<void> {
    const c = this.config;
    this.attemptsTotal++;
    const ac = new AbortController();
    this.inflight = ac;
    let error: string | null;
    try {
      error = await this.transport.send(row.payload, c.timeoutMs, ac.signal);
    } finally {
      this.inflight = null;
    }
    if (!this.store.isOpen) return;
    if (error === null) {
      await this.store.completeOutbox(row.id, this.holder);
      this.delivered++;
      return;
    }
    this.lastError = error;
    const attempts = row.attempts + 1;
    if (attempts >= c.maxAttempts) {
      await this.store.failOutboxAttempt(row.id, this.holder, attempts, error, null);
      return;
    }
    const delay = Math.min(c.maxDelayMs, c.initialDelayMs * 2 ** (attempts - 1)) * (0.8 + 0.4 * Math.random());
    await this.store.failOutboxAttempt(row.id, this.holder, attempts, error, Date.now() + delay);
  }
}

/** HTTP POST of the JSON payload; any 2xx is accepted. */
class HttpTransport implements SinkTransport {
  readonly target: string;
  constructor(private readonly c: WebhookConfig) {
    this.target = c.url;
  }

  async send(payload: string, timeoutMs: number, signal: AbortSignal): Promise<string | null> {
    const ac = new AbortController();
    const onAbort = () => ac.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => ac.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    try {
      const res = await fetch(this.c.url, { method: 'POST', headers: { 'content-type': 'application/json', ...this.c.headers }, body: payload, signal: ac.signal });
      await res.arrayBuffer().catch(() => undefined);
      return res.status >= 200 && res.status < 300 ? null : `HTTP ${res.status}`;
    } catch (err) {
      const reason = ac.signal.aborted ? ac.signal.reason : err;
      return reason instanceof Error ? reason.message : String(reason);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }
}

/** A webhook: HTTP POST of each event as JSON, through the outbox. */
export class WebhookSink extends OutboxSink {
  constructor(store: EventStore, config: WebhookConfig, sink: string, pollMs = 200, holder = defaultHolder()) {
    super(store, config, sink, new HttpTransport(config), pollMs, holder);
  }
}

/**
 * MQTT publish of the JSON payload to the topic made from the event (`{camera}`, `{rule}`, `{kind}`). The client
 * (MQTT.js) reconnects by itself; while it is not connected a send fails at once ("not connected"), so the row waits
 * in the outbox for its retry instead of in the client's memory. Accepted = the broker acknowledged (QoS 1: PUBACK,
 * QoS 2: PUBCOMP; QoS 0: written to the socket).
 */
export class MqttTransport implements SinkTransport {
  readonly target: string;
  private client: MqttClient | null = null;
  private lastError: string | null = null;
  /**
   * A protocol riding on this connection (Sparkplug B): its last will for each CONNECT and what it does once
   * connected. Set before {@link start}.
   */
  session: MqttSession | null = null;

  constructor(private readonly c: MqttSinkConfig) {
    this.target = `${c.url} ${c.topic}`;
  }

  start(): void {
    if (this.client) return;
    this.client = connect(this.c.url, {
      reconnectPeriod: 1000,
      connectTimeout: this.c.timeoutMs,
      clean: true,
      queueQoSZero: false,
      ...(this.c.clientId ? { clientId: this.c.clientId } : {}),
      ...(this.c.username ? { username: this.c.username } : {}),
      ...(this.c.password ? { password: this.c.password } : {}),
      ...(this.session ? { will: this.session.will() } : {}),
    });
    const client = this.client;
    this.client.on('error', (err) => {
      this.lastError = err.message;
    });
    this.client.on('connect', () => {
      this.lastError = null;
      this.session?.connected(client);
    });
    this.client.on('close', () => {
      // The next CONNECT carries a new will (Sparkplug: the next bdSeq).
      if (this.session && this.client === client) client.options.will = this.session.will();
    });
    this.client.on('message', (topic, payload) => this.session?.message?.(topic, payload));
  }

  /** The MQTT.js client while started. */
  get mqttClient(): MqttClient | null {
    return this.client;
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = null;
    if (client) await client.endAsync(true).catch(() => undefined);
  }

  topicFor(payload: string): string {
    let ev: Record<string, unknown> = {};
    try {
      ev = JSON.parse(payload) as Record<string, unknown>;
    } catch {
      /* the outbox only holds JSON it wrote; keep the placeholders' fallbacks */
    }
    const part = (v: unknown) => (typeof v === 'string' && v !== '' ? v.replace(/[#+/]/g, '_') : 'none');
    return this.c.topic.replace(/\{(camera|rule|kind)\}/g, (_m, k: string) => part(ev[k]));
  }

  send(payload: string, timeoutMs: number, signal: AbortSignal): Promise<string | null> {
    const client = this.client;
    if (!client || !client.connected) return Promise.resolve(`not connected to ${this.c.url}${this.lastError ? ` (${this.lastError})` : ''}`);
    return new Promise((resolve) => {
      const done = (r: string | null) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(r);
      };
      const onAbort = () => done('stopped');
      const timer = setTimeout(() => done(`timed out after ${timeoutMs} ms waiting for the broker's acknowledgement`), timeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
      client.publish(this.topicFor(payload), payload, { qos: this.c.qos, retain: this.c.retain }, (err) => done(err ? err.message : null));
    });
  }
}

/** A protocol sharing an MQTT sink's connection (see {@link MqttTransport.session}). */
export interface MqttSession {
  /** The last will of the next CONNECT (called at start and whenever the connection closes). */
  will(): NonNullable<IClientOptions['will']>;
  /** Each CONNACK. */
  connected(client: MqttClient): void;
  /** Messages on the topics it subscribed to. */
  message?(topic: string, payload: Buffer): void;
}

/** An MQTT sink: each event published as JSON, through the outbox. */
export class MqttSink extends OutboxSink {
  /** The connection (shared with Sparkplug B when configured). */
  readonly mqtt: MqttTransport;
  constructor(store: EventStore, config: MqttSinkConfig, sink: string, pollMs = 200, holder = defaultHolder()) {
    const transport = new MqttTransport(config);
    super(store, config, sink, transport, pollMs, holder);
    this.mqtt = transport;
  }
}
