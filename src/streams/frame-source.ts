/**
 * An ffmpeg child process that decodes one camera (RTSP over TCP or UDP, HTTP, a file, …), samples it to the target
 * fps, letterboxes it to the model input size (pad value 114) and writes raw frames to its stdout.
 *
 * Frame layouts on the pipe (chosen from the model's input format):
 * - `rgb24`: `[height, width, 3]` uint8 RGB, interleaved (NHWC without the batch axis), e.g. `[640, 640, 3]`,
 *   `width × height × 3` bytes.
 * - `rgbf32-planar`: `[3, height, width]` float32 RGB in 0..1, planar (NCHW without the batch axis),
 *   `width × height × 3 × 4` bytes. ffmpeg converts to `gbrpf32le` and reorders the planes (`shuffleplanes=2:0:1`)
 *   so the bytes are exactly the tensor a plain YOLO export takes: no per-pixel JS work anywhere.
 *
 * The stdout byte stream is cut into frames by copying whole chunks (`Buffer.copy`, a memcpy) into one
 * freshly allocated buffer per frame, which the consumer then owns (it may be transferred to a worker).
 * For `rgbf32-planar`, a second output (pipe:3) carries the same frames as rgb24 for snapshots and the live view.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { LetterboxGeometry } from '../core/letterbox.js';

export type FrameFormat = 'rgb24' | 'rgbf32-planar';

export interface FrameSourceOptions {
  url: string;
  rtspTransport?: 'tcp' | 'udp';
  /** Files: `-stream_loop -1`. */
  loop?: boolean;
  /** Files: `-re` (read at native frame rate). */
  realtime?: boolean;
  /** Files: start this far into the file (`-ss` accurate seek with `-copyts`), ms, a multiple of 1000 / fps. Default 0. */
  startAtMs?: number;
  /** `-hwaccel <value>`, passed through. */
  hwaccel?: string;
  /** Extra input options inserted before `-i`. */
  inputArgs?: readonly string[];
  /** Model input (canvas) size in pixels. */
  width: number;
  height: number;
  format: FrameFormat;
  /** ffmpeg `fps` filter: frames per second written to the pipe. */
  fps: number;
  /** Socket I/O timeout for network sources (ffmpeg `-timeout`/`-rw_timeout`). Default 5000 ms. */
  ioTimeoutMs?: number;
  ffmpegPath?: string;
}

export interface SourceFrame {
  /** Frame bytes in the source's {@link FrameFormat}; owned by the receiver. */
  data: Uint8Array;
  /** The same frame as rgb24 `[height, width, 3]` (the same buffer as `data` when the format is rgb24). */
  rgb: Uint8Array;
  /** 0-based index of the frame within this ffmpeg process. */
  index: number;
  /**
   * Media time of the frame, ms: `startAtMs + index × 1000 / fps` (ffmpeg's fps filter writes frames on that grid from
   * the start of its input). For a file, the same frame has the same media time in every process that reads it.
   */
  mediaTimeMs: number;
  /** Wall-clock arrival time, `Date.now()` milliseconds. */
  receivedAtMs: number;
  /** High-resolution arrival time, `performance.now()` milliseconds (for latency). */
  receivedAtPerfMs: number;
}

export interface SourceInfo {
  /** Source frame size in pixels, read from ffmpeg's input stream description. */
  srcWidth: number;
  srcHeight: number;
  /** The letterbox ffmpeg applies (its expressions mirrored exactly; see {@link ffmpegLetterboxGeometry}). */
  geometry: LetterboxGeometry;
}

export interface SourceExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Last lines ffmpeg wrote to stderr (the reason, usually). */
  stderrTail: string;
  /** Whether {@link FfmpegFrameSource.stop} asked for it. */
  requested: boolean;
}

/** Bytes per frame of a layout. */
export function frameBytes(width: number, height: number, format: FrameFormat): number {
  return width * height * 3 * (format === 'rgbf32-planar' ? 4 : 1);
}

/** ffmpeg's `round()`: half away from zero. */
const ffRound = (x: number): number => {
  const v = Math.sign(x) * Math.round(Math.abs(x));
  return v === 0 ? 0 : v; // no negative zero
};

/**
 * The letterbox geometry produced by the filter chain of {@link buildFfmpegArgs}: r = min(W/srcW, H/srcH),
 * resized = round(src × r), pad left/top = round((W − resized)/2 − 0.1) — Ultralytics' LetterBox formulas, with
 * ffmpeg's half-away-from-zero rounding (differs from Python's round-half-even only on exact .5 ties).
 */
