/**
 * The model repository, in Triton's layout:
 * ```
 * <repo>/<model>/config.json | config.yaml     (optional: auto-completed from the model when missing)
 * <repo>/<model>/<version>/model.onnx          (version = a positive integer folder)
 * <repo>/<model>/<version>/manifest.json       (optional: sha256 of the files, verified at load)
 * <repo>/<model>/warmup/<file>                 (optional: raw inputs for modelWarmup.inputDataFile)
 * ```
 * Loading a model version creates its engine instances (one worker_thread + ONNX Runtime session each,
 * `instanceGroup[].count`), its {@link DynamicBatcher} and, for detection models, its {@link Detector} pieces.
 *
 * Lifecycle (Triton `model_management.md`): a bad config refuses that model (`OSPREY_ERR_CONFIG` naming the key
 * path) while the others load; a version whose manifest does not match refuses that version
 * (`OSPREY_ERR_HASH_MISMATCH`). Re-loading a model loads the new version set next to the old one, switches new
 * requests to it, lets in-flight requests finish on the old one, then releases it; a failed re-load keeps the old
 * set serving. Unloading drains in-flight requests, then releases the sessions.
 */
import { mkdtemp, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join, resolve as resolvePath } from 'node:path';
import { OspreyError, toOspreyError, type ErrorCode } from '../core/errors.js';
import type { DetectionModelSpec } from '../core/model-spec.js';
import type { Tensor } from '../core/types.js';
import { Detector } from '../engine/detector.js';
import type { Engine, EngineInfo, RunOptions } from '../engine/engine.js';
import { defaultExecutionProviders } from '../engine/execution-providers.js';
import { createOrtEngine, type OrtEngineOptions } from '../engine/ort-engine.js';
import { DynamicBatcher, defaultBatchBuckets, warmupBatchBuckets, type BatcherObserver } from '../scheduler/dynamic-batcher.js';
import { parseModelConfigText, resolveModelConfig, validateModelConfig, type ModelConfig, type ModelConfigFile, type WarmupConfig } from './config.js';
import { allocateStorage, bytesPerElement, elementCount, storageFromBytes } from './datatypes.js';
import { verifyManifest } from './manifest.js';

/** Triton's model states, as `POST /v2/repository/index` reports them. */
export type ModelState = 'UNKNOWN' | 'READY' | 'UNAVAILABLE' | 'LOADING' | 'UNLOADING';

/** One row of the repository index (`[{name, version, state, reason}]`). */
export interface IndexEntry {
  name: string;
  /** Version as a string ('' when the model has no version loaded or found). */
  version: string;
  state: ModelState;
  /** Why a model/version is not READY ('' when it is). */
  reason: string;
}

/** What an engine factory returns: the model's info and one {@link Engine} per instance. */
export interface EngineInstances {
  info: EngineInfo;
  /** One per instance; each runs one batch at a time (the batcher feeds them). */
  instances: readonly Engine[];
  close(): Promise<void>;
}

/** Creates the engine instances of one instance group. */
export type EngineFactory = (options: OrtEngineOptions) => Promise<EngineInstances>;

/** The default factory: {@link createOrtEngine} (worker_threads), each pool instance exposed as its own Engine. */
export const ortEngineFactory: EngineFactory = async (options) => {
  const pool = await createOrtEngine(options);
  return {
    info: pool.info,
    instances: pool.instances.map((inst) => ({ info: pool.info, run: (feeds: Record<string, Tensor>, options?: RunOptions) => inst.run(feeds, options), close: () => inst.close() })),
    close: () => pool.close(),
  };
};

/** A loaded, servable model version. */
export class ModelVersion {
  state: ModelState = 'READY';
  /** Users that resolved this version and have not finished (requests between lookup and answer). */
  private users = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(
    readonly model: string,
    readonly version: number,
    readonly config: ModelConfig,
    readonly modelPath: string,
    readonly info: EngineInfo,
    readonly batcher: DynamicBatcher,
    /** Detection pieces (spec, decode, letterbox, postprocess); null for a model Osprey cannot read as a detector. */
    readonly detector: Detector | null,
    /** Why `detector` is null. */
    readonly detectorError: OspreyError | null,
    private readonly engines: EngineInstances[],
    /** Identity of what was loaded (file + config), to reuse unchanged versions on re-load. */
    readonly loadKey: string,
  ) {}

