/**
 * `osprey val`: COCO mAP of one or more models (ONNX files or engine directories) on a dataset, a comparison
 * table with each model's drop against the first, and the precision gate (exit 1 when a drop exceeds it).
 */
import { writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { OspreyError } from '../../core/errors.js';
import { loadDataset, describeIssues } from '../../val/dataset.js';
import { computeDrop, DEFAULT_GATE_TEXT, failsGate, formatDrop, parseGate } from '../../val/gate.js';
import { writeReport } from '../../val/report.js';
import { cocoResultsJson, displayName, resolveModelPath, validateModel, VAL_DEFAULTS, type ModelValResult } from '../../val/runner.js';

interface ValCliOptions {
  model: string[];
  data: string;
  images?: string;
  ep?: string[];
  maxDrop: string;
  report?: string;
  json?: boolean;
  conf?: string;
  iou?: string;
  maxDet?: string;
  limit?: string;
  saveJson?: string;
  split?: string;
}

const collect = (v: string, prev: string[] = []) => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];

function num(name: string, v: string | undefined, integer = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new OspreyError('OSPREY_ERR_USAGE', `${name} '${v}': expected ${integer ? 'an integer' : 'a number'}`);
  }
  return n;
}

/** The `--json` entry of one model (everything but the raw detections and evaluator arrays). */
export function modelJson(r: ModelValResult, drop: number | null, failed: boolean | null) {
  return {
    model: r.model,
    modelPath: r.modelPath,
    executionProvider: r.executionProvider,
    map50_95: r.map50_95,
    map50: r.map50,
    map75: r.map75,
    mapSmall: r.mapSmall,
    mapMedium: r.mapMedium,
    mapLarge: r.mapLarge,
    ar1: r.ar1,
    ar10: r.ar10,
    ar100: r.ar100,
    arSmall: r.arSmall,
    arMedium: r.arMedium,
    arLarge: r.arLarge,
    drop,
    gatePassed: failed === null ? null : !failed,
    images: r.images,
    failures: r.failures,
    datasetIssues: r.datasetIssues,
    classMapping: r.classMapping,
    settings: r.settings,
    durationSeconds: r.durationSeconds,
    msPerImage: r.msPerImage,
    perClass: r.perClass,
  };
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

export function register(program: Command): void {
  program
    .command('val')
    .description('COCO mAP50-95 of each model on a dataset, compared with the first model; exits 1 when a drop exceeds --max-drop')
    .requiredOption('-m, --model <path>', 'an .onnx file or an engine directory (repeat to compare; the first is the reference)', collect)
    .requiredOption('-d, --data <path>', 'COCO annotations .json (images in --images or images/ beside it), or a YOLO data.yaml / dataset folder')
    .option('--images <dir>', 'images folder for COCO annotations')
    .option('--split <key>', 'data.yaml key of the image set (YOLO datasets)', 'val')
    .option('--ep <providers>', 'execution providers in order, e.g. cuda,cpu (default: cuda,cpu where an NVIDIA GPU is present, else cpu)', collect)
    .option('--max-drop <gate>', 'largest allowed mAP50-95 drop against the first model: relative (2%) or absolute mAP points (1.0pt)', DEFAULT_GATE_TEXT)
    .option('--conf <threshold>', `confidence threshold (default ${VAL_DEFAULTS.conf}, Ultralytics val)`)
    .option('--iou <threshold>', `NMS IoU threshold (default ${VAL_DEFAULTS.iou})`)
    .option('--max-det <n>', `max detections per image (default ${VAL_DEFAULTS.maxDet})`)
    .option('--limit <n>', 'evaluate only the first N images (by image id)')
    .option('--save-json <file>', 'write detections in COCO results format (one file per model: FILE, FILE-2.json, ...)')
    .option('--report <dir>', 'write an HTML report with per-class AP, precision-recall curves and confusion matrices')
    .option('--json', 'print the results as JSON on stdout')
    .action(async (opts: ValCliOptions) => {
      const gate = parseGate(opts.maxDrop);
      const conf = num('--conf', opts.conf), iou = num('--iou', opts.iou);
      const maxDet = num('--max-det', opts.maxDet, true), limit = num('--limit', opts.limit, true);
      const dataset = await loadDataset(opts.data, { ...(opts.images ? { images: opts.images } : {}), ...(opts.split ? { split: opts.split } : {}) });
      const issues = describeIssues(dataset.issues);
      if (issues) process.stderr.write(`osprey val: data issues: ${issues}. These are left out; the mAP covers ${dataset.images.length} of ${dataset.listedImages} listed images.\n`);

      const results: ModelValResult[] = [];
      const reused = new Map<string, ModelValResult>();
      for (const model of opts.model) {
        const bar = new cliProgress.SingleBar(
          { stream: process.stderr, format: `${displayName(model).slice(0, 40)} [{bar}] {value}/{total} images | {eta_formatted} left`, hideCursor: true, clearOnComplete: false },
          cliProgress.Presets.shades_classic,
        );
        let started = false;
        const key = resolveModelPath(model);
        const prior = reused.get(key);
        if (prior) {
          // Same file, same settings, same images: the result is the same; not run twice.
          process.stderr.write(`osprey val: ${model} is the same file as an earlier --model; its result is reused\n`);
          results.push({ ...prior, model });
          continue;
        }
        const r = await validateModel(model, dataset, {
          ...(opts.ep ? { executionProviders: opts.ep } : {}),
          ...(conf !== undefined ? { conf } : {}),
          ...(iou !== undefined ? { iou } : {}),
          ...(maxDet !== undefined ? { maxDet } : {}),
          ...(limit !== undefined ? { limit } : {}),
          onProgress: (done, total) => {
            if (!started) {
              bar.start(total, 0);
              started = true;
            }
            bar.update(done);
          },
        }).finally(() => {
          if (started) bar.stop();
        });
        if (r.images.sizeMismatch > 0) {
          process.stderr.write(
            `osprey val: warning: ${model}: ${r.images.sizeMismatch} image${r.images.sizeMismatch === 1 ? '' : 's'} decode to a size other than the annotations state ` +
              `(rotated images or another annotation file?): their ground truth may not line up\n`,
          );
        }
        reused.set(key, r);
        results.push(r);
        if (r.images.failed > 0) {
          process.stderr.write(
            `osprey val: ${model}: ${r.images.failed} image${r.images.failed === 1 ? '' : 's'} failed and ${r.images.failed === 1 ? 'is' : 'are'} left out ` +
              `(${[...new Set(r.failures.map((f) => f.code))].join(', ')}; first: ${r.failures[0]!.message}); the mAP covers ${r.images.evaluated} images\n`,
          );
        }
      }

      const ref = results[0]!;
      const drops = results.map((r, i) => (i === 0 ? null : computeDrop(ref.map50_95, r.map50_95, gate)));
      const failed = results.map((r, i) => (i === 0 ? false : failsGate(drops[i] ?? null, r.map50_95, gate)));

      if (opts.saveJson) {
        const base = opts.saveJson;
        const ext = extname(base) || '.json';
        for (let i = 0; i < results.length; i++) {
          const file = i === 0 ? base : `${base.slice(0, base.length - extname(base).length)}-${i + 1}${ext}`;
          await writeFile(file, cocoResultsJson(results[i]!.detections));
          process.stderr.write(`osprey val: ${results[i]!.model}: COCO results written to ${file}\n`);
        }
      }

      const json = {
        dataset: { source: dataset.source, format: dataset.format, listedImages: dataset.listedImages, issues: dataset.issues },
        gate: { metric: 'map50_95', kind: gate.kind, maxDrop: gate.maxDrop, text: gate.text, reference: ref.model },
        models: results.map((r, i) => modelJson(r, drops[i] ?? null, i === 0 ? null : failed[i]!)),
      };
      if (opts.report) {
        const html = await writeReport(
          opts.report,
          {
            results,
            drops,
            failed,
            gate,
            dataset: { source: dataset.source, images: ref.images.evaluated, annotations: dataset.annotations.length, issues },
          },
          json,
        );
        process.stderr.write(`osprey val: report written to ${html}\n`);
      }

      if (opts.json) {
        process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
      } else {
        const nameW = Math.max(5, ...results.map((r) => r.model.length));
        const head = [pad('model', nameW), ...['mAP50-95', 'mAP50', 'mAP75', 'APs', 'APm', 'APl', 'AR100', 'images', 'ms/img', 'drop'].map((h) => pad(h, 8, true)), '  gate'];
        const lines = [head.join(' ')];
        results.forEach((r, i) => {
          const f = (v: number | null) => pad(v === null ? '—' : v.toFixed(4), 8, true);
          lines.push(
            [
              pad(r.model, nameW),
              f(r.map50_95), f(r.map50), f(r.map75), f(r.mapSmall), f(r.mapMedium), f(r.mapLarge), f(r.ar100),
              pad(String(r.images.evaluated), 8, true),
              pad(r.msPerImage.toFixed(1), 8, true),
              pad(i === 0 ? '—' : formatDrop(drops[i] ?? null, gate), 8, true),
              `  ${i === 0 ? 'reference' : failed[i] ? `FAIL (> ${gate.text})` : 'pass'}`,
            ].join(' '),
          );
        });
        process.stdout.write(`${lines.join('\n')}\n`);
        process.stdout.write(
          `COCO bbox mAP (pycocotools semantics) on ${ref.images.evaluated} images of ${dataset.source}; conf ${ref.settings.conf}, NMS IoU ${ref.settings.iou}, ` +
            `max ${ref.settings.maxDet} detections, ${ref.settings.inputWidth}×${ref.settings.inputHeight} letterbox, ${ref.executionProvider}\n`,
        );
      }

      const failing = results.map((r, i) => ({ r, i })).filter(({ i }) => failed[i]);
      if (failing.length > 0) {
        const what = failing
          .map(({ r, i }) => `${r.model} drops ${formatDrop(drops[i] ?? null, gate)} (mAP50-95 ${ref.map50_95?.toFixed(4) ?? '—'} → ${r.map50_95?.toFixed(4) ?? '—'})`)
          .join('; ');
        throw new OspreyError('OSPREY_ERR_GATE_FAILED', `${what} against ${ref.model}, over the ${gate.text} gate`, {
          failing: failing.map(({ r, i }) => ({ model: r.model, drop: drops[i] })),
        });
      }
    });
}
