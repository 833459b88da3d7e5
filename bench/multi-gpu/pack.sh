#!/usr/bin/env bash
# Prepares the multi-GPU scaling run (issue 19; bench/suites/multi-gpu-scaling.ts) for a lent multi-GPU machine
# (nvidia-h200-x2 / -x4 / h100-x2 / -x4), which has no Node, npm, network or ../shared:
#   1. ../shared/tools/gpu-pack.sh: node, node_modules (tsx, koffi, onnxruntime-node + its CUDA EP) in .gpu/part-NN
#   2. .gpu-data/ (ignored): yolov8n.onnx, 16 coco-val-dev images, torch_yolov8.py (makes the YOLOv8s-shaped export there)
# and prints the runs to make back to back on ONE machine kind (within 30 s of each other): every part but the last
# with `bash .gpu/unpack.sh` (rc 3: "k of N parts here"), the last with .gpu-data and `bash bench/multi-gpu/run.sh`,
# which unpacks, prints nvidia-smi and osprey doctor, runs the suite (1, 2, 4 GPUs; yolov8n and yolov8s-synth; the
# engine alone and osprey serve + osprey bench server) and leaves the JSON under $OUT.
# Usage: bash bench/multi-gpu/pack.sh [KIND]   (KIND for the printed runs, default nvidia-h200-x4)
set -euo pipefail
KIND=${1:-nvidia-h200-x4}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
SHARED=${SHARED:-$ROOT/../shared}
if [ -L node_modules ]; then
  # gpu-pack.sh archives node_modules with tar (a link would be packed as a link) and copies the CUDA EP libraries into
  # it (through a link, into the checkout it points at): run this from a checkout with a real node_modules
  echo "pack.sh: node_modules is a symbolic link ($(readlink node_modules)); run from a checkout with its own node_modules (npm ci)" >&2
  exit 1
fi
if [ ! -f .gpu/unpack.sh ]; then
  if [ -f .git ]; then
    # a git worktree (.git is a file): gpu-pack.sh's .git/info/exclude line cannot work; .gpu/ is in .gitignore
    sed 's#^grep -qx .*info/exclude$#:#' "$SHARED/tools/gpu-pack.sh" > /tmp/osprey-gpu-pack.sh
    bash /tmp/osprey-gpu-pack.sh
  else
    bash "$SHARED/tools/gpu-pack.sh"
  fi
fi
mkdir -p .gpu-data/models .gpu-data/coco-val-dev/images
cp "$SHARED/data/models/yolov8n.onnx" .gpu-data/models/
cp "$SHARED/tools/torch_yolov8.py" .gpu-data/
ls "$SHARED/data/coco-val-dev/images" | sort | head -16 | while read -r f; do cp "$SHARED/data/coco-val-dev/images/$f" .gpu-data/coco-val-dev/images/; done
PARTS=$(ls .gpu/part-* | sort)
LAST=$(echo "$PARTS" | tail -1)
du -sh "$LAST" .gpu-data
# a run carries at most 64 MiB: when the last part and .gpu-data do not fit together, .gpu-data goes in a run of its
# own first (ignored paths carried earlier stay in the repository copy while the machine is warm)
BYTES=$(( $(stat -c %s "$LAST") + $(du -sb .gpu-data | cut -f1) ))
SEPARATE=0
[ "$BYTES" -gt $((62 * 1024 * 1024)) ] && SEPARATE=1
echo "runs (kind $KIND), back to back:"
[ "$SEPARATE" = 1 ] && echo "  run(kind=\"$KIND\", carry=[\".gpu-data\"], command=\"du -sh .gpu-data\")"
for p in $PARTS; do
  if [ "$p" = "$LAST" ] && [ "$SEPARATE" = 1 ]; then
    echo "  run(kind=\"$KIND\", carry=[\".gpu/unpack.sh\", \"$p\"], command=\"bash bench/multi-gpu/run.sh\")"
  elif [ "$p" = "$LAST" ]; then
    echo "  run(kind=\"$KIND\", carry=[\".gpu/unpack.sh\", \"$p\", \".gpu-data\"], command=\"bash bench/multi-gpu/run.sh\")"
  else
    echo "  run(kind=\"$KIND\", carry=[\".gpu/unpack.sh\", \"$p\"], command=\"bash .gpu/unpack.sh\")"
  fi
done
