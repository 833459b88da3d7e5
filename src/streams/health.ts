/**
 * Why a camera is in its state: a stable reason code (for alerting and automation) plus one human text of at most
 * {@link MAX_REASON_BYTES} bytes, built fresh for every state change (never appended to the previous one).
 *
 * A failed ffmpeg attempt is classified from its last stderr lines and from how it ended:
 *
 * | reason code | when | retried? |
 * |---|---|---|
 * | `connection_refused` | the host answered with a TCP reset (nothing listens on the port) | yes |
 * | `unreachable` | timeout, no route to host, network unreachable, name resolution failed | yes |
 * | `unauthorized` | 401 / 403 from the camera (wrong or missing user/password) | yes (a camera answers 401 while it boots; the code shows at once) |
 * | `not_found` | 404 / no such stream on a live source | yes |
 * | `no_frames` | no frame within `connectTimeoutMs` of a start, or for `stallTimeoutMs` while streaming (the text says "no frames for N s") | yes |
 * | `decode_error` | the bytes are not a decodable video (invalid data, codec parameters not found) | live: yes; file: no (`failed`) |
 * | `stream_ended` | the source closed the stream (ffmpeg exited 0 after frames) | yes |
 * | `source_error` | ffmpeg exited for another reason | yes |
 * | `file_not_found` | a file source does not exist or cannot be read | no (`failed`) |
 * | `config_error` | rules outside the frame, ffmpeg missing, protocol not compiled into ffmpeg | no (`failed`) |
 *
 * Other codes on state changes: `started`, `restarted`, `frames_arriving`, `starved`, `gave_up` (an explicit
 * `reconnect.maxAttempts` was reached), `stopped`, `removed`, `shutdown`, `end_of_file`.
 *
 * Pure: no I/O.
 */
import type { ErrorCode } from '../core/errors.js';

export type ReasonCode =
  | 'started'
  | 'restarted'
  | 'frames_arriving'
  | 'starved'
  | 'connection_refused'
  | 'unreachable'
  | 'unauthorized'
  | 'not_found'
  | 'no_frames'
  | 'decode_error'
  | 'stream_ended'
  | 'source_error'
  | 'file_not_found'
  | 'config_error'
  | 'gave_up'
  | 'stopped'
  | 'removed'
  | 'shutdown'
  | 'end_of_file';

/** Every reason code, for docs, metrics and tests. */
export const REASON_CODES: readonly ReasonCode[] = [
  'started', 'restarted', 'frames_arriving', 'starved', 'connection_refused', 'unreachable', 'unauthorized', 'not_found', 'no_frames',
  'decode_error', 'stream_ended', 'source_error', 'file_not_found', 'config_error', 'gave_up', 'stopped', 'removed', 'shutdown', 'end_of_file',
];

/** Upper bound of a reason text, in UTF-8 bytes. */
export const MAX_REASON_BYTES = 1024;

/** Lines of ffmpeg's stderr kept in a reason (after dropping banner and progress noise). */
export const REASON_STDERR_LINES = 3;

/** Cuts `text` to at most `maxBytes` UTF-8 bytes (on a character boundary), ending with `…` when cut. */
export function boundText(text: string, maxBytes = MAX_REASON_BYTES): string {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes <= maxBytes) return text;
  const ellipsis = '…';
  const budget = maxBytes - Buffer.byteLength(ellipsis, 'utf8');
  // Walk by code points so no character is split.
  let used = 0;
  let out = '';
  for (const ch of text) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (used + n > budget) break;
    out += ch;
    used += n;
  }
  return out + ellipsis;
}

/** ffmpeg's banner, stream description, progress and summary lines: never a reason. */
const NOISE_RE =
  /^\s*(frame=|size=|video:|encoder\s|Metadata:|Stream #|Stream mapping|Output #|Input #|Duration:|title\s|comment\s|Press \[q\]|\[out#|Side data:|\w+\s*:\s*Lav[cf]|handler_name|vendor_id|major_brand|minor_version|compatible_brands|creation_time|cpb:|Last message repeated|ffmpeg version|built with|configuration:|lib(av|sw|post)\w+\s)/;

/**
 * The last `maxLines` meaningful lines of ffmpeg's stderr, joined with ` | `: banner/progress lines dropped, the
 * per-run `@ 0x55d3…` context pointers removed, repeated lines collapsed.
 */
export function stderrSummary(stderrTail: string, maxLines = REASON_STDERR_LINES): string {
  const lines = stderrTail
    .split(/\r?\n|\r/)
    .map((l) => l.replace(/ @ 0x[0-9a-f]+\]/gi, ']').trim())
    .filter((l) => l && !NOISE_RE.test(l));
  const out: string[] = [];
  for (const l of lines) if (out[out.length - 1] !== l) out.push(l);
  return out.slice(-maxLines).join(' | ');
}

