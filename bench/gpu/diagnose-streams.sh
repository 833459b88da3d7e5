#!/usr/bin/env bash
# GPU machine, after .gpu/unpack.sh: why the streams benchmark behind the dynamic batcher is slow, and the streams
# figure once fixed. Writes into $OUT. Data under /tmp/gd (see docs/gpu.md for how it gets there).
source bench/gpu/env.sh
python3 -c "import onnxruntime as o; print('python onnxruntime', o.__version__, o.get_available_providers())" 2>&1 | tail -1
which nsys ncu 2>&1 | head -2
[ -f /tmp/yolov8s-synth.onnx ] || python3 /tmp/gd/torch_yolov8.py export --scale s --out /tmp/yolov8s-synth.onnx
echo "== shape switching (yolov8n)"
node --import tsx bench/gpu/shape-switch.ts /tmp/gd/models/yolov8n.onnx "$OUT/shape-switch-yolov8n.json" cuda | head -80
echo "== placement (yolov8n e2e fp16)"
node --import tsx bench/gpu/placement.ts /tmp/gd/models/yolov8n.onnx e2e-fp16 cuda 2>&1 | grep -E -A10 "Node placements|Memcpy|not assigned" | cut -c1-300 | head -60
