#!/usr/bin/env bash
# One device run of Osprey's GPU engine (carried as .gpu-wt/): node from node.xz, the bundled bench, PyTorch peers.
set -o pipefail
W=.gpu-wt  # the carried folder (gpu-engine-pack.sh rewrites this line)
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
mkdir -p /tmp/gpu-root/bin
[ -x /tmp/gpu-root/bin/node ] || { xz -dc $W/node.xz > /tmp/gpu-root/bin/node 2>/dev/null || python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('$W/node.xz'), open('/tmp/gpu-root/bin/node','wb'))"; chmod +x /tmp/gpu-root/bin/node; }
export PATH=/tmp/gpu-root/bin:$PATH
{ node --version; nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total,clocks.sm,clocks.max.sm --format=csv; } 2>&1 | tee "$OUT/log.txt"
[ -f /tmp/yolov8s-synth.onnx ] || (cd $W && timeout 60 python3 torch_yolov8.py export --scale s --out /tmp/yolov8s-synth.onnx 2>&1 | tail -1) | tee -a "$OUT/log.txt"
timeout ${NODE_TIMEOUT:-380} node $W/run.mjs --model $W/yolov8n.onnx --frames $W/frames.bin --model2 /tmp/yolov8s-synth.onnx 2>&1 | tee -a "$OUT/log.txt"
echo "node rc=$?" | tee -a "$OUT/log.txt"
if [ "${TORCH:-1}" = 1 ]; then
  (cd $W && PYTHONUNBUFFERED=1 timeout ${TORCH_TIMEOUT:-170} python3 torch_peers.py --scale n,s --batch 1,32 2>&1 | grep -v '^{' | tail -20) | tee -a "$OUT/log.txt"
fi
node $W/run.mjs --merge 2>&1 | tee -a "$OUT/log.txt"