  /** The detection spec (input format/size, layout, names...), or null. */
  get detectionSpec(): DetectionModelSpec | null {
    return this.detector?.spec ?? null;
  }

  /** Marks a user (a request) as using this version until `release()`. */
  acquire(): void {
    this.users++;
  }

  release(): void {
    this.users--;
    if (this.users === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Waits for users to finish, drains the batcher, releases the sessions. */
  async close(): Promise<void> {
    this.state = 'UNLOADING';
    if (this.users > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
    await this.batcher.close();
    await Promise.all(this.engines.map((e) => e.close()));
    this.state = 'UNAVAILABLE';
  }
}

/** Observers per model version (the metrics module provides them). */
export type ObserverFactory = (model: string, version: number) => BatcherObserver | undefined;

export interface RepositoryOptions {
  /** Execution providers for `KIND_AUTO` instance groups. Default: `defaultExecutionProviders()` (cuda,cpu where an NVIDIA GPU is present, else cpu). */
  executionProviders?: readonly string[];
  /** Engine factory. Default {@link ortEngineFactory}. */
  engineFactory?: EngineFactory;
  /** Batcher observers (metrics). */
  observers?: ObserverFactory;
  /** Called on state changes and load failures (logging). */
  log?: (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;
}

/** What a model folder offers: its config file (if any) and its version folders. */
interface ModelSource {
  /** The model folder. */
  dir: string;
  /** Config file path and text, or undefined. */
  config?: { path: string; text: string } | undefined;
  /** Already-parsed config (load-request override), which wins over the file. */
  configOverride?: ModelConfigFile;
  /** version → model file path; for a one-file repository, version 1 → the file. */
  versions: Map<number, string | undefined>;
}

interface ModelEntry {
  name: string;
  /** Loaded versions, by version number. */
  versions: Map<number, ModelVersion>;
  /** Versions (or the model, key 0) that failed, with the error. */
  failures: Map<number, OspreyError>;
  /** A load/unload in progress for this model. */
  busy: Promise<void>;
  loading: boolean;
  /** For a one-file repository: the file. */
  file?: string;
  /** Temporary folder holding files pushed with a load request, removed with the model. */
  tempDir?: string;
}

export interface LoadRequest {
  /** Config override (Triton's load `parameters.config`), a JSON string or a parsed object, camelCase keys. */
  config?: string | Record<string, unknown>;
  /** Files pushed with the request (Triton's `file:<version>/<name>`), path relative to the model folder → bytes. */
  files?: Record<string, Uint8Array>;
}

const CONFIG_FILES = ['config.json', 'config.yaml', 'config.yml'];
const VERSION_DIR = /^[1-9][0-9]*$/;

/**
 * A model repository (a Triton-layout folder, or a single model file served as a one-model repository).
 *
 * @example
 *   const repo = await ModelRepository.open('/models');   // loads every model it finds
 *   const v = repo.get('yolov8n');                          // the highest READY version
 *   const { outputs } = await v.batcher.submit({ images: tensor });
 */
export class ModelRepository {
  private readonly models = new Map<string, ModelEntry>();
  private readonly factory: EngineFactory;
  private readonly eps: readonly string[];
  private closed = false;

  private constructor(
    /** The repository folder, or null for a one-file repository. */
    readonly root: string | null,
    private readonly options: RepositoryOptions,
  ) {
    this.factory = options.engineFactory ?? ortEngineFactory;
    this.eps = options.executionProviders ?? defaultExecutionProviders();
  }

  /**
   * Opens a repository folder and loads every model in it (a model that fails is reported in the index and the
   * log; the others load).
   * @throws OspreyError `OSPREY_ERR_FILE_NOT_FOUND` when the folder does not exist.
   */
  static async open(root: string, options: RepositoryOptions = {}): Promise<ModelRepository> {
    const abs = resolvePath(root);
    const st = await stat(abs).catch(() => null);
    if (!st?.isDirectory()) throw new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `${root}: the model repository is not a directory`, { path: root });
    const repo = new ModelRepository(abs, options);
    const names = await repo.scanModelNames();
    await Promise.all(names.map((n) => repo.load(n).catch(() => undefined)));
    return repo;
  }

  /**
   * A one-model repository in memory for `osprey serve --model PATH`: model name = file name without extension,
   * version 1, config auto-completed from the model (or `config` when given).
   * @throws OspreyError as {@link load} (the model must load).
   */
  static async fromModelFile(path: string, options: RepositoryOptions & { name?: string; config?: ModelConfigFile } = {}): Promise<ModelRepository> {
    const abs = resolvePath(path);
    const name = options.name ?? basename(abs, extname(abs));
    const repo = new ModelRepository(null, options);
    repo.models.set(name, { name, versions: new Map(), failures: new Map(), busy: Promise.resolve(), loading: false, file: abs });
    await repo.load(name, options.config ? { config: options.config as Record<string, unknown> } : {});
    return repo;
  }

  private log(level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>): void {
    this.options.log?.(level, message, fields);
  }

  /** Model folder names in the repository (folders holding a config file or a version folder). */
  private async scanModelNames(): Promise<string[]> {
    if (!this.root) return [...this.models.keys()];
    const names: string[] = [];
    for (const d of await readdir(this.root, { withFileTypes: true })) {
      if (!d.isDirectory() || d.name.startsWith('.')) continue;
      const inside = await readdir(join(this.root, d.name)).catch(() => [] as string[]);
      if (inside.some((f) => CONFIG_FILES.includes(f) || VERSION_DIR.test(f))) names.push(d.name);
    }
    return names.sort();
  }

  private async readSource(entry: ModelEntry): Promise<ModelSource> {
    if (entry.tempDir || (this.root && !entry.file)) {
      const dir = entry.tempDir ?? join(this.root!, entry.name);
      const files = await readdir(dir).catch(() => null);
      if (!files) throw new OspreyError('OSPREY_ERR_MODEL_NOT_FOUND', `model '${entry.name}' is not in the repository`, { model: entry.name });
      let config: ModelSource['config'];
      const cf = CONFIG_FILES.find((f) => files.includes(f));
      if (cf) config = { path: join(dir, cf), text: await readFile(join(dir, cf), 'utf8') };
      const versions = new Map<number, string | undefined>();
      for (const f of files) {
        if (VERSION_DIR.test(f) && (await stat(join(dir, f))).isDirectory()) versions.set(Number(f), undefined);
      }
      return { dir, config, versions };
    }
    return { dir: dirname(entry.file!), versions: new Map([[1, entry.file!]]) };
  }

  /**
   * Loads (or re-loads) a model: reads its config, picks versions by `versionPolicy`, verifies manifests, starts the
   * engine instances, builds the batchers, runs `modelWarmup`, then switches traffic to the new version set and
   * releases versions no longer in it once their in-flight requests have finished. Unchanged versions are kept.
   *
   * @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND` (no such model folder), `OSPREY_ERR_CONFIG` (bad config: the
   *   message names the key path), `OSPREY_ERR_HASH_MISMATCH`, `OSPREY_ERR_LOAD_FAILED` (no version could load:
   *   the message has each version's reason). On failure a previously loaded version set keeps serving.
   */
  load(name: string, request: LoadRequest = {}): Promise<void> {
    if (this.closed) return Promise.reject(new OspreyError('OSPREY_ERR_SHUTTING_DOWN', 'the repository is closing'));
    if (!/^[A-Za-z0-9_.-]+$/.test(name) || name === '.' || name === '..') {
      return Promise.reject(new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `'${name}' is not a valid model name (letters, digits, '_', '-', '.')`));
    }
    let entry = this.models.get(name);
    if (!entry) {
      entry = { name, versions: new Map(), failures: new Map(), busy: Promise.resolve(), loading: false };
      this.models.set(name, entry);
    }
    const e = entry;
    const run = e.busy.then(() => this.doLoad(e, request));
    e.busy = run.catch(() => undefined);
    return run;
  }

  private async doLoad(entry: ModelEntry, request: LoadRequest): Promise<void> {
    entry.loading = true;
    const created: ModelVersion[] = [];
    try {
      if (request.files && Object.keys(request.files).length > 0) await this.writePushedFiles(entry, request);
      let source: ModelSource;
      try {
        source = await this.readSource(entry);
      } catch (err) {
        if (entry.versions.size === 0 && this.root && !entry.tempDir) this.models.delete(entry.name);
        throw err;
      }
      // ---- config (validated once) ----
      let file: ModelConfigFile;
      try {
        if (request.config !== undefined) {
          const raw = typeof request.config === 'string' ? JSON.parse(request.config) : request.config;
          file = validateModelConfig(raw, `${entry.name} (load request config)`);
        } else if (source.config) {
          file = parseModelConfigText(source.config.text, source.config.path);
        } else {
          file = {};
        }
        resolveModelConfig(file, entry.name, undefined, source.config?.path ?? `${entry.name}/config`); // model-free checks first
      } catch (err) {
        const e =
          err instanceof SyntaxError
            ? new OspreyError('OSPREY_ERR_CONFIG', `${entry.name}: the load request's config is not valid JSON (${err.message})`, { keyPath: 'config' })
            : toOspreyError(err, 'OSPREY_ERR_CONFIG');
        entry.failures.set(0, e);
        throw e;
      }
      const where = source.config?.path ?? `${entry.name}/config`;
      const modelFileName = file.defaultModelFilename ?? 'model.onnx';

      // ---- versions by policy ----
      const available = [...source.versions.keys()].sort((a, b) => a - b);
      const policy = file.versionPolicy;
      let wanted: number[];
      const missing: number[] = [];
      if (!policy || 'latest' in policy) wanted = available.slice(-(policy && 'latest' in policy ? policy.latest.numVersions : 1));
      else if ('all' in policy) wanted = available;
      else {
        wanted = policy.specific.versions.filter((v) => available.includes(v));
        missing.push(...policy.specific.versions.filter((v) => !available.includes(v)));
      }
      if (wanted.length === 0) {
        const e = new OspreyError('OSPREY_ERR_LOAD_FAILED', `${entry.name}: no version folder to load (found [${available.join(', ')}]${missing.length ? `, versionPolicy asks for [${missing.join(', ')}]` : ''})`, { model: entry.name });
        entry.failures.set(0, e);
        throw e;
      }

      // ---- load each wanted version (unchanged ones are reused) ----
      const failures = new Map<number, OspreyError>();
      for (const v of missing) failures.set(v, new OspreyError('OSPREY_ERR_LOAD_FAILED', `${entry.name}: version ${v} is not in the repository`));
      const next = new Map<number, ModelVersion>();
      await Promise.all(
        wanted.map(async (v) => {
          const modelPath = source.versions.get(v) ?? join(source.dir, String(v), modelFileName);
          try {
            const st = await stat(modelPath).catch(() => null);
            if (!st?.isFile()) throw new OspreyError('OSPREY_ERR_MODEL_NOT_FOUND_FILE', `${modelPath}: model file not found`, { modelPath });
            const loadKey = `${modelPath}|${st.size}|${st.mtimeMs}|${JSON.stringify(file)}`;
            const existing = entry.versions.get(v);
            if (existing && existing.loadKey === loadKey && existing.state === 'READY') {
              next.set(v, existing);
              return;
            }
            if (source.versions.get(v) === undefined) await verifyManifest(join(source.dir, String(v)), modelFileName);
            const mv = await this.loadVersion(entry.name, v, modelPath, file, where, source.dir, loadKey);
            created.push(mv);
            next.set(v, mv);
          } catch (err) {
            const e = toOspreyError(err, 'OSPREY_ERR_LOAD_FAILED');
            failures.set(v, e);
            this.log('error', `model ${entry.name} version ${v} failed to load: ${e.code}: ${e.message}`, { model: entry.name, version: v, code: e.code });
          }
        }),
      );

      const hadVersions = entry.versions.size > 0;
      if (next.size === 0 || (hadVersions && failures.size > 0)) {
        // Nothing loaded, or a re-load failed: keep what was serving.
        for (const mv of created) await mv.close().catch(() => undefined);
        created.length = 0;
        for (const [v, e] of failures) entry.failures.set(v, e);
        const first = [...failures.values()][0];
        const summary = [...failures.entries()].map(([v, e]) => `version ${v}: ${e.code}: ${e.message}`).join('; ');
        const code: ErrorCode = failures.size === 1 && first ? first.code : 'OSPREY_ERR_LOAD_FAILED';
        throw new OspreyError(code, `${entry.name}: load failed${hadVersions ? ' (the previous version keeps serving)' : ''}: ${summary}`, { model: entry.name });
      }

      // ---- switch ----
      const old = entry.versions;
      entry.versions = next;
      entry.failures = failures;
      for (const [v, mv] of next) this.log('info', `model ${entry.name} version ${v} is READY`, { model: entry.name, version: v });
      const retired = [...old.values()].filter((mv) => next.get(mv.version) !== mv);
      await Promise.all(retired.map((mv) => mv.close()));
    } finally {
      entry.loading = false;
    }
  }

  private async writePushedFiles(entry: ModelEntry, request: LoadRequest): Promise<void> {
    if (request.config === undefined) {
      throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `${entry.name}: a load request with files must also carry a config (Triton's rule)`);
    }
    const dir = await mkdtemp(join(tmpdir(), `osprey-model-${entry.name}-`));
    for (const [rel, bytes] of Object.entries(request.files ?? {})) {
      const m = /^([1-9][0-9]*)\/([A-Za-z0-9_.-]+)$/.exec(rel);
      if (!m) {
        await rm(dir, { recursive: true, force: true });
        throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `${entry.name}: pushed file 'file:${rel}' must be 'file:<version>/<name>'`);
      }
      await mkdir(join(dir, m[1]!), { recursive: true });
      await writeFile(join(dir, m[1]!, m[2]!), bytes);
    }
    const previous = entry.tempDir;
    entry.tempDir = dir;
    if (previous) await rm(previous, { recursive: true, force: true }).catch(() => undefined);
  }

