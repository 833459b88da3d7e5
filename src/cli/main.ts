/**
 * `osprey` command-line entry. Each command lives in `src/cli/commands/<name>.ts` and exports
 * `register(program)`; add new ones to COMMANDS below.
 *
 * Exit codes: 0 success, 1 some inputs failed (the rest were done) or a gate failed, 2 usage or model error.
 *
 * Entry points: `osprey` (`bin/osprey.js`, what `npx osprey` runs) and this module run directly
 * (`node dist/src/cli/main.js …`); both call {@link runCli}.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { OspreyError } from '../core/errors.js';
import { OSPREY_VERSION } from '../version.js';

type Register = (program: Command) => void;

/** Lazily imported so `osprey --help` stays fast and one command's heavy deps don't load for another. */
const COMMANDS: Array<() => Promise<{ register: Register }>> = [
  () => import('./commands/gpu.js'),
  () => import('./commands/serve.js'),
  () => import('./commands/detect.js'),
  () => import('./commands/val.js'),
  () => import('./commands/build.js'),
  () => import('./commands/bench.js'),
  () => import('./commands/plan.js'),
  () => import('./commands/streams.js'),
];

export async function main(argv: string[]): Promise<void> {
  const program = new Command();
  program
    .name('osprey')
    .description('Deploy YOLO object detectors: detect, build, val, serve, streams, bench, plan')
    .version(OSPREY_VERSION)
    .showHelpAfterError()
    .exitOverride();
  for (const load of COMMANDS) (await load()).register(program);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') {
        process.exitCode = 0;
        return;
      }
      process.exitCode = 2;
      return;
    }
    if (err instanceof OspreyError) {
      process.stderr.write(`osprey: ${err.code}: ${err.message}\n`);
      process.exitCode = err.code === 'OSPREY_ERR_GATE_FAILED' ? 1 : 2;
      return;
    }
    throw err;
  }
}

/**
 * Runs the CLI on `argv` and sets the exit code; an unexpected error (not an OspreyError) is printed with its stack
 * and exits 2. What `bin/osprey.js` and `node dist/src/cli/main.js` call.
 */
export function runCli(argv: string[] = process.argv): Promise<void> {
  return main(argv).catch((err: unknown) => {
    process.stderr.write(`osprey: ${err instanceof Error && err.stack ? err.stack : String(err)}\n`);
    process.exit(2);
  });
}

/** True when this file is the script node was started with (not when imported). */
function invokedDirectly(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (invokedDirectly()) void runCli();
