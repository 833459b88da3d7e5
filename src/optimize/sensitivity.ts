/**
 * Sensitivity analysis: quantizes each layer alone (all else FP32), runs it on a few real images and measures
 * the detection output's error against FP32 ({@link outputError}); the layers whose error stands out are
 * proposed for exclusion (typically the detection head: the class-score convolutions, the DFL box decoding and
 * the box/score concatenations). Polygraphy's `debug precision` and ModelOpt's `nodes_to_exclude` answer the
 * same question by bisection / by hand; measuring each layer alone is simpler and gives a ranking.
 *
 * A "layer" is an Ultralytics module where the names say so (`/model.2/cv1/conv/Conv` + `/model.2/cv1/act/Sigmoid`
 * + `/model.2/cv1/act/Mul` form layer `/model.2/cv1`: Conv + SiLU fuse into one 8-bit chain), else one node.
 */
import type { LayoutInfo } from '../core/decode.js';
import type { OnnxModel } from '../onnx/proto-types.js';
import { cloneOnnxModel } from '../onnx/model.js';
import type { TensorRange } from './calibration.js';
import { type OutputError, outputError } from './output-check.js';
import { type QdqOptions, eligibleNodes, quantizeQdq } from './qdq.js';
import { createBuildSession, outputAsFloat32, runSession } from './session.js';
import type { PreparedImage } from './images.js';

/** Layer key of a node name (see the module note). */
export function layerOf(nodeName: string): string {
  const m = /^(.*)\/(conv\/Conv|act\/Sigmoid|act\/Mul)$/.exec(nodeName);
  return m ? m[1]! : nodeName;
}

/** One layer's measured sensitivity. */
export interface LayerSensitivity {
  layer: string;
  nodes: string[];
  opTypes: string[];
  /** Mean over the images. */
  scoreError: number;
  boxError: number;
  error: number;
}

/** Result of {@link analyzeSensitivity}. */
export interface SensitivityReport {
  /** All layers, largest error first. */
  layers: LayerSensitivity[];
  /** Layers proposed for exclusion (largest first). */
  proposedLayers: string[];
  /** Node names of the proposed layers (what `--auto-exclude` excludes). */
  proposedNodes: string[];
  /** Error threshold used for the proposal. */
  threshold: number;
  /** Error with every eligible layer quantized, and with the proposed layers excluded. */
  allQuantized: OutputError;
  withExclusions: OutputError;
  images: string[];
}

/** Options of {@link analyzeSensitivity}. */
export interface SensitivityOptions extends QdqOptions {
  /** A layer is proposed when its error ≥ max(minError, relativeFactor × median error). Defaults 0.02 and 10. */
  minError?: number;
  relativeFactor?: number;
  /** At most this many layers proposed (largest first). Default 12. */
  maxProposed?: number;
  /** Analyse only these layers (default all). */
  layers?: readonly string[];
  onLayer?: (done: number, total: number, layer: string) => void;
}

async function meanError(model: OnnxModel, inputName: string, outputName: string, images: readonly PreparedImage[], refs: readonly Float32Array[], info: LayoutInfo): Promise<OutputError> {
  const session = await createBuildSession(model);
  try {
    let s = 0;
    let b = 0;
    for (let i = 0; i < images.length; i++) {
      const out = await runSession(session, inputName, images[i]!.data, images[i]!.dims, [outputName]);
      const e = outputError(refs[i]!, outputAsFloat32(out[outputName]!), info);
      s += e.scoreError;
      b += e.boxError;
    }
    const n = Math.max(1, images.length);
    return { scoreError: s / n, boxError: b / n, error: (s + b) / n };
  } finally {
    await session.release();
  }
}

/**
 * Measures each layer's output error when quantized alone and proposes exclusions.
 *
 * @param model FP32 source model (float32 NCHW input, batch 1)
 * @param ranges calibrated activation ranges
 * @param images a few letterboxed float32 images (2–8 is enough; each layer costs one session + one run each)
 */
export async function analyzeSensitivity(
  model: OnnxModel,
  ranges: ReadonlyMap<string, TensorRange>,
  io: { inputName: string; outputName: string; layout: LayoutInfo },
  images: readonly PreparedImage[],
  options: SensitivityOptions = {},
): Promise<SensitivityReport> {
  const ref = await createBuildSession(model);
  const refs: Float32Array[] = [];
  try {
    for (const img of images) refs.push(Float32Array.from(outputAsFloat32((await runSession(ref, io.inputName, img.data, img.dims, [io.outputName]))[io.outputName]!)));
  } finally {
    await ref.release();
  }
  const groups = new Map<string, { nodes: string[]; ops: Set<string> }>();
  for (const n of eligibleNodes(model, options)) {
    const key = layerOf(n.name ?? '');
    const g = groups.get(key) ?? { nodes: [], ops: new Set<string>() };
    g.nodes.push(n.name ?? '');
    g.ops.add(n.op_type ?? '');
    groups.set(key, g);
  }
  const wanted = options.layers ? new Set(options.layers) : undefined;
  const keys = [...groups.keys()].filter((k) => !wanted || wanted.has(k));
  const layers: LayerSensitivity[] = [];
  let done = 0;
  for (const key of keys) {
    const g = groups.get(key)!;
    const q = cloneOnnxModel(model);
    quantizeQdq(q, ranges, { ...options, onlyNodes: g.nodes });
    const e = await meanError(q, io.inputName, io.outputName, images, refs, io.layout);
    layers.push({ layer: key, nodes: g.nodes, opTypes: [...g.ops], ...e });
    options.onLayer?.(++done, keys.length, key);
  }
  layers.sort((a, b) => b.error - a.error);
  const sorted = layers.map((l) => l.error).sort((a, b) => a - b);
  const median = sorted.length ? sorted[Math.floor(sorted.length / 2)]! : 0;
  const threshold = Math.max(options.minError ?? 0.02, (options.relativeFactor ?? 10) * median);
  const proposed = layers.filter((l) => l.error >= threshold).slice(0, options.maxProposed ?? 12);
  const proposedNodes = proposed.flatMap((l) => l.nodes);
  const all = cloneOnnxModel(model);
  quantizeQdq(all, ranges, { ...options, onlyNodes: undefined });
  const allQuantized = await meanError(all, io.inputName, io.outputName, images, refs, io.layout);
  const ex = cloneOnnxModel(model);
  quantizeQdq(ex, ranges, { ...options, onlyNodes: undefined, excludeNodes: [...(options.excludeNodes ?? []), ...proposedNodes] });
  const withExclusions = await meanError(ex, io.inputName, io.outputName, images, refs, io.layout);
  return {
    layers,
    proposedLayers: proposed.map((l) => l.layer),
    proposedNodes,
    threshold,
    allQuantized,
    withExclusions,
    images: images.map((i) => i.name),
  };
}
