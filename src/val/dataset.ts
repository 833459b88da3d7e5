/**
 * Validation datasets: COCO JSON annotations + an images folder, and Ultralytics' YOLO format
 * (`images/`, `labels/*.txt` with normalized `class cx cy w h`, `data.yaml` with `names`).
 *
 * Both load into one shape, {@link ValDataset}: images with COCO-style integer ids, categories with names, and
 * ground truth as {@link CocoGroundTruth} (`bbox` [x, y, w, h] in source-image pixels, `area`, `iscrowd`), so
 * the evaluator (src/core/cocoeval.ts) sees COCO semantics either way.
 *
 * Bad data is counted in {@link DatasetIssues} and skipped where that is sound (an image listed but missing, an
 * annotation with an unknown category or an invalid box); an empty dataset is an `OSPREY_ERR_DATASET` error.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { CocoGroundTruth } from '../core/cocoeval.js';
import { OspreyError } from '../core/errors.js';
import { readImageHeader } from '../image/decode.js';

/** File extensions read as images (same list as `OSPREY_ERR_NO_IMAGES` names). */
export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.bmp'];

export interface ValImage {
  /** COCO image id (the JSON's `id`; for YOLO datasets 1..N in file-name order). */
  id: number;
  fileName: string;
  /** Absolute path of the image file. */
  path: string;
  /** Source width/height in pixels as the annotations state them (COCO `width`/`height`; YOLO: header). */
  width?: number;
  height?: number;
}

export interface ValCategory {
  /** COCO category id (YOLO: the class index). */
  id: number;
  name: string;
}

/** What was wrong in the dataset and was left out (counts, plus the first few names for messages). */
export interface DatasetIssues {
  /** Images listed in the annotations whose file does not exist (left out of the evaluation). */
  missingImages: number;
  missingImageExamples: string[];
  /** Annotations whose category id is not among the dataset's categories (dropped). */
  unknownCategoryAnnotations: number;
  unknownCategoryIds: number[];
  /** Annotations with no usable box (missing, non-finite, or width/height ≤ 0; dropped). */
  invalidAnnotations: number;
  /** Annotations pointing to an image id that is not listed (dropped). */
  orphanAnnotations: number;
  /** Images whose header cannot be read at load time (YOLO datasets need it to denormalize; left out). */
  corruptImages: number;
  corruptImageExamples: string[];
  /** YOLO: images without a label file (treated as background images, as Ultralytics does). */
  imagesWithoutLabels: number;
}

export interface ValDataset {
  format: 'coco' | 'yolo';
  /** The annotations JSON or data.yaml. */
  source: string;
  imagesDir: string;
  /** Images that exist (missing ones are counted in `issues` and left out). */
  images: ValImage[];
  /** Sorted by id. */
  categories: ValCategory[];
  /** Ground truth of the images in `images`, bbox [x, y, w, h] in source pixels. */
  annotations: CocoGroundTruth[];
  /** Number of images the dataset lists (including missing ones). */
  listedImages: number;
  issues: DatasetIssues;
}

function emptyIssues(): DatasetIssues {
  return {
    missingImages: 0,
    missingImageExamples: [],
    unknownCategoryAnnotations: 0,
    unknownCategoryIds: [],
    invalidAnnotations: 0,
    orphanAnnotations: 0,
    corruptImages: 0,
    corruptImageExamples: [],
    imagesWithoutLabels: 0,
  };
}

const EXAMPLES = 5;

