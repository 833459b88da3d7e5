#!/usr/bin/env bash
# Fills DEST (a folder of the checkout that `run` sends, ignored through .git/info/exclude, e.g. /work/main/.gpu-wt)
# with what one device run of the GPU engine needs (~42 MB, under the 64 MiB a run carries): the bundled bench
# (scripts/gpu-bundle.sh), koffi and its linux-x64 binary, node (xz), yolov8n.onnx, the bus/zidane frames, the
# PyTorch peer scripts and bench/gpu-engine/device-run.sh. Then: run(command="bash DESTNAME/run.sh", carry=[DESTNAME]).
set -euo pipefail
DEST=${1:?usage: gpu-engine-pack.sh DEST}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DEST/node_modules/@koromix"
bash "$ROOT/scripts/gpu-bundle.sh" "$DEST"
cp -r "$ROOT/node_modules/koffi" "$DEST/node_modules/"
cp -r "$ROOT/node_modules/@koromix/koffi-linux-x64" "$DEST/node_modules/@koromix/" && rm -rf "$DEST/node_modules/@koromix/koffi-linux-x64/musl_x64"
[ -f "$DEST/node.xz" ] || xz -T0 -6 -c "$(readlink -f "$(command -v node)")" > "$DEST/node.xz"
cp "$ROOT/../shared/data/models/yolov8n.onnx" "$ROOT/../shared/tools/torch_yolov8.py" "$ROOT/../shared/tools/torch_peers.py" "$DEST/"
(cd "$ROOT" && npx tsx bench/gpu-engine/frames.ts "$DEST/frames.bin")
cp "$ROOT/bench/gpu-engine/device-run.sh" "$DEST/run.sh"
sed -i "s#^W=.gpu-wt#W=$(basename "$DEST")#" "$DEST/run.sh"
du -sh "$DEST"
