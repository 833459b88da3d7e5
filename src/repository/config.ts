/**
 * Model configuration: Triton's `config.pbtxt` keys in camelCase, read from `<repo>/<model>/config.json` or
 * `config.yaml`, validated once against a TypeBox schema, defaults filled in one place ({@link resolveModelConfig}),
 * and auto-completed from the model's inputs/outputs when keys (or the whole file) are missing, as Triton's
 * auto-complete does.
 *
 * @example config.yaml
 *   maxBatchSize: 8
 *   instanceGroup: [{ count: 2, kind: KIND_CPU }]
 *   dynamicBatching:
 *     preferredBatchSize: [4, 8]
 *     maxQueueDelayMicroseconds: 2000
 *     priorityLevels: 2
 *     defaultPriorityLevel: 2
 *     defaultQueuePolicy: { maxQueueSize: 64, timeoutAction: REJECT, defaultTimeoutMicroseconds: 0, allowTimeoutOverride: true }
 *   versionPolicy: { latest: { numVersions: 1 } }
 *   detection: { conf: 0.25, iou: 0.7, maxDet: 300 }
 *
 * Sources: Triton `docs/user_guide/model_configuration.md` and `batcher.md` (key meanings and defaults).
 */
import { Type, type Static } from '@sinclair/typebox';
import { parse as parseYaml } from 'yaml';
import { configError, schemaError } from '../core/config-errors.js';
import type { TensorDataType, TensorSpec } from '../core/types.js';
import { TRITON_DATA_TYPES, fromTritonDataType, toTritonDataType } from './datatypes.js';
import { checkRelativePath } from './paths.js';

const Int = (min: number, extra: Record<string, unknown> = {}) => Type.Integer({ minimum: min, ...extra });
const Strict = <T extends Parameters<typeof Type.Object>[0]>(props: T) => Type.Object(props, { additionalProperties: false });

const DataTypeSchema = Type.Union(TRITON_DATA_TYPES.map((t) => Type.Literal(t)));

const TensorConfigSchema = Strict({
  name: Type.String({ minLength: 1 }),
  dataType: Type.Optional(DataTypeSchema),
  /** Shape without the batch axis when maxBatchSize > 0; -1 marks a variable dimension. */
  dims: Type.Optional(Type.Array(Type.Integer({ minimum: -1 }))),
  format: Type.Optional(Type.String()),
  optional: Type.Optional(Type.Boolean()),
});

const QueuePolicySchema = Strict({
  timeoutAction: Type.Optional(Type.Union([Type.Literal('REJECT'), Type.Literal('DELAY')])),
  defaultTimeoutMicroseconds: Type.Optional(Int(0)),
  allowTimeoutOverride: Type.Optional(Type.Boolean()),
  /** 0 = unlimited. */
  maxQueueSize: Type.Optional(Int(0)),
});

const DynamicBatchingSchema = Strict({
  preferredBatchSize: Type.Optional(Type.Array(Int(1))),
  maxQueueDelayMicroseconds: Type.Optional(Int(0)),
  preserveOrdering: Type.Optional(Type.Boolean()),
  priorityLevels: Type.Optional(Int(0)),
  defaultPriorityLevel: Type.Optional(Int(0)),
  defaultQueuePolicy: Type.Optional(QueuePolicySchema),
  /** Keys are priority levels ("1", "2", ...). */
  priorityQueuePolicy: Type.Optional(Type.Record(Type.String({ pattern: '^[0-9]+$' }), QueuePolicySchema)),
});

const VersionPolicySchema = Type.Union([
  Strict({ latest: Strict({ numVersions: Int(1) }) }),
  Strict({ all: Strict({}) }),
  Strict({ specific: Strict({ versions: Type.Array(Int(1), { minItems: 1 }) }) }),
]);

const WarmupInputSchema = Strict({
  dataType: DataTypeSchema,
  dims: Type.Array(Int(1)),
  zeroData: Type.Optional(Type.Boolean()),
  randomData: Type.Optional(Type.Boolean()),
  /** A raw little-endian file under `<model>/warmup/`. */
  inputDataFile: Type.Optional(Type.String({ minLength: 1 })),
});

