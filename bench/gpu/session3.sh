#!/usr/bin/env bash
# GPU machine, after .gpu/unpack.sh (see docs/gpu.md): streams capacity with shape-specialised sessions, then
# kernel-level profiles of Osprey's engine (Nsight Compute) and of PyTorch (torch.profiler). Writes into $OUT.
source bench/gpu/env.sh
echo "== streams, yolov8s fp16, default buckets + shape-specialised sessions"
node --import tsx bench/gpu/streams-capacity.ts --model /tmp/yolov8s-synth.onnx --images /tmp/gd/coco-val-dev/images \
  --out "$OUT/streams-gpu-yolov8s-h100.json" --streams 64,128,192,256 --fps 10 --seconds 8 --instances 4 --max-batch 32 2>&1 \
  | grep -v '^{' | tail -3
python3 -c "
import json,sys; d=json.load(open('$OUT/streams-gpu-yolov8s-h100.json'))
for s in d['steps']: print(s['streams'], 'processed', s['processedFps'], 'dropped%', s['droppedPercent'], 'p50/p99', s['frameToResultMs'], 'batch', s['meanBatchSize'], 'run ms', s['sessionRunMsMean'])"
echo "== torch kernels"
python3 bench/gpu/torch_kernels.py /tmp/gd/torch_yolov8.py n 32 2>&1 | tail -27
echo "== ncu on Osprey's engine (yolov8n e2e-fp16 b32)"
timeout 240 ncu --metrics gpu__time_duration.sum --csv --cache-control none --clock-control none \
  node --import tsx bench/gpu/kernels.ts /tmp/gd/models/yolov8n.onnx 32 e2e-fp16 2 > "$OUT/ncu-yolov8n-b32.csv" 2> "$OUT/ncu-stderr.txt"
echo "ncu rc=$?"; grep -v '^"' "$OUT/ncu-yolov8n-b32.csv" | tail -3; tail -3 "$OUT/ncu-stderr.txt"
python3 bench/gpu/ncu_summary.py "$OUT/ncu-yolov8n-b32.csv" 2
gzip -f "$OUT/ncu-yolov8n-b32.csv"
