/**
 * Webhook sink: HTTP POST of each event as JSON, through an outbox table in the events database.
 *
 * - An event is written to the outbox before any delivery attempt, so nothing is lost when the receiver is down,
 *   slow (per-attempt `timeoutMs`) or the process restarts (pending rows are picked up again).
 * - Retries back off exponentially: `initialDelayMs × 2^(attempts−1)`, capped at `maxDelayMs`, ±20% jitter.
 * - After `maxAttempts` failures a row is marked `failed` (kept for inspection, no more retries).
 * - Bounded: at most `outboxMaxSize` rows per webhook; beyond it the oldest rows are dropped and counted.
 * Delivery is one request at a time per webhook, oldest first.
 */
import type { WebhookConfig } from './config.js';
import type { EventStore, StoredEvent } from './events.js';

export interface WebhookStats {
  url: string;
  pending: number;
  failed: number;
  delivered: number;
  dropped: number;
  attempts: number;
  lastError: string | null;
}

interface OutboxRow {
  id: number;
  event_id: number;
  payload: string;
  attempts: number;
}

export class WebhookSink {
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private delivered = 0;
  private dropped = 0;
  private attemptsTotal = 0;
  private lastError: string | null = null;
  private stopped = false;
  private inflight: AbortController | null = null;

  constructor(
    private readonly store: EventStore,
    readonly config: WebhookConfig,
    /** Outbox key, e.g. `webhooks[0]`. */
    readonly sink: string,
    private readonly pollMs = 200,
  ) {}

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => void this.drain(), this.pollMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.inflight?.abort();
    while (this.busy) await new Promise((r) => setTimeout(r, 10));
  }

  /** Adds an event to the outbox (dropping the oldest rows beyond the bound). */
  enqueue(event: StoredEvent, extra: Record<string, unknown> = {}): void {
    const db = this.store.db;
    const now = Date.now();
    db.prepare('INSERT INTO outbox (sink, event_id, payload, next_attempt_ms, created_ms) VALUES (?, ?, ?, ?, ?)').run(
      this.sink,
      event.id,
      JSON.stringify({ ...event, ...extra }),
      now,
      now,
    );
    const n = (db.prepare('SELECT COUNT(*) AS n FROM outbox WHERE sink = ?').get(this.sink) as { n: number }).n;
    if (n > this.config.outboxMaxSize) {
      const excess = n - this.config.outboxMaxSize;
      const r = db.prepare('DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE sink = ? ORDER BY id ASC LIMIT ?)').run(this.sink, excess);
      this.dropped += r.changes;
    }
    if (!this.busy && this.timer) void this.drain();
  }

  stats(): WebhookStats {
    const db = this.store.db;
    const count = (status: string): number => (db.prepare('SELECT COUNT(*) AS n FROM outbox WHERE sink = ? AND status = ?').get(this.sink, status) as { n: number }).n;
    return { url: this.config.url, pending: count('pending'), failed: count('failed'), delivered: this.delivered, dropped: this.dropped, attempts: this.attemptsTotal, lastError: this.lastError };
  }

  /**
   * Delivers pending rows strictly in event order: the oldest pending row goes first, and while it waits for its
   * retry no younger row overtakes it (a receiver sees events in the order they happened, also across retries).
   */
  async drain(): Promise<void> {
    if (this.busy || this.stopped || !this.store.db.open) return;
    this.busy = true;
    try {
      const head = this.store.db.prepare(
        "SELECT id, event_id, payload, attempts, next_attempt_ms FROM outbox WHERE sink = ? AND status = 'pending' ORDER BY id ASC LIMIT 1",
      );
      for (;;) {
        if (this.stopped || !this.store.db.open) break;
        const row = head.get(this.sink) as (OutboxRow & { next_attempt_ms: number }) | undefined;
        if (!row || row.next_attempt_ms > Date.now()) break;
        await this.deliver(row);
      }
    } finally {
      this.busy = false;
    }
  }

  private async deliver(row: OutboxRow): Promise<void> {
    const c = this.config;
    this.attemptsTotal++;
    let error: string | null = null;
    const ac = new AbortController();
    this.inflight = ac;
    const timer = setTimeout(() => ac.abort(new Error(`timed out after ${c.timeoutMs} ms`)), c.timeoutMs);
    try {
      const res = await fetch(c.url, { method: 'POST', headers: { 'content-type': 'application/json', ...c.headers }, body: row.payload, signal: ac.signal });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status < 200 || res.status >= 300) error = `HTTP ${res.status}`;
    } catch (err) {
      const reason = ac.signal.aborted ? ac.signal.reason : err;
      error = reason instanceof Error ? reason.message : String(reason);
    } finally {
      clearTimeout(timer);
      this.inflight = null;
    }
    if (!this.store.db.open) return;
    if (error === null) {
      this.store.db.prepare('DELETE FROM outbox WHERE id = ?').run(row.id);
      this.delivered++;
      return;
    }
    this.lastError = error;
    const attempts = row.attempts + 1;
    if (attempts >= c.maxAttempts) {
      this.store.db.prepare("UPDATE outbox SET attempts = ?, status = 'failed', last_error = ? WHERE id = ?").run(attempts, error, row.id);
      return;
    }
    const delay = Math.min(c.maxDelayMs, c.initialDelayMs * 2 ** (attempts - 1)) * (0.8 + 0.4 * Math.random());
    this.store.db.prepare('UPDATE outbox SET attempts = ?, next_attempt_ms = ?, last_error = ? WHERE id = ?').run(attempts, Date.now() + delay, error, row.id);
  }
}
