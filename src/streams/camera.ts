/**
 * One camera: an ffmpeg source under a supervisor, a frame sampler, a bounded drop-oldest queue and the
 * inference loop.
 *
 * Health state machine (Frigate/DeepStream users' top complaint is cameras that drop and never come back):
 * ```
 *   starting ──first frame──► streaming ──no frame for stallTimeoutMs──► stalled ─┐
 *      │                       │    ▲                                            │ (ffmpeg killed)
 *      │                       │    │ a frame processed                          │
 *      │                       ▼    │                                            │
 *      │   frames arrive, none processed for starvationTimeoutMs ──► starved     │
 *      │ no frame in connectTimeoutMs / ffmpeg exits                             ▼
 *      └──────────────────────────┴──────────────────────────────────────► reconnecting ──backoff──► starting
 *   configuration error (file not found, rules outside the frame, ffmpeg missing, …) ──► failed
 *   reconnecting ──an explicit reconnect.maxAttempts reached──► failed        any ──stop()──► stopped
 * ```
 * Live sources retry forever by default (`reconnect.maxAttempts: 0`). Backoff: delay = min(maxDelayMs,
 * initialDelayMs × 2^(attempt−1)) × U[1 − jitter, 1] (exponential backoff with jitter, as in AWS's "Exponential
 * Backoff and Jitter"; the jitter only shortens the delay, so `maxDelayMs` is a hard cap and cameras that failed
 * together spread their retries). An attempt succeeds when a frame arrives, which resets the count. Each camera owns its
 * process, timers and queue, so one camera dying never stalls another.
 *
 * Every state change carries a stable `reasonCode` and one human `reason` of at most 1 KB with credentials redacted
 * (see `health.ts`); it is built fresh for each change, never appended to the previous one.
 *
 * Counters: `decoded` frames received from ffmpeg (after its `fps` filter, which drops surplus frames before they
 * are scaled), `sampled` frames accepted by the sampler (token bucket at `fps`, absorbs bursts after reconnects or
 * from non-real-time files), `dropped` frames evicted from the full queue (oldest first), `processed` frames
 * through inference. Rates (`fps`, `decodedFps`) and `latencyMs` are computed over a sliding window of the real
 * events (`rate-window.ts`), so they drop to 0 (latency: null) when nothing arrives.
 */
import { EventEmitter } from 'node:events';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { OspreyError, type ErrorCode } from '../core/errors.js';
import { redactText, redactUrl, secretsOf } from '../core/redact.js';
import type { CameraConfig } from './config.js';
import { isFileSource, validateRulesInFrame } from './config.js';
import { FfmpegFrameSource, type SourceExit, type SourceFrame, type SourceInfo } from './frame-source.js';
import { boundText, classifySourceFailure, type ReasonCode } from './health.js';
import type { FrameInferer, InferResult } from './inferer.js';
import { SlidingWindow, rateWindowMsFor } from './rate-window.js';

export type CameraState = 'starting' | 'streaming' | 'starved' | 'stalled' | 'reconnecting' | 'failed' | 'stopped';

/** Every state, in the order of the state machine. */
export const CAMERA_STATES: readonly CameraState[] = ['starting', 'streaming', 'starved', 'stalled', 'reconnecting', 'failed', 'stopped'];

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

/** A camera's error: catalogue code + the bounded, redacted reason text. */
export interface CameraError {
  code: ErrorCode;
  message: string;
}

export interface StateChange {
  camera: string;
  from: CameraState;
  to: CameraState;
  /** Stable code of why (see `health.ts`). */
  reasonCode: ReasonCode;
  /** Human text, ≤ 1 KB, credentials redacted. */
  reason: string;
  /** `Date.now()` ms. */
  at: number;
  attempt: number;
  /** On failures: the catalogue code; `message` is the same text as `reason`. */
  error?: CameraError;
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
  /** Sliding window of the rates and latency, ms. Default {@link rateWindowMsFor}(fps). */
  rateWindowMs?: number;
  /** File sources: media time to start at, ms (a camera resumed on another replica). Default 0. */
  startAtMs?: number;
  /** File sources: frames with a media time up to this (already processed elsewhere) are decoded but not sampled. */
  skipThroughMs?: number;
}