function isFiniteBox(b: unknown): b is [number, number, number, number] {
  return Array.isArray(b) && b.length >= 4 && b.slice(0, 4).every((v) => typeof v === 'number' && Number.isFinite(v)) && (b[2] as number) > 0 && (b[3] as number) > 0;
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * Loads a COCO `instances_*.json` and its images folder.
 *
 * @param annotationsPath the JSON file (`images`, `annotations`, `categories`)
 * @param imagesDir where `file_name`s live; default: `images/` beside the JSON if it exists, else the JSON's folder
 * @throws OspreyError `OSPREY_ERR_FILE_NOT_FOUND` (JSON or images folder missing), `OSPREY_ERR_DATASET` (not JSON,
 *   no `images`/`categories` arrays, no image left after skipping missing ones, no annotation at all).
 */
export async function loadCocoDataset(annotationsPath: string, imagesDir?: string): Promise<ValDataset> {
  const source = resolve(annotationsPath);
  let text: string;
  try {
    text = await readFile(source, 'utf8');
  } catch (err) {
    throw new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `${source}: cannot read the annotations file`, { path: source }, { cause: err });
  }
  let json: { images?: unknown; annotations?: unknown; categories?: unknown };
  try {
    json = JSON.parse(text) as typeof json;
  } catch (err) {
    throw new OspreyError('OSPREY_ERR_DATASET', `${source}: not valid JSON (${(err as Error).message})`, { path: source }, { cause: err });
  }
  if (!json || !Array.isArray(json.images) || !Array.isArray(json.categories)) {
    throw new OspreyError('OSPREY_ERR_DATASET', `${source}: not a COCO annotations file (needs "images" and "categories" arrays)`, { path: source });
  }
  const dir = imagesDir ? resolve(imagesDir) : existsSync(join(dirname(source), 'images')) ? join(dirname(source), 'images') : dirname(source);
  if (!existsSync(dir)) throw new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `${dir}: images folder not found (use --images DIR)`, { path: dir });
  const issues = emptyIssues();

  const categories: ValCategory[] = [];
  for (const c of json.categories as Array<{ id?: unknown; name?: unknown }>) {
    if (typeof c?.id !== 'number' || typeof c?.name !== 'string') {
      throw new OspreyError('OSPREY_ERR_DATASET', `${source}: a category has no numeric "id" or string "name": ${JSON.stringify(c).slice(0, 100)}`, { path: source });
    }
    categories.push({ id: c.id, name: c.name });
  }
  categories.sort((a, b) => a.id - b.id);
  const catIds = new Set(categories.map((c) => c.id));

  const images: ValImage[] = [];
  const listed = json.images as Array<{ id?: unknown; file_name?: unknown; width?: unknown; height?: unknown }>;
  for (const im of listed) {
    if (typeof im?.id !== 'number' || typeof im?.file_name !== 'string') {
      throw new OspreyError('OSPREY_ERR_DATASET', `${source}: an image entry has no numeric "id" or string "file_name": ${JSON.stringify(im).slice(0, 100)}`, { path: source });
    }
    const path = join(dir, im.file_name);
    if (!isFile(path)) {
      issues.missingImages++;
      if (issues.missingImageExamples.length < EXAMPLES) issues.missingImageExamples.push(im.file_name);
      continue;
    }
    images.push({
      id: im.id,
      fileName: im.file_name,
      path,
      ...(typeof im.width === 'number' ? { width: im.width } : {}),
      ...(typeof im.height === 'number' ? { height: im.height } : {}),
    });
  }
  const listedIds = new Set(listed.map((im) => im.id as number));
  const presentIds = new Set(images.map((im) => im.id));

  const annotations: CocoGroundTruth[] = [];
  const unknownCats = new Set<number>();
  const rawAnns = Array.isArray(json.annotations) ? (json.annotations as Array<Record<string, unknown>>) : [];
  for (let j = 0; j < rawAnns.length; j++) {
    const a = rawAnns[j]!;
    const imageId = a['image_id'], categoryId = a['category_id'], bbox = a['bbox'];
    if (typeof imageId !== 'number' || !listedIds.has(imageId)) {
      issues.orphanAnnotations++;
      continue;
    }
    if (typeof categoryId !== 'number' || !catIds.has(categoryId)) {
      issues.unknownCategoryAnnotations++;
      if (typeof categoryId === 'number') unknownCats.add(categoryId);
      continue;
    }
    if (!isFiniteBox(bbox)) {
      issues.invalidAnnotations++;
      continue;
    }
    if (!presentIds.has(imageId)) continue; // its image is missing (counted there)
    const area = typeof a['area'] === 'number' && Number.isFinite(a['area']) ? (a['area'] as number) : bbox[2] * bbox[3];
    annotations.push({
      id: typeof a['id'] === 'number' ? (a['id'] as number) : j + 1,
      imageId,
      categoryId,
      bbox: [bbox[0], bbox[1], bbox[2], bbox[3]],
      area,
      iscrowd: a['iscrowd'] ? 1 : 0,
    });
  }
  issues.unknownCategoryIds = [...unknownCats].sort((x, y) => x - y).slice(0, 20);
  const ds: ValDataset = { format: 'coco', source, imagesDir: dir, images, categories, annotations, listedImages: listed.length, issues };
  checkNotEmpty(ds, rawAnns.length);
  return ds;
}

