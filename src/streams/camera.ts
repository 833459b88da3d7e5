/**
 * One camera: an ffmpeg source under a supervisor, a frame sampler, a bounded drop-oldest queue and the
 * inference loop.
 *
 * Health state machine (Frigate/DeepStream users' top complaint is cameras that drop and never come back):
 * ```
 *   starting ──first frame──► streaming ──no frame for stallTimeoutMs──► stalled ─┐
 *      │                          │                                               │ (ffmpeg killed)
 *      │ no frame in connectTimeoutMs / ffmpeg exits                              ▼
 *      └──────────────────────────┴──────────────────────────────────────► reconnecting ──backoff──► starting
 *   reconnecting ──maxAttempts consecutive failed attempts──► failed        any ──stop()──► stopped
 * ```
 * Backoff: delay = min(maxDelayMs, initialDelayMs × 2^(attempt−1)) × U[1 − jitter, 1 + jitter] (exponential
 * backoff with jitter, as in AWS's "Exponential Backoff and Jitter"). An attempt succeeds when a frame arrives,
 * which resets the count. Each camera owns its process, timers and queue, so one camera dying never stalls another.
 *
 * Counters: `decoded` frames received from ffmpeg (after its `fps` filter, which drops surplus frames before they
 * are scaled), `sampled` frames accepted by the sampler (token bucket at `fps`, absorbs bursts after reconnects or
 * from non-real-time files), `dropped` frames evicted from the full queue (oldest first), `processed` frames
 * through inference.
 */
import { EventEmitter } from 'node:events';
import { OspreyError } from '../core/errors.js';
import type { Detection } from '../core/types.js';
import type { CameraConfig } from './config.js';
import { validateRulesInFrame } from './config.js';
import { FfmpegFrameSource, type SourceExit, type SourceFrame, type SourceInfo } from './frame-source.js';
import type { FrameInferer, InferResult } from './inferer.js';

export type CameraState = 'starting' | 'streaming' | 'stalled' | 'reconnecting' | 'failed' | 'stopped';

export interface CameraCounters {
  decoded: number;
  sampled: number;
  dropped: number;
  processed: number;
  /** Inference failures (the frame is skipped, the camera keeps going). */
  inferErrors: number;
  /** Times the camera went to `reconnecting`. */
  reconnects: number;
}

export interface StateChange {
  camera: string;
  from: CameraState;
  to: CameraState;
  reason: string;
  /** `Date.now()` ms. */
  at: number;
  attempt: number;
  error?: { code: string; message: string };
}

/** A processed frame: pixels (the frame as given to the model) + detections in source pixels. */
export interface ProcessedFrame {
  camera: string;
  frame: SourceFrame;
  /** The frame as rgb24 `[inputHeight, inputWidth, 3]` (letterboxed; a copy when the inferer consumed the original). */
  pixels: Uint8Array;
  info: SourceInfo;
  result: InferResult;
  /** Frame arrival → detections ready, milliseconds. */
  latencyMs: number;
}

export interface CameraDeps {
  inferer: FrameInferer | null;
  ffmpegPath?: string;
  /** Frame size when there is no inferer (sources/supervision only). Default 640×640. */
  frameSize?: { width: number; height: number };
  /** Random source for jitter (tests may pin it). Default Math.random. */
  random?: () => number;
}