const WarmupSchema = Strict({
  name: Type.String({ minLength: 1 }),
  batchSize: Type.Optional(Int(1)),
  inputs: Type.Record(Type.String(), WarmupInputSchema),
  count: Type.Optional(Int(1)),
});

const ParameterValueSchema = Type.Union([Type.String(), Type.Number(), Type.Boolean(), Strict({ stringValue: Type.String() })]);

const DetectionSchema = Strict({
  /** Confidence threshold (Ultralytics `conf`). */
  conf: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  /** NMS IoU threshold (Ultralytics `iou`). */
  iou: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  /** Max detections per image (Ultralytics `max_det`). */
  maxDet: Type.Optional(Int(1)),
  /** Keep only these class ids. */
  classes: Type.Optional(Type.Array(Int(0))),
  /** Class-agnostic NMS. */
  agnostic: Type.Optional(Type.Boolean()),
});

/** The config file schema (every key optional: missing ones are auto-completed from the model). */
export const ModelConfigSchema = Strict({
  name: Type.Optional(Type.String({ minLength: 1 })),
  /** `onnxruntime_onnx` (an ONNX file run by ONNX Runtime) or `osprey_cuda_engine` (an engine built by `osprey build --engine cuda`). */
  platform: Type.Optional(Type.Union([Type.Literal('onnxruntime_onnx'), Type.Literal('osprey_cuda_engine')])),
  /** `onnxruntime` or `osprey-cuda` (Osprey's own GPU engine); either key selects the backend. */
  backend: Type.Optional(Type.Union([Type.Literal('onnxruntime'), Type.Literal('osprey-cuda')])),
  maxBatchSize: Type.Optional(Int(0)),
  input: Type.Optional(Type.Array(TensorConfigSchema)),
  output: Type.Optional(Type.Array(TensorConfigSchema)),
  instanceGroup: Type.Optional(
    Type.Array(
      Strict({
        name: Type.Optional(Type.String()),
        count: Type.Optional(Int(1)),
        kind: Type.Optional(Type.Union([Type.Literal('KIND_AUTO'), Type.Literal('KIND_CPU'), Type.Literal('KIND_GPU')])),
        gpus: Type.Optional(Type.Array(Int(0))),
      }),
    ),
  ),
  dynamicBatching: Type.Optional(DynamicBatchingSchema),
  versionPolicy: Type.Optional(VersionPolicySchema),
  modelWarmup: Type.Optional(Type.Array(WarmupSchema)),
  parameters: Type.Optional(Type.Record(Type.String(), ParameterValueSchema)),
  defaultModelFilename: Type.Optional(Type.String({ minLength: 1 })),
  /** Triton's per-GPU files: compute capability ("9.0") → file in the version folder built for it (e.g. `model.sm90.engine`). */
  ccModelFilenames: Type.Optional(Type.Record(Type.String({ pattern: '^[0-9]+\\.[0-9]+$' }), Type.String({ minLength: 1 }))),
  /** Osprey's detection post-processing defaults for `/detect` and streams. */
  detection: Type.Optional(DetectionSchema),
});

/** A config file as written (validated, not yet completed). */
export type ModelConfigFile = Static<typeof ModelConfigSchema>;

export type TimeoutAction = 'REJECT' | 'DELAY';

/** A queue policy with every default applied (Triton `ModelQueuePolicy`). */
export interface QueuePolicy {
  /** What happens to a request whose timeout expires in the queue. Default `REJECT`. */
  timeoutAction: TimeoutAction;
  /** Queue timeout per request in µs; 0 = none. Default 0. */
  defaultTimeoutMicroseconds: number;
  /** Whether a request's `timeout` parameter may lower (never raise) the default. Default false. */
  allowTimeoutOverride: boolean;
  /** Max queued requests at this level; 0 = unlimited. Default 0. */
  maxQueueSize: number;
}