function checkNotEmpty(ds: ValDataset, rawAnnotationCount: number): void {
  const counts = describeIssues(ds.issues);
  if (ds.listedImages === 0) {
    throw new OspreyError('OSPREY_ERR_DATASET', `${ds.source}: the dataset lists no images`, { path: ds.source, images: 0 });
  }
  if (ds.images.length === 0) {
    throw new OspreyError(
      'OSPREY_ERR_DATASET',
      `${ds.source}: none of the ${ds.listedImages} listed images can be used (${counts}); images folder ${ds.imagesDir}`,
      { path: ds.source, listedImages: ds.listedImages, ...ds.issues },
    );
  }
  if (ds.categories.length === 0) {
    throw new OspreyError('OSPREY_ERR_DATASET', `${ds.source}: the dataset has no categories`, { path: ds.source });
  }
  if (ds.annotations.length === 0) {
    throw new OspreyError(
      'OSPREY_ERR_DATASET',
      `${ds.source}: no usable ground-truth annotation (${rawAnnotationCount} in the file${counts ? `; ${counts}` : ''}): mAP would be undefined`,
      { path: ds.source, annotations: rawAnnotationCount, ...ds.issues },
    );
  }
}

/** One line such as "2 images missing (a.jpg, b.jpg), 1 annotation with an unknown category (id 999)"; '' if none. */
export function describeIssues(i: DatasetIssues): string {
  const parts: string[] = [];
  const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
  if (i.missingImages) parts.push(`${plural(i.missingImages, 'image')} listed but missing (${i.missingImageExamples.join(', ')}${i.missingImages > i.missingImageExamples.length ? ', …' : ''})`);
  if (i.corruptImages) parts.push(`${plural(i.corruptImages, 'image')} unreadable (${i.corruptImageExamples.join(', ')}${i.corruptImages > i.corruptImageExamples.length ? ', …' : ''})`);
  if (i.unknownCategoryAnnotations) parts.push(`${plural(i.unknownCategoryAnnotations, 'annotation')} with an unknown category (id ${i.unknownCategoryIds.join(', ')})`);
  if (i.invalidAnnotations) parts.push(`${plural(i.invalidAnnotations, 'annotation')} with an invalid box`);
  if (i.orphanAnnotations) parts.push(`${plural(i.orphanAnnotations, 'annotation')} for an image that is not listed`);
  if (i.imagesWithoutLabels) parts.push(`${plural(i.imagesWithoutLabels, 'image')} without a label file (background)`);
  return parts.join(', ');
}

function listImages(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (err) {
    throw new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `${dir}: cannot read the images folder`, { path: dir }, { cause: err });
  }
  return entries.filter((f) => IMAGE_EXTENSIONS.includes(extname(f).toLowerCase())).sort().map((f) => join(dir, f));
}

/** Ultralytics `img2label_paths`: the last `/images/` becomes `/labels/`, the extension `.txt`. */
export function labelPathFor(imagePath: string): string {
  const sep = '/images/';
  const i = imagePath.lastIndexOf(sep);
  const base = i >= 0 ? imagePath.slice(0, i) + '/labels/' + imagePath.slice(i + sep.length) : join(dirname(imagePath), 'labels', basename(imagePath));
  return base.slice(0, base.length - extname(base).length) + '.txt';
}

/** Parses a data.yaml `names` entry: a list, or a map `{0: person, 1: bicycle}`. */
function parseYamlNames(names: unknown, source: string): string[] {
  if (Array.isArray(names)) return names.map(String);
  if (names && typeof names === 'object') {
    const entries = Object.entries(names as Record<string, unknown>).map(([k, v]) => [Number(k), String(v)] as const);
    if (entries.some(([k]) => !Number.isInteger(k) || k < 0)) throw new OspreyError('OSPREY_ERR_DATASET', `${source}: "names" keys must be class indices`, { path: source });
    const out: string[] = [];
    for (const [k, v] of entries) out[k] = v;
    for (let i = 0; i < out.length; i++) out[i] ??= String(i);
    return out;
  }
  throw new OspreyError('OSPREY_ERR_DATASET', `${source}: "names" must be a list or a map of class index → name`, { path: source });
}

/**
 * Loads an Ultralytics YOLO dataset: `data.yaml` (`path`, `val` — a folder or a .txt list of images —, `names`),
 * labels beside the images (`…/images/x.jpg` → `…/labels/x.txt`, rows `class cx cy w h` normalized to 0..1).
 * Image sizes come from the image headers (needed to turn normalized boxes into pixels).
 *
 * @param dataPath `data.yaml`, or a folder holding `data.yaml`
 * @param split which `data.yaml` key to read; default `val`
 * @throws OspreyError `OSPREY_ERR_FILE_NOT_FOUND`, `OSPREY_ERR_DATASET` (bad YAML, no names, no usable image, no label).
 */