/** Backoff delay of a retry (attempt ≥ 1). */
export function backoffDelayMs(attempt: number, c: CameraConfig['reconnect'], random: () => number = Math.random): number {
  const base = Math.min(c.maxDelayMs, c.initialDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.max(0, base * (1 - c.jitter + 2 * c.jitter * random()));
}

/**
 * Emits `state` ({@link StateChange}), `processed` ({@link ProcessedFrame}) and `info` ({@link SourceInfo}).
 */
export class Camera extends EventEmitter {
  state: CameraState = 'stopped';
  readonly counters: CameraCounters = { decoded: 0, sampled: 0, dropped: 0, processed: 0, inferErrors: 0, reconnects: 0 };
  info: SourceInfo | null = null;
  lastError: { code: string; message: string } | null = null;
  /** Consecutive failed attempts. */
  attempt = 0;
  /** Exponentially weighted processed fps and latency. */
  fps = 0;
  latencyMs = 0;
  lastBatchSize = 0;
  lastFrameAtMs = 0;
  stateSinceMs = Date.now();
  private source: FfmpegFrameSource | null = null;
  private queue: SourceFrame[] = [];
  private inFlight = 0;
  /**
   * Frames of this camera submitted to the batcher at once. 2, so that while one frame runs the next one already
   * waits in the batcher's queue beside other cameras' frames: with 1, cameras ping-pong and batches stay at 1.
   */
  private readonly maxInFlight = 2;
  private ordered: Promise<void> = Promise.resolve();
  private tokens = 1;
  private tokensAt = 0;
  private lastProcessedPerf = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private startedAtMs = 0;
  private running = false;
  private streamedThisAttempt = false;

  constructor(public config: CameraConfig, private readonly deps: CameraDeps) {
    super();
  }

  get id(): string {
    return this.config.id;
  }

  /** Starts (or restarts after stop/failed) the camera. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    this.lastError = null;
    this.spawn('start');
    this.watchdog = setInterval(() => this.checkWatchdog(), Math.max(50, Math.min(this.config.stallTimeoutMs, this.config.connectTimeoutMs) / 4));
    this.watchdog.unref();
  }

  /** Stops the camera; resolves when ffmpeg has exited. */
  async stop(reason = 'stopped'): Promise<void> {
    this.running = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.watchdog) clearInterval(this.watchdog);
    this.retryTimer = null;
    this.watchdog = null;
    this.queue.length = 0;
    const src = this.source;
    this.source = null;
    if (src) await src.stop();
    if (this.state !== 'stopped' && this.state !== 'failed') this.setState('stopped', reason);
  }

  private setState(to: CameraState, reason: string, error?: { code: string; message: string }): void {
    const from = this.state;
    if (from === to && !error) return;
    this.state = to;
    this.stateSinceMs = Date.now();
    if (error) this.lastError = error;
    const change: StateChange = { camera: this.id, from, to, reason, at: this.stateSinceMs, attempt: this.attempt, ...(error ? { error } : {}) };
    this.emit('state', change);
  }

  private spawn(reason: string): void {
    if (!this.running) return;
    const inf = this.deps.inferer;
    const c = this.config;
    const src = new FfmpegFrameSource({
      url: c.url,
      rtspTransport: c.rtspTransport,
      loop: c.loop,
      realtime: c.realtime,
      ...(c.hwaccel ? { hwaccel: c.hwaccel } : {}),
      inputArgs: c.inputArgs,
      width: inf?.inputWidth ?? this.deps.frameSize?.width ?? 640,
      height: inf?.inputHeight ?? this.deps.frameSize?.height ?? 640,
      format: inf?.frameFormat ?? 'rgb24',
      fps: c.fps,
      ioTimeoutMs: c.connectTimeoutMs,
      ...(this.deps.ffmpegPath ? { ffmpegPath: this.deps.ffmpegPath } : {}),
    });
    this.source = src;
    this.startedAtMs = Date.now();
    this.streamedThisAttempt = false;
    this.tokens = 1;
    this.tokensAt = performance.now();
    src.on('info', (info: SourceInfo) => {
      if (src !== this.source) return;
      try {
        validateRulesInFrame(c.rules, info.srcWidth, info.srcHeight, `cameras[${c.id}].rules`);
      } catch (err) {
        const e = err as OspreyError;
        this.fail('rules do not fit the frame', { code: e.code, message: e.message });
        return;
      }
      this.info = info;
      this.emit('info', info);
    });
    src.on('frame', (f: SourceFrame) => {
      if (src === this.source) this.onFrame(f);
    });
    src.on('exit', (e: SourceExit) => {
      if (src === this.source) this.onExit(e);
    });
    this.setState('starting', reason);
    src.start();
  }

  private fail(reason: string, error: { code: string; message: string }): void {
    this.running = false;
    if (this.watchdog) clearInterval(this.watchdog);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.watchdog = null;
    this.retryTimer = null;
    const src = this.source;
    this.source = null;
    void src?.stop();
    this.queue.length = 0;
    this.setState('failed', reason, error);
  }

  private onFrame(f: SourceFrame): void {
    this.counters.decoded++;
    this.lastFrameAtMs = f.receivedAtMs;
    if (!this.info) return; // size unknown (cannot map boxes); ffmpeg always prints it before frames
    if (!this.streamedThisAttempt) {
      this.streamedThisAttempt = true;
      this.attempt = 0;
      this.setState('streaming', 'frames arriving');
    } else if (this.state === 'stalled') {
      this.setState('streaming', 'frames arriving again');
    }
    // Token-bucket sampler at the target fps (capacity 2 frames).
    const now = f.receivedAtPerfMs;
    this.tokens = Math.min(2, this.tokens + ((now - this.tokensAt) * this.config.fps) / 1000);
    this.tokensAt = now;
    if (this.tokens < 0.75) return;
    this.tokens -= 1;
    this.counters.sampled++;
    this.queue.push(f);
    while (this.queue.length > this.config.queueSize) {
      this.queue.shift();
      this.counters.dropped++;
    }
    this.pump();
  }

  private pump(): void {
    const inf = this.deps.inferer;
    const info = this.info;
    while (this.inFlight < this.maxInFlight && this.queue.length > 0 && info) {
      const f = this.queue.shift()!;
      if (!inf) {
        // No model: count the frame through (sources/supervision only).
        this.counters.processed++;
        continue;
      }
      this.inFlight++;
      const pixels = f.rgb !== f.data ? f.rgb : inf.consumesInput ? f.data.slice() : f.data;
      const t0 = f.receivedAtPerfMs;
      const pending = inf.infer(f.data, info.geometry, { priority: this.config.priority, confThreshold: this.config.confThreshold, requestId: `camera:${this.id}#${f.index}` });
      // Results are handled in frame order (the tracker needs it), whatever order batches finish in.
      this.ordered = this.ordered
        .then(() => pending)
        .then(
          (result) => {
            const done = performance.now();
            this.counters.processed++;
            const latencyMs = done - t0;
            this.latencyMs = this.latencyMs === 0 ? latencyMs : this.latencyMs * 0.8 + latencyMs * 0.2;
            if (this.lastProcessedPerf > 0) {
              const inst = 1000 / Math.max(1, done - this.lastProcessedPerf);
              this.fps = this.fps === 0 ? inst : this.fps * 0.8 + inst * 0.2;
            }
            this.lastProcessedPerf = done;
            this.lastBatchSize = result.batchSize;
            if (this.running) this.emit('processed', { camera: this.id, frame: f, pixels, info, result, latencyMs } satisfies ProcessedFrame);
          },
          (err: unknown) => {
            this.counters.inferErrors++;
            const e = err instanceof OspreyError ? err : new OspreyError('OSPREY_ERR_INFERENCE_FAILED', String((err as Error)?.message ?? err));
            this.lastError = { code: e.code, message: e.message };
            this.emit('inferError', e);
          },
        )
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
  }

  private checkWatchdog(): void {
    if (!this.running || !this.source) return;
    const now = Date.now();
    if (this.state === 'starting' && now - this.startedAtMs > this.config.connectTimeoutMs) {
      this.source.kill();
      this.lastError = { code: 'OSPREY_ERR_CAMERA', message: `no frame within connectTimeoutMs=${this.config.connectTimeoutMs}` };
    } else if (this.state === 'streaming' && now - this.lastFrameAtMs > this.config.stallTimeoutMs) {
      this.setState('stalled', `no frame for ${now - this.lastFrameAtMs} ms (stallTimeoutMs=${this.config.stallTimeoutMs})`);
      this.source.kill();
    }
  }

  private onExit(e: SourceExit): void {
    this.source = null;
    if (!this.running || e.requested) return;
    // The reason is in ffmpeg's last lines, minus progress/summary/metadata noise.
    const noise = /^\s*(frame=|video:|encoder\s|Metadata:|Stream #|Output #|Input #|Duration:|title\s|comment\s|Press \[q\]|\[out#|Side data:|\w+\s*:\s*Lav[cf])/;
    const tail = e.stderrTail.split(/\r?\n|\r/).map((l) => l.trim()).filter((l) => l && !noise.test(l)).slice(-2).join(' | ');
    const isFile = !/^[a-z][a-z0-9+.-]*:\/\//i.test(this.config.url) || this.config.url.startsWith('file://');
    if (isFile && !this.config.loop && e.code === 0 && this.streamedThisAttempt) {
      // End of a non-looping file: done.
      this.running = false;
      if (this.watchdog) clearInterval(this.watchdog);
      this.watchdog = null;
      this.setState('stopped', 'end of file');
      return;
    }
    this.attempt++;
    const why =
      e.code === 0 && this.streamedThisAttempt
        ? 'the stream ended (ffmpeg exited with code 0)'
        : `ffmpeg exited (code ${e.code ?? 'null'}${e.signal ? `, ${e.signal}` : ''})${tail ? `: ${tail}` : ''}`;
    const error = { code: 'OSPREY_ERR_CAMERA', message: this.lastError?.message && !this.streamedThisAttempt ? `${this.lastError.message}; ${why}` : why };
    const max = this.config.reconnect.maxAttempts;
    if (max > 0 && this.attempt >= max) {
      this.fail(`gave up after ${this.attempt} attempts`, { code: 'OSPREY_ERR_CAMERA', message: `camera ${this.id}: gave up after ${this.attempt} attempts; last: ${error.message}` });
      return;
    }
    this.counters.reconnects++;
    const delay = backoffDelayMs(this.attempt, this.config.reconnect, this.deps.random);
    this.setState('reconnecting', `attempt ${this.attempt}${max > 0 ? `/${max}` : ''} in ${Math.round(delay)} ms`, error);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.spawn(`reconnect attempt ${this.attempt}`);
    }, delay);
  }

  /** A JSON snapshot for the API/dashboard. */
  toJSON(): Record<string, unknown> {
    return {
      id: this.id,
      name: this.config.name,
      url: redactUrl(this.config.url),
      state: this.state,
      stateSince: new Date(this.stateSinceMs).toISOString(),
      attempt: this.attempt,
      error: this.lastError,
      fps: round2(this.fps),
      targetFps: this.config.fps,
      latencyMs: round2(this.latencyMs),
      batchSize: this.lastBatchSize,
      priority: this.config.priority,
      counters: { ...this.counters },
      source: this.info ? { width: this.info.srcWidth, height: this.info.srcHeight } : null,
      rules: this.config.rules,
    };
  }
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

/** Hides credentials in a URL (`rtsp://user:pass@host` → `rtsp://user:***@host`). */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]+):[^@/]*@/i, '$1:***@');
}

export type { Detection };