export function ffmpegLetterboxGeometry(srcWidth: number, srcHeight: number, width: number, height: number): LetterboxGeometry {
  const ratio = Math.min(width / srcWidth, height / srcHeight);
  const resizedWidth = Math.max(1, ffRound(srcWidth * ratio));
  const resizedHeight = Math.max(1, ffRound(srcHeight * ratio));
  const padLeft = ffRound((width - resizedWidth) / 2 - 0.1);
  const padTop = ffRound((height - resizedHeight) / 2 - 0.1);
  return {
    srcWidth,
    srcHeight,
    dstWidth: width,
    dstHeight: height,
    ratio,
    resizedWidth,
    resizedHeight,
    padLeft,
    padTop,
    padRight: width - resizedWidth - padLeft,
    padBottom: height - resizedHeight - padTop,
  };
}

const isFileUrl = (url: string): boolean => !/^[a-z][a-z0-9+.-]*:\/\//i.test(url) || /^file:\/\//i.test(url);

/**
 * The ffmpeg command line for a source (exported for tests). For `rgbf32-planar` ffmpeg writes two outputs of the
 * same frames: the planar float32 model input on pipe:1 and an rgb24 copy (for snapshots and the live view) on pipe:3,
 * so no JS code ever converts pixels.
 */
export function buildFfmpegArgs(o: FrameSourceOptions): string[] {
  const W = o.width;
  const H = o.height;
  const ioUs = String(Math.round((o.ioTimeoutMs ?? 5000) * 1000));
  const args = ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'info'];
  if (o.hwaccel) args.push('-hwaccel', o.hwaccel);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(o.url)?.[1]?.toLowerCase();
  if (scheme === 'rtsp' || scheme === 'rtsps') {
    args.push('-rtsp_transport', o.rtspTransport ?? 'tcp', '-timeout', ioUs);
  } else if (scheme === 'http' || scheme === 'https') {
    args.push('-rw_timeout', ioUs);
  } else if (isFileUrl(o.url)) {
    if (o.realtime !== false) args.push('-re');
    if (o.loop) args.push('-stream_loop', '-1');
    // Resume: accurate seek, keeping the file's own timestamps (-copyts) so ffmpeg's fps filter picks the same source
    // frames on the same grid as a process that read the file from its start (startAtMs must lie on that grid).
    if (o.startAtMs && o.startAtMs > 0) args.push('-copyts', '-ss', (o.startAtMs / 1000).toFixed(3));
  }
  args.push(...(o.inputArgs ?? []));
  args.push('-i', o.url, '-an', '-sn', '-dn');
  // Letterbox: keep aspect ratio, bilinear like cv2.INTER_LINEAR, centre on a 114-gray canvas.
  const r = `min(${W}/iw\\,${H}/ih)`;
  const letterbox =
    `fps=${o.fps},` +
    `scale=w='round(iw*${r})':h='round(ih*${r})':flags=bilinear,` +
    `pad=${W}:${H}:x='round((${W}-iw)/2-0.1)':y='round((${H}-ih)/2-0.1)':color=0x727272`;
  if (o.format === 'rgbf32-planar') {
    args.push(
      '-filter_complex', `[0:v:0]${letterbox},split=2[m][p];[m]format=gbrpf32le,shuffleplanes=2:0:1[mo]`,
      '-map', '[mo]', '-pix_fmt', 'gbrpf32le', '-f', 'rawvideo', 'pipe:1',
      '-map', '[p]', '-pix_fmt', 'rgb24', '-f', 'rawvideo', 'pipe:3',
    );
  } else {
    args.push('-vf', letterbox, '-pix_fmt', 'rgb24', '-f', 'rawvideo', 'pipe:1');
  }
  return args;
}

/** Cuts a byte stream into fixed-size frames by whole-chunk copies (memcpy), one new buffer per frame. */
class FrameCutter {
  private buf: Buffer | null = null;
  private filled = 0;
  constructor(private readonly size: number, private readonly onFrame: (f: Uint8Array) => void) {}
  push(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (!this.buf) {
        this.buf = Buffer.allocUnsafeSlow(this.size);
        this.filled = 0;
      }
      const n = Math.min(chunk.length - off, this.size - this.filled);
      chunk.copy(this.buf, this.filled, off, off + n);
      this.filled += n;
      off += n;
      if (this.filled === this.size) {
        const b = this.buf;
        this.buf = null;
        this.onFrame(new Uint8Array(b.buffer, b.byteOffset, this.size));
      }
    }
  }
}

