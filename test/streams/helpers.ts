/**
 * Test helpers for the streams suite: a real RTSP server (GStreamer's gst-rtsp-server through Debian's
 * /usr/bin/python3) and small waiting utilities.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export { freePort, waitFor } from '../support/net.js';
import { freePort } from '../support/net.js';
import { VIDEOS_DIR as VIDEOS } from '../support/data.js';
export { VIDEOS_DIR as VIDEOS, MODEL_PATH as MODEL } from '../support/data.js';
export const CAR_VIDEO = resolve(VIDEOS, 'car-detection.mp4');
export const PERSON_VIDEO = resolve(VIDEOS, 'one-by-one-person-detection.mp4');
export const FIXTURES = resolve(here, '../fixtures/streams');


export interface RtspServer {
  port: number;
  url(name: string): string;
  /** SIGSTOP / SIGCONT: the server keeps its connections open but sends nothing (a stalled camera). */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

/**
 * Starts gst-rtsp-server serving `mounts` (name → mp4 path) on 127.0.0.1:port; with `auth`, every mount requires RTSP
 * Basic authentication with that user and password (401 otherwise, as an IP camera answers).
 */
export async function startRtspServer(mounts: Record<string, string>, port?: number, auth?: { user: string; password: string }): Promise<RtspServer> {
  const p = port ?? (await freePort());
  const args = [resolve(here, 'rtsp-server.py'), String(p), ...(auth ? ['--auth', `${auth.user}:${auth.password}`] : []), ...Object.entries(mounts).map(([k, v]) => `${k}=${v}`)];
  const child: ChildProcess = spawn('/usr/bin/python3', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
  await new Promise<void>((res, rej) => {
    let out = '';
    const timer = setTimeout(() => rej(new Error(`rtsp server did not start: ${out} ${err}`)), 10000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('READY')) {
        clearTimeout(timer);
        res();
      } else if (out.includes('ERROR')) {
        clearTimeout(timer);
        rej(new Error(out));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`rtsp server exited with ${code}: ${err}`));
    });
  });
  return {
    port: p,
    url: (name) => `rtsp://127.0.0.1:${p}/${name}`,
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
    stop: () =>
      new Promise<void>((res) => {
        if (child.exitCode !== null || child.signalCode !== null) return res();
        const t = setTimeout(() => child.kill('SIGKILL'), 2000);
        child.once('exit', () => {
          clearTimeout(t);
          res();
        });
        child.kill('SIGCONT');
        child.kill('SIGTERM');
      }),
  };
}