/** Dynamic batching with every default applied. */
export interface DynamicBatchingConfig {
  /** Batch sizes dispatched as soon as they can be formed. Default [] (as large as possible). */
  preferredBatchSize: number[];
  /** How long the oldest queued request may wait for a batch to fill, µs. Default 0. */
  maxQueueDelayMicroseconds: number;
  preserveOrdering: boolean;
  /** Number of priority levels (1 = highest); 0 = a single level. Default 0. */
  priorityLevels: number;
  /** Level of requests that give no priority. Default: the lowest level (priorityLevels), or 0 without levels. */
  defaultPriorityLevel: number;
  defaultQueuePolicy: QueuePolicy;
  /** Per-level overrides, level → policy. */
  priorityQueuePolicy: Record<number, QueuePolicy>;
}

export type VersionPolicy = { kind: 'latest'; numVersions: number } | { kind: 'all' } | { kind: 'specific'; versions: number[] };

export interface TensorConfig {
  name: string;
  dataType: TensorDataType;
  /** Without the batch axis when maxBatchSize > 0; -1 = variable. */
  dims: number[];
}

export type InstanceKind = 'KIND_AUTO' | 'KIND_CPU' | 'KIND_GPU';

export interface InstanceGroupConfig {
  name: string;
  count: number;
  kind: InstanceKind;
  gpus: number[];
}

export interface WarmupInputConfig {
  dataType: TensorDataType;
  dims: number[];
  source: 'zero' | 'random' | { file: string };
}

export interface WarmupConfig {
  name: string;
  batchSize: number;
  inputs: Record<string, WarmupInputConfig>;
  count: number;
}

export interface DetectionConfig {
  conf: number;
  iou: number;
  maxDet: number;
  classes?: number[];
  agnostic: boolean;
}

/** A model config with every key present (defaults applied, inputs/outputs completed from the model). */
export interface ModelConfig {
  name: string;
  platform: ModelPlatform;
  backend: ModelBackend;
  /** 0 = the model has no batch axis Osprey may use (requests carry the full shape). */
  maxBatchSize: number;
  input: TensorConfig[];
  output: TensorConfig[];
  instanceGroup: InstanceGroupConfig[];
  /** null = no dynamic batching: each request runs alone, in arrival order. */
  dynamicBatching: DynamicBatchingConfig | null;
  versionPolicy: VersionPolicy;
  modelWarmup: WarmupConfig[];
  /** Free-form string parameters (Triton `parameters`, e.g. `intra_op_thread_count`). */
  parameters: Record<string, string>;
  defaultModelFilename: string;
  /** Compute capability → file built for it (Triton's `cc_model_filenames`); {} = none. Picked per GPU at load. */
  ccModelFilenames: Record<string, string>;
  detection: DetectionConfig;
}

/** Backends a model config can name (`backend`), and the `platform` that goes with each. */
export type ModelBackend = 'onnxruntime' | 'osprey-cuda';
export type ModelPlatform = 'onnxruntime_onnx' | 'osprey_cuda_engine';
export const PLATFORM_OF_BACKEND: Readonly<Record<ModelBackend, ModelPlatform>> = Object.freeze({ onnxruntime: 'onnxruntime_onnx', 'osprey-cuda': 'osprey_cuda_engine' });

/** Every default of the config, in one place. */
export const CONFIG_DEFAULTS = Object.freeze({
  /** Triton's `--backend-config=default-max-batch-size` default, used when the model has a dynamic batch axis. */
  autoMaxBatchSize: 4,
  instanceCount: 1,
  instanceKind: 'KIND_AUTO' as InstanceKind,
  maxQueueDelayMicroseconds: 0,
  timeoutAction: 'REJECT' as TimeoutAction,
  defaultTimeoutMicroseconds: 0,
  allowTimeoutOverride: false,
  maxQueueSize: 0,
  versionPolicy: { kind: 'latest', numVersions: 1 } as VersionPolicy,
  defaultModelFilename: 'model.onnx',
  warmupCount: 1,
  detection: { conf: 0.25, iou: 0.7, maxDet: 300, agnostic: false } as DetectionConfig,
});

