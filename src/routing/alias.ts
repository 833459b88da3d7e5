/**
 * Model aliases: a name clients call that splits traffic between model versions (or models) by weight, sticky by a
 * request key when the request carries one, with an optional shadow target that receives a copy of the traffic.
 *
 * Aliases live in one file at the root of the model repository, `<repo>/aliases.yaml` (or `aliases.yml` /
 * `aliases.json`), keyed by alias name. A root file (not a folder) keeps the repository in Triton's layout: every
 * folder is still a model.
 *
 * @example <repo>/aliases.yaml
 *   detector:
 *     arms:
 *       - { name: stable, model: yolov8n, version: 1, weight: 90 }
 *       - { name: candidate, model: yolov8n, version: 2, weight: 10 }
 *     sticky: { parameter: routing_key }     # default; `sticky: false` ignores request keys
 *     shadow: { model: yolov8n_int8, fraction: 1.0 }
 *     agreement: { iouThreshold: 0.5 }
 *
 * Clients call `detector` like any model (HTTP `/v2/models/detector/infer`, gRPC `model_name: "detector"`); a
 * request with the parameter `routing_key: "cam-17"` always lands on the same arm while the weights stay the same.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { parse as parseYaml } from 'yaml';
import { configError, schemaError } from '../core/config-errors.js';
import { DEFAULT_AGREEMENT_IOU } from './agreement.js';

const Strict = <T extends Parameters<typeof Type.Object>[0]>(props: T) => Type.Object(props, { additionalProperties: false });
const VersionSchema = Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: '^[0-9]*$' })]);

const ArmSchema = Strict({
  /** Arm name in metrics and stats; default `<model>` or `<model>:<version>`. */
  name: Type.Optional(Type.String({ minLength: 1, pattern: '^[A-Za-z0-9_.:-]+$' })),
  model: Type.String({ minLength: 1 }),
  /** Model version; omitted = the version the model's version policy serves. */
  version: Type.Optional(VersionSchema),
  /** Relative share of traffic (any non-negative numbers; they are normalised). */
  weight: Type.Number({ minimum: 0 }),
});

const AliasSchema = Strict({
  arms: Type.Array(ArmSchema, { minItems: 1 }),
  sticky: Type.Optional(Type.Union([Type.Boolean(), Strict({ parameter: Type.Optional(Type.String({ minLength: 1 })) })])),
  shadow: Type.Optional(
    Strict({
      name: Type.Optional(Type.String({ minLength: 1, pattern: '^[A-Za-z0-9_.:-]+$' })),
      model: Type.String({ minLength: 1 }),
      version: Type.Optional(VersionSchema),
      /** Share of requests copied to the shadow, 0..1. Default 1. */
      fraction: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    }),
  ),
  agreement: Type.Optional(Strict({ iouThreshold: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })) })),
});

/** The aliases file: alias name → alias. */
export const AliasFileSchema = Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]+$' }), AliasSchema);
export type AliasFile = Static<typeof AliasFileSchema>;

/** A routing target: a model and an optional version ("" = the policy's choice). */
export interface RouteTarget {
  /** Name in metrics/stats. */
  name: string;
  model: string;
  version: string;
}

export interface AliasArm extends RouteTarget {
  /** Normalised share, 0..1; the arms' weights sum to 1. */
  weight: number;
}

/** A resolved alias (every default applied). */
export interface AliasConfig {
  name: string;
  arms: AliasArm[];
  /** Request parameter carrying the sticky key; null = routing ignores keys (always random by weight). */
  stickyParameter: string | null;
  shadow: (RouteTarget & { fraction: number }) | null;
  /** IoU threshold of a match when comparing shadow and primary answers. Default 0.5. */
  agreementIouThreshold: number;
}

/** Default request parameter of sticky routing. */
export const DEFAULT_ROUTING_KEY_PARAMETER = 'routing_key';

/** File names looked for at the repository root, in order. */
export const ALIAS_FILE_NAMES = ['aliases.yaml', 'aliases.yml', 'aliases.json'] as const;

const targetName = (model: string, version: string): string => (version ? `${model}:${version}` : model);

/**
 * Validates and resolves an aliases document.
 * @param where file name for messages
 * @throws OspreyError `OSPREY_ERR_CONFIG` naming the key path (e.g. `detector.arms[1].weight`), weights summing to 0,
 *   duplicate arm names, an alias that names itself as a target.
 */
export function resolveAliases(raw: unknown, where: string): Map<string, AliasConfig> {
  const out = new Map<string, AliasConfig>();
  if (raw === null || raw === undefined) return out;
  const bad = schemaError(AliasFileSchema, raw, where);
  if (bad) throw bad;
  const file = raw as AliasFile;
  for (const [name, a] of Object.entries(file)) {
    const sum = a.arms.reduce((s, arm) => s + arm.weight, 0);
    if (!(sum > 0)) {
      throw configError(where, `${name}.arms`, `the weights sum to 0; give at least one arm a positive weight`);
    }
    const arms: AliasArm[] = a.arms.map((arm) => {
      const version = arm.version === undefined ? '' : String(arm.version);
      return { name: arm.name ?? targetName(arm.model, version), model: arm.model, version, weight: arm.weight / sum };
    });
    const names = new Set<string>();
    arms.forEach((arm, i) => {
      if (names.has(arm.name)) {
        throw configError(where, `${name}.arms[${i}].name`, `'${arm.name}' is used by two arms; name them`);
      }
      names.add(arm.name);
      if (arm.model === name) {
        throw configError(where, `${name}.arms[${i}].model`, `an alias cannot route to itself`);
      }
    });
    const sticky = a.sticky === undefined || a.sticky === true ? DEFAULT_ROUTING_KEY_PARAMETER : a.sticky === false ? null : (a.sticky.parameter ?? DEFAULT_ROUTING_KEY_PARAMETER);
    let shadow: AliasConfig['shadow'] = null;
    if (a.shadow) {
      const version = a.shadow.version === undefined ? '' : String(a.shadow.version);
      shadow = { name: a.shadow.name ?? `shadow:${targetName(a.shadow.model, version)}`, model: a.shadow.model, version, fraction: a.shadow.fraction ?? 1 };
      if (names.has(shadow.name)) {
        throw configError(where, `${name}.shadow.name`, `'${shadow.name}' is also an arm name`);
      }
    }
    out.set(name, {
      name,
      arms,
      stickyParameter: sticky,
      shadow,
      agreementIouThreshold: a.agreement?.iouThreshold ?? DEFAULT_AGREEMENT_IOU,
    });
  }
  return out;
}

/**
 * Reads `<repo>/aliases.(yaml|yml|json)`; an absent file means no aliases.
 * @throws OspreyError `OSPREY_ERR_CONFIG` (syntax error, or see {@link resolveAliases}).
 */
export function loadAliasFile(repositoryDir: string): Map<string, AliasConfig> {
  for (const fileName of ALIAS_FILE_NAMES) {
    const path = join(repositoryDir, fileName);
    if (!existsSync(path)) continue;
    const text = readFileSync(path, 'utf8');
    let raw: unknown;
    try {
      raw = fileName.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    } catch (err) {
      throw configError(fileName, '', `not valid ${fileName.endsWith('.json') ? 'JSON' : 'YAML'} (${(err as Error).message.split('\n')[0]})`);
    }
    return resolveAliases(raw, fileName);
  }
  return new Map();
}
