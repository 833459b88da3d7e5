#!/usr/bin/env bash
# Bundles the GPU engine's device-run scripts (bench/gpu-engine) into single ES modules with esbuild (from tsx's
# dependencies), koffi left external: the lent GPU machine has no npm, so a run carries these files, koffi and node.
# Usage: bash scripts/gpu-bundle.sh OUTDIR
set -euo pipefail
OUTDIR=${1:?usage: gpu-bundle.sh OUTDIR}
mkdir -p "$OUTDIR"
npx esbuild bench/gpu-engine/run.ts bench/gpu-engine/reference-worker.ts src/engine/gpu-worker.ts --bundle --platform=node --format=esm --target=node20 \
  --external:koffi --external:onnxruntime-node --external:sharp --outdir="$OUTDIR" --entry-names=[name] --out-extension:.js=.mjs \
  --banner:js="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);" --log-level=warning