/**
 * Backoff delay before retry `attempt` (≥ 1): min(maxDelayMs, initialDelayMs × 2^(attempt−1)) × U[1 − jitter, 1].
 * Never above `maxDelayMs`.
 */
export function backoffDelayMs(attempt: number, c: CameraConfig['reconnect'], random: () => number = Math.random): number {
  const base = Math.min(c.maxDelayMs, c.initialDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.max(0, base * (1 - c.jitter * random()));
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/**
 * Emits `state` ({@link StateChange}), `processed` ({@link ProcessedFrame}), `info` ({@link SourceInfo}) and
 * `inferError` (OspreyError).
 */
export class Camera extends EventEmitter {
  state: CameraState = 'stopped';
  readonly counters: CameraCounters = { decoded: 0, sampled: 0, dropped: 0, processed: 0, inferErrors: 0, reconnects: 0 };
  info: SourceInfo | null = null;
  /** The error of the current state (null while streaming). Message bounded and redacted. */
  lastError: CameraError | null = null;
  /** Why the camera is in its state. */
  reasonCode: ReasonCode = 'stopped';
  reason = 'not started';
  /** Consecutive failed attempts. */
  attempt = 0;
  lastBatchSize = 0;
  lastFrameAtMs = 0;
  stateSinceMs = Date.now();
  /** When the next attempt starts (`Date.now()` ms), while reconnecting. */
  nextAttemptAtMs: number | null = null;
  private readonly secrets: string[];
  private readonly processedWindow: SlidingWindow;
  private readonly decodedWindow: SlidingWindow;
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
  private retryTimer: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private startedAtMs = 0;
  private running = false;
  private streamedThisAttempt = false;
  /** Set when the watchdog kills ffmpeg: why (used to classify the exit). */
  private watchdogKill: { noFrameForMs: number; limit: 'connectTimeoutMs' | 'stallTimeoutMs'; limitMs: number } | null = null;
  /** Last processed frame, or the start of streaming when none since: the starvation clock. */
  private progressAtMs = 0;
  private sampledAtProgress = 0;
  private droppedAtProgress = 0;
  /** Bumped by stop(): results of frames submitted before it are not emitted. */
  private generation = 0;

  constructor(public config: CameraConfig, private readonly deps: CameraDeps) {
    super();
    this.secrets = secretsOf(config.url);
    const windowMs = deps.rateWindowMs ?? rateWindowMsFor(config.fps);
    this.processedWindow = new SlidingWindow(windowMs, performance.now());
    this.decodedWindow = new SlidingWindow(windowMs, performance.now());
  }

  get id(): string {
    return this.config.id;
  }

  /** Processed frames per second over the sliding window (0 when none). */
  get fps(): number {
    return this.processedWindow.rate(performance.now());
  }

  /** Frames per second from the source (after ffmpeg's fps filter) over the sliding window. */
  get decodedFps(): number {
    return this.decodedWindow.rate(performance.now());
  }

  /** Mean frame arrival → detections latency over the sliding window, ms; null when no frame was processed in it. */
  get latencyMs(): number | null {
    return this.processedWindow.mean(performance.now());
  }

  /** Length of the sliding window of {@link fps}, {@link decodedFps} and {@link latencyMs}, ms. */
  get rateWindowMs(): number {
    return this.processedWindow.windowMs;
  }

  /** Hides this camera's credentials (and any URL credentials) in a text, and bounds it to 1 KB. */
  redact(text: string): string {
    return boundText(redactText(text, this.secrets));
  }

  /** Starts (or restarts after stop/failed) the camera. */
  start(reasonCode: 'started' | 'restarted' = 'started'): void {
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    this.lastError = null;
    this.nextAttemptAtMs = null;
    const now = performance.now();
    this.processedWindow.reset(now);
    this.decodedWindow.reset(now);
    this.watchdog = setInterval(
      () => this.checkWatchdog(),
      Math.max(50, Math.min(this.config.stallTimeoutMs, this.config.connectTimeoutMs, this.config.starvationTimeoutMs) / 4),
    );
    this.watchdog.unref();
    this.spawn(reasonCode, reasonCode === 'restarted' ? 'restarted on request' : 'started');
  }

  /**
   * Stops the camera, then starts it again with a fresh attempt count (also from `failed`). Resolves once the
   * new ffmpeg is spawned.
   */
  async restart(): Promise<void> {
    await this.halt();
    this.start('restarted');
  }

  /** Stops the camera; resolves when ffmpeg has exited. */
  async stop(reasonCode: 'stopped' | 'removed' | 'shutdown' = 'stopped'): Promise<void> {
    await this.halt();
    if (this.state !== 'stopped' && this.state !== 'failed') this.setState('stopped', reasonCode, reasonCode === 'stopped' ? 'stopped on request' : reasonCode === 'removed' ? 'camera removed' : 'shutting down');
  }

  private async halt(): Promise<void> {
    this.running = false;
    this.generation++;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.watchdog) clearInterval(this.watchdog);
    this.retryTimer = null;
    this.watchdog = null;
    this.nextAttemptAtMs = null;
    this.queue.length = 0;
    const src = this.source;
    this.source = null;
    if (src) await src.stop();
  }

  private setState(to: CameraState, reasonCode: ReasonCode, reason: string, errorCode?: ErrorCode): void {
    const from = this.state;
    if (from === to && !errorCode && reasonCode === this.reasonCode) return;
    const text = this.redact(reason);
    this.state = to;
    this.stateSinceMs = Date.now();
    this.reasonCode = reasonCode;
    this.reason = text;
    const error = errorCode ? { code: errorCode, message: text } : undefined;
    if (error) this.lastError = error;
    else if (to === 'streaming') this.lastError = null;
    const change: StateChange = { camera: this.id, from, to, reasonCode, reason: text, at: this.stateSinceMs, attempt: this.attempt, ...(error ? { error } : {}) };
    this.emit('state', change);
  }

  private spawn(reasonCode: ReasonCode, reason: string): void {
    if (!this.running) return;
    const inf = this.deps.inferer;
    const c = this.config;
    this.nextAttemptAtMs = null;
    // A file source that is not there is a configuration error: no retry can fix it.
    const file = isFileSource(c.url) ? (c.url.startsWith('file:') ? safeFileUrlToPath(c.url) : c.url) : null;
    if (file !== null) {
      try {
        if (!statSync(file).isFile()) throw new Error('not a regular file');
      } catch (err) {
        const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
        this.setState('starting', reasonCode, reason);
        this.fail('file_not_found', `the video file ${c.url} cannot be read (${why})`, 'OSPREY_ERR_FILE_NOT_FOUND');
        return;
      }
    }
    const src = new FfmpegFrameSource({
      url: c.url,
      rtspTransport: c.rtspTransport,
      loop: c.loop,
      realtime: c.realtime,
      ...(file !== null && this.deps.startAtMs ? { startAtMs: this.deps.startAtMs } : {}),
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
    this.watchdogKill = null;
    this.tokens = 1;
    this.tokensAt = performance.now();
    src.on('info', (info: SourceInfo) => {
      if (src !== this.source) return;
      try {
        validateRulesInFrame(c.rules, info.srcWidth, info.srcHeight, `cameras[${c.id}].rules`);
      } catch (err) {
        const e = err as OspreyError;
        this.fail('config_error', `rules do not fit the frame: ${e.message}`, e.code);
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
    this.setState('starting', reasonCode, reason);
    src.start();
  }

  /** A configuration error: the camera stops for good (until restarted or replaced). */
  private fail(reasonCode: ReasonCode, reason: string, errorCode: ErrorCode): void {
    this.running = false;
    if (this.watchdog) clearInterval(this.watchdog);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.watchdog = null;
    this.retryTimer = null;
    this.nextAttemptAtMs = null;
    const src = this.source;
    this.source = null;
    void src?.stop();
    this.queue.length = 0;
    this.setState('failed', reasonCode, reason, errorCode);
  }

  private get isRealtimeFile(): boolean {
    return this.config.realtime && isFileSource(this.config.url);
  }

  private onFrame(f: SourceFrame): void {
    this.counters.decoded++;
    this.decodedWindow.add(f.receivedAtPerfMs);
    this.lastFrameAtMs = f.receivedAtMs;
    if (!this.info) return; // size unknown (cannot map boxes); ffmpeg always prints it before frames
    if (!this.streamedThisAttempt) {
      this.streamedThisAttempt = true;
      this.attempt = 0;
      this.markProgress(f.receivedAtMs);
      this.setState('streaming', 'frames_arriving', 'frames arriving');
    } else if (this.state === 'stalled') {
      this.markProgress(f.receivedAtMs);
      this.setState('streaming', 'frames_arriving', 'frames arriving again');
    }
    if (this.deps.skipThroughMs !== undefined && f.mediaTimeMs <= this.deps.skipThroughMs) return;
    // Token-bucket sampler at the target fps (capacity 2 frames). A file read at its native rate is sampled by ffmpeg's
    // fps filter alone, on media time: every frame it writes is kept (the same frames whatever the load).
    if (!(this.isRealtimeFile)) {
      const now = f.receivedAtPerfMs;
      this.tokens = Math.min(2, this.tokens + ((now - this.tokensAt) * this.config.fps) / 1000);
      this.tokensAt = now;
      if (this.tokens < 0.75) return;
      this.tokens -= 1;
    }
    this.counters.sampled++;
    this.queue.push(f);
    while (this.queue.length > this.config.queueSize) {
      this.queue.shift();
      this.counters.dropped++;
    }
    this.pump();
  }

  private markProgress(nowMs: number): void {
    this.progressAtMs = nowMs;
    this.sampledAtProgress = this.counters.sampled;
    this.droppedAtProgress = this.counters.dropped;
  }

  private onProcessedFrame(latencyMs: number): void {
    this.counters.processed++;
    this.processedWindow.add(performance.now(), latencyMs);
    this.markProgress(Date.now());
    if (this.state === 'starved') this.setState('streaming', 'frames_arriving', 'frames processed again');
  }

  private pump(): void {
    const inf = this.deps.inferer;
    const info = this.info;
    while (this.inFlight < this.maxInFlight && this.queue.length > 0 && info) {
      const f = this.queue.shift()!;
      if (!inf) {
        // No model: count the frame through (sources/supervision only).
        this.onProcessedFrame(performance.now() - f.receivedAtPerfMs);
        continue;
      }
      this.inFlight++;
      const generation = this.generation;
      const pixels = f.rgb !== f.data ? f.rgb : inf.consumesInput ? f.data.slice() : f.data;
      const t0 = f.receivedAtPerfMs;
      const pending = inf.infer(f.data, info.geometry, { priority: this.config.priority, confThreshold: this.config.confThreshold, requestId: `camera:${this.id}#${f.index}` });
      // Results are handled in frame order (the tracker needs it), whatever order batches finish in.
      this.ordered = this.ordered
        .then(() => pending)
        .then(
          (result) => {
            const latencyMs = performance.now() - t0;
            if (generation !== this.generation) return; // stopped or restarted since: a stale frame
            this.onProcessedFrame(latencyMs);
            this.lastBatchSize = result.batchSize;
            if (this.running) this.emit('processed', { camera: this.id, frame: f, pixels, info, result, latencyMs } satisfies ProcessedFrame);
          },
          (err: unknown) => {
            this.counters.inferErrors++;
            const e = err instanceof OspreyError ? err : new OspreyError('OSPREY_ERR_INFERENCE_FAILED', String((err as Error)?.message ?? err));
            this.emit('inferError', new OspreyError(e.code, this.redact(e.message)));
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
    const c = this.config;
    if (this.state === 'starting' && now - this.startedAtMs > c.connectTimeoutMs) {
      this.watchdogKill = { noFrameForMs: now - this.startedAtMs, limit: 'connectTimeoutMs', limitMs: c.connectTimeoutMs };
      this.source.kill();
    } else if ((this.state === 'streaming' || this.state === 'starved') && now - this.lastFrameAtMs > c.stallTimeoutMs) {
      this.watchdogKill = { noFrameForMs: now - this.lastFrameAtMs, limit: 'stallTimeoutMs', limitMs: c.stallTimeoutMs };
      this.setState('stalled', 'no_frames', `no frames for ${seconds(now - this.lastFrameAtMs)} (stallTimeoutMs ${c.stallTimeoutMs})`);
      this.source.kill();
    } else if (this.state === 'streaming' && this.deps.inferer && now - this.progressAtMs > c.starvationTimeoutMs && this.counters.sampled > this.sampledAtProgress) {
      // Frames arrive and are sampled, none comes back from the model: higher-priority work holds the batcher
      // (strict priority, Triton's semantics), or the model cannot keep up at all.
      const sampled = this.counters.sampled - this.sampledAtProgress;
      const dropped = this.counters.dropped - this.droppedAtProgress;
      this.setState(
        'starved',
        'starved',
        `no frame processed for ${seconds(now - this.progressAtMs)} while frames arrive (${sampled} sampled, ${dropped} dropped; ` +
          `priority ${c.priority}: higher-priority cameras or requests take all of the model's capacity)`,
      );
    }
  }

  private onExit(e: SourceExit): void {
    this.source = null;
    if (!this.running || e.requested) return;
    const isFile = isFileSource(this.config.url);
    if (isFile && !this.config.loop && e.code === 0 && this.streamedThisAttempt) {
      // End of a non-looping file: done once the frames already read are processed (a file's events are the same
      // however slow the model is).
      if (this.watchdog) clearInterval(this.watchdog);
      this.watchdog = null;
      const generation = this.generation;
      void (async () => {
        while (this.queue.length > 0 || this.inFlight > 0) {
          await this.ordered;
          await new Promise((r) => setImmediate(r));
          if (generation !== this.generation) return; // stopped or restarted meanwhile
        }
        if (generation !== this.generation) return;
        this.running = false;
        this.setState('stopped', 'end_of_file', 'end of file');
      })();
      return;
    }
    const failure = classifySourceFailure({
      stderrTail: e.stderrTail,
      exitCode: e.code,
      isFile,
      streamed: this.streamedThisAttempt,
      ...(this.watchdogKill ? { watchdog: this.watchdogKill } : {}),
    });
    this.watchdogKill = null;
    if (failure.permanent) {
      this.fail(failure.reasonCode, failure.message, failure.errorCode);
      return;
    }
    this.attempt++;
    const max = this.config.reconnect.maxAttempts;
    if (max > 0 && this.attempt >= max) {
      this.fail('gave_up', `gave up after ${this.attempt} attempts (reconnect.maxAttempts ${max}); last: ${failure.reasonCode}: ${failure.message}`, failure.errorCode);
      return;
    }
    this.counters.reconnects++;
    const delay = backoffDelayMs(this.attempt, this.config.reconnect, this.deps.random);
    this.nextAttemptAtMs = Date.now() + delay;
    this.setState('reconnecting', failure.reasonCode, `${failure.message}; attempt ${this.attempt + 1}${max > 0 ? `/${max}` : ''} in ${seconds(delay)}`, failure.errorCode);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.spawn(this.reasonCode, `attempt ${this.attempt + 1} after ${failure.reasonCode}`);
    }, delay);
  }

  /** A JSON snapshot for the API/dashboard (credentials redacted). */
  toJSON(): Record<string, unknown> {
    const latency = this.latencyMs;
    return {
      id: this.id,
      name: this.config.name,
      url: redactUrl(this.config.url),
      state: this.state,
      reasonCode: this.reasonCode,
      reason: this.reason,
      stateSince: new Date(this.stateSinceMs).toISOString(),
      attempt: this.attempt,
      nextAttemptAt: this.nextAttemptAtMs === null ? null : new Date(this.nextAttemptAtMs).toISOString(),
      error: this.lastError,
      fps: round2(this.fps),
      decodedFps: round2(this.decodedFps),
      targetFps: this.config.fps,
      latencyMs: latency === null ? null : round2(latency),
      rateWindowSeconds: this.rateWindowMs / 1000,
      batchSize: this.lastBatchSize,
      priority: this.config.priority,
      counters: { ...this.counters },
      source: this.info ? { width: this.info.srcWidth, height: this.info.srcHeight } : null,
      rules: this.config.rules,
    };
  }
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

function safeFileUrlToPath(url: string): string {
  try {
    return fileURLToPath(url);
  } catch {
    return url;
  }
}

