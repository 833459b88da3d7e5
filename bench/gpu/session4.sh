#!/usr/bin/env bash
# GPU machine, after .gpu/unpack.sh: CUDA EP options through session config entries; yolov8s throughput vs PyTorch
# on this GPU; streams capacity between 128 and 192 streams. Writes into $OUT.
source bench/gpu/env.sh
echo "== CUDA EP options via session config entries (yolov8n)"
node --import tsx bench/gpu/ep-options.ts /tmp/gd/models/yolov8n.onnx "$OUT/ep-options-yolov8n-h100.json" 2>&1 | tail -8
echo "== yolov8s vs PyTorch"
(cd /tmp/gd && python3 torch_yolov8.py bench --scale s --batch 1,8,32,64 --precision fp16 2>/dev/null) > "$OUT/torch-s.jsonl"
grep host-uint8 "$OUT/torch-s.jsonl" | cut -c1-120
node --import tsx bench/gpu/run.ts --model yolov8s=/tmp/yolov8s-synth.onnx --pytorch "$OUT/torch-s.jsonl" --images /tmp/gd/images \
  --out "$OUT/gpu-bench-yolov8s-h100.json" --duration-ms 1500 --instances 1,4 --variants e2e-fp16 2>&1 | tail -14
echo "== streams 128,160"
node --import tsx bench/gpu/streams-capacity.ts --model /tmp/yolov8s-synth.onnx --images /tmp/gd/coco-val-dev/images \
  --out "$OUT/streams-gpu-yolov8s-h100-refine.json" --streams 128,160 --fps 10 --seconds 10 --instances 4 --max-batch 32 2>&1 | grep -v '^{' | tail -2
python3 -c "
import json; d=json.load(open('$OUT/streams-gpu-yolov8s-h100-refine.json'))
for s in d['steps']: print(s['streams'], 'processed', s['processedFps'], 'dropped%', s['droppedPercent'], 'p50/p99', s['frameToResultMs'], 'batch', s['meanBatchSize'], 'run ms', s['sessionRunMsMean'])"
