/**
 * The model repository, in Triton's layout:
 * ```
 * <repo>/<model>/config.json | config.yaml     (optional: auto-completed from the model when missing)
 * <repo>/<model>/<version>/model.onnx          (version = a positive integer folder)
 * <repo>/<model>/<version>/manifest.json       (optional: sha256 of the files, verified at load)
 * <repo>/<model>/warmup/<file>                 (optional: raw inputs for modelWarmup.inputDataFile)
 * ```
 * This module finds models and versions on disk, picks versions by policy, confines paths, verifies manifests and
 * keeps the index (Triton's `model_repository_manager`). Each version's engines, warmup, batcher and detector are
 * owned by its lifecycle (src/repository/lifecycle.ts), built from the config resolved once here.
 *
 * Lifecycle (Triton `model_management.md`): a bad config refuses that model (`OSPREY_ERR_CONFIG` naming the key
 * path) while the others load; a version whose manifest does not match refuses that version
 * (`OSPREY_ERR_HASH_MISMATCH`). Re-loading a model loads the new version set next to the old one, switches new
 * requests to it, lets in-flight requests finish on the old one, then releases it; a failed re-load keeps the old
 * set serving. Unloading drains in-flight requests, then releases the sessions.
 */
import { mkdtemp, mkdir, readdir, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join, relative, resolve as resolvePath } from 'node:path';
import { OspreyError, toOspreyError, type ErrorCode } from '../core/errors.js';
import type { EngineFactory } from '../engine/engine.js';
import { defaultExecutionProviders } from '../engine/execution-providers.js';
import { createOrtInstances } from '../engine/ort-engine.js';
import type { BatcherObserver } from '../scheduler/dynamic-batcher.js';
import { parseModelConfigText, resolveModelConfig, validateModelConfig, type ModelConfig, type ModelConfigFile, type VersionPolicy } from './config.js';
import { loadModelVersion, type LifecycleContext, type ModelState, type ModelVersion } from './lifecycle.js';
import type { GpuInventory } from '../gpu/inventory.js';
import { verifyManifest } from './manifest.js';
import { checkRelativePath, isInside, readBoundedFile, realAllowedTargets, resolveInModelFolder } from './paths.js';

export type { ModelState, ModelVersion };

/** One row of the repository index (`[{name, version, state, reason}]`). */
export interface IndexEntry {
  name: string;
  /** Version as a string ('' when the model has no version loaded or found). */
  version: string;
  state: ModelState;
  /** Why a model/version is not READY ('' when it is). */
  reason: string;
}

/** Observers per model version (the metrics module provides them). */
export type ObserverFactory = (model: string, version: number) => BatcherObserver | undefined;

export interface RepositoryOptions {
  /** Execution providers for `KIND_AUTO` instance groups. Default: `defaultExecutionProviders()` (cuda,cpu where an NVIDIA GPU is present, else cpu). */
  executionProviders?: readonly string[];
  /** The backend. Default ONNX Runtime ({@link createOrtInstances}). */
  engineFactory?: EngineFactory;
  /** Batcher observers (metrics). */
  observers?: ObserverFactory;
  /** Called on state changes and load failures (logging). */
  log?: (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;
  /**
   * Folders that symbolic links inside model folders may point into (e.g. shared storage holding the .onnx files).
   * Every other link that leaves its model folder is refused (`OSPREY_ERR_PATH_NOT_ALLOWED`). Default none.
   */
  allowedSymlinkTargets?: readonly string[];
  /**
   * Models {@link ModelRepository.open} loads: `'*'` = every model folder (Triton's `none` and `poll` modes, and
   * `--load-model=*`), or these names (`explicit` mode's `--load-model`; none when empty). Default `'*'`.
   */
  startupModels?: '*' | readonly string[];
  /** Backends other than onnxruntime, by config `backend` name (default: `osprey-cuda` = Osprey's GPU engine). */
  backends?: LifecycleContext['backends'];
  /**
   * `--gpus`: the GPUs (CUDA device ordinals) every non-CPU instance group is placed on, replacing the config's
   * `instanceGroup[].gpus`. Checked against the host's GPUs at load (`OSPREY_ERR_GPU_NOT_FOUND`).
   */
  gpuIds?: readonly number[];
  /** The host's GPUs. Default: nvidia-smi / the CUDA driver, read once per process (src/gpu/inventory.ts). */
  gpus?: () => Promise<GpuInventory>;
}

/** The build's engine file names (`model.sm90.engine`, src/compile/serialize.ts engineFileName) → compute capability. */
const ENGINE_FILE = /^(.+)\.sm([0-9]+)([0-9])\.engine$/;

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
  /** The model folder's fingerprint at the last load attempt (poll mode compares it, see `scanChanges`). */
  fingerprint?: string;
}

