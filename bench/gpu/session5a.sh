#!/usr/bin/env bash
# GPU machine, after .gpu/unpack.sh: the engine test suite on the CUDA EP (with the shape-specialised sessions), then
# the streams capacity around the knee. Writes into $OUT.
source bench/gpu/env.sh
echo "== engine tests, OSPREY_TEST_EP=cuda"
OSPREY_TEST_EP=cuda timeout 240 node --import tsx --test --test-concurrency=1 test/engine/*.test.ts test/cli/detect.test.ts > "$OUT/engine-tests-cuda-h100.log" 2>&1
echo "tests rc=$?"; grep -E "^# (tests|pass|fail|skipped)|^not ok|  not ok" "$OUT/engine-tests-cuda-h100.log" | head -20
echo "== streams 96,112,128,160"
node --import tsx bench/gpu/streams-capacity.ts --model /tmp/yolov8s-synth.onnx --images /tmp/gd/coco-val-dev/images \
  --out "$OUT/streams-gpu-yolov8s-h100-run3.json" --streams 96,112,128,160 --fps 10 --seconds 10 --instances 4 --max-batch 32 2>&1 | grep -v '^{' | tail -2
python3 -c "
import json; d=json.load(open('$OUT/streams-gpu-yolov8s-h100-run3.json'))
for s in d['steps']: print(s['streams'], 'processed', s['processedFps'], 'dropped%', s['droppedPercent'], 'p50/p99', s['frameToResultMs'], 'batch', s['meanBatchSize'], 'run ms', s['sessionRunMsMean'])"