  private async loadVersion(name: string, version: number, modelPath: string, file: ModelConfigFile, where: string, modelDir: string, loadKey: string): Promise<ModelVersion> {
    // Engines first (the config is completed from the model), one factory call per instance group.
    const groups = file.instanceGroup ?? [{}];
    const intraOp = paramNumber(file.parameters, 'intra_op_thread_count');
    const engines: EngineInstances[] = [];
    try {
      for (const g of groups) {
        const kind = g.kind ?? 'KIND_AUTO';
        // KIND_GPU asks for a GPU explicitly: tried (and its failure explained) even where the default list is CPU-only
        const gpuEps = this.eps.filter((e) => e !== 'cpu');
        const eps = kind === 'KIND_CPU' ? ['cpu'] : kind === 'KIND_GPU' ? (gpuEps.length ? gpuEps : ['cuda']) : this.eps;
        engines.push(
          await this.factory({
            modelPath,
            executionProviders: eps.length > 0 ? eps : ['cuda'],
            instances: g.count ?? 1,
            deviceId: g.gpus?.[0] ?? 0,
            ...(intraOp !== undefined ? { intraOpNumThreads: intraOp } : {}),
          }),
        );
      }
      const info = engines[0]!.info;
      const config = resolveModelConfig(file, name, info, where);
      let detector: Detector | null = null;
      let detectorError: OspreyError | null = null;
      try {
        detector = Detector.fromEngine(engines[0]!.instances[0]!, { maxBatchSize: Math.max(1, config.maxBatchSize) });
      } catch (err) {
        detectorError = toOspreyError(err);
      }
      const first = info.inputs[0]?.shape[0];
      const instances = engines.flatMap((e) => e.instances);
      await this.warmup(config, instances, modelDir);
      const fixedBatchSize = config.maxBatchSize > 0 && typeof first === 'number' ? first : null;
      // On a GPU, run a dynamic-batch engine at a few batch sizes only, each tuned once here (see batchBuckets).
      const onDevice = info.executionProvider !== 'cpu';
      const batchBuckets = onDevice && fixedBatchSize === null && config.maxBatchSize > 1 ? defaultBatchBuckets(config.maxBatchSize) : undefined;
      if (batchBuckets) await warmupBatchBuckets(info, instances, batchBuckets);
      const batcher = new DynamicBatcher({
        name: `${name}:${version}`,
        engines: instances,
        maxBatchSize: config.maxBatchSize,
        dynamicBatching: config.dynamicBatching,
        fixedBatchSize,
        ...(batchBuckets ? { batchBuckets } : {}),
        observer: this.options.observers?.(name, version),
      });
      return new ModelVersion(name, version, config, modelPath, info, batcher, detector, detectorError, engines, loadKey);
    } catch (err) {
      await Promise.all(engines.map((e) => e.close().catch(() => undefined)));
      throw err;
    }
  }

