/**
 * `osprey detect IMAGE_OR_DIR... --model PATH [--conf 0.25] [--iou 0.7] [--max-det 300] [--imgsz N] [--classes 0,2]
 *  [--ep cuda,cpu] [--labels FILE] [--save DIR] [--json]`
 *
 * Prints one entry per input image (JSON with --json, else a table). Exit code 0 when every image succeeded,
 * 1 when some failed (the others are still done), 2 for a usage or model error.
 */
import { basename, extname, join } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import type { ImageResult } from '../../core/types.js';
import { defaultExecutionProviders } from '../../engine/execution-providers.js';
import { DEFAULT_MAX_PIXELS } from '../../image/limits.js';

// sharp, the engine and cli-progress are imported when the command runs, so other commands start without them.

/** Above this many images, a progress bar is drawn on stderr (when stderr is a terminal). */
const PROGRESS_MIN_IMAGES = 8;

export interface DetectCliOptions {
  model: string;
  conf: number;
  iou: number;
  maxDet: number;
  imgsz?: number;
  classes?: number[];
  ep?: string[];
  labels?: string;
  save?: string;
  json?: boolean;
  maxPixels: number;
  batch?: number;
  instances: number;
  agnosticNms?: boolean;
  progress: boolean;
}

function parseFraction(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError(`${name} must be a number in [0, 1], got '${v}'`);
    return n;
  };
}

function parsePositiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got '${v}'`);
    return n;
  };
}

function parseClasses(v: string): number[] {
  const parts = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p))) throw new InvalidArgumentError(`--classes takes class ids like 0,2 — got '${v}'`);
  return parts.map(Number);
}

function parseList(v: string): string[] {
  const parts = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0) throw new InvalidArgumentError(`--ep takes a list like cuda,cpu — got '${v}'`);
  return parts;
}

const round = (x: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** The `--json` entry of one result: boxes to 0.01 px, scores to 5 digits. */
export function toJsonEntry(r: ImageResult): ImageResult {
  if ('error' in r) return { image: r.image, error: { code: r.error.code, message: r.error.message } };
  return {
    image: r.image,
    width: r.width,
    height: r.height,
    detections: r.detections.map((d) => ({
      classId: d.classId,
      className: d.className,
      score: round(d.score, 5),
      box: [round(d.box[0], 2), round(d.box[1], 2), round(d.box[2], 2), round(d.box[3], 2)],
    })),
  };
}

/** The readable table printed without --json. */
export function formatTable(results: readonly ImageResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    if ('error' in r) {
      lines.push(`${r.image}  FAILED  ${r.error.code}: ${r.error.message}`);
      continue;
    }
    lines.push(`${r.image}  ${r.width}x${r.height}  ${r.detections.length} detection${r.detections.length === 1 ? '' : 's'}`);
    const w = Math.max(5, ...r.detections.map((d) => d.className.length));
    for (const d of r.detections) {
      const box = d.box.map((v) => v.toFixed(1).padStart(7)).join(' ');
      lines.push(`  ${d.className.padEnd(w)}  ${d.score.toFixed(3)}  [${box} ]`);
    }
  }
  return lines.join('\n');
}

function annotatedName(image: string, used: Set<string>): string {
  const ext = extname(image).toLowerCase();
  const stem = basename(image, extname(image));
  const outExt = ['.jpg', '.jpeg', '.png', '.webp'].includes(ext) ? ext : '.jpg';
  let name = `${stem}${outExt}`;
  for (let k = 2; used.has(name); k++) name = `${stem}-${k}${outExt}`;
  used.add(name);
  return name;
}

/**
 * Runs `osprey detect`; returns the exit code (0 all succeeded, 1 some failed).
 * @throws OspreyError for model errors (the CLI entry maps them to exit code 2).
 */
export async function runDetect(inputs: string[], opts: DetectCliOptions): Promise<number> {
  const [{ Detector }, { annotate }, { decodeImage }, { listImages }, { default: cliProgress }] = await Promise.all([
    import('../../engine/detector.js'),
    import('../../image/annotate.js'),
    import('../../image/decode.js'),
    import('../../image/list.js'),
    import('cli-progress'),
  ]);
  const entries = await listImages(inputs);
  const detector = await Detector.create({
    modelPath: opts.model,
    ...(opts.ep ? { executionProviders: opts.ep } : {}),
    instances: opts.instances,
    ...(opts.imgsz !== undefined ? { imgsz: opts.imgsz } : {}),
    ...(opts.labels !== undefined ? { labelsPath: opts.labels } : {}),
    ...(opts.batch !== undefined ? { maxBatchSize: opts.batch } : {}),
    maxPixels: opts.maxPixels,
    // Plain float models get the uint8 NHWC prefix in memory: letterbox to uint8, 4× less data to the worker,
    // the same detections (the prefix divides by 255 exactly as the float path does).
    fuseUint8Input: true,
  });
  try {
    const info = detector.engine.info;
    for (const f of info.fallbacks) process.stderr.write(`osprey: execution provider fallback: ${f.reason}\n`);
    const results: ImageResult[] = new Array(entries.length);
    const runnable: number[] = [];
    entries.forEach((e, i) => {
      if (e.error) results[i] = { image: e.path, error: { code: e.error.code, message: e.error.message } };
      else runnable.push(i);
    });
    const showProgress = opts.progress && runnable.length >= PROGRESS_MIN_IMAGES;
    const bar = showProgress
      ? new cliProgress.SingleBar({ stream: process.stderr, format: 'detect [{bar}] {value}/{total} images | {eta_formatted} left', hideCursor: true }, cliProgress.Presets.shades_classic)
      : undefined;
    bar?.start(runnable.length, 0);
    const t0 = performance.now();
    let doneCount = 0;
    const out = await detector.detectFiles(
      runnable.map((i) => entries[i]!.path),
      {
        confThreshold: opts.conf,
        iouThreshold: opts.iou,
        maxDetections: opts.maxDet,
        agnostic: opts.agnosticNms ?? false,
        ...(opts.classes ? { classes: opts.classes } : {}),
      },
      { onResult: () => bar?.update(++doneCount) },
    );
    bar?.stop();
    const elapsedMs = performance.now() - t0;
    out.forEach((r, k) => (results[runnable[k]!] = r));

    if (opts.save !== undefined) {
      const used = new Set<string>();
      for (const r of results) {
        if ('error' in r) continue;
        try {
          const img = await decodeImage(r.image, { maxPixels: opts.maxPixels });
          await annotate(img, r.detections, join(opts.save, annotatedName(r.image, used)));
        } catch (err) {
          process.stderr.write(`osprey: cannot save the annotated copy of ${r.image}: ${(err as Error).message}\n`);
        }
      }
    }

    if (opts.json) process.stdout.write(`${JSON.stringify(results.map(toJsonEntry), null, 2)}\n`);
    else if (results.length > 0) process.stdout.write(`${formatTable(results)}\n`);
    const failed = results.filter((r) => 'error' in r).length;
    const nDet = results.reduce((a, r) => a + ('error' in r ? 0 : r.detections.length), 0);
    process.stderr.write(
      `osprey: ${results.length} image${results.length === 1 ? '' : 's'}, ${nDet} detections, ${failed} failed; ` +
        `${(elapsedMs / 1000).toFixed(2)} s on ${info.executionProvider}${opts.save !== undefined ? `; annotated copies in ${opts.save}` : ''}\n`,
    );
    return failed > 0 ? 1 : 0;
  } finally {
    await detector.close();
  }
}

export function register(program: Command): void {
  program
    .command('detect')
    .description('Detect objects in images (files or directories) with a YOLO ONNX model')
    .argument('<images...>', 'image files or directories of images (.jpg .jpeg .png .webp .tif .tiff .bmp)')
    .requiredOption('-m, --model <path>', 'YOLO ONNX model (Ultralytics export or an Osprey-built engine)')
    .option('--conf <threshold>', 'confidence threshold', parseFraction('--conf'), 0.25)
    .option('--iou <threshold>', 'NMS IoU threshold', parseFraction('--iou'), 0.7)
    .option('--max-det <n>', 'maximum detections per image', parsePositiveInt('--max-det'), 300)
    .option('--imgsz <pixels>', 'input size for models with a dynamic height/width (must match a fixed one)', parsePositiveInt('--imgsz'))
    .option('--classes <ids>', 'keep only these class ids, e.g. 0,2', parseClasses)
    .option('--agnostic-nms', 'class-agnostic NMS')
    .option('--ep <providers>', 'execution providers to try, in order (default: cuda,cpu where an NVIDIA GPU is present, else cpu)', parseList)
    .option('--labels <file>', 'class names, one per line (when the model metadata has none)')
    .option('--save <dir>', 'write annotated copies (boxes, labels, scores) into this directory')
    .option('--json', 'print one JSON array with one entry per image')
    .option('--max-pixels <n>', 'refuse images whose header declares more pixels than this', parsePositiveInt('--max-pixels'), DEFAULT_MAX_PIXELS)
    .option('--batch <n>', 'largest batch for models with a dynamic batch axis', parsePositiveInt('--batch'))
    .option('--instances <n>', 'engine instances (each a worker thread with its own session)', parsePositiveInt('--instances'), 1)
    .option('--no-progress', 'no progress bar on stderr')
    .action(async (images: string[], opts: DetectCliOptions) => {
      const code = await runDetect(images, opts);
      process.exitCode = code;
    });
}
