/**
 * `osprey detect` end to end: the CLI entry (src/cli/main.ts through tsx, the same code bin/osprey.js runs from
 * dist/) in a child process, on the real model and images; exit codes 0 / 1 / 2.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Command, CommanderError } from 'commander';
import sharp from 'sharp';
import { isOspreyError } from '../../src/core/errors.js';
import { register, runDetect, type DetectCliOptions } from '../../src/cli/commands/detect.js';
import { BUS_JPG, MODEL_PATH, REPO_ROOT, SHARED_DATA, tempDir, writeBadInputs, writeUnsupportedLayoutModel, ZIDANE_JPG } from '../support/images.js';

const EP = process.env.OSPREY_TEST_EP ?? 'cpu';
const ENTRY = 'import("./src/cli/main.ts").then((m) => m.main(["node", "osprey", ...process.argv.slice(1)]))';

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in a child process, as a user would. */
function osprey(args: string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', '-e', ENTRY, ...args], { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 99) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * The `detect` command registered on a fresh commander program in this process, with commander's output
 * captured: for usage errors, which need no child process (each child pays the tsx start-up of every command).
 */
async function parseInProcess(args: string[]): Promise<{ error: CommanderError | undefined; stderr: string }> {
  const err: string[] = [];
  const program = new Command().exitOverride().configureOutput({ writeErr: (s) => err.push(s), writeOut: () => {} });
  register(program);
  program.commands.forEach((c) => c.exitOverride().configureOutput({ writeErr: (s) => err.push(s), writeOut: () => {} }));
  try {
    await program.parseAsync(['node', 'osprey', ...args]);
    return { error: undefined, stderr: err.join('') };
  } catch (e) {
    if (e instanceof CommanderError) return { error: e, stderr: err.join('') };
    throw e;
  }
}

describe('osprey detect', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  it('--json: one entry per image in order; bad inputs fail with their codes, the rest are done; exit 1', async () => {
    const bad = writeBadInputs(tmp.dir);
    const inputs = [BUS_JPG, bad.truncatedJpeg, bad.absurdPng, bad.emptyDir, ZIDANE_JPG, bad.empty, bad.textNamedJpg, bad.missing];
    const r = await osprey(['detect', ...inputs, '--model', MODEL_PATH, '--ep', EP, '--json']);
    assert.equal(r.code, 1, r.stderr);
    const out = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    assert.deepEqual(out.map((e) => e.image), inputs);
    const codes = out.map((e) => (e.error as { code?: string } | undefined)?.code ?? null);
    assert.deepEqual(codes, [
      null,
      'OSPREY_ERR_INVALID_IMAGE',
      'OSPREY_ERR_IMAGE_TOO_LARGE',
      'OSPREY_ERR_NO_IMAGES',
      null,
      'OSPREY_ERR_EMPTY_IMAGE',
      'OSPREY_ERR_INVALID_IMAGE',
      'OSPREY_ERR_FILE_NOT_FOUND',
    ]);
    const bus = out[0] as { width: number; height: number; detections: { classId: number; className: string; score: number; box: number[] }[] };
    assert.deepEqual([bus.width, bus.height], [810, 1080]);
    assert.deepEqual(Object.keys(bus.detections[0]!).sort(), ['box', 'classId', 'className', 'score']);
    assert.deepEqual(bus.detections.map((d) => d.className).sort(), ['bus', 'person', 'person', 'person', 'person']);
    const zidane = out[4] as typeof bus;
    assert.deepEqual(zidane.detections.map((d) => d.className).sort(), ['person', 'person', 'tie']);
    for (const e of out.filter((x) => x.error)) assert.ok((e.error as { message: string }).message.includes(e.image as string));
  });

  it('a directory, a table, --classes and --save; exit 0', async () => {
    const save = join(tmp.dir, 'annotated');
    const r = await osprey(['detect', join(SHARED_DATA, 'images'), '--model', MODEL_PATH, '--ep', EP, '--classes', '0', '--save', save]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /bus\.jpg\s+810x1080\s+4 detections/);
    assert.match(r.stdout, /zidane\.jpg\s+1280x720\s+2 detections/);
    assert.doesNotMatch(r.stdout, /\btie\b|\bbus\s+0\./);
    for (const name of ['bus.jpg', 'zidane.jpg']) {
      const p = join(save, name);
      assert.ok(existsSync(p), `${p} written`);
      const meta = await sharp(p).metadata();
      assert.equal(meta.format, 'jpeg');
    }
  });

  it('missing model → exit 2, OSPREY_ERR_MODEL_NOT_FOUND_FILE', async () => {
    const r = await osprey(['detect', BUS_JPG, '--model', join(tmp.dir, 'absent.onnx')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /OSPREY_ERR_MODEL_NOT_FOUND_FILE: .*absent\.onnx/);
  });

  const cliDefaults = (model: string): DetectCliOptions => ({
    model, conf: 0.25, iou: 0.7, maxDet: 300, ep: ['cpu'], maxPixels: 8192 * 8192, instances: 1, progress: false,
  });

  it('non-ONNX file as model → OSPREY_ERR_INVALID_MODEL (the CLI entry maps it to exit 2, as for the missing model)', async () => {
    const p = join(tmp.dir, 'weights.onnx');
    writeFileSync(p, 'PK\u0003\u0004 a zip, not an ONNX protobuf');
    await assert.rejects(runDetect([BUS_JPG], cliDefaults(p)), (e: unknown) => isOspreyError(e, 'OSPREY_ERR_INVALID_MODEL') && e.message.includes(p));
  });

  it('model with an unsupported output layout → OSPREY_ERR_UNSUPPORTED_LAYOUT with the shape found', async () => {
    mkdirSync(join(tmp.dir, 'models'), { recursive: true });
    const p = join(tmp.dir, 'models', 'classifier.onnx');
    writeUnsupportedLayoutModel(p);
    await assert.rejects(runDetect([BUS_JPG], cliDefaults(p)), (e: unknown) => {
      assert.ok(isOspreyError(e, 'OSPREY_ERR_UNSUPPORTED_LAYOUT'), String(e));
      assert.match(e.message, /classifier\.onnx: unsupported output layout: shape \[1, 3\]/);
      return true;
    });
  });

  it('usage errors are commander errors (exit 2 in the CLI entry): bad --conf, bad --classes, missing --model', async () => {
    const a = await parseInProcess(['detect', BUS_JPG, '--model', MODEL_PATH, '--conf', '2']);
    assert.equal(a.error?.code, 'commander.invalidArgument');
    assert.match(a.stderr, /--conf must be a number in \[0, 1\]/);
    const b = await parseInProcess(['detect', BUS_JPG, '--model', MODEL_PATH, '--classes', 'person']);
    assert.equal(b.error?.code, 'commander.invalidArgument');
    const c = await parseInProcess(['detect', BUS_JPG]);
    assert.equal(c.error?.code, 'commander.missingMandatoryOptionValue');
  });
});