/**
 * Validates a parsed config object against {@link ModelConfigSchema}.
 * @param where a file name or "load request" for messages
 * @throws OspreyError `OSPREY_ERR_CONFIG` naming the first bad key path (e.g. `dynamicBatching.maxQueueDelayMicroseconds`),
 *   what was found and what was expected; `details.keyPath` holds the path.
 */
export function validateModelConfig(raw: unknown, where: string): ModelConfigFile {
  if (raw === null || raw === undefined) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw configError(where, '', 'the config must be an object of Triton keys in camelCase');
  }
  const bad = schemaError(ModelConfigSchema, raw, where);
  if (bad) throw bad;
  return raw as ModelConfigFile;
}

/**
 * Parses config text (JSON or YAML by `fileName`'s extension) and validates it.
 * @throws OspreyError `OSPREY_ERR_CONFIG` (syntax error with line, or a bad key path).
 */
export function parseModelConfigText(text: string, fileName: string): ModelConfigFile {
  let raw: unknown;
  try {
    raw = /\.ya?ml$/i.test(fileName) ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw configError(fileName, '', `not valid ${/\.ya?ml$/i.test(fileName) ? 'YAML' : 'JSON'} (${(err as Error).message.split('\n')[0]})`);
  }
  return validateModelConfig(raw, fileName);
}

function resolveQueuePolicy(p: Static<typeof QueuePolicySchema> | undefined, base?: QueuePolicy): QueuePolicy {
  return {
    timeoutAction: p?.timeoutAction ?? base?.timeoutAction ?? CONFIG_DEFAULTS.timeoutAction,
    defaultTimeoutMicroseconds: p?.defaultTimeoutMicroseconds ?? base?.defaultTimeoutMicroseconds ?? CONFIG_DEFAULTS.defaultTimeoutMicroseconds,
    allowTimeoutOverride: p?.allowTimeoutOverride ?? base?.allowTimeoutOverride ?? CONFIG_DEFAULTS.allowTimeoutOverride,
    maxQueueSize: p?.maxQueueSize ?? base?.maxQueueSize ?? CONFIG_DEFAULTS.maxQueueSize,
  };
}

/** Model facts the config is completed and checked against (from the loaded session). */
export interface ModelSignature {
  inputs: readonly TensorSpec[];
  outputs: readonly TensorSpec[];
  /** Largest batch a dynamic batch axis accepts, when the engine has one (a GPU engine's max batch profile). */
  maxBatchSize?: number;
}

const fixedDim = (d: number | string | undefined): number => (typeof d === 'number' && d >= 0 ? d : -1);

/**
 * Applies every default and completes the config from the model (Triton's auto-complete): inputs/outputs, their
 * types and dims, and `maxBatchSize` (the model's batch axis: dynamic → {@link CONFIG_DEFAULTS.autoMaxBatchSize}
 * with dynamic batching enabled, fixed → 0). Cross-checks what the file says against the model.
 *
 * @param file validated config (may be `{}`)
 * @param name the model's name (the repository folder)
 * @param model the model's inputs/outputs; omit to resolve without a model (no auto-complete, no cross-checks)
 * @throws OspreyError `OSPREY_ERR_CONFIG` naming the key path (name mismatch, unknown input/output name, datatype or
 *   dims that contradict the model, preferred batch size over maxBatchSize, priority levels out of range...).
 */
