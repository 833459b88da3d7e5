/**
 * A real PostgreSQL server for tests: `initdb` + `pg_ctl` (Debian's `postgresql` package, binaries under
 * /usr/lib/postgresql/<major>/bin) in a temporary folder, listening on 127.0.0.1 at a free port, with a password
 * (scram-sha-256) so URLs carry a real secret. initdb refuses to run as root: as root the server runs as the
 * `postgres` user (created by the Debian package) through `runuser`, its folder chowned to it.
 *
 * `stop()` shuts it down (`pg_ctl stop -m fast`) and removes the folder; it is also called when the process exits.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';

export interface TestPostgres {
  /** `postgres://osprey:<password>@127.0.0.1:<port>/osprey` */
  url: string;
  password: string;
  port: number;
  dir: string;
  /** Server log (for failure messages). */
  logFile: string;
  stop(): void;
}

/** The folder of initdb / pg_ctl (newest major installed), or null when PostgreSQL is not installed. */
export function postgresBinDir(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const majors = readdirSync(root).filter((d) => existsSync(join(root, d, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return majors[0] ? join(root, majors[0], 'bin') : null;
}


function userIds(name: string): { uid: number; gid: number } | null {
  const r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  return r.status === 0 && g.status === 0 ? { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) } : null;
}

/**
 * Starts a fresh PostgreSQL cluster.
 * @throws Error with initdb's / pg_ctl's output (and the server log) when it cannot start.
 */
export async function startPostgres(options: { password?: string; database?: string } = {}): Promise<TestPostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('PostgreSQL is not installed (Debian package `postgresql`; scripts/setup.sh installs it)');
  const password = options.password ?? `pw-${Math.random().toString(36).slice(2, 12)}`;
  const database = options.database ?? 'osprey';
  const dir = mkdtempSync(join(tmpdir(), 'osprey-pg-'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  const pwFile = join(dir, 'pw');
  writeFileSync(pwFile, `${password}\n`);
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? userIds('postgres') ?? userIds('nobody') : null;
  const userName = asRoot ? (userIds('postgres') ? 'postgres' : 'nobody') : null;
  if (asRoot && !owner) throw new Error('running as root and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as');
  if (owner) {
    chownSync(dir, owner.uid, owner.gid);
    chownSync(pwFile, owner.uid, owner.gid);
  }
  chmodSync(dir, 0o700);
  const run = (cmd: string, args: string[]): string => {
    const full = userName ? ['runuser', ['-u', userName, '--', join(bin, cmd), ...args]] as const : [join(bin, cmd), args] as const;
    try {
      return execFileSync(full[0], [...full[1]], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      const log = existsSync(logFile) ? `\nserver log:\n${execFileSync('tail', ['-n', '30', logFile], { encoding: 'utf8' })}` : '';
      throw new Error(`${cmd} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}${log}`);
    }
  };
  run('initdb', ['-D', data, '-U', 'osprey', `--pwfile=${pwFile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  rmSync(pwFile, { force: true });
  const port = await freePort();
  // fsync off: a test cluster, thrown away after; small shared buffers for a 2-core CI machine.
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=32MB -c max_connections=100`;
  run('pg_ctl', ['-D', data, '-o', opts, '-l', logFile, '-w', '-t', '30', 'start']);
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    process.off('exit', stop);
    try {
      run('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']);
    } catch {
      /* already gone */
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', stop);
  const env = { ...process.env, PGPASSWORD: password };
  const psql = join(bin, 'psql');
  execFileSync(existsSync(psql) ? psql : 'psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'osprey', '-d', 'postgres', '-qc', `CREATE DATABASE ${database}`], { env, stdio: 'pipe' });
  return { url: `postgres://osprey:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`, password, port, dir, logFile, stop };
}