export async function loadYoloDataset(dataPath: string, split = 'val'): Promise<ValDataset> {
  let source = resolve(dataPath);
  if (isDirectory(source)) source = join(source, 'data.yaml');
  let doc: Record<string, unknown>;
  try {
    doc = parseYaml(await readFile(source, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `${source}: data.yaml not found`, { path: source }, { cause: err });
    throw new OspreyError('OSPREY_ERR_DATASET', `${source}: cannot parse YAML (${(err as Error).message})`, { path: source }, { cause: err });
  }
  if (!doc || typeof doc !== 'object') throw new OspreyError('OSPREY_ERR_DATASET', `${source}: empty data.yaml`, { path: source });
  const names = parseYamlNames(doc['names'], source);
  const root = typeof doc['path'] === 'string' ? (isAbsolute(doc['path']) ? doc['path'] : resolve(dirname(source), doc['path'])) : dirname(source);
  const splitValue = doc[split];
  if (typeof splitValue !== 'string' && !Array.isArray(splitValue)) {
    throw new OspreyError('OSPREY_ERR_DATASET', `${source}: no "${split}" entry (a folder or a .txt list of images)`, { path: source });
  }
  const issues = emptyIssues();
  const paths: string[] = [];
  let imagesDir = root;
  for (const entry of (Array.isArray(splitValue) ? splitValue : [splitValue]).map(String)) {
    const p = resolve(root, entry);
    if (p.endsWith('.txt')) {
      let list: string;
      try {
        list = await readFile(p, 'utf8');
      } catch (err) {
        throw new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `${p}: cannot read the image list`, { path: p }, { cause: err });
      }
      for (const line of list.split(/\r?\n/).map((l) => l.trim()).filter(Boolean)) paths.push(resolve(dirname(p), line));
    } else {
      if (!isDirectory(p)) throw new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `${p}: the "${split}" images folder does not exist`, { path: p });
      imagesDir = p;
      paths.push(...listImages(p));
    }
  }
  const categories = names.map((name, id) => ({ id, name }));
  const images: ValImage[] = [];
  const annotations: CocoGroundTruth[] = [];
  const unknownCats = new Set<number>();
  let annId = 1;
  for (let n = 0; n < paths.length; n++) {
    const path = paths[n]!;
    const fileName = basename(path);
    if (!isFile(path)) {
      issues.missingImages++;
      if (issues.missingImageExamples.length < EXAMPLES) issues.missingImageExamples.push(fileName);
      continue;
    }
    let width: number, height: number;
    try {
      const header = await readImageHeader(await readFile(path), path);
      width = header.width;
      height = header.height;
    } catch {
      issues.corruptImages++;
      if (issues.corruptImageExamples.length < EXAMPLES) issues.corruptImageExamples.push(fileName);
      continue;
    }
    const id = n + 1;
    images.push({ id, fileName, path, width, height });
    let labelText: string;
    try {
      labelText = await readFile(labelPathFor(path), 'utf8');
    } catch {
      issues.imagesWithoutLabels++;
      continue;
    }
    for (const line of labelText.split(/\r?\n/)) {
      const f = line.trim().split(/\s+/).filter(Boolean);
      if (f.length === 0) continue;
      const v = f.slice(0, 5).map(Number);
      if (f.length < 5 || v.some((x) => !Number.isFinite(x)) || !Number.isInteger(v[0])) {
        issues.invalidAnnotations++;
        continue;
      }
      const [cls, cx, cy, w, h] = v as [number, number, number, number, number];
      if (cls < 0 || cls >= names.length) {
        issues.unknownCategoryAnnotations++;
        unknownCats.add(cls);
        continue;
      }
      if (!(w > 0 && h > 0)) {
        issues.invalidAnnotations++;
        continue;
      }
      const bw = w * width, bh = h * height;
      annotations.push({ id: annId++, imageId: id, categoryId: cls, bbox: [(cx - w / 2) * width, (cy - h / 2) * height, bw, bh], area: bw * bh, iscrowd: 0 });
    }
  }
  issues.unknownCategoryIds = [...unknownCats].sort((x, y) => x - y).slice(0, 20);
  const ds: ValDataset = { format: 'yolo', source, imagesDir, images, categories, annotations, listedImages: paths.length, issues };
  checkNotEmpty(ds, annotations.length + issues.invalidAnnotations + issues.unknownCategoryAnnotations);
  return ds;
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Loads `--data`: a `.json` file (COCO; `--images` or `images/` beside it), a `.yaml`/`.yml` file or a folder
 * with `data.yaml` (YOLO).
 * @throws OspreyError `OSPREY_ERR_FILE_NOT_FOUND`, `OSPREY_ERR_DATASET` (see the loaders).
 */