const VIDEO_SIZE_RE = /Stream #\d+:\d+.*?: Video: .*?\b(\d{2,5})x(\d{2,5})\b/;

/**
 * One ffmpeg process. Emits `info` ({@link SourceInfo}) once the input size is known, `frame`
 * ({@link SourceFrame}) per frame, and `exit` ({@link SourceExit}) once.
 */
export class FfmpegFrameSource extends EventEmitter {
  readonly frameSize: number;
  private child: ChildProcess | null = null;
  private index = 0;
  private pendingMain: Uint8Array[] = [];
  private pendingRgb: Uint8Array[] = [];
  private stderrTail = '';
  private stderrLine = '';
  private inputSection = true;
  private stopRequested = false;
  info: SourceInfo | null = null;

  constructor(readonly options: FrameSourceOptions) {
    super();
    this.frameSize = frameBytes(options.width, options.height, options.format);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    const args = buildFfmpegArgs(this.options);
    const dual = this.options.format === 'rgbf32-planar';
    const child = spawn(this.options.ffmpegPath ?? 'ffmpeg', args, { stdio: dual ? ['ignore', 'pipe', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const main = new FrameCutter(this.frameSize, (f) => {
      if (!dual) return this.emitFrame(f, f);
      this.pendingMain.push(f);
      this.pair();
    });
    child.stdout!.on('data', (chunk: Buffer) => main.push(chunk));
    if (dual) {
      const rgb = new FrameCutter(this.options.width * this.options.height * 3, (f) => {
        this.pendingRgb.push(f);
        this.pair();
      });
      (child.stdio[3] as NodeJS.ReadableStream).on('data', (chunk: Buffer) => rgb.push(chunk));
    }
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => this.onStderr(text));
    let exited = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (exited) return;
      exited = true;
      this.child = null;
      this.emit('exit', { code, signal, stderrTail: this.stderrTail.trim(), requested: this.stopRequested } satisfies SourceExit);
    };
    child.on('error', (err) => {
      this.stderrTail += `\nspawn failed: ${err.message}`;
      finish(null, null);
    });
    child.on('close', finish);
  }

  /** Stops ffmpeg (SIGTERM, then SIGKILL after `graceMs`). Resolves when the process has exited. */
  stop(graceMs = 1000): Promise<void> {
    this.stopRequested = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolveStop) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      child.once('close', () => {
        clearTimeout(timer);
        resolveStop();
      });
      child.kill('SIGTERM');
    });
  }

  /** Kills the process without marking the exit as requested (watchdog: the supervisor treats it as a failure). */
  kill(): void {
    this.child?.kill('SIGKILL');
  }

  private onStderr(text: string): void {
    this.stderrTail = (this.stderrTail + text).slice(-4000);
    if (this.info || !this.inputSection) return;
    // stderr chunks can end mid-line: parse whole lines only.
    const lines = (this.stderrLine + text).split('\n');
    this.stderrLine = lines.pop() ?? '';
    for (const line of lines) {
      if (/^Output #\d+/.test(line) || /^Stream mapping/.test(line)) {
        this.inputSection = false;
        return;
      }
      const m = VIDEO_SIZE_RE.exec(line);
      if (m) {
        const srcWidth = Number(m[1]);
        const srcHeight = Number(m[2]);
        this.info = { srcWidth, srcHeight, geometry: ffmpegLetterboxGeometry(srcWidth, srcHeight, this.options.width, this.options.height) };
        this.emit('info', this.info);
        return;
      }
    }
  }

  private pair(): void {
    while (this.pendingMain.length > 0 && this.pendingRgb.length > 0) this.emitFrame(this.pendingMain.shift()!, this.pendingRgb.shift()!);
  }

  private emitFrame(data: Uint8Array, rgb: Uint8Array): void {
    const frame: SourceFrame = { data, rgb, index: this.index, mediaTimeMs: Math.round((this.options.startAtMs ?? 0) + (this.index++ * 1000) / this.options.fps), receivedAtMs: Date.now(), receivedAtPerfMs: performance.now() };
    this.emit('frame', frame);
  }
}