  /** Runs `modelWarmup` on every instance (Triton: the model is not READY until warmup succeeds). */
  private async warmup(config: ModelConfig, instances: readonly Engine[], modelDir: string): Promise<void> {
    for (const w of config.modelWarmup) {
      for (const engine of instances) {
        for (let i = 0; i < w.count; i++) await engine.run(await warmupFeeds(config, w, modelDir));
      }
    }
  }

  /**
   * Unloads every version of a model: new requests get `OSPREY_ERR_MODEL_NOT_READY`, in-flight ones finish, then
   * the sessions are released. The model stays in the index as UNAVAILABLE.
   * @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND` for an unknown model.
   */
  unload(name: string): Promise<void> {
    const entry = this.models.get(name);
    if (!entry) return Promise.reject(new OspreyError('OSPREY_ERR_MODEL_NOT_FOUND', `unknown model '${name}'`, { model: name }));
    const run = entry.busy.then(async () => {
      const old = [...entry.versions.values()];
      entry.versions = new Map();
      entry.failures = new Map([[0, new OspreyError('OSPREY_ERR_MODEL_NOT_READY', 'unloaded')]]);
      await Promise.all(old.map((mv) => mv.close()));
      this.log('info', `model ${name} unloaded`, { model: name });
    });
    entry.busy = run.catch(() => undefined);
    return run;
  }