export async function loadDataset(data: string, options: { images?: string; split?: string } = {}): Promise<ValDataset> {
  const p = resolve(data);
  if (!existsSync(p)) throw new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `${p}: dataset not found`, { path: p });
  const ext = extname(p).toLowerCase();
  if (ext === '.json') return loadCocoDataset(p, options.images);
  if (ext === '.yaml' || ext === '.yml' || (isDirectory(p) && existsSync(join(p, 'data.yaml')))) return loadYoloDataset(p, options.split);
  if (isDirectory(p)) {
    const jsons = readdirSync(p).filter((f) => /^instances_.*\.json$/.test(f));
    if (jsons.length === 1) return loadCocoDataset(join(p, jsons[0]!), options.images);
  }
  throw new OspreyError(
    'OSPREY_ERR_DATASET',
    `${p}: not a dataset Osprey reads (a COCO annotations .json, a YOLO data.yaml, or a folder with one of them)`,
    { path: p },
  );
}

/** Mapping from the model's class indices to dataset category ids (by name). */
export interface ClassMapping {
  /** `[numModelClasses]` dataset category id per model class, -1 where the dataset has no such category. */
  modelToCategory: Int32Array;
  /** Dataset category id → model class index. */
  categoryToModel: Map<number, number>;
  /** Model class names the dataset lacks (their detections are left out). */
  unusedModelClasses: string[];
  /** How the mapping was made. */
  method: 'name' | 'index';
}

/** Lower-case, trimmed, runs of spaces/underscores/hyphens as one space: "Traffic_Light" ≡ "traffic light". */
export function normalizeClassName(name: string): string {
  return name.trim().toLowerCase().replace(/[\s_-]+/g, ' ');
}

/**
 * Maps model class names to dataset category names by name (normalized with {@link normalizeClassName}).
 * A model without class names (names "0", "1", … from a model with no metadata) with exactly as many classes as
 * the dataset has categories is mapped by index (category ids sorted ascending), and says so.
 *
 * Every dataset category that has ground truth must map to a model class; model classes the dataset lacks are
 * allowed (their detections are dropped).
 *
 * @throws OspreyError `OSPREY_ERR_CLASS_MAPPING` listing the dataset names with no model class (and a few model names).
 */
export function mapClasses(modelNames: readonly string[], dataset: Pick<ValDataset, 'categories' | 'annotations' | 'source'>): ClassMapping {
  const modelToCategory = new Int32Array(modelNames.length).fill(-1);
  const categoryToModel = new Map<number, number>();
  const numericNames = modelNames.every((n, i) => n === String(i));
  if (numericNames && modelNames.length === dataset.categories.length) {
    dataset.categories.forEach((c, i) => {
      modelToCategory[i] = c.id;
      categoryToModel.set(c.id, i);
    });
    return { modelToCategory, categoryToModel, unusedModelClasses: [], method: 'index' };
  }
  const byName = new Map<string, number>();
  modelNames.forEach((n, i) => {
    const key = normalizeClassName(n);
    if (!byName.has(key)) byName.set(key, i);
  });
  const withGt = new Set(dataset.annotations.map((a) => a.categoryId));
  const unmatched: string[] = [];
  for (const c of dataset.categories) {
    const m = byName.get(normalizeClassName(c.name));
    if (m === undefined) {
      if (withGt.has(c.id)) unmatched.push(c.name);
      continue;
    }
    modelToCategory[m] = c.id;
    categoryToModel.set(c.id, m);
  }
  if (unmatched.length > 0 || categoryToModel.size === 0) {
    const shown = unmatched.length ? unmatched : dataset.categories.map((c) => c.name);
    throw new OspreyError(
      'OSPREY_ERR_CLASS_MAPPING',
      `${shown.length} dataset categor${shown.length === 1 ? 'y has' : 'ies have'} no model class of the same name: ` +
        `${shown.slice(0, 20).map((n) => JSON.stringify(n)).join(', ')}${shown.length > 20 ? ', …' : ''} ` +
        `(model names: ${modelNames.slice(0, 8).map((n) => JSON.stringify(n)).join(', ')}${modelNames.length > 8 ? `, … ${modelNames.length} in all` : ''}; dataset ${dataset.source})`,
      { unmatched, modelClasses: modelNames.length, datasetCategories: dataset.categories.length },
    );
  }
  const unusedModelClasses = modelNames.filter((_, i) => modelToCategory[i] === -1);
  return { modelToCategory, categoryToModel, unusedModelClasses, method: 'name' };
}
