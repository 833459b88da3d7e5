#!/usr/bin/env bash
# The device side of bench/multi-gpu/pack.sh: one command, under 10 minutes on a 4-GPU host with the defaults.
# Extra arguments go to the suite (e.g. --backends onnxruntime,osprey-cuda --duration-ms 4000 --gpu-counts 1,2).
# NVLink multicast is left as the machine's environment sets it (nothing here touches NCCL or the cards' settings).
set -euo pipefail
bash .gpu/unpack.sh
export PATH=/tmp/gpu-root/bin:$PATH
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=index,name,compute_cap,driver_version,memory.total --format=csv | tee "$OUT/nvidia-smi.csv"
npx tsx src/cli/main.ts doctor 2>&1 | tee "$OUT/doctor.txt" || true
npx tsx bench/suites/multi-gpu-scaling.ts \
  --model yolov8n=.gpu-data/models/yolov8n.onnx --torch-script .gpu-data/torch_yolov8.py \
  --images .gpu-data/coco-val-dev/images --gpu-counts 1,2,4 --batch 32 --instances 2 --duration-ms 5000 \
  --out "$OUT/multi-gpu-scaling.json" "$@" 2>&1 | tee "$OUT/multi-gpu-scaling.log"