  /**
   * The version to serve: `version` when given, else the highest READY version. Call `acquire()`/`release()` on it
   * around a request that awaits between lookup and submit.
   * @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND` (unknown model, or a version that is not in the repository),
   *   `OSPREY_ERR_MODEL_NOT_READY` (known but loading, unloaded or failed).
   */
  get(name: string, version?: string | number): ModelVersion {
    const entry = this.models.get(name);
    if (!entry) throw new OspreyError('OSPREY_ERR_MODEL_NOT_FOUND', `unknown model '${name}'`, { model: name });
    if (version !== undefined && version !== '') {
      const v = typeof version === 'number' ? version : /^[0-9]+$/.test(version) ? Number(version) : NaN;
      if (!Number.isInteger(v) || v < 1) throw new OspreyError('OSPREY_ERR_MODEL_NOT_FOUND', `model '${name}' has no version '${version}'`, { model: name, version });
      const mv = entry.versions.get(v);
      if (mv && mv.state === 'READY') return mv;
      if (mv || entry.failures.has(v) || entry.loading) {
        throw new OspreyError('OSPREY_ERR_MODEL_NOT_READY', `model '${name}' version ${v} is not ready (${mv ? mv.state : entry.loading ? 'LOADING' : (entry.failures.get(v)?.message ?? 'UNAVAILABLE')})`, { model: name, version: v });
      }
      throw new OspreyError('OSPREY_ERR_MODEL_NOT_FOUND', `model '${name}' has no version ${v}`, { model: name, version: v });
    }
    let best: ModelVersion | undefined;
    for (const mv of entry.versions.values()) if (mv.state === 'READY' && (!best || mv.version > best.version)) best = mv;
    if (best) return best;
    const why = entry.loading ? 'LOADING' : ([...entry.failures.values()][0]?.message ?? 'UNAVAILABLE');
    throw new OspreyError('OSPREY_ERR_MODEL_NOT_READY', `model '${name}' is not ready (${why})`, { model: name });
  }

