#!/usr/bin/env bash
# GPU machine, warm after session5a: the server-vs-engine benchmark on this machine's 16 CPU cores (CPU EP; a quiet,
# dedicated host), then Nsight Compute on the engine with the session config entry ep.cuda.prefer_nhwc=1.
set -uo pipefail
export PATH=/tmp/gpu-root/bin:$PATH
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
echo "== server vs engine alone, CPU EP, 16 cores"
for v in "--input fp32 --output raw" "--input uint8 --output topk"; do
  tag=$(echo $v | awk '{print $2"-"$4}')
  timeout 200 node --import tsx bench/server-throughput.ts --seconds 8 --warmup-seconds 3 --rounds 3 $v --out "$OUT/server-throughput-cpu16-$tag.json" 2>&1 | grep -v "npm warn" | tail -1
done
echo "== ncu with ep.cuda.prefer_nhwc=1"
OSPREY_ORT_EXTRA='{"ep":{"cuda":{"prefer_nhwc":"1"}}}' timeout 200 ncu --metrics gpu__time_duration.sum --csv --cache-control none --clock-control none \
  node --import tsx bench/gpu/kernels.ts /tmp/gd/models/yolov8n.onnx 32 e2e-fp16 2 > "$OUT/ncu-nhwc.csv" 2> "$OUT/ncu-nhwc-stderr.txt"
echo "ncu rc=$?"; python3 bench/gpu/ncu_summary.py "$OUT/ncu-nhwc.csv" 2 | head -12
gzip -f "$OUT/ncu-nhwc.csv"