export function resolveModelConfig(file: ModelConfigFile, name: string, model?: ModelSignature, where = `${name}/config`): ModelConfig {
  if (file.name !== undefined && file.name !== name) {
    throw configError(where, 'name', `'${file.name}' does not match the model folder name '${name}'`);
  }
  // ---- batch axis ----
  const firstInput = model?.inputs[0];
  const modelBatchDim = firstInput ? firstInput.shape[0] : undefined;
  const modelBatchDynamic = firstInput !== undefined && typeof modelBatchDim !== 'number';
  const modelBatchFixed = typeof modelBatchDim === 'number' ? modelBatchDim : null;
  let maxBatchSize: number;
  let autoBatching = false;
  if (file.maxBatchSize !== undefined) {
    maxBatchSize = file.maxBatchSize;
    if (model && maxBatchSize > 0 && !modelBatchDynamic && (modelBatchFixed === null || maxBatchSize > modelBatchFixed)) {
      throw configError(
        where,
        'maxBatchSize',
        `${maxBatchSize} but the model's batch axis is fixed to ${modelBatchFixed} (input '${firstInput?.name}' shape [${firstInput?.shape.join(', ')}]); ` +
          `use maxBatchSize 0, or make the batch axis dynamic (osprey build --dynamic-batch)`,
      );
    }
    if (model?.maxBatchSize !== undefined && maxBatchSize > model.maxBatchSize) {
      throw configError(where, 'maxBatchSize', `${maxBatchSize} but the engine runs batches up to ${model.maxBatchSize}; lower it, or rebuild the engine with --max-batch ${maxBatchSize}`);
    }
  } else if (model) {
    // Triton's auto-complete for engines with a batch profile: max_batch_size = the profile's max
    maxBatchSize = modelBatchDynamic ? (model.maxBatchSize ?? CONFIG_DEFAULTS.autoMaxBatchSize) : 0;
    autoBatching = modelBatchDynamic;
  } else {
    maxBatchSize = 0;
  }
  const batched = maxBatchSize > 0;

  // ---- inputs / outputs ----
  const completeTensors = (key: 'input' | 'output', listed: ModelConfigFile['input'], actual: readonly TensorSpec[] | undefined): TensorConfig[] => {
    if (!actual) {
      return (listed ?? []).map((t, i) => {
        if (!t.dataType || !t.dims) throw configError(where, `${key}[${i}]`, 'dataType and dims are required when no model is given');
        return { name: t.name, dataType: fromTritonDataType(t.dataType)!, dims: [...t.dims] };
      });
    }
    const byName = new Map(actual.map((s) => [s.name, s]));
    (listed ?? []).forEach((t, i) => {
      const spec = byName.get(t.name);
      if (!spec) {
        throw configError(where, `${key}[${i}].name`, `'${t.name}' is not an ${key} of the model (it has ${[...byName.keys()].map((n) => `'${n}'`).join(', ')})`);
      }
      if (t.dataType && fromTritonDataType(t.dataType) !== spec.type) {
        throw configError(where, `${key}[${i}].dataType`, `${t.dataType} but the model's ${key} '${t.name}' is ${toTritonDataType(spec.type)}`);
      }
      if (t.dims) {
        const modelDims = (batched ? spec.shape.slice(1) : spec.shape).map(fixedDim);
        const ok = t.dims.length === modelDims.length && t.dims.every((d, j) => modelDims[j] === -1 || d === modelDims[j]);
        if (!ok) {
          throw configError(where, `${key}[${i}].dims`, `[${t.dims.join(', ')}] does not match the model's ${key} '${t.name}' [${modelDims.join(', ')}]${batched ? ' (without the batch axis)' : ''}`);
        }
      }
    });
    // Every model tensor, in model order, with dims from the config where it narrows a variable dimension.
    return actual.map((spec) => {
      const listedT = listed?.find((t) => t.name === spec.name);
      const modelDims = (batched ? spec.shape.slice(1) : spec.shape).map(fixedDim);
      return { name: spec.name, dataType: spec.type, dims: listedT?.dims ? [...listedT.dims] : modelDims };
    });
  };
  const input = completeTensors('input', file.input, model?.inputs);
  const output = completeTensors('output', file.output, model?.outputs);

  // ---- dynamic batching ----
  let dynamicBatching: DynamicBatchingConfig | null = null;
  const db = file.dynamicBatching ?? (autoBatching ? {} : undefined);
  if (db) {
    const priorityLevels = db.priorityLevels ?? 0;
    const defaultPriorityLevel = db.defaultPriorityLevel ?? priorityLevels;
    if (priorityLevels > 0 && (defaultPriorityLevel < 1 || defaultPriorityLevel > priorityLevels)) {
      throw configError(where, 'dynamicBatching.defaultPriorityLevel', `${defaultPriorityLevel} is outside 1..${priorityLevels} (priorityLevels)`);
    }
    if (priorityLevels === 0 && db.defaultPriorityLevel !== undefined && db.defaultPriorityLevel !== 0) {
      throw configError(where, 'dynamicBatching.defaultPriorityLevel', `${db.defaultPriorityLevel} needs priorityLevels ≥ ${db.defaultPriorityLevel}`);
    }
    (db.preferredBatchSize ?? []).forEach((p, i) => {
      if (p > Math.max(1, maxBatchSize)) {
        throw configError(where, `dynamicBatching.preferredBatchSize[${i}]`, `${p} is over maxBatchSize ${maxBatchSize}`);
      }
    });
    const defaultQueuePolicy = resolveQueuePolicy(db.defaultQueuePolicy);
    const priorityQueuePolicy: Record<number, QueuePolicy> = {};
    for (const [k, p] of Object.entries(db.priorityQueuePolicy ?? {})) {
      const level = Number(k);
      if (level < 1 || level > priorityLevels) {
        throw configError(where, `dynamicBatching.priorityQueuePolicy.${k}`, `level ${k} is outside 1..${priorityLevels} (priorityLevels)`);
      }
      priorityQueuePolicy[level] = resolveQueuePolicy(p, defaultQueuePolicy);
    }
    dynamicBatching = {
      preferredBatchSize: [...new Set(db.preferredBatchSize ?? [])].sort((a, b) => a - b),
      maxQueueDelayMicroseconds: db.maxQueueDelayMicroseconds ?? CONFIG_DEFAULTS.maxQueueDelayMicroseconds,
      preserveOrdering: db.preserveOrdering ?? false,
      priorityLevels,
      defaultPriorityLevel: priorityLevels > 0 ? defaultPriorityLevel : 0,
      defaultQueuePolicy,
      priorityQueuePolicy,
    };
  }

  // ---- version policy ----
  let versionPolicy: VersionPolicy = CONFIG_DEFAULTS.versionPolicy;
  const vp = file.versionPolicy;
  if (vp && 'latest' in vp) versionPolicy = { kind: 'latest', numVersions: vp.latest.numVersions };
  else if (vp && 'all' in vp) versionPolicy = { kind: 'all' };
  else if (vp && 'specific' in vp) versionPolicy = { kind: 'specific', versions: [...new Set(vp.specific.versions)].sort((a, b) => a - b) };

  // ---- instances ----
  const instanceGroup: InstanceGroupConfig[] = (file.instanceGroup ?? [{}]).map((g, i) => ({
    name: g.name ?? `${name}_${i}`,
    count: g.count ?? CONFIG_DEFAULTS.instanceCount,
    kind: g.kind ?? CONFIG_DEFAULTS.instanceKind,
    gpus: g.gpus ?? [],
  }));
  if (instanceGroup.length === 0) throw configError(where, 'instanceGroup', 'must list at least one group');
  instanceGroup.forEach((g, i) => {
    if (g.kind === 'KIND_CPU' && g.gpus.length > 0) throw configError(where, `instanceGroup[${i}].gpus`, 'a KIND_CPU group runs on no GPU: remove gpus, or use KIND_GPU');
    const dup = g.gpus.find((id, j) => g.gpus.indexOf(id) !== j);
    if (dup !== undefined) throw configError(where, `instanceGroup[${i}].gpus`, `GPU ${dup} is listed twice (count instances go on each listed GPU)`);
  });

  // ---- warmup ----
  const modelWarmup: WarmupConfig[] = (file.modelWarmup ?? []).map((w, i) => {
    const inputs: Record<string, WarmupInputConfig> = {};
    for (const [inName, spec] of Object.entries(w.inputs)) {
      const inputCfg = input.find((t) => t.name === inName);
      if (model && !inputCfg) throw configError(where, `modelWarmup[${i}].inputs.${inName}`, `'${inName}' is not an input of the model`);
      const kinds = [spec.zeroData, spec.randomData, spec.inputDataFile !== undefined].filter(Boolean).length;
      if (kinds !== 1) throw configError(where, `modelWarmup[${i}].inputs.${inName}`, 'set exactly one of zeroData, randomData, inputDataFile');
      if (spec.inputDataFile !== undefined) {
        try {
          checkRelativePath(spec.inputDataFile, { model: name, keyPath: `modelWarmup[${i}].inputs.${inName}.inputDataFile` });
        } catch (err) {
          throw configError(where, `modelWarmup[${i}].inputs.${inName}.inputDataFile`, (err as Error).message.replace(/^[^:]*: /, ''), 'OSPREY_ERR_PATH_NOT_ALLOWED');
        }
      }
      if (model && inputCfg) {
        const dt = fromTritonDataType(spec.dataType);
        if (dt !== inputCfg.dataType) throw configError(where, `modelWarmup[${i}].inputs.${inName}.dataType`, `${spec.dataType} but the model's input '${inName}' is ${toTritonDataType(inputCfg.dataType)}`);
        const fits = spec.dims.length === inputCfg.dims.length && spec.dims.every((d, j) => inputCfg.dims[j] === -1 || d === inputCfg.dims[j]);
        if (!fits) {
          throw configError(where, `modelWarmup[${i}].inputs.${inName}.dims`, `[${spec.dims.join(', ')}] does not match the model's input '${inName}' [${inputCfg.dims.join(', ')}]${batched ? ' (without the batch axis)' : ''}`);
        }
      }
      inputs[inName] = {
        dataType: fromTritonDataType(spec.dataType)!,
        dims: [...spec.dims],
        source: spec.zeroData ? 'zero' : spec.randomData ? 'random' : { file: spec.inputDataFile! },
      };
    }
    const batchSize = w.batchSize ?? 1;
    if (batched && batchSize > maxBatchSize) throw configError(where, `modelWarmup[${i}].batchSize`, `${batchSize} is over maxBatchSize ${maxBatchSize}`);
    return { name: w.name, batchSize, inputs, count: w.count ?? CONFIG_DEFAULTS.warmupCount };
  });

  // ---- parameters ----
  const parameters: Record<string, string> = {};
  for (const [k, v] of Object.entries(file.parameters ?? {})) {
    parameters[k] = typeof v === 'object' ? v.stringValue : String(v);
  }

  const d = file.detection ?? {};
  const detection: DetectionConfig = {
    conf: d.conf ?? CONFIG_DEFAULTS.detection.conf,
    iou: d.iou ?? CONFIG_DEFAULTS.detection.iou,
    maxDet: d.maxDet ?? CONFIG_DEFAULTS.detection.maxDet,
    agnostic: d.agnostic ?? CONFIG_DEFAULTS.detection.agnostic,
    ...(d.classes ? { classes: [...d.classes] } : {}),
  };

  // ---- backend / per-GPU files ----
  const backendOfPlatform = (Object.entries(PLATFORM_OF_BACKEND) as Array<[ModelBackend, ModelPlatform]>).find(([, p]) => p === file.platform)?.[0];
  if (file.backend !== undefined && backendOfPlatform !== undefined && file.backend !== backendOfPlatform) {
    throw configError(where, 'backend', `'${file.backend}' contradicts platform '${file.platform}' (which is backend '${backendOfPlatform}')`);
  }
  const backend: ModelBackend = file.backend ?? backendOfPlatform ?? 'onnxruntime';
  const ccModelFilenames: Record<string, string> = {};
  for (const [cc, f] of Object.entries(file.ccModelFilenames ?? {})) {
    try {
      checkRelativePath(f, { model: name, keyPath: `ccModelFilenames.${cc}` });
    } catch (err) {
      throw configError(where, `ccModelFilenames.${cc}`, (err as Error).message.replace(/^[^:]*: /, ''), 'OSPREY_ERR_PATH_NOT_ALLOWED');
    }
    ccModelFilenames[cc] = f;
  }

  return {
    name,
    platform: PLATFORM_OF_BACKEND[backend],
    backend,
    maxBatchSize,
    input,
    output,
    instanceGroup,
    dynamicBatching,
    versionPolicy,
    modelWarmup,
    parameters,
    defaultModelFilename: file.defaultModelFilename ?? CONFIG_DEFAULTS.defaultModelFilename,
    ccModelFilenames,
    detection,
  };
}

