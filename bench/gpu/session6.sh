#!/usr/bin/env bash
# GPU machine, after .gpu/unpack.sh: engine tests on CUDA again (shape-session test with its CUDA tolerance), whether
# the session config entry ep.cuda.prefer_nhwc reaches the CUDA EP (NHWC nodes in the verbose log), and the
# server-vs-engine benchmark on this 16-core host with the engine osprey build makes, 5 rounds. Writes into $OUT.
source bench/gpu/env.sh
echo "== engine tests, OSPREY_TEST_EP=cuda"
OSPREY_TEST_EP=cuda timeout 240 node --import tsx --test --test-concurrency=1 test/engine/*.test.ts test/cli/detect.test.ts > /tmp/engine-tests.log 2>&1
echo "tests rc=$?"; grep -E "^# (tests|pass|fail|skipped)|not ok" /tmp/engine-tests.log | head; grep -E "^ok|^not ok|^    (ok|not ok)" /tmp/engine-tests.log | cut -c1-150 > "$OUT/engine-tests-cuda-h100-summary.txt"
grep -B3 -A30 "not ok" /tmp/engine-tests.log | grep -v "^\s*at " | head -40
tail -c 60000 /tmp/engine-tests.log > "$OUT/engine-tests-cuda-h100-tail.log"
echo "== prefer_nhwc via config entry: NHWC nodes?"
for x in '' '{"ep":{"cuda":{"prefer_nhwc":"1"}}}'; do
  n=$(OSPREY_ORT_EXTRA="$x" node --import tsx bench/gpu/placement.ts /tmp/gd/models/yolov8n.onnx e2e-fp16 cuda 2>&1 | grep -ci "nhwc")
  echo "extra='$x': log lines mentioning nhwc: $n"
done
OSPREY_ORT_EXTRA='{"ep":{"cuda":{"prefer_nhwc":"1"}}}' node --import tsx bench/gpu/placement.ts /tmp/gd/models/yolov8n.onnx e2e-fp16 cuda 2>&1 | grep -i "nhwc\|prefer\|config" | cut -c1-250 | head -8
echo "== server vs engine alone, CPU EP, 16 cores, built engine, 5 rounds"
timeout 330 node --import tsx bench/server-throughput.ts --seconds 12 --warmup-seconds 3 --rounds 5 --input uint8 --output topk --out "$OUT/server-throughput-cpu16-uint8-topk-5rounds.json" 2>&1 | grep -v "npm warn" | tail -2
