/**
 * Test helpers for val: paths into ../shared/data (never copied into the repo), and small datasets built in
 * temp dirs from the real COCO dev subset (COCO JSON subsets and an Ultralytics YOLO conversion).
 */
import { mkdtempSync, readFileSync, rmSync, symlinkSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { COCO_DEV_IMAGES, COCO_DEV_JSON } from '../support/data.js';
export { BROKEN_INT8_MODEL_PATH as BROKEN_INT8, COCO_DEV_IMAGES, COCO_DEV_JSON, MODEL_PATH as YOLOV8N, REPO_ROOT as REPO, SHARED_DATA_DIR as SHARED } from '../support/data.js';

export interface CocoJson {
  images: Array<{ id: number; file_name: string; width: number; height: number }>;
  annotations: Array<{ id: number; image_id: number; category_id: number; bbox: number[]; area: number; iscrowd: number }>;
  categories: Array<{ id: number; name: string }>;
}

export function readCocoDev(): CocoJson {
  return JSON.parse(readFileSync(COCO_DEV_JSON, 'utf8')) as CocoJson;
}

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `osprey-val-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The first `n` images of the dev subset (by id) with their annotations. */
export function cocoSubset(n: number): CocoJson {
  const d = readCocoDev();
  const images = [...d.images].sort((a, b) => a.id - b.id).slice(0, n);
  const ids = new Set(images.map((i) => i.id));
  return { images, annotations: d.annotations.filter((a) => ids.has(a.image_id)), categories: d.categories };
}

/**
 * A COCO dataset in `dir`: `instances.json` + `images/` with symlinks to the real images.
 * @returns the JSON path
 */
export function writeCocoDataset(dir: string, json: CocoJson, link = true): string {
  mkdirSync(join(dir, 'images'), { recursive: true });
  if (link) for (const im of json.images) symlinkSync(join(COCO_DEV_IMAGES, im.file_name), join(dir, 'images', im.file_name));
  const p = join(dir, 'instances.json');
  writeFileSync(p, JSON.stringify(json));
  return p;
}

/**
 * Converts COCO images + annotations to Ultralytics' YOLO format in `dir` (as Ultralytics' `convert_coco` does:
 * crowd annotations dropped, class index = position of the category in the sorted category list, boxes
 * normalized cx cy w h). Writes `data.yaml` with `names`.
 * @returns the data.yaml path
 */
export function writeYoloDataset(dir: string, json: CocoJson, names?: string[]): string {
  const cats = [...json.categories].sort((a, b) => a.id - b.id);
  const clsOf = new Map(cats.map((c, i) => [c.id, i] as const));
  mkdirSync(join(dir, 'images/val'), { recursive: true });
  mkdirSync(join(dir, 'labels/val'), { recursive: true });
  for (const im of json.images) {
    symlinkSync(join(COCO_DEV_IMAGES, im.file_name), join(dir, 'images/val', im.file_name));
    const lines = json.annotations
      .filter((a) => a.image_id === im.id && !a.iscrowd)
      .map((a) => {
        const [x, y, w, h] = a.bbox as [number, number, number, number];
        return `${clsOf.get(a.category_id)} ${((x + w / 2) / im.width).toFixed(6)} ${((y + h / 2) / im.height).toFixed(6)} ${(w / im.width).toFixed(6)} ${(h / im.height).toFixed(6)}`;
      });
    writeFileSync(join(dir, 'labels/val', im.file_name.replace(/\.jpg$/, '.txt')), lines.join('\n') + '\n');
  }
  const yamlNames = (names ?? cats.map((c) => c.name)).map((n, i) => `  ${i}: ${n}`).join('\n');
  const p = join(dir, 'data.yaml');
  writeFileSync(p, `path: ${dir}\nval: images/val\nnames:\n${yamlNames}\n`);
  return p;
}
