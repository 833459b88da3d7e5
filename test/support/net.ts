/** Loopback networking helpers for tests that start real servers. */
import { connect, createServer } from 'node:net';

/** A TCP port on 127.0.0.1 free right now (bound, then released: for programs that take a fixed port). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Polls `cond` every 50 ms until it holds.
 * @param log the process output to quote when it times out (its last 3000 characters), if any.
 * @throws Error naming `what` when `timeoutMs` passes first.
 */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string, log?: () => string): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${log ? `:\n${log().slice(-3000)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:`port` now. */
export function acceptsTcp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