/** Queue policy of a priority level (the level's override, else the default policy). */
export function queuePolicyFor(db: DynamicBatchingConfig, level: number): QueuePolicy {
  return db.priorityQueuePolicy[level] ?? db.defaultQueuePolicy;
}

/** Triton's wire form of a queue policy (snake_case, as `GET .../config` answers). */
function queuePolicyToTriton(p: QueuePolicy): Record<string, unknown> {
  return {
    timeout_action: p.timeoutAction,
    default_timeout_microseconds: p.defaultTimeoutMicroseconds,
    allow_timeout_override: p.allowTimeoutOverride,
    max_queue_size: p.maxQueueSize,
  };
}

/**
 * The config in Triton's `GET /v2/models/{m}/config` JSON form (protobuf field names in snake_case, as
 * `tritonclient` and Ultralytics' Triton client read them: `input[].data_type`, `output[].name`,
 * `parameters.metadata.string_value`). Numbers stay JSON numbers.
 *
 * @param extraParameters string parameters added to the config's own (e.g. `metadata`); the config's win.
 */
export function toTritonConfigJson(c: ModelConfig, extraParameters: Record<string, string> = {}): Record<string, unknown> {
  const tensor = (t: TensorConfig) => ({ name: t.name, data_type: toTritonDataType(t.dataType), dims: t.dims });
  const params: Record<string, { string_value: string }> = {};
  for (const [k, v] of Object.entries({ ...extraParameters, ...c.parameters })) params[k] = { string_value: v };
  const out: Record<string, unknown> = {
    name: c.name,
    platform: c.platform,
    backend: c.backend,
    version_policy:
      c.versionPolicy.kind === 'latest'
        ? { latest: { num_versions: c.versionPolicy.numVersions } }
        : c.versionPolicy.kind === 'all'
          ? { all: {} }
          : { specific: { versions: c.versionPolicy.versions } },
    max_batch_size: c.maxBatchSize,
    input: c.input.map(tensor),
    output: c.output.map(tensor),
    instance_group: c.instanceGroup.map((g) => ({ name: g.name, kind: g.kind, count: g.count, gpus: g.gpus })),
    default_model_filename: c.defaultModelFilename,
    ...(Object.keys(c.ccModelFilenames).length > 0 ? { cc_model_filenames: c.ccModelFilenames } : {}),
    parameters: params,
    model_warmup: c.modelWarmup.map((w) => ({
      name: w.name,
      batch_size: w.batchSize,
      count: w.count,
      inputs: Object.fromEntries(
        Object.entries(w.inputs).map(([k, v]) => [
          k,
          {
            data_type: toTritonDataType(v.dataType),
            dims: v.dims,
            ...(v.source === 'zero' ? { zero_data: true } : v.source === 'random' ? { random_data: true } : { input_data_file: v.source.file }),
          },
        ]),
      ),
    })),
  };
  if (c.dynamicBatching) {
    const db = c.dynamicBatching;
    out.dynamic_batching = {
      preferred_batch_size: db.preferredBatchSize,
      max_queue_delay_microseconds: db.maxQueueDelayMicroseconds,
      preserve_ordering: db.preserveOrdering,
      priority_levels: db.priorityLevels,
      default_priority_level: db.defaultPriorityLevel,
      default_queue_policy: queuePolicyToTriton(db.defaultQueuePolicy),
      priority_queue_policy: Object.fromEntries(Object.entries(db.priorityQueuePolicy).map(([k, v]) => [k, queuePolicyToTriton(v)])),
    };
  }
  return out;
}
