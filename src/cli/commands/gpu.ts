/**
 * `osprey gpu install` and `osprey doctor`.
 */
import type { Command } from 'commander';
import { doctor, formatDoctorReport } from '../../gpu/diagnose.js';
import { installGpuProviders } from '../../gpu/providers.js';

export function register(program: Command): void {
  const gpu = program.command('gpu').description('GPU execution providers for ONNX Runtime');
  gpu
    .command('install')
    .description(
      'Put the CUDA and TensorRT execution-provider libraries for the installed onnxruntime-node into place ' +
        '(from the npm registry, sha256 and ONNX Runtime version checked)',
    )
    .option('--from <tgz>', 'install from a package tarball fetched earlier (npm pack) instead of the registry')
    .option('--force', 'reinstall even when the right files are present')
    .option('--json', 'print the report as JSON')
    .action((opts: { from?: string; force?: boolean; json?: boolean }) => {
      const report = installGpuProviders({ from: opts.from, force: opts.force, log: (l) => process.stderr.write(`${l}\n`) });
      if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else {
        process.stdout.write(`ONNX Runtime ${report.onnxRuntimeVersion}: ${report.package} → ${report.destination}\n`);
        for (const f of report.files) process.stdout.write(`  ${f.action.padEnd(15)} ${f.name}  sha256 ${f.sha256}\n`);
        process.stdout.write('Run `osprey doctor` to see whether the providers load on this machine.\n');
      }
    });

  program
    .command('doctor')
    .description('Execution providers that load here and why the others do not; GPU name, compute capability, driver, memory')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { json?: boolean }) => {
      const r = await doctor();
      process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : `${formatDoctorReport(r)}\n`);
    });
}