export interface LoadRequest {
  /** Config override (Triton's load `parameters.config`), a JSON string or a parsed object, camelCase keys. */
  config?: string | Record<string, unknown>;
  /** Overrides the config's version policy for this load only (a swap's rollback pins the previous version). */
  versionPolicy?: VersionPolicy;
  /** Files pushed with the request (Triton's `file:<version>/<name>`), path relative to the model folder → bytes. */
  files?: Record<string, Uint8Array>;
}

const CONFIG_FILES = ['config.json', 'config.yaml', 'config.yml'];
/** Model names: the folder name rules Triton users know, bounded in length. */
const MODEL_NAME = /^[A-Za-z0-9_.-]{1,128}$/;
/** Largest config file read, bytes. */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;
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
    /** The repository folder (its real path), or null for a one-file repository. */
    readonly root: string | null,
    private readonly options: RepositoryOptions,
    /** Real paths of {@link RepositoryOptions.allowedSymlinkTargets}. */
    private readonly allowedTargets: readonly string[] = [],
  ) {
    this.factory = options.engineFactory ?? createOrtInstances;
    this.eps = options.executionProviders ?? defaultExecutionProviders();
  }

  /**
   * Opens a repository folder and loads every model in it (a model that fails is reported in the index and the
   * log; the others load).
   * @throws OspreyError `OSPREY_ERR_FILE_NOT_FOUND` when the folder does not exist.
   */
  static async open(root: string, options: RepositoryOptions = {}): Promise<ModelRepository> {
    const st = await stat(resolvePath(root)).catch(() => null);
    if (!st?.isDirectory()) throw new OspreyError('OSPREY_ERR_FILE_NOT_FOUND', `${root}: the model repository is not a directory`, { path: root });
    const abs = await realpath(resolvePath(root));
    const repo = new ModelRepository(abs, options, await realAllowedTargets(options.allowedSymlinkTargets));
    const startup = options.startupModels ?? '*';
    const names = startup === '*' ? await repo.scanModelNames() : [...new Set(startup)];
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
    // `model.sm90.engine` (osprey build --engine cuda) → `model`: the compute capability is not part of the name
    const name = options.name ?? basename(abs, extname(abs)).replace(extname(abs) === '.engine' ? /\.sm[0-9]+$/ : /$^/, '');
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

  /**
   * A version's files for its backend: the per-GPU files (`ccModelFilenames`, confined to the model folder; a listed
   * file that is missing is skipped, so the portable default is used, as Triton does), and Osprey's GPU engine
   * folders as `osprey build --engine cuda` writes them (`model.sm<XY>.engine` per compute capability, no
   * `model.onnx`). A version whose folder (or `--model` file) holds only engine files and whose config names no
   * backend is served by `osprey-cuda`.
   */
  private async versionFiles(
    model: string,
    modelDir: string,
    v: number,
    pinned: string | undefined,
    file: ModelConfigFile,
    resolved: ModelConfig,
  ): Promise<{ file: ModelConfigFile; resolved: ModelConfig; ccModelPaths: Record<string, string>; defaultPath?: { path: string; display: string } }> {
    const ccModelPaths: Record<string, string> = {};
    const noBackend = file.backend === undefined && file.platform === undefined;
    const asGpuEngine = (): { file: ModelConfigFile; resolved: ModelConfig } => ({
      file: { ...file, backend: 'osprey-cuda' },
      resolved: { ...resolved, backend: 'osprey-cuda', platform: 'osprey_cuda_engine' },
    });
    if (pinned !== undefined) {
      const m = ENGINE_FILE.exec(basename(pinned));
      if (m) ccModelPaths[`${m[2]}.${m[3]}`] = pinned;
      const gpuEngine = resolved.backend === 'osprey-cuda' || (noBackend && extname(pinned) === '.engine');
      return { ...(gpuEngine ? asGpuEngine() : { file, resolved }), ccModelPaths };
    }
    const versionDir = join(modelDir, String(v));
    for (const [cc, f] of Object.entries(resolved.ccModelFilenames)) {
      try {
        const { path } = await resolveInModelFolder(modelDir, versionDir, f, { model, keyPath: `ccModelFilenames.${cc}` }, this.allowedTargets);
        if ((await stat(path).catch(() => null))?.isFile()) ccModelPaths[cc] = path;
      } catch (err) {
        if (!(err instanceof OspreyError && err.code === 'OSPREY_ERR_MODEL_NOT_FOUND_FILE')) throw err;
      }
    }
    const listing = await readdir(versionDir).catch(() => [] as string[]);
    const engines = listing.filter((f) => ENGINE_FILE.test(f)).sort();
    const hasDefault = listing.includes(resolved.defaultModelFilename);
    const gpuEngine = resolved.backend === 'osprey-cuda' || (noBackend && !hasDefault && engines.length > 0);
    if (!gpuEngine) return { file, resolved, ccModelPaths };
    for (const f of engines) {
      const m = ENGINE_FILE.exec(f)!;
      const cc = `${m[2]}.${m[3]}`;
      if (ccModelPaths[cc] !== undefined) continue;
      ccModelPaths[cc] = (await resolveInModelFolder(modelDir, versionDir, f, { model, keyPath: 'ccModelFilenames' }, this.allowedTargets)).path;
    }
    const out = asGpuEngine();
    if (file.defaultModelFilename !== undefined || hasDefault) return { ...out, ccModelPaths };
    // no portable file: the engine of the highest compute capability stands for the version (load key, messages)
    const first = Object.keys(ccModelPaths).sort((a, b) => Number(b) - Number(a))[0];
    if (first === undefined) {
      throw new OspreyError(
        'OSPREY_ERR_MODEL_NOT_FOUND_FILE',
        `${model}: version ${v}: backend osprey-cuda but no engine file (expected model.sm<XY>.engine, written by osprey build --engine cuda --out <version folder>, or ccModelFilenames)`,
        { model },
      );
    }
    return { ...out, ccModelPaths, defaultPath: { path: ccModelPaths[first]!, display: relative(modelDir, ccModelPaths[first]!) } };
  }

  private async readSource(entry: ModelEntry, stagingDir?: string): Promise<ModelSource> {
    const pushedDir = stagingDir ?? entry.tempDir;
    if (pushedDir || (this.root && !entry.file)) {
      const dir = pushedDir ?? join(this.root!, entry.name);
      const files = await readdir(dir).catch(() => null);
      if (!files) throw new OspreyError('OSPREY_ERR_MODEL_NOT_FOUND', `model '${entry.name}' is not in the repository`, { model: entry.name });
      let config: ModelSource['config'];
      const cf = CONFIG_FILES.find((f) => files.includes(f));
      if (cf) {
        const { path } = await resolveInModelFolder(dir, dir, cf, { model: entry.name, keyPath: cf }, this.allowedTargets);
        const text = (await readBoundedFile(path, cf, { model: entry.name, keyPath: cf }, { maxBytes: MAX_CONFIG_FILE_BYTES })).toString('utf8');
        config = { path: join(dir, cf), text };
      }
      const versions = new Map<number, string | undefined>();
      for (const f of files) {
        if (VERSION_DIR.test(f) && (await stat(join(dir, f)).catch(() => null))?.isDirectory()) versions.set(Number(f), undefined);
      }
      return { dir, config, versions };
    }
    return { dir: dirname(entry.file!), versions: new Map([[1, entry.file!]]) };
  }

  /**
   * Loads (or re-loads) a model: reads its config, picks versions by `versionPolicy`, verifies manifests, starts the
   * engine instances, builds the batchers, runs `modelWarmup`, then switches traffic to the new version set and
   * releases versions no longer in it once their in-flight requests have finished. Unchanged versions are kept.
   * With `latest: {numVersions: N}`, a version that fails to load is replaced by the next lower one (Triton's
   * version policy serves the newest N versions that load), so a corrupt newest version does not take the model down.
   *
   * Every path from the config or the request must stay inside the model folder (src/repository/paths.ts). Files
   * pushed with the request are written to a fresh temporary folder; if the load fails that folder is removed, the
   * previous one (if any) keeps serving, and a model that existed only through this request leaves no index row.
   *
   * @throws OspreyError `OSPREY_ERR_MODEL_NOT_FOUND` (no such model folder), `OSPREY_ERR_CONFIG` (bad config: the
   *   message names the key path), `OSPREY_ERR_PATH_NOT_ALLOWED`, `OSPREY_ERR_HASH_MISMATCH`,
   *   `OSPREY_ERR_LOAD_FAILED` (no version could load: the message has each version's reason). On failure a
   *   previously loaded version set keeps serving.
   */
  load(name: string, request: LoadRequest = {}): Promise<void> {
    if (this.closed) return Promise.reject(new OspreyError('OSPREY_ERR_SHUTTING_DOWN', 'the repository is closing'));
    if (!MODEL_NAME.test(name) || name === '.' || name === '..') {
      return Promise.reject(new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `'${name.slice(0, 100)}' is not a valid model name (letters, digits, '_', '-', '.'; at most 128 characters)`));
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
    const pushing = request.files !== undefined && Object.keys(request.files).length > 0;
    let staging: string | undefined;
    let succeeded = false;
    try {
      if (pushing) staging = await this.writePushedFiles(entry, request);
      if (!pushing && !entry.tempDir && !entry.file && this.root) entry.fingerprint = await this.fingerprint(entry.name);
      let source: ModelSource;
      try {
        source = await this.readSource(entry, staging);
      } catch (err) {
        if (entry.versions.size === 0 && this.root && !entry.tempDir && !staging) this.models.delete(entry.name);
        throw err;
      }
      // ---- config: validated and resolved once; the versions below and the lifecycle read `resolved` ----
      let file: ModelConfigFile;
      let resolved: ModelConfig;
      const where = this.displayPath(source.config?.path ?? `${entry.name}/config`);
      try {
        ({ file, resolved } = this.resolveConfig(entry.name, source, request));
      } catch (err) {
        const e = toOspreyError(err, 'OSPREY_ERR_CONFIG');
        entry.failures.set(0, e);
        throw e;
      }
      const modelFileName = resolved.defaultModelFilename;

      // ---- versions by policy ----
      const available = [...source.versions.keys()].sort((a, b) => a - b);
      const policy = resolved.versionPolicy;
      let wanted: number[];
      /** Lower versions to fall back to, newest first, when one of `wanted` fails (policy `latest` only). */
      let fallbacks: number[] = [];
      const missing: number[] = [];
      if (policy.kind === 'latest') {
        wanted = available.slice(-policy.numVersions);
        fallbacks = available.slice(0, Math.max(0, available.length - policy.numVersions)).reverse();
      } else if (policy.kind === 'all') wanted = available;
      else {
        wanted = policy.versions.filter((v) => available.includes(v));
        missing.push(...policy.versions.filter((v) => !available.includes(v)));
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
      const loadOne = async (v: number): Promise<boolean> => {
        try {
          const pinned = source.versions.get(v);
          let modelPath: string;
          let shown: string;
          const files = await this.versionFiles(entry.name, source.dir, v, pinned, file, resolved);
          const vFile = files.file;
          const vResolved = files.resolved;
          if (pinned !== undefined) {
            modelPath = pinned; // `--model PATH`: the operator's own file
            shown = basename(pinned);
          } else if (files.defaultPath) {
            ({ path: modelPath, display: shown } = files.defaultPath);
          } else {
            const versionDir = join(source.dir, String(v));
            ({ path: modelPath, display: shown } = await resolveInModelFolder(source.dir, versionDir, modelFileName, { model: entry.name, keyPath: 'defaultModelFilename' }, this.allowedTargets));
          }
          const st = await stat(modelPath).catch(() => null);
          if (!st?.isFile()) throw new OspreyError('OSPREY_ERR_MODEL_NOT_FOUND_FILE', `${entry.name}: ${shown}: not a regular model file`, { model: entry.name, path: shown });
          const loadKey = `${modelPath}|${st.size}|${st.mtimeMs}|${JSON.stringify(vFile)}|${JSON.stringify(files.ccModelPaths)}|${this.options.gpuIds?.join(',') ?? ''}`;
          const existing = entry.versions.get(v);
          if (existing && existing.loadKey === loadKey && existing.state === 'READY') {
            next.set(v, existing);
            return true;
          }
          if (pinned === undefined) await verifyManifest(join(source.dir, String(v)), modelFileName, { modelDir: source.dir, model: entry.name, allowedTargets: this.allowedTargets });
          const mv = await loadModelVersion(
            { model: entry.name, version: v, modelPath, modelDir: source.dir, file: vFile, resolved: vResolved, where, loadKey, ccModelPaths: files.ccModelPaths },
            {
              factory: this.factory,
              backends: this.options.backends,
              gpus: this.options.gpus,
              gpuIds: this.options.gpuIds,
              executionProviders: this.eps,
              observer: this.options.observers?.(entry.name, v),
              allowedTargets: this.allowedTargets,
            },
          );
          created.push(mv);
          next.set(v, mv);
          return true;
        } catch (err) {
          const e = toOspreyError(err, 'OSPREY_ERR_LOAD_FAILED');
          failures.set(v, e);
          this.log('error', `model ${entry.name} version ${v} failed to load: ${e.code}: ${e.message}`, { model: entry.name, version: v, code: e.code });
          return false;
        }
      };
      const results = await Promise.all(wanted.map(loadOne));
      let short = results.filter((ok) => !ok).length;
      // Triton's `latest` policy: serve the newest N versions that load.
      while (short > 0 && fallbacks.length > 0) {
        const v = fallbacks.shift()!;
        if (await loadOne(v)) {
          short--;
          this.log('warn', `model ${entry.name}: serving version ${v} in place of a newer version that failed to load`, { model: entry.name, version: v });
        }
      }

      const hadVersions = entry.versions.size > 0;
      if (next.size === 0 || (hadVersions && failures.size > 0)) {
        // Nothing loaded, or a re-load failed: keep what was serving.
        for (const mv of created) await mv.close().catch(() => undefined);
        created.length = 0;
        // A version that keeps serving shows as READY; only the others carry the failure.
        for (const [v, e] of failures) if (!entry.versions.has(v)) entry.failures.set(v, e);
        const first = [...failures.values()][0];
        const summary = [...failures.entries()].map(([v, e]) => `version ${v}: ${e.code}: ${e.message}`).join('; ');
        const code: ErrorCode = failures.size === 1 && first ? first.code : 'OSPREY_ERR_LOAD_FAILED';
        throw new OspreyError(code, `${entry.name}: load failed${hadVersions ? ' (the previous version keeps serving)' : ''}: ${summary}`, { model: entry.name });
      }

      // ---- switch ----
      const old = entry.versions;
      entry.versions = next;
      entry.failures = failures;
      const previousTemp = entry.tempDir;
      if (staging) entry.tempDir = staging;
      succeeded = true;
      for (const [v] of next) this.log('info', `model ${entry.name} version ${v} is READY`, { model: entry.name, version: v });
      const retired = [...old.values()].filter((mv) => next.get(mv.version) !== mv);
      await Promise.all(retired.map((mv) => mv.close()));
      if (staging && previousTemp && previousTemp !== staging) await rm(previousTemp, { recursive: true, force: true }).catch(() => undefined);
    } finally {
      entry.loading = false;
      if (!succeeded && pushing) {
        if (staging) await rm(staging, { recursive: true, force: true }).catch(() => undefined);
        // A model that existed only through this request leaves nothing behind (no folder, no index row).
        if (entry.versions.size === 0 && !entry.tempDir && !entry.file && !(await this.onDisk(entry.name))) this.models.delete(entry.name);
      }
    }
  }

  /**
   * A fingerprint of a model folder: its config file, version folders and their files (names, sizes, mtimes,
   * following links). Poll mode re-loads a model when it changes.
   */
  private async fingerprint(name: string): Promise<string> {
    const dir = join(this.root!, name);
    const parts: string[] = [];
    const walk = async (d: string, depth: number): Promise<void> => {
      const items = (await readdir(d).catch(() => [] as string[])).sort();
      for (const f of items) {
        const st = await stat(join(d, f)).catch(() => null);
        if (!st) continue;
        if (st.isDirectory()) {
          parts.push(`${relative(dir, join(d, f))}/`);
          if (depth < 2) await walk(join(d, f), depth + 1);
        } else parts.push(`${relative(dir, join(d, f))}|${st.size}|${st.mtimeMs}`);
      }
    };
    await walk(dir, 0);
    return parts.join('\n');
  }

  /**
   * What changed on disk since the last load of each model (poll mode): `changed` = new model folders and folders
   * whose fingerprint differs; `removed` = loaded models whose folder is gone. Models pushed through the API and
   * one-file repositories are not polled.
   */
  async scanChanges(): Promise<{ changed: string[]; removed: string[] }> {
    if (!this.root || this.closed) return { changed: [], removed: [] };
    const onDisk = await this.scanModelNames().catch(() => [] as string[]);
    const changed: string[] = [];
    for (const name of onDisk) {
      const entry = this.models.get(name);
      if (entry?.tempDir || entry?.loading) continue;
      if (!entry || entry.fingerprint !== (await this.fingerprint(name))) changed.push(name);
    }
    const removed = [...this.models.values()].filter((e) => !e.tempDir && !e.file && e.versions.size > 0 && !onDisk.includes(e.name)).map((e) => e.name);
    return { changed, removed };
  }

  /**
   * The config a load of `name` would use (the request's override, else the model's config file), validated and
   * resolved without the model: version policy, instance groups, parameters (as strings) and every default.
   * The swap controller reads its probation thresholds here, from the same resolution the load uses.
   * @throws OspreyError `OSPREY_ERR_CONFIG` naming the key path, `OSPREY_ERR_MODEL_NOT_FOUND`.
   */
  async previewConfig(name: string, request: LoadRequest = {}): Promise<ModelConfig> {
    const entry = this.models.get(name) ?? { name, versions: new Map(), failures: new Map(), busy: Promise.resolve(), loading: false };
    return this.resolveConfig(name, await this.readSource(entry), request).resolved;
  }

  private resolveConfig(name: string, source: ModelSource, request: LoadRequest): { file: ModelConfigFile; resolved: ModelConfig } {
    const where = this.displayPath(source.config?.path ?? `${name}/config`);
    let file: ModelConfigFile;
    if (request.config !== undefined) {
      let raw: unknown;
      try {
        raw = typeof request.config === 'string' ? JSON.parse(request.config) : request.config;
      } catch (err) {
        throw new OspreyError('OSPREY_ERR_CONFIG', `${name}: the load request's config is not valid JSON (${(err as Error).message})`, { keyPath: 'config' });
      }
      file = validateModelConfig(raw, `${name} (load request config)`);
    } else if (source.config) {
      file = parseModelConfigText(source.config.text, where);
    } else {
      file = {};
    }
    if (request.versionPolicy) file = { ...file, versionPolicy: toFileVersionPolicy(request.versionPolicy) };
    const resolved = resolveModelConfig(file, name, undefined, where); // model-free: completed from the model at load
    checkRelativePath(resolved.defaultModelFilename, { model: name, keyPath: 'defaultModelFilename' });
    return { file, resolved };
  }

  /** True when the repository folder has a folder for this model. */
  private async onDisk(name: string): Promise<boolean> {
    if (!this.root) return false;
    return (await stat(join(this.root, name)).catch(() => null))?.isDirectory() ?? false;
  }

  /** A path for messages: relative to the repository root when inside it (never the server's absolute layout). */
  private displayPath(path: string): string {
    if (this.root && isInside(this.root, path)) return relative(this.root, path) || '.';
    if (path.startsWith(tmpdir())) return `(pushed)/${basename(path)}`;
    return path;
  }

  /**
   * Writes the files of a load request (`file:<version>/<name>`) into a fresh temporary folder and returns it.
   * @throws OspreyError `OSPREY_ERR_INVALID_ARGUMENT` (files without a config, a malformed name),
   *   `OSPREY_ERR_PATH_NOT_ALLOWED` (a name with `..`, `/` or other path syntax).
   */
  private async writePushedFiles(entry: ModelEntry, request: LoadRequest): Promise<string> {
    if (request.config === undefined) {
      throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `${entry.name}: a load request with files must also carry a config (Triton's rule)`);
    }
    for (const rel of Object.keys(request.files ?? {})) {
      const m = /^([1-9][0-9]{0,8})\/([A-Za-z0-9_.-]{1,255})$/.exec(rel);
      if (!m) throw new OspreyError('OSPREY_ERR_INVALID_ARGUMENT', `${entry.name}: pushed file 'file:${rel.slice(0, 200)}' must be 'file:<version>/<name>' (name: letters, digits, '_', '-', '.')`);
      checkRelativePath(rel, { model: entry.name, keyPath: `file:${rel}` });
    }
    const dir = await mkdtemp(join(tmpdir(), `osprey-model-${entry.name}-`));
    try {
      for (const [rel, bytes] of Object.entries(request.files ?? {})) {
        const [version, name] = rel.split('/') as [string, string];
        await mkdir(join(dir, version), { recursive: true });
        await writeFile(join(dir, version, name), bytes, { flag: 'wx' });
      }
    } catch (err) {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
    return dir;
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

/** The file form of a resolved version policy. */
function toFileVersionPolicy(p: VersionPolicy): NonNullable<ModelConfigFile['versionPolicy']> {
  if (p.kind === 'latest') return { latest: { numVersions: p.numVersions } };
  if (p.kind === 'all') return { all: {} };
  return { specific: { versions: [...p.versions] } };
}