export interface SourceFailureInput {
  /** ffmpeg's last stderr output. */
  stderrTail: string;
  /** Exit code (null when killed by a signal or it never started). */
  exitCode: number | null;
  /** The source is a local file (a path or file://). */
  isFile: boolean;
  /** Frames arrived during this attempt. */
  streamed: boolean;
  /** Set when Osprey's watchdog killed ffmpeg: how long no frame had arrived, and which limit tripped. */
  watchdog?: { noFrameForMs: number; limit: 'connectTimeoutMs' | 'stallTimeoutMs'; limitMs: number };
}

export interface ClassifiedFailure {
  reasonCode: ReasonCode;
  /** Catalogue code of the camera's error. */
  errorCode: ErrorCode;
  /** Human text (not yet bounded, not yet redacted). */
  message: string;
  /** A configuration error: the camera goes `failed` instead of retrying. */
  permanent: boolean;
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** Classifies a failed ffmpeg attempt (see the module's table). */
export function classifySourceFailure(i: SourceFailureInput): ClassifiedFailure {
  const t = i.stderrTail;
  const last = stderrSummary(t);
  const withFfmpeg = (s: string): string => (last ? `${s}; ffmpeg: ${last}` : s);
  const w = i.watchdog;
  const noFrames = (): ClassifiedFailure => {
    const what = w!.limit === 'connectTimeoutMs' ? `no frames for ${seconds(w!.noFrameForMs)} after the start` : `no frames for ${seconds(w!.noFrameForMs)}`;
    return { reasonCode: 'no_frames', errorCode: 'OSPREY_ERR_CAMERA', message: `${what} (${w!.limit} ${w!.limitMs})`, permanent: false };
  };
  // A stall after frames: ffmpeg's earlier lines (banner, old decoder warnings) are not the reason.
  if (w?.limit === 'stallTimeoutMs') return noFrames();
  if (/spawn failed: .*ENOENT/.test(t)) {
    return { reasonCode: 'config_error', errorCode: 'OSPREY_ERR_CAMERA', message: 'ffmpeg was not found (install ffmpeg or put it on PATH)', permanent: true };
  }
  if (/Protocol not found|Protocol not on whitelist/i.test(t)) {
    return { reasonCode: 'config_error', errorCode: 'OSPREY_ERR_CAMERA', message: withFfmpeg('this ffmpeg build does not support the URL\'s protocol'), permanent: true };
  }
  if (/\b40[13]\b|Unauthorized|Forbidden|authori[sz]ation failed/i.test(t)) {
    return { reasonCode: 'unauthorized', errorCode: 'OSPREY_ERR_CAMERA', message: withFfmpeg('unauthorized: the camera refused the credentials (check the user and password in the URL)'), permanent: false };
  }
  if (/No such file or directory|does not exist/i.test(t) && i.isFile) {
    return { reasonCode: 'file_not_found', errorCode: 'OSPREY_ERR_FILE_NOT_FOUND', message: withFfmpeg('the video file does not exist or cannot be read'), permanent: true };
  }
  if (/\b404\b|Not Found|No such file or directory|Stream not found/i.test(t)) {
    return { reasonCode: 'not_found', errorCode: 'OSPREY_ERR_CAMERA', message: withFfmpeg('not found: the server has no such stream (check the path of the URL)'), permanent: false };
  }
  if (/Connection refused/i.test(t)) {
    return { reasonCode: 'connection_refused', errorCode: 'OSPREY_ERR_CAMERA', message: withFfmpeg('connection refused: nothing listens on the camera\'s host and port'), permanent: false };
  }
  if (/timed out|No route to host|Network is unreachable|Host is unreachable|Name or service not known|Temporary failure in name resolution|Name does not resolve|Cannot assign requested address/i.test(t)) {
    return { reasonCode: 'unreachable', errorCode: 'OSPREY_ERR_CAMERA', message: withFfmpeg('unreachable: the camera\'s host did not answer (network, address or DNS)'), permanent: false };
  }
  if (w) return noFrames();
  if (/Invalid data found when processing input|could not find codec parameters|Error while decoding|moov atom not found|Invalid NAL unit|Unknown input format|Failed to open codec|Error splitting the input|decode_slice_header error|no frame!/i.test(t)) {
    return {
      reasonCode: 'decode_error',
      errorCode: 'OSPREY_ERR_CAMERA',
      message: withFfmpeg(i.isFile ? 'decode error: the file is not a video ffmpeg can decode' : 'decode error: the source sent data that is not a decodable video'),
      permanent: i.isFile,
    };
  }
  if (i.exitCode === 0 && i.streamed) {
    return { reasonCode: 'stream_ended', errorCode: 'OSPREY_ERR_CAMERA', message: 'the source ended the stream', permanent: false };
  }
  return { reasonCode: 'source_error', errorCode: 'OSPREY_ERR_CAMERA', message: withFfmpeg(`ffmpeg exited with code ${i.exitCode ?? 'none'}`), permanent: false };
}
