# Sourced by the bench/gpu/*.sh session scripts on the GPU machine, after .gpu/unpack.sh (docs/gpu.md says how
# node_modules, node and the data get there): node on PATH, ../shared/data pointing at the carried data (/tmp/gd),
# $OUT for results, and the YOLOv8s-shaped model at /tmp/yolov8s-synth.onnx (random weights, torch_yolov8.py export).
set -uo pipefail
export PATH=/tmp/gpu-root/bin:$PATH
mkdir -p ../shared && ln -sfn /tmp/gd ../shared/data
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
[ -f /tmp/yolov8s-synth.onnx ] || python3 /tmp/gd/torch_yolov8.py export --scale s --out /tmp/yolov8s-synth.onnx >/dev/null 2>&1
# The engine test suite on the CUDA EP, log in /tmp/engine-tests.log; prints the counts and any failure.
run_engine_tests_cuda() {
  OSPREY_TEST_EP=cuda timeout 240 node --import tsx --test --test-concurrency=1 test/engine/*.test.ts test/cli/detect.test.ts > /tmp/engine-tests.log 2>&1
  echo "tests rc=$?"; grep -E "^# (tests|pass|fail|skipped)|not ok" /tmp/engine-tests.log | head
  grep -B3 -A14 "not ok" /tmp/engine-tests.log | grep -v "^\s*at " | head -30
}