  /** Loaded versions of a model (READY ones), highest first; [] for an unknown model. */
  versionsOf(name: string): ModelVersion[] {
    return [...(this.models.get(name)?.versions.values() ?? [])].sort((a, b) => b.version - a.version);
  }

  /** Every loaded version of every model. */
  allVersions(): ModelVersion[] {
    return [...this.models.values()].flatMap((e) => [...e.versions.values()]);
  }

  /** Known model names (loaded, failed or unloaded). */
  modelNames(): string[] {
    return [...this.models.keys()].sort();
  }

  /** True while any model is loading. */
  get loading(): boolean {
    return [...this.models.values()].some((e) => e.loading);
  }

  /**
   * The repository index (Triton `POST /v2/repository/index`): every model in the folder, loaded or not, with each
   * version's state and, when not READY, the reason.
   * @param readyOnly only READY versions.
   */
  async index(readyOnly = false): Promise<IndexEntry[]> {
    const names = new Set([...this.models.keys(), ...(await this.scanModelNames().catch(() => []))]);
    const out: IndexEntry[] = [];
    for (const name of [...names].sort()) {
      const entry = this.models.get(name);
      if (!entry) {
        if (!readyOnly) out.push({ name, version: '', state: 'UNAVAILABLE', reason: 'not loaded' });
        continue;
      }
      const rows: IndexEntry[] = [];
      for (const mv of [...entry.versions.values()].sort((a, b) => a.version - b.version)) rows.push({ name, version: String(mv.version), state: mv.state, reason: '' });
      for (const [v, e] of entry.failures) {
        if (v !== 0 && !entry.versions.has(v)) rows.push({ name, version: String(v), state: 'UNAVAILABLE', reason: `${e.code}: ${e.message}` });
      }
      if (rows.length === 0) {
        const e = entry.failures.get(0);
        rows.push({ name, version: '', state: entry.loading ? 'LOADING' : 'UNAVAILABLE', reason: e ? (e.code === 'OSPREY_ERR_MODEL_NOT_READY' ? e.message : `${e.code}: ${e.message}`) : entry.loading ? 'loading' : '' });
      }
      out.push(...(readyOnly ? rows.filter((r) => r.state === 'READY') : rows));
    }
    return out;
  }

