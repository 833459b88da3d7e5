#!/usr/bin/env bash
# Prepares the multi-GPU scaling run (issue 19; bench/suites/multi-gpu-scaling.ts) for a lent multi-GPU machine
# (nvidia-h200-x2 / -x4 / h100-x2 / -x4), which has no Node, npm, network or ../shared:
#   1. ../shared/tools/gpu-pack.sh: node, node_modules (tsx, koffi, onnxruntime-node + its CUDA EP) in .gpu/part-00..03
#   2. .gpu-data/ (ignored): yolov8n.onnx, 16 coco-val-dev images, torch_yolov8.py (makes the YOLOv8s-shaped export there)
# Then make the four runs back to back (one machine kind for all four; within 30 s of each other), e.g. for 4 GPUs:
#   run(kind="nvidia-h200-x4", carry=[".gpu/unpack.sh", ".gpu/part-00"], command="bash .gpu/unpack.sh")   # rc 3: 1 of 4 parts
#   run(kind="nvidia-h200-x4", carry=[".gpu/unpack.sh", ".gpu/part-01"], command="bash .gpu/unpack.sh")   # rc 3
#   run(kind="nvidia-h200-x4", carry=[".gpu/unpack.sh", ".gpu/part-02"], command="bash .gpu/unpack.sh")   # rc 3
#   run(kind="nvidia-h200-x4", carry=[".gpu/unpack.sh", ".gpu/part-03", ".gpu-data"], command="bash bench/multi-gpu/run.sh")
# run.sh unpacks, prints osprey doctor, runs the suite (1, 2, 4 GPUs; yolov8n and yolov8s-synth; engine alone and
# osprey serve + osprey bench server) and leaves the JSON under $OUT. Usage: bash bench/multi-gpu/pack.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
SHARED=${SHARED:-$ROOT/../shared}
[ -d .gpu ] && [ -f .gpu/part-03 ] || bash "$SHARED/tools/gpu-pack.sh"
mkdir -p .gpu-data/models .gpu-data/coco-val-dev/images
cp "$SHARED/data/models/yolov8n.onnx" .gpu-data/models/
cp "$SHARED/tools/torch_yolov8.py" .gpu-data/
ls "$SHARED/data/coco-val-dev/images" | sort | head -16 | while read -r f; do cp "$SHARED/data/coco-val-dev/images/$f" .gpu-data/coco-val-dev/images/; done
du -sh .gpu/part-03 .gpu-data
