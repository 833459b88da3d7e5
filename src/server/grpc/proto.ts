/**
 * Loads Osprey's `.proto` files (KServe v2 `inference.GRPCInferenceService`, `grpc.health.v1.Health`) with
 * `@grpc/proto-loader`. The files ship in the package's `proto/` folder; they are found by walking up from this
 * module, so the same code works from `src/` (tsx) and from `dist/src/` (compiled), and from an installed package.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { OspreyError } from '../../core/errors.js';

/** Paths of the protos, relative to the package's `proto/` folder. */
export const KSERVE_PROTO = 'kserve/grpc_predict_v2.proto';
export const HEALTH_PROTO = 'grpc/health/v1/health.proto';

/** proto-loader options; codec.ts relies on them (snake_case keys, int64 as Number, enums as names, oneof names). */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/**
 * The package's `proto/` folder: the first `proto/<KSERVE_PROTO>` found walking up from this module.
 * @throws OspreyError `OSPREY_ERR_INTERNAL` when the package was installed without its `proto/` folder.
 */
export function protoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'proto');
    if (existsSync(join(candidate, KSERVE_PROTO))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new OspreyError('OSPREY_ERR_INTERNAL', `cannot find proto/${KSERVE_PROTO} above ${fileURLToPath(import.meta.url)}; the package's proto/ folder is missing`);
}

export interface OspreyGrpcDefinitions {
  /** `inference.GRPCInferenceService`. */
  inference: grpc.ServiceDefinition;
  /** `grpc.health.v1.Health`. */
  health: grpc.ServiceDefinition;
  /** Client constructors (tests, bench transports). */
  InferenceClient: grpc.ServiceClientConstructor;
  HealthClient: grpc.ServiceClientConstructor;
}

let cached: OspreyGrpcDefinitions | undefined;

/** Loads (once) and returns the service definitions and client constructors. */
export function loadGrpcDefinitions(): OspreyGrpcDefinitions {
  if (cached) return cached;
  const dir = protoDir();
  const pkgDef = protoLoader.loadSync([KSERVE_PROTO, HEALTH_PROTO], { ...PROTO_LOADER_OPTIONS, includeDirs: [dir] });
  const root = grpc.loadPackageDefinition(pkgDef) as unknown as {
    inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  cached = {
    inference: root.inference.GRPCInferenceService.service,
    health: root.grpc.health.v1.Health.service,
    InferenceClient: root.inference.GRPCInferenceService,
    HealthClient: root.grpc.health.v1.Health,
  };
  return cached;
}