  /** Unloads everything (drains in-flight requests, releases sessions). Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.models.values()].map((e) => e.busy));
    const all = [...this.models.values()];
    await Promise.all(all.flatMap((e) => [...e.versions.values()].map((mv) => mv.close())));
    for (const e of all) {
      e.versions = new Map();
      if (e.tempDir) await rm(e.tempDir, { recursive: true, force: true }).catch(() => undefined);
    }
  }
}

function paramNumber(params: ModelConfigFile['parameters'], key: string): number | undefined {
  const v = params?.[key];
  if (v === undefined) return undefined;
  const s = typeof v === 'object' ? v.stringValue : String(v);
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0) throw new OspreyError('OSPREY_ERR_CONFIG', `parameters.${key}: '${s}' is not a non-negative integer`, { keyPath: `parameters.${key}` });
  return n;
}

/** Builds the feeds of one warmup sample (zero, random or file data). */
async function warmupFeeds(config: ModelConfig, w: WarmupConfig, modelDir: string): Promise<Record<string, Tensor>> {
  const feeds: Record<string, Tensor> = {};
  for (const [name, spec] of Object.entries(w.inputs)) {
    const dims = config.maxBatchSize > 0 ? [w.batchSize, ...spec.dims] : [...spec.dims];
    const count = elementCount(dims);
    let data = allocateStorage(spec.dataType, count);
    if (spec.source === 'random') {
      const bytes = new Uint8Array(count);
      for (let off = 0; off < count; off += 65536) crypto.getRandomValues(bytes.subarray(off, Math.min(count, off + 65536)));
      if (data instanceof Float32Array || data instanceof Float64Array) data.set(bytes);
      else if (data instanceof Uint8Array || data instanceof Int8Array) data.set(bytes);
    } else if (typeof spec.source === 'object') {
      const path = join(modelDir, 'warmup', spec.source.file);
      const bytes = await readFile(path).catch(() => {
        throw new OspreyError('OSPREY_ERR_CONFIG', `modelWarmup '${w.name}': cannot read ${path}`, { keyPath: `modelWarmup.${w.name}.inputs.${name}.inputDataFile` });
      });
      const want = count * bytesPerElement(spec.dataType);
      if (bytes.length !== want) {
        throw new OspreyError('OSPREY_ERR_CONFIG', `modelWarmup '${w.name}': ${path} has ${bytes.length} bytes, expected ${want} for [${dims.join(', ')}]`, {
          keyPath: `modelWarmup.${w.name}.inputs.${name}.inputDataFile`,
        });
      }
      data = storageFromBytes(spec.dataType, new Uint8Array(bytes).slice());
    }
    feeds[name] = { type: spec.dataType, dims, data };
  }
  return feeds;
}
